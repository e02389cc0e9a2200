"""Expected wait for a place in line, from recent handle times and the agents staffed.

With N agents working a queue and recent handle time H, agents free up about every H/N seconds,
so the caller at place p behind a agents already free waits about (p - a) * H / N. This is the
departure-rate core of Erlang C, applied to a known position instead of an average caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

MIN_SAMPLES = 5
"""Handle times needed before an estimate is announced to callers."""


@dataclass(frozen=True)
class WaitEstimate:
    position: int
    """1 = next in line."""
    seconds: float | None
    """None when no agent is staffed or no handle time is known yet."""
    confident: bool
    """Enough recent handle times and agents staffed to announce it."""


class WaitEstimator:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis, self._prefix = client, prefix

    def for_score(self, skill: str, language: str, score: float) -> WaitEstimate:
        """The estimate for a caller about to join the ``skill:language`` line with ``score``."""
        return self._estimate(skill, language, lambda pipe, line: pipe.zcount(line, "-inf", score))

    def for_call(self, skill: str, language: str, call_id: str) -> WaitEstimate:
        """The estimate for a caller in the ``skill:language`` line now (None: not in it)."""
        return self._estimate(skill, language, lambda pipe, line: pipe.zrank(line, call_id))

    def _estimate(self, skill: str, language: str, ahead: Callable[[Any, str], object]) -> WaitEstimate:
        pipe = self._redis.pipeline(transaction=False)
        ahead(pipe, f"{self._prefix}queue:{skill}:{language}")
        pipe.zcard(f"{self._prefix}pool:{skill}:{language}")
        pipe.scard(f"{self._prefix}staffed:{skill}:{language}")
        pipe.lrange(f"{self._prefix}aht:{skill}", 0, -1)
        before, free, staffed, samples = pipe.execute()
        return estimate(int(before or 0) + 1, int(free), int(staffed), [float(s) for s in samples])


def estimate(position: int, free_agents: int, staffed: int, handle_times: list[float]) -> WaitEstimate:
    """Expected wait at ``position`` (see the module docstring)."""
    if position <= free_agents:
        return WaitEstimate(position, 0.0, staffed > 0)
    if staffed == 0 or not handle_times:
        return WaitEstimate(position, None, False)
    handle = sum(handle_times) / len(handle_times)
    seconds = (position - free_agents) * handle / staffed
    return WaitEstimate(position, round(seconds, 1), len(handle_times) >= MIN_SAMPLES)
