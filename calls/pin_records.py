"""The SQL record of PIN failures and locks per card: it outlives Redis, and counts alone while Redis is away."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, bindparam, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ivr.services import PinCard
from store.db import write_locked
from store.models import PinFailures


@dataclass(frozen=True)
class PinPolicy:
    max_failures: int = 5
    window_s: float = 86400.0
    """Failures count within this long of the first one."""
    lock_s: float = 86400.0
    """How long a lock holds; 0: until an admin resets it."""


@dataclass(frozen=True)
class CardState:
    """What the record says of a card now."""

    failures: int
    since: dt.datetime
    locked_at: dt.datetime | None = None
    locked_until: dt.datetime | None = None

    @property
    def locked(self) -> bool:
        return self.locked_at is not None


class _Counted(Protocol):
    """The columns of a card's record that its state is read from (an ORM row, or a row of ``_STATE_OF``)."""

    failures: int
    since: dt.datetime
    locked_at: dt.datetime | None
    locked_until: dt.datetime | None


_STATE_OF = select(PinFailures.failures, PinFailures.since, PinFailures.locked_at, PinFailures.locked_until).where(
    PinFailures.card_key == bindparam("card_key"))


@dataclass(frozen=True)
class PinLockView:
    """A row of the supervisors' page."""

    card_key: str
    card_masked: str
    failures: int
    last_failure_at: dt.datetime | None
    last_channel: str
    locked_at: dt.datetime | None
    locked_until: dt.datetime | None


class PinRecords:
    def __init__(self, sql: sessionmaker[Session], policy: PinPolicy) -> None:
        self._sql, self._locked_sql, self._policy = sql, write_locked(sql), policy
        self._engine: Engine = sql.kw["bind"]

    def state(self, card_key: str, now: dt.datetime) -> CardState:
        # Core, not the ORM: a point read on every PIN check, where a session and its identity map cost three
        # times the read (py-spy, webhook bench).
        with self._engine.connect() as conn:
            row = conn.execute(_STATE_OF, {"card_key": card_key}).first()
        return self._current(row, now) if row else CardState(0, now)

    def count(self, card: PinCard, channel: str, now: dt.datetime, reserve: bool) -> tuple[CardState, bool]:
        """One more failure of ``card``, or with ``reserve`` one more check (not counted when the card is
        locked or full); returns the state after, and whether it was counted."""
        for attempt in (1, 2):
            try:
                with self._locked_sql.begin() as db:
                    return self._count(db, card, channel, now, reserve)
            except IntegrityError:  # PostgreSQL: another process inserted the card's first row just now
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def lock(self, card: PinCard, failures: int, now: dt.datetime) -> dt.datetime | None:
        """Lock the card's checks; returns until when (None: until an admin resets it)."""
        until = now + dt.timedelta(seconds=self._policy.lock_s) if self._policy.lock_s else None
        with self._locked_sql.begin() as db:
            row = self._row(db, card, now)
            if row.locked_at is None or (row.locked_until is not None and _aware(row.locked_until) <= now):
                row.locked_at, row.locked_until = now, until
            row.failures = max(row.failures, failures)
            return _aware(row.locked_until) if row.locked_until else None

    def give_back(self, card_key: str) -> None:
        """A reserved check that was never judged does not count."""
        with self._locked_sql.begin() as db:
            row = db.get(PinFailures, card_key, with_for_update=True)
            if row is not None and row.locked_at is None and row.failures > 0:
                row.failures -= 1

    def forget(self, card_key: str) -> None:
        """A right PIN, or an admin's reset: the card starts afresh."""
        with self._sql.begin() as db:
            db.execute(delete(PinFailures).where(PinFailures.card_key == card_key))

    def listing(self, now: dt.datetime) -> list[PinLockView]:
        """Locked cards first, then cards with failures in their window; newest first."""
        since = now - dt.timedelta(seconds=self._policy.window_s)
        query = select(PinFailures).where(or_(PinFailures.locked_at.is_not(None), PinFailures.since > since))
        with self._sql() as db:
            rows = [r for r in db.scalars(query) if self._current(r, now).failures or self._current(r, now).locked]
        rows.sort(key=lambda r: (r.locked_at is None, -_aware(r.last_failure_at or r.since).timestamp()))
        return [_view(r, self._current(r, now)) for r in rows]

    def find(self, card_key: str, now: dt.datetime) -> PinLockView | None:
        with self._sql() as db:
            row = db.get(PinFailures, card_key)
            return _view(row, self._current(row, now)) if row else None

    def _count(self, db: Session, card: PinCard, channel: str, now: dt.datetime,
               reserve: bool) -> tuple[CardState, bool]:
        row = self._row(db, card, now)
        state = self._current(row, now)
        if state.locked or (reserve and state.failures >= self._policy.max_failures):
            return state, False
        row.failures, row.since, row.locked_at, row.locked_until = state.failures + 1, state.since, None, None
        row.last_failure_at, row.last_channel = now, channel[:16]
        if card.masked:
            row.card_masked = card.masked
        return CardState(row.failures, state.since), True

    def _row(self, db: Session, card: PinCard, now: dt.datetime) -> PinFailures:
        row = db.get(PinFailures, card.key, with_for_update=True)
        if row is None:
            row = PinFailures(card_key=card.key, card_masked=card.masked or "****", failures=0, since=now)
            db.add(row)
            db.flush()
        return row

    def _current(self, row: _Counted, now: dt.datetime) -> CardState:
        """The row as it stands at ``now``: a lock that ended, or a window that passed, count as nothing."""
        locked_until = _aware(row.locked_until) if row.locked_until else None
        if row.locked_at is not None and (locked_until is None or locked_until > now):
            return CardState(row.failures, _aware(row.since), _aware(row.locked_at), locked_until)
        since = _aware(row.since)
        if row.locked_at is not None or since + dt.timedelta(seconds=self._policy.window_s) <= now:
            return CardState(0, now)
        return CardState(row.failures, since)


def _view(row: PinFailures, state: CardState) -> PinLockView:
    return PinLockView(row.card_key, row.card_masked, state.failures,
                       _aware(row.last_failure_at) if row.last_failure_at else None, row.last_channel,
                       state.locked_at, state.locked_until)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC
