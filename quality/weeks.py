"""ISO weeks in the hotline's time zone: what sampling and scorecards count by."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def week_of(at: dt.datetime, timezone: str) -> str:
    """``2026-W49``: the ISO week of ``at`` in ``timezone``."""
    year, week, _ = at.astimezone(ZoneInfo(timezone)).isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(week: str, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """[Monday 00:00, next Monday 00:00) of ``week`` in ``timezone``, as UTC."""
    monday = dt.date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    zone = ZoneInfo(timezone)
    lo = dt.datetime.combine(monday, dt.time(), zone)
    hi = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(), zone)
    return lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)


def parse_week(text: str) -> str:
    """``2026-W49`` checked (ValueError otherwise)."""
    if len(text) != 8 or text[4:6] != "-W" or not (text[:4] + text[6:]).isdigit():
        raise ValueError(f"not an ISO week (YYYY-Www): {text!r}")
    dt.date.fromisocalendar(int(text[:4]), int(text[6:]), 1)  # raises for W54 and the like
    return text
