"""The agents' opening hours per weekday and the holiday calendar, as the admin keeps them in SQL.

One calendar for inbound calls (``queue.availability``, ``clock.business_hours``) and for return visits
(``complaints.calling_window``). Each process reads it at most every ``ttl_s`` seconds, so an edit reaches
new calls within that time without a restart. Until the admin first saves the week, the settings are the
hours of every day and the settings' holidays are the calendar (a new installation).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from store.db import UNAVAILABLE
from store.models import Holiday, OpeningHours

log = logging.getLogger(__name__)

WEEKDAYS = range(7)
"""0 Monday .. 6 Sunday, as ``datetime.date.weekday``."""


@dataclass(frozen=True)
class DayHours:
    opens: dt.time | None
    closes: dt.time | None

    @property
    def closed(self) -> bool:
        return self.opens is None or self.closes is None

    def covers(self, at: dt.time) -> bool:
        return not self.closed and self.opens <= at < self.closes  # type: ignore[operator]


@dataclass(frozen=True)
class Calendar:
    """One reading of the tables: the week and the holidays (date -> name)."""

    week: Mapping[int, DayHours]
    holidays: Mapping[dt.date, str] = field(default_factory=dict)
    configured: bool = False
    """False: nothing saved yet, the settings speak."""


class HoursInvalid(ValueError):
    """An edit the calendar refuses (closing before opening, a half-set day)."""


class HoursBook:
    """Reads and writes the calendar; answers ``is_open`` and ``date in book.holidays`` from a short cache."""

    def __init__(self, sql: sessionmaker[Session], timezone: str, default_opens: dt.time, default_closes: dt.time,
                 default_holidays: Iterable[dt.date] = (), ttl_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sql, self.timezone, self.zone = sql, timezone, ZoneInfo(timezone)
        self.defaults = Calendar({d: DayHours(default_opens, default_closes) for d in WEEKDAYS},
                                 {day: "" for day in default_holidays})
        self.ttl_s, self._clock = ttl_s, clock
        self._lock = threading.Lock()
        self._cached: Calendar | None = None
        self._read_at = 0.0
        self.holidays = _HolidayView(self)

    # -- reading ----------------------------------------------------------------------------

    def calendar(self) -> Calendar:
        """The calendar as of at most ``ttl_s`` ago; the last one read (or the settings) while SQL is away."""
        now = self._clock()
        with self._lock:
            if self._cached is not None and now - self._read_at < self.ttl_s:
                return self._cached
        try:
            fresh = self._read()
        except UNAVAILABLE as exc:
            log.warning("opening hours not read (%s): the last ones known apply", type(exc).__name__)
            fresh = self._cached or self.defaults
        with self._lock:
            self._cached, self._read_at = fresh, now
        return fresh

    def _read(self) -> Calendar:
        with self.sql() as db:
            rows = db.scalars(select(OpeningHours)).all()
            days = db.scalars(select(Holiday).order_by(Holiday.day)).all()
        if not rows:
            return Calendar(self.defaults.week, {**self.defaults.holidays, **{h.day: h.name for h in days}})
        week = {d: DayHours(None, None) for d in WEEKDAYS}
        week.update({r.weekday: DayHours(r.opens, r.closes) for r in rows})
        return Calendar(week, {h.day: h.name for h in days}, configured=True)

    def local(self, now: dt.datetime | None = None) -> dt.datetime:
        return (now or dt.datetime.now(dt.UTC)).astimezone(self.zone)

    def is_open(self, now: dt.datetime | None = None) -> bool:
        """The agents work now: a weekday's hours in ``HOTLINE_TIMEZONE``, not on a holiday."""
        local = self.local(now)
        calendar = self.calendar()
        return local.date() not in calendar.holidays and calendar.week[local.weekday()].covers(local.time())

    # -- writing (the admin page; every write is audited there) -------------------------------

    def save_week(self, week: Mapping[int, DayHours]) -> None:
        """Replace the week's hours (all seven days). Also pins the holidays known now: from here on the table
        alone is the calendar (the settings' holidays are copied in the first time)."""
        for day in WEEKDAYS:
            hours = week.get(day)
            if hours is None:
                raise HoursInvalid(f"weekday {day} is missing")
            if (hours.opens is None) != (hours.closes is None):
                raise HoursInvalid("a day needs both an opening and a closing time, or neither (closed)")
            if not hours.closed and hours.opens >= hours.closes:  # type: ignore[operator]
                raise HoursInvalid("a day must open before it closes")
        current = self._read()
        with self.sql.begin() as db:
            db.execute(delete(OpeningHours))
            db.add_all(OpeningHours(weekday=d, opens=week[d].opens, closes=week[d].closes) for d in WEEKDAYS)
            if not current.configured:
                known = {h for h in db.scalars(select(Holiday.day))}
                db.add_all(Holiday(day=d, name=n) for d, n in current.holidays.items() if d not in known)
        self.forget()

    def add_holiday(self, day: dt.date, name: str) -> None:
        self._pin_defaults()
        with self.sql.begin() as db:
            found = db.get(Holiday, day)
            if found is None:
                db.add(Holiday(day=day, name=name.strip()[:100]))
            else:
                found.name = name.strip()[:100]
        self.forget()

    def remove_holiday(self, day: dt.date) -> bool:
        self._pin_defaults()
        with self.sql.begin() as db:
            found = db.get(Holiday, day)
            if found is not None:
                db.delete(found)
        self.forget()
        return found is not None

    def _pin_defaults(self) -> None:
        """Before the first holiday edit: the settings' week and holidays become rows, so that removing one
        of the settings' holidays sticks."""
        current = self._read()
        if not current.configured:
            self.save_week(current.week)

    def forget(self) -> None:
        """This process sees its own edit at once (others within ``ttl_s``)."""
        with self._lock:
            self._cached = None


class _HolidayView:
    """``date in book.holidays``: the calling window of return visits asks the same calendar."""

    def __init__(self, book: HoursBook) -> None:
        self._book = book

    def __contains__(self, day: object) -> bool:
        return day in self._book.calendar().holidays
