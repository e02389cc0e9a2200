"""Readiness: can this hotline take calls now? Redis, the database, the record writer's lag, a live menu.

``/readyz`` and ``hotline status`` ask the same checks. Each reason says what failed in a few words (the
error's class at most): readiness is public, so no address, URL or message of a library leaks through it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from calls.menus import MenuNotFound, MenuRepository
from store import schema
from workers.records_lag import records_lag

CACHE_S = 1.0
"""Answers are reused this long: a public endpoint polled hard costs the database one probe a second."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str = ""
    """Why not ready (empty when ok)."""
    detail: dict[str, Any] = field(default_factory=dict)
    """A figure or two an operator reads (the lag, the live version)."""

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **({"reason": self.reason} if not self.ok else {}), **self.detail}


@dataclass
class Readiness:
    """The checks, over a Redis client of their own (no retries: a Redis that went away is said at once)."""

    redis: redis.Redis | None
    """None: no Redis is known to run (``hotline status`` beside a stopped ``hotline up``)."""
    sql: sessionmaker[Session]
    menus: MenuRepository | None
    menu_name: str
    events_stream: str
    db_timeout_s: float
    max_records_lag_s: float
    _db_probe: _OneAtATime = field(default_factory=lambda: _OneAtATime())
    _last: tuple[float, list[Check]] | None = None

    def checks(self) -> list[Check]:
        """Every check, reusing an answer younger than ``CACHE_S``."""
        now = time.monotonic()
        if self._last is None or now - self._last[0] >= CACHE_S:
            self._last = (now, [self._redis(), self._database(), self._records(), self._menu()])
        return self._last[1]

    def _redis(self) -> Check:
        if self.redis is None:
            return Check("redis", False, "not running")
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            return Check("redis", False, f"no answer ({type(exc).__name__})")
        return Check("redis", True)

    def _database(self) -> Check:
        found: list[schema.SchemaState] = []

        def probe() -> None:
            with self.sql() as db:
                db.execute(text("SELECT 1"))
                found.append(schema.schema_state(db.connection()))

        reason = self._db_probe.run(probe, self.db_timeout_s)
        if reason or not found:
            return Check("database", False, reason or "no answer")
        now = found[0]
        detail = {"schema": now.current}
        if not now.at_head:  # a release whose tables are not there yet: its queries would fail
            return Check("database", False, f"schema at revision {now.current or 'none'}, this release needs "
                         f"{now.head}: run `hotline db upgrade`", detail)
        return Check("database", True, detail=detail)

    def _records(self) -> Check:
        if self.redis is None:
            return Check("records", False, "redis not running")
        try:
            lag = records_lag(self.redis, self.events_stream)
        except redis.RedisError as exc:
            return Check("records", False, f"lag unknown: redis gave no answer ({type(exc).__name__})")
        detail = {"lag_s": round(lag.oldest_age_s, 1), "unwritten": lag.unwritten}
        if lag.oldest_age_s > self.max_records_lag_s:
            return Check("records", False, f"call records {lag.oldest_age_s:.0f} s behind (limit "
                         f"{self.max_records_lag_s:g} s): record writers stopped or the database away", detail)
        return Check("records", True, detail=detail)

    def _menu(self) -> Check:
        if self.menus is None:
            return Check("menu", False, "unknown: redis not running")
        try:
            version = self.menus.live_version(self.menu_name)
        except MenuNotFound:
            return Check("menu", False, f"no version of menu {self.menu_name!r} is published")
        except Exception as exc:  # noqa: BLE001 - Redis and the database both away: said, not raised
            return Check("menu", False, f"live version unknown ({type(exc).__name__})")
        return Check("menu", True, detail={"menu": self.menu_name, "version": version})


def ready(checks: list[Check]) -> bool:
    return all(c.ok for c in checks)


def as_json(checks: list[Check]) -> dict[str, Any]:
    """The body of ``/readyz``: ``status`` ready or not ready, and each check by name."""
    return {"status": "ready" if ready(checks) else "not ready", "checks": {c.name: c.as_json() for c in checks}}


class _OneAtATime:
    """Runs a probe in a thread of its own, waiting at most ``timeout_s``: a database that accepts and never
    answers costs one stuck thread, not one per request (a probe still running is waited on, not repeated)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="readiness")
        self._lock = threading.Lock()
        self._running: Future[None] | None = None

    def run(self, probe: Callable[[], None], timeout_s: float) -> str:
        """``""`` when the probe returned in time, else the reason."""
        with self._lock:
            if self._running is None or self._running.done():
                self._running = self._pool.submit(probe)
            running = self._running
        try:
            running.result(timeout=timeout_s)
        except FutureTimeout:
            return f"no answer within {timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure of the probe is the reason
            return f"no answer ({type(exc).__name__})"
        return ""


def readyz(readiness: Readiness) -> Callable[[], tuple[dict[str, Any], int]]:
    """The ``/readyz`` view: 200 when every check passes, else 503; the checks in JSON either way."""

    def view() -> tuple[dict[str, Any], int]:
        checks = readiness.checks()
        return as_json(checks), 200 if ready(checks) else 503

    return view
