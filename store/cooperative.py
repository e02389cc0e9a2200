"""SQLite that lets the other calls run: under gevent (the FastAGI process, the gevent web worker), what may wait
runs in native threads.

sqlite3 is C code that reads the disk and, while another process holds the write lock, sleeps in its busy
handler for up to the database timeout, all without yielding: in a process of greenlets one call's statement
would stall every call. psycopg 3 needs nothing of this: it waits on its socket in gevent's way by itself
once the process is patched. Without gevent (the threaded web, the workers, the tests) this module is not used.

A write transaction is the opposite case: while it holds SQLite's write lock every writer of every process
waits, so it must not wait for the hub between its statements. Its writes are tried at once on the hub and,
while another process has the lock, tried again there after short sleeps (``_Connection._write``).

The FastAGI process keeps reads on the hub (a call's reads are point lookups, cheaper than a trip to a thread);
a web worker also serves the reports and the dashboard's figures of the day, aggregates of tens of milliseconds
that would hold every webhook meanwhile: ``move_reads_off_hub`` sends its reads to the threads too, all but
Twilio's webhooks' (``reads_on_hub``)."""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

_reads_off_hub = False
_request: threading.local | None = None


def move_reads_off_hub() -> None:
    """From now on this process's cooperative SQLite runs reads (statements and fetches) in the thread pool too,
    but for requests that ask for ``reads_on_hub``: sqlite3 lets go of the GIL while it steps, so a long read
    (a report, the dashboard's figures of the day) runs beside the requests instead of in front of them. A trip to a
    thread costs a read ~60 us of CPU instead of ~10 on the hub (docs/performance.md). Called by the gevent web
    worker once it is patched, before it opens its database."""
    global _reads_off_hub, _request
    _reads_off_hub = True
    _request = threading.local()  # patched by now: one per greenlet


def reads_on_hub(on: bool) -> None:
    """The reads of the current request (greenlet) stay on the hub (``True``) or follow ``move_reads_off_hub``:
    Twilio's webhooks make a few point lookups each, where the trip to a thread would cost more than the read."""
    if _request is not None:
        _request.on_hub = on


def _read_off_hub() -> bool:
    return _reads_off_hub and not getattr(_request, "on_hub", False)


def gevent_patched() -> bool:
    """Whether this process was monkey-patched by gevent (``hotline agi``)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


def in_thread_if_gevent(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``: off the hub in a gevent process (CPU work that releases the GIL, such as a slow
    KDF, then runs on another core while the calls go on), directly anywhere else."""
    return off_hub(fn, *args, **kwargs) if gevent_patched() else fn(*args, **kwargs)


