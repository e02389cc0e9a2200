"""A clock the test moves by hand, injected where the router reads the time."""

from __future__ import annotations

import datetime as dt

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Now:
    """A datetime clock the test sets by hand (``now.at = ...``), for the desk and the return visits."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at
