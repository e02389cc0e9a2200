"""Server-sent events from the call-event stream, for the live dashboard and the agent console.

The stream is read by one blocking ``XREAD`` per web process (``admin.live.fanout``), on a client with a pool
kept apart from the process's shared client, which a blocking read would hold up for every other request.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import redis
from flask import Response, current_app, g, stream_with_context

from routing.keys import EVENTS_STREAM
from store.redis_clients import RedisClients

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
"""A comment line this often: proxies keep the stream open and a closed page is noticed."""


SOCKET_TIMEOUT_S = HEARTBEAT_S + 5
"""The read timeout the tail's client needs: above the longest block."""


class EventTail:
    """``client``: a pooled client (``decode_responses=True``, ``socket_timeout=SOCKET_TIMEOUT_S``) that
    is not the process's shared single connection (``hotline.redis_clients.RedisClients.blocking``)."""

    def __init__(self, client: redis.Redis, stream: str = EVENTS_STREAM) -> None:
        self.client, self.stream = client, stream

    def position(self) -> str:
        """The id of the newest event now: following from it misses nothing that comes after."""
        newest = self.client.xrevrange(self.stream, count=1)
        return str(newest[0][0]) if newest else "0-0"

    def follow(self, start: str = "$", block_s: float = HEARTBEAT_S) -> Iterator[list[dict[str, str]]]:
        """Batches of events after ``start``; an empty batch when ``block_s`` passed with none."""
        last = start
        while True:
            try:
                last, batch = self.read(last, block_s)
            except redis.RedisError as exc:  # the stream ends; the page's EventSource reconnects in 2 s
                log.info("event stream closed: redis unavailable (%s)", type(exc).__name__)
                return
            yield batch

    def read(self, last: str, block_s: float, count: int = 500) -> tuple[str, list[dict[str, str]]]:
        """One read: the events after ``last`` (waiting up to ``block_s`` for some), and the id to read on from."""
        reply = self.client.xread({self.stream: last}, block=int(block_s * 1000), count=count)
        assert isinstance(reply, list), "a RESP2 connection answers [[stream, entries], ...]"
        batch: list[dict[str, str]] = []
        for _, entries in reply:
            for entry_id, fields in entries:
                last = entry_id
                batch.append(fields)
        return last, batch


def event_tail(clients: RedisClients, stream: str) -> EventTail:
    """The hotline's events stream, read on a client of its own (standalone, Sentinel or Cluster)."""
    return EventTail(clients.blocking(SOCKET_TIMEOUT_S, decode_responses=True), stream)


STREAM_KB = 100
"""What one open live page may cost a gevent web worker (its greenlet, socket, request and subscription):
``HOTLINE_LIVE_STREAM_MEMORY_MB`` is divided by it. Measured 36-53 KB a page with 2,000 open (docs/performance.md);
the rest leaves room for a dashboard's frames (148 KiB at 1,000 agents) waiting in a slow browser's socket."""
THREAD_RESERVE = 8
"""Threaded workers only: threads no live page may hold, so webhooks always find one."""


def stream_limit(runtime: str, memory_mb: int, threads: int) -> int:
    """Live pages one web worker keeps open at once. gevent: a page costs a greenlet, so memory is the bound; a
    thread per page (``HOTLINE_WEB_RUNTIME=threads``): all threads but ``THREAD_RESERVE``."""
    if runtime == "gevent":
        return max(1, memory_mb * 1024 // STREAM_KB)
    return max(1, threads - THREAD_RESERVE)


class StreamSlots:
    """How many event streams this process keeps open at once (``stream_limit``): in a threaded worker each
    holds a thread, and the cap leaves threads free for Twilio's webhooks whatever the number of pages; in a
    gevent worker each holds a greenlet and its memory. ``per_person`` keeps one person (or one stolen session)
    from taking every slot."""

    def __init__(self, limit: int, per_person: int | None = None) -> None:
        self.limit, self.per_person = limit, per_person or limit
        self._free = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def take(self, person: str = "") -> str:
        """``"ok"`` (a slot is now held for ``person``), ``"full"`` (none free in this process) or ``"yours"``
        (``person`` already holds their share)."""
        with self._lock:
            if not self._free.acquire(blocking=False):
                return "full"
            if self._held.get(person, 0) >= self.per_person:
                self._free.release()
                return "yours"
            self._held[person] = self._held.get(person, 0) + 1
            return "ok"

    def give_back(self, person: str = "") -> None:
        with self._lock:
            left = self._held.get(person, 0) - 1
            if left > 0:
                self._held[person] = left
            else:
                self._held.pop(person, None)
            self._free.release()


def sse_response(frames: Iterator[tuple[str, Any] | None], slots: StreamSlots | None = None) -> Response:
    """A ``text/event-stream`` of ``(event name, JSON data)`` frames; ``None`` sends a heartbeat comment.
    When the person already has their share of streams open: 429; when every slot is taken: 503; both with
    Retry-After, and the page tries again later."""
    slots = slots or current_app.extensions.get("stream_slots")
    principal = g.get("principal")
    person = principal.name if principal is not None else ""
    taken = slots.take(person) if slots is not None else "ok"
    if slots is not None and taken != "ok":
        if taken == "yours":
            log.warning("event stream refused: %s already has %d live streams open", person, slots.per_person)
            return _refused(429, f"you already have {slots.per_person} live pages open (the most one person may): "
                                 "close one and this page reconnects by itself")
        log.warning("event stream refused: all %d streams of this process are open", slots.limit)
        return _refused(503, f"all {slots.limit} live streams of this server process are open: "
                             "try again in a few seconds")

    def encode() -> Iterator[str]:
        try:
            yield "retry: 2000\n\n"  # the browser reconnects 2 s after a drop
            for frame in frames:
                if frame is None:
                    yield ": heartbeat\n\n"
                    continue
                name, data = frame
                yield f"event: {name}\ndata: {_json(data)}\n\n"
        finally:  # the page closed (the server closes the generator) or the stream ended
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # its subscription now, not when the collector finds it
            if slots is not None:
                slots.give_back(person)

    return Response(stream_with_context(encode()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


_last_encoded: tuple[Any, str] = (None, "null")


def _json(data: Any) -> str:
    """``data`` as JSON, encoded once for all the pages it is sent to: pages sharing a snapshot (the dashboard's,
    ``LiveBoard.snapshot``) are sent the same object, one after another."""
    global _last_encoded
    last, text = _last_encoded
    if last is not data:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        _last_encoded = (data, text)
    return text


def _refused(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status=status, mimetype="application/json",
                    headers={"Retry-After": "5"})
