"""How far the call-record writers are behind the events stream (for /metrics, and for readiness)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from workers.stream import RECORDS_GROUP


@dataclass(frozen=True)
class RecordLag:
    unwritten: int
    """Events not yet written as records: read but not acknowledged (pending), plus not yet read."""
    oldest_s: float
    """Age of the oldest of them (0 when none)."""


def record_writer_lag(client: redis.Redis, stream: str, group: str = RECORDS_GROUP,
                      now: float | None = None) -> RecordLag:
    """A few cheap commands (XINFO GROUPS, XPENDING summary, XRANGE of one entry) whatever the stream's size.
    Before any writer made the group, every entry of the stream is unwritten."""
    now_ms = (time.time() if now is None else now) * 1000
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError:  # no stream yet: no call so far
        return RecordLag(0, 0.0)
    info: Any = next((g for g in groups if _text(g.get("name")) == group), None)
    if info is None:
        first: Any = client.xrange(stream, count=1)
        return RecordLag(int(client.xlen(stream)), _age(now_ms, first[0][0])) if first else RecordLag(0, 0.0)
    pending: Any = client.xpending(stream, group)
    unread = int(info.get("lag") or 0)
    oldest_ids = [pending["min"]] if pending.get("pending") else []
    if unread:
        after: Any = client.xrange(stream, min=f"({_text(info['last-delivered-id'])}", count=1)
        oldest_ids += [after[0][0]] if after else []
    oldest = max((_age(now_ms, i) for i in oldest_ids), default=0.0)
    return RecordLag(int(pending.get("pending") or 0) + unread, oldest)


def _age(now_ms: float, entry_id: bytes | str) -> float:
    return max(0.0, (now_ms - int(_text(entry_id).split("-")[0])) / 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