def off_hub(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in gevent's thread pool; the calling greenlet waits, the others run."""
    import gevent

    return gevent.get_hub().threadpool.apply(fn, args, kwargs)  # type: ignore[no-any-return]


def cooperative_sqlite3() -> types.ModuleType:
    """A stand-in for the ``sqlite3`` module (SQLAlchemy's ``module=``) whose connections run off the hub and
    write one at a time in this process."""
    module = types.ModuleType("sqlite3_off_hub")
    module.__dict__.update(sqlite3.__dict__)
    writer = threading.Lock()  # patched by gevent: a greenlet waiting for it lets the others run

    def connect(*args: Any, **kwargs: Any) -> _Connection:
        # Each statement may run in another of the pool's threads (one at a time: a pooled connection has one user).
        kwargs["check_same_thread"] = False
        return _Connection(off_hub(sqlite3.connect, *args, **kwargs), writer, float(kwargs.get("timeout", 5.0)))

    module.connect = connect  # type: ignore[attr-defined]
    return module


_FIRST_PAUSE_S, _LAST_PAUSE_S = 0.001, 0.02
"""How long a write sleeps before trying SQLite's lock again: from 1 ms, doubling to 20 ms (SQLite's own busy
handler naps 1 ms to 100 ms)."""

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN", "CREATE", "DROP", "ALTER", "UPSERT", "WITH")


def _starts_write(statement: object) -> bool:
    return isinstance(statement, str) and statement.lstrip()[:7].upper().startswith(_WRITES)


class _Connection:
    """A sqlite3 connection whose writes take the process's writer lock and keep it to their
    transaction's end; reads and the rest are passed on.

    The writer's lock makes the process's writers wait for each other on the hub, as greenlets: otherwise the
    second would sleep in SQLite's busy handler (1 to 100 ms naps, "database is locked" after the timeout) while
    the first commits, a convoy. Other processes still meet SQLite's own lock."""

    __slots__ = ("_conn", "_writer", "_holds", "_timeout_s")
    _conn: sqlite3.Connection
    _writer: threading.Lock
    _holds: bool
    _timeout_s: float

    def __init__(self, conn: sqlite3.Connection, writer: threading.Lock, timeout_s: float) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_writer", writer)
        object.__setattr__(self, "_holds", False)
        object.__setattr__(self, "_timeout_s", timeout_s)

    def run(self, fn: Callable[..., T], statement: object, *args: Any) -> T:
        """``fn(statement, *args)``: a write under the writer (``_write``); a read on the hub, or off it in a
        process that runs long reads (the web) unless it belongs to a write transaction. A writer not had within
        the database timeout fails the write as SQLite's lock would ("database is locked")."""
        if not _starts_write(statement):
            # A read never waits for a lock in WAL mode (nor does a statement of the transaction that holds the
            # write lock): microseconds from the page cache, cheaper on the hub than a trip to a thread and back,
            # unless this process also runs long reads (the web) and it is not part of a write transaction.
            if _read_off_hub() and not self.writing():
                return off_hub(fn, statement, *args)
            return fn(statement, *args)
        if not self._holds:
            asked = time.monotonic()
            if not self._writer.acquire(timeout=self._timeout_s):
                # As SQLite itself answers a writer that waited its timeout: the caller's outage path takes over
                # (the write is kept for later). Going on without the writer instead would meet the writer's own
                # transaction at SQLite's lock: after a database outage every write then waited out two timeouts,
                # and the backlog never drained (the day run stayed at 10 s webhooks until night).
                log.warning("SQLite write gave up after %.1f s waiting for this process's other writers",
                            time.monotonic() - asked)
                raise sqlite3.OperationalError("database is locked")
            object.__setattr__(self, "_holds", True)
            waited = time.monotonic() - asked
            if waited > 1.0:
                log.warning("SQLite write waited %.1f s for this process's other writers", waited)
        try:
            return self._write(fn, statement, *args)
        finally:
            self._release_if_done()

    def writing(self) -> bool:
        """Whether this connection is in a write transaction of this process's writer."""
        return bool(self._holds and self._conn.in_transaction)

    def _write(self, fn: Callable[..., T], statement: object, *args: Any) -> T:
        """A write runs on the hub with no busy wait. While another process holds SQLite's write lock it is
        tried again after a short sleep on the hub (the other calls run meanwhile), up to the database timeout.

        It never waits for SQLite's lock in a native thread: the thread that gets the lock has it, for every
        writer of every process, until the hub comes back to this greenlet to go on with the transaction, one
        turn of a saturated hub (hundreds of milliseconds at the day's peak). Taken on the hub, the lock is
        held for the transaction's own statements."""
        import gevent

        deadline = time.monotonic() + self._timeout_s
        pause = _FIRST_PAUSE_S
        while True:
            try:
                return self._without_waiting(fn, statement, *args)
            except sqlite3.OperationalError as exc:
                # SQLITE_BUSY only: another process's lock, which ends. Not SQLITE_BUSY_SNAPSHOT (a read
                # transaction that cannot become a write: trying again never helps) nor any other error.
                if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            gevent.sleep(pause)
            pause = min(pause * 2, _LAST_PAUSE_S)

    def _without_waiting(self, fn: Callable[..., T], statement: object, *args: Any) -> T:
        self._conn.execute("PRAGMA busy_timeout = 0")
        try:
            return fn(statement, *args)
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {int(self._timeout_s * 1000)}")

    def _release_if_done(self) -> None:
        if self._holds and not self._conn.in_transaction:
            object.__setattr__(self, "_holds", False)
            self._writer.release()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)

    def cursor(self, *args: Any) -> _Cursor:
        return _Cursor(self._conn.cursor(*args), self)

    def execute(self, statement: str, *args: Any) -> _Cursor:
        return _Cursor(self.run(self._conn.execute, statement, *args), self)

    def commit(self) -> None:
        self._end(self._conn.commit)

    def rollback(self) -> None:
        self._end(self._conn.rollback)

    def _end(self, end: Callable[[], None]) -> None:
        """Commit or roll back: at once on the hub for the writer's transaction (it holds the write lock, so it
        waits for nothing but the disk: in WAL mode a commit only appends, but for a checkpoint every thousand
        pages); off the hub otherwise, as anything that might wait."""
        if not self._conn.in_transaction:
            return
        try:
            end() if self._holds else off_hub(end)
        finally:
            self._release_if_done()

    def close(self) -> None:
        try:
            off_hub(self._conn.close)
        finally:
            if self._holds:
                object.__setattr__(self, "_holds", False)
                self._writer.release()


class _Cursor:
    __slots__ = ("_cursor", "_owner")

    def __init__(self, cursor: sqlite3.Cursor, owner: _Connection) -> None:
        object.__setattr__(self, "_cursor", cursor)
        object.__setattr__(self, "_owner", owner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._cursor, name, value)

    def __iter__(self) -> Any:
        return iter(self.fetchall())

    def execute(self, statement: str, *args: Any) -> _Cursor:
        self._owner.run(self._cursor.execute, statement, *args)
        return self

    def executemany(self, statement: str, *args: Any) -> _Cursor:
        self._owner.run(self._cursor.executemany, statement, *args)
        return self

    def executescript(self, script: str) -> _Cursor:
        self._owner.run(self._cursor.executescript, script)
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchmany(self, *args: Any) -> Any:
        if _read_off_hub() and not self._owner.writing():
            return off_hub(self._cursor.fetchmany, *args)
        return self._cursor.fetchmany(*args)

    def fetchall(self) -> Any:
        if _read_off_hub() and not self._owner.writing():  # the rows of a long read are stepped through here
            return off_hub(self._cursor.fetchall)
        return self._cursor.fetchall()
