"""The compressed day's clock, and what the simulated callers measure on it."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from simulate.plan import DAY_S


@dataclass
class DayClock:
    """Day seconds (0..86,400) mapped onto ``real_s`` real seconds from ``start``."""

    real_s: float
    start: float = field(default_factory=time.monotonic)

    @property
    def scale(self) -> float:
        """Day seconds per real second."""
        return DAY_S / self.real_s

    def real(self, day_s: float) -> float:
        return day_s / self.scale

    def now(self) -> float:
        return (time.monotonic() - self.start) * self.scale

    def hour(self) -> int:
        return min(23, max(0, int(self.now() // 3600)))

    def sleep(self, day_s: float) -> None:
        time.sleep(max(0.0, self.real(day_s)))

    def sleep_until(self, day_s: float) -> None:
        time.sleep(max(0.0, self.real(day_s - self.now())))


@dataclass
class Measurements:
    """Latencies per (kind, hour of the day) and counts of what went wrong, from every caller thread."""

    latency_ms: dict[tuple[str, int], list[float]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    problems: list[str] = field(default_factory=list)
    spans: list[tuple[str, float, float]] = field(default_factory=list)
    """Every request as (kind, sent, answered), monotonic seconds: what an outage window held up."""
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Outages by fault name: (began, ended), monotonic seconds."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def latency(self, kind: str, hour: int, seconds: float) -> None:
        answered = time.monotonic()
        with self._lock:
            self.latency_ms[(kind, hour)].append(seconds * 1000)
            self.spans.append((kind, answered - seconds, answered))

    def window(self, name: str, began: float, ended: float) -> None:
        with self._lock:
            self.windows[name] = (began, ended)

    def held_beyond(self, name: str, kind: str) -> list[float]:
        """Milliseconds each ``kind`` request that was waiting when outage ``name`` ended took after its end."""
        if name not in self.windows:
            return []
        began, ended = self.windows[name]
        with self._lock:
            return sorted((answered - ended) * 1000 for k, sent, answered in self.spans
                          if k == kind and sent < ended and answered > ended and answered > began)

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n

    def problem(self, text: str) -> None:
        with self._lock:
            self.counts["problems"] += 1
            if len(self.problems) < 50:
                self.problems.append(text)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted ``values``."""
    if not values:
        return math.nan
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]
