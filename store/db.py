"""Connecting to the SQL store and creating its tables."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from metrics import DB_ERRORS
from store.cooperative import cooperative_sqlite3, gevent_patched
from store.schema import ensure_current
from store.write_holds import watch_write_holds

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
"""How long a statement waits for the database (to connect, for a free pooled connection, for a SQLite
lock) before failing: webhooks must answer well inside Twilio's 15 s, with the fallback the menu gives."""

UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
"""Errors that mean "the database is not there right now" (down, unreachable, locked), not a bad statement."""


def connect(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> sessionmaker[Session]:
    """A session factory for ``url``; an empty database gets the schema, one behind this code is waited for
    (``store.schema.ensure_current``: ``hotline up`` or ``hotline db upgrade`` migrates it)."""
    engine = _engine(url, timeout_s)
    try:
        ensure_current(engine)
    except UNAVAILABLE as exc:
        # A process (re)started during an outage still serves calls; the tables exist in any running hotline.
        log.warning("database unavailable at start, tables not checked: %s", str(exc).splitlines()[0][:200])
    return sessionmaker(engine, expire_on_commit=False)


def engine_for(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Engine:
    """The engine ``connect`` uses, without touching the schema (``hotline db``)."""
    return _engine(url, timeout_s)


def _engine(url: str, timeout_s: float) -> Engine:
    engine = _new_engine(url, timeout_s)
    event.listen(engine, "handle_error", _count_error)
    return engine


def _count_error(context: ExceptionContext) -> None:
    DB_ERRORS.labels("connection" if context.is_disconnect else "statement").inc()


def _new_engine(url: str, timeout_s: float) -> Engine:
    if not url.startswith("sqlite"):
        # Fail fast when the server is down or unreachable: connect timeout, TCP keepalives, and a cap on
        # unacknowledged data (a server gone mid-query); pre-ping drops connections a restart closed.
        seconds = max(2, math.ceil(timeout_s))
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, pool_timeout=timeout_s,
                             connect_args={"connect_timeout": seconds, "keepalives": 1, "keepalives_idle": 10,
                                           "keepalives_interval": 2, "keepalives_count": 3,
                                           "tcp_user_timeout": seconds * 1000,
                                           "options": _server_options(url, seconds * 1000)})
    path = url.removeprefix("sqlite:///")
    if url.startswith("sqlite:///") and path and path != ":memory:" and "?" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Card holders' work orders and the users' password hashes: readable by the hotline's user only
        # (SQLite gives its journal and WAL files the database file's mode).
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    # Under gevent (the FastAGI process) statements run in native threads: sqlite3 never yields by itself.
    # There a session also keeps its pooled connection while its greenlet waits for the hub between statements:
    # with the default 5 + 10 connections, a thousand calls would queue for them.
    cooperative = {"module": cooperative_sqlite3(), "pool_size": 20, "max_overflow": 80} if gevent_patched() else {}
    engine = create_engine(url, connect_args={"timeout": timeout_s}, **cooperative)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    watch_write_holds(engine)
    return engine


def _server_options(url: str, timeout_ms: int) -> str:
    """A server that accepts but does not answer (a lock held by a stuck job, a disk stalled) cancels the
    statement after ``timeout_ms``: psycopg raises ``QueryCanceled``, an ``OperationalError``, so the call
    takes its outage path instead of waiting past Twilio's 15 s. Options given in the URL (a search path)
    are kept: these come after them."""
    given = make_url(url).query.get("options", "")
    given = given if isinstance(given, str) else " ".join(given)
    return f"{given} -c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}".strip()


WRITE_LOCK = "sqlite_write_lock"
"""Execution option: the transaction takes SQLite's write lock at once (``BEGIN IMMEDIATE``), so what it
reads cannot change before it writes. Python's sqlite3 otherwise runs a read before the first write outside
any transaction: two writers merging into one row would each overwrite the other's change."""


def write_locked(sql: sessionmaker[Session]) -> sessionmaker[Session]:
    """``sql`` whose transactions read and write under one lock (a no-op beyond SQLite: use FOR UPDATE)."""
    engine: Engine = sql.kw["bind"]
    if engine.dialect.name != "sqlite":
        return sql
    return sessionmaker(engine.execution_options(**{WRITE_LOCK: True}), expire_on_commit=False)


def _sqlite_begin(conn: object) -> None:
    if conn.get_execution_options().get(WRITE_LOCK):  # type: ignore[attr-defined]
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # type: ignore[attr-defined]


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    # WAL lets web workers read while one of them writes.
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
