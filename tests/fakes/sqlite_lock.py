"""Holding a SQLite database locked: what an unavailable SQLite store looks like, for tests and the simulator.

Another connection holds ``BEGIN EXCLUSIVE`` on the file. In WAL mode (the hotline's) readers go on
reading the last committed state; every writer waits its busy timeout, then fails with
"database is locked".
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from types import TracebackType


def sqlite_path(url_or_path: str | Path) -> Path:
    """The file of a ``sqlite:///...`` URL (or a path given as is)."""
    text = str(url_or_path)
    if text.startswith("sqlite"):
        text = text.split(":///", 1)[1]
    if not text or text == ":memory:":
        raise ValueError("an in-memory SQLite database cannot be locked from outside")
    return Path(text)


class SqliteLock:
    """``hold()`` takes the exclusive lock, ``release()`` lets writers in again; also a context manager."""

    def __init__(self, database: str | Path) -> None:
        self.path = sqlite_path(database)
        self._conn: sqlite3.Connection | None = None
        self._guard = threading.Lock()

    def hold(self) -> None:
        with self._guard:
            if self._conn is not None:
                return
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("BEGIN EXCLUSIVE")
            self._conn = conn

    def release(self) -> None:
        with self._guard:
            if self._conn is None:
                return
            self._conn.execute("ROLLBACK")
            self._conn.close()
            self._conn = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def __enter__(self) -> SqliteLock:
        self.hold()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def hold_locked(database: str | Path, seconds: float) -> threading.Thread:
    """Lock the database now and release it after ``seconds``, in a background thread (joined to wait for
    the release). The lock is taken before this returns."""
    lock = SqliteLock(database)
    lock.hold()
    done = threading.Event()

    def release_later() -> None:
        done.wait(seconds)
        lock.release()

    thread = threading.Thread(target=release_later, name="sqlite-lock", daemon=True)
    thread.start()
    return thread
