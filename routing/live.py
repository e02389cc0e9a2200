"""The live picture of every queue: callers waiting, longest wait, agents by state, expected wait."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from routing.agents import Agent
from routing.router import Router

_SCORE_BAND = 1e13
"""Queue scores are ``(100 - priority) * 1e13 + enqueued_ms``: the remainder is the enqueue time."""


@dataclass(frozen=True)
class QueueSummary:
    queue: str
    skill: str
    language: str
    waiting: int
    longest_wait_s: float
    agents: dict[str, int] = field(default_factory=dict)
    """Agents serving this queue, by state."""
    expected_wait_s: float | None = None
    """For a caller joining now; None when not known (no handle times or nobody staffed)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def queue_summaries(router: Router, agents: list[Agent]) -> list[QueueSummary]:
    names = {_text(q) for q in router.redis.smembers(router.key("queues"))}
    for agent in agents:
        names |= {f"{skill}:{lang}" for skill in agent.skills for lang in agent.languages}
    now = router.clock()
    pipe = router.redis.pipeline(transaction=False)
    ordered = sorted(names)
    for name in ordered:
        pipe.zrange(router.key(f"queue:{name}"), 0, -1, withscores=True)
    lines = pipe.execute()
    summaries = []
    for name, line in zip(ordered, lines, strict=True):
        skill, _, language = name.partition(":")
        oldest = min((score % _SCORE_BAND for _, score in line), default=None)
        serving = Counter(a.state for a in agents if skill in a.skills and language in a.languages)
        estimate = router.estimator.for_score(skill, language, float("inf"))
        summaries.append(QueueSummary(
            queue=name, skill=skill, language=language, waiting=len(line),
            longest_wait_s=round(now - oldest / 1000, 1) if oldest is not None else 0.0,
            agents=dict(sorted(serving.items())), expected_wait_s=estimate.seconds,
        ))
    return summaries


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
