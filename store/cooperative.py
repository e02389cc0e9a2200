"""SQLite that lets the other calls run: under gevent (the FastAGI process, the gevent web worker), its statements
run in gevent's pool of native threads.

sqlite3 is C code that reads the disk and, while another process holds the write lock, sleeps in its busy
handler for up to the database timeout, all without yielding: in a process of greenlets one call's statement
would stall every call. psycopg 3 needs nothing of this: it waits on its socket in gevent's way by itself
once the process is patched. Without gevent (the threaded web, the workers, the tests) this module is not used.

The FastAGI process keeps reads on the hub (a call's reads are point lookups, cheaper than a trip to a thread);
a web worker also serves the reports and the dashboard's figures of the day, aggregates of tens of milliseconds
that would hold every webhook meanwhile: ``move_reads_off_hub`` sends its reads to the threads too, all but
Twilio's webhooks' (``reads_on_hub``)."""

from __future__ import annotations

import sqlite3
import sys
import threading
import types
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

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
    writing = threading.Lock()  # patched by gevent: a greenlet waiting for it lets the others run

    def connect(*args: Any, **kwargs: Any) -> _Connection:
        # Each statement may run in another of the pool's threads (one at a time: a pooled connection has one user).
        kwargs["check_same_thread"] = False
        return _Connection(off_hub(sqlite3.connect, *args, **kwargs), writing, float(kwargs.get("timeout", 5.0)))

    module.connect = connect  # type: ignore[attr-defined]
    return module


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN", "CREATE", "DROP", "ALTER", "UPSERT", "WITH")


def _starts_write(statement: object) -> bool:
    return isinstance(statement, str) and statement.lstrip()[:7].upper().startswith(_WRITES)


class _Connection:
    """A sqlite3 connection whose writes (they may wait for SQLite's write lock) and commits run off the hub;
    reads and the rest are passed on.

    Its write transactions take the process's ``writing`` lock first and keep it to their end. Between two
    statements of a transaction its greenlet waits its turn on the hub, holding SQLite's write lock all that
    while: other connections of the process would meanwhile sleep in SQLite's busy handler (1 to 100 ms naps,
    "database is locked" after the timeout), a convoy. Waiting for ``writing`` instead wakes the next writer as
    soon as the last one commits. Other processes still meet SQLite's own lock."""

    __slots__ = ("_conn", "_writing", "_holds", "_timeout_s")

    def __init__(self, conn: sqlite3.Connection, writing: threading.Lock, timeout_s: float) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_writing", writing)
        object.__setattr__(self, "_holds", False)
        object.__setattr__(self, "_timeout_s", timeout_s)

    def run(self, fn: Callable[..., T], statement: object, *args: Any) -> T:
        """``fn(statement, *args)`` off the hub, under ``writing`` when it may start a write transaction. Not
        had within the database timeout (a greenlet writing on two connections at once waits for itself), the
        statement goes on without it and meets SQLite's own lock, as it would without this one."""
        if not _starts_write(statement):
            # A read never waits for a lock in WAL mode (nor does a statement of the transaction that holds the
            # write lock): microseconds from the page cache, cheaper on the hub than a trip to a thread and back,
            # unless this process also runs long reads (the web).
            return off_hub(fn, statement, *args) if _read_off_hub() else fn(statement, *args)
        if not self._holds:
            object.__setattr__(self, "_holds", self._writing.acquire(timeout=self._timeout_s))
        try:
            return off_hub(fn, statement, *args)
        finally:
            self._release_if_done()

    def _release_if_done(self) -> None:
        if self._holds and not self._conn.in_transaction:
            object.__setattr__(self, "_holds", False)
            self._writing.release()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)

    def cursor(self, *args: Any) -> _Cursor:
        return _Cursor(self._conn.cursor(*args), self)

    def execute(self, statement: str, *args: Any) -> _Cursor:
        return _Cursor(self.run(self._conn.execute, statement, *args), self)

    def commit(self) -> None:
        if not self._conn.in_transaction:
            return
        try:
            off_hub(self._conn.commit)  # may checkpoint the WAL: disk writes
        finally:
            self._release_if_done()

    def rollback(self) -> None:
        if not self._conn.in_transaction:
            return
        try:
            off_hub(self._conn.rollback)
        finally:
            self._release_if_done()

    def close(self) -> None:
        try:
            off_hub(self._conn.close)
        finally:
            if self._holds:
                object.__setattr__(self, "_holds", False)
                self._writing.release()


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
        if _read_off_hub():
            return off_hub(self._cursor.fetchmany, *args)
        return self._cursor.fetchmany(*args)

    def fetchall(self) -> Any:
        if _read_off_hub():  # the rows of a long read are stepped through here
            return off_hub(self._cursor.fetchall)
        return self._cursor.fetchall()
