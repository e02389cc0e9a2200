"""A call's router events (offered, declined or timed out, accepted, answered, requeued, overflowed, completed)
for the scoring page's timeline, read from the events stream around the call's time.

The stream keeps the last ``EVENTS_MAXLEN`` events (about a million): an old call's events are gone, and the page
then shows the call record's moments alone. Stream ids are the Redis server's milliseconds, so one XRANGE over the
call's minutes reads only them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)

MARGIN = dt.timedelta(seconds=60)
MAX_READ = 20000
"""Events read around one call at most (a busy minute's worth): the page stays fast on any hotline."""
SHOWN = ("agent", "skill", "reason", "to", "wait_s", "talk_s")

CallEvents = Callable[[str, dt.datetime, dt.datetime], list[dict[str, Any]]]


def stream_reader(client: redis.Redis, stream: str) -> CallEvents:
    """``events(call_id, since, until)``: the call's events in [since - 60 s, until + 60 s], oldest first, each
    ``{"kind", "at", "detail"}``; [] when Redis is away."""

    def events(call_id: str, since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
        lo, hi = int((since - MARGIN).timestamp() * 1000), int((until + MARGIN).timestamp() * 1000)
        try:
            entries = client.xrange(stream, min=str(lo), max=str(hi), count=MAX_READ)
        except redis.RedisError as exc:
            log.warning("router events of %s not read: %s", call_id, type(exc).__name__)
            return []
        found = []
        for _id, raw in entries or []:
            fields = {_text(k): _text(v) for k, v in (raw or {}).items()}
            if fields.get("call_id") != call_id or fields.get("type") in ("call_started", "call_ended"):
                continue  # the record's own moments are already on the timeline
            at = dt.datetime.fromtimestamp(float(fields.get("ts") or 0), dt.UTC)
            detail = " ".join(f"{k}={fields[k]}" for k in SHOWN if fields.get(k))
            found.append({"kind": fields.get("type", ""), "at": at, "detail": detail})
        return found

    return events


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
