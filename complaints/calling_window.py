"""When return-visit calls may be placed: a daily window in the hotline's time zone, minus holidays."""

from __future__ import annotations

import datetime as dt
from collections.abc import Container
from zoneinfo import ZoneInfo


class CallingWindow:
    """``start <= local time < end`` on a day that is not a holiday."""

    def __init__(self, start: dt.time, end: dt.time, holidays: Container[dt.date], timezone: str) -> None:
        """``holidays``: a set, or the admin's calendar (``calls.hours.HoursBook.holidays``), asked each time."""
        if start >= end:
            raise ValueError(f"the calling window must start before it ends ({start} - {end})")
        self.start, self.end, self.zone = start, end, ZoneInfo(timezone)
        self.holidays = holidays

    def is_open(self, at: dt.datetime) -> bool:
        local = at.astimezone(self.zone)
        return local.date() not in self.holidays and self.start <= local.time() < self.end

    def next_open(self, at: dt.datetime) -> dt.datetime:
        """``at`` itself when the window is open then, else the next opening (as UTC)."""
        local = at.astimezone(self.zone)
        for _ in range(400):
            day = local.date()
            if day not in self.holidays:
                if local.time() < self.start:
                    return dt.datetime.combine(day, self.start, self.zone).astimezone(dt.UTC)
                if local.time() < self.end:
                    return local.astimezone(dt.UTC)
            local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), self.zone)
        raise ValueError("the calling window never opens in the next 400 days (every day a holiday?)")
