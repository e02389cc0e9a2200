"""SQLite has one write lock for the whole database: a transaction that keeps it long stalls every writer of
every process (they wait up to the database timeout, then fail "database is locked"). This names the
transactions that kept it longer than ``SLOW_HOLD_S``, with the statement that took it, so the one
responsible can be found in the log. Statements only, never their parameters (card numbers, PINs)."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

SLOW_HOLD_S = 1.0
"""A write transaction held longer than this is logged: a few milliseconds is the norm."""
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")


def watch_write_holds(engine: Engine) -> None:
    """Log each of ``engine``'s write transactions that held SQLite's write lock over ``SLOW_HOLD_S``."""
    event.listen(engine, "after_cursor_execute", _after_execute)
    event.listen(engine, "commit", _ended)
    event.listen(engine, "rollback", _ended)


def _after_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    # After the statement: the lock is had from here (before, it may still have been waiting for it).
    if "write_began" not in conn.info and statement.lstrip()[:15].upper().startswith(_WRITES):
        conn.info["write_began"] = (time.monotonic(), " ".join(statement.split())[:100])


def _ended(conn: Any) -> None:
    began = conn.info.pop("write_began", None)
    if began is None:
        return
    held = time.monotonic() - began[0]
    if held > SLOW_HOLD_S:
        log.warning("SQLite write lock held %.1f s by a transaction that began with: %s", held, began[1])
