"""How far the call-record writer is behind: the events nobody has written into ``call_records`` yet (read by
``/readyz``, ``hotline status`` and ``/metrics``).

One small function the readiness check and the metrics both read. The stream's entry ids are the
milliseconds Redis added them at, so the age of the oldest unwritten entry is ``TIME`` minus its id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from workers.stream import RECORDS_GROUP


@dataclass(frozen=True)
class RecordsLag:
    unwritten: int | None
    """Entries read but not acknowledged, plus those not yet read (None: this Redis does not count them)."""
    oldest_age_s: float
    """Age of the oldest entry not yet written (0: none)."""


def records_lag(client: redis.Redis, stream: str, group: str = RECORDS_GROUP) -> RecordsLag:
    """The record writers' lag on ``stream``: pending (delivered, unacknowledged) and undelivered entries."""
    reply: Any = client.time()
    if isinstance(reply, dict):  # a Redis Cluster client answers per node: any node's clock will do
        reply = next(iter(reply.values()))
    now_s, now_us = reply
    now_ms = now_s * 1000 + now_us // 1000
    try:
        info = next((g for g in _list(client.xinfo_groups(stream)) if _text(g["name"]) == group), None)
    except redis.ResponseError:  # no stream yet: no call has ever been made
        return RecordsLag(0, 0.0)
    if info is None:  # no writer has ever run: every entry is unwritten
        first = client.xrange(stream, count=1)
        return RecordsLag(int(client.xlen(stream)), _age(now_ms, [first[0][0]] if first else []))
    oldest = []
    pending = client.xpending(stream, group)
    if pending["pending"]:
        oldest.append(pending["min"])
    unread = client.xrange(stream, min="(" + _text(info["last-delivered-id"]), count=1)
    if unread:
        oldest.append(unread[0][0])
    behind = info.get("lag")
    unwritten = None if behind is None else int(pending["pending"]) + int(behind)
    return RecordsLag(unwritten, _age(now_ms, oldest))


def _age(now_ms: int, ids: list[Any]) -> float:
    if not ids:
        return 0.0
    first_ms = min(int(_text(entry_id).split("-")[0]) for entry_id in ids)
    return max(0.0, (now_ms - first_ms) / 1000)


def _list(reply: Any) -> list[dict[str, Any]]:
    return [{_text(k): v for k, v in group.items()} for group in reply]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
