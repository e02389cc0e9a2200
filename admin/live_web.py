"""The live dashboard (``/admin/dashboard``) and its JSON: ``/api/live`` and the event stream ``/api/live/stream``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import redis
from flask import Blueprint, Response, jsonify, render_template
from werkzeug.wrappers import Response as PlainResponse

from admin.access import allow
from admin.live_board import LiveBoard
from admin.live_models import LiveSnapshot
from admin.openapi import doc
from admin.sse import HEARTBEAT_S, EventTail, snapshots, sse_response

if TYPE_CHECKING:
    from hotline.app import Hotline

Frame = tuple[str, Any] | None
LIVE_EVENTS = ("call", "agent")
"""Event types (by prefix) that change the picture: calls starting, queuing, ending; agents changing state."""


def create_live_web(hotline: Hotline) -> Blueprint:
    s = hotline.settings
    board = LiveBoard(hotline.router, hotline.agents, hotline.sessions, hotline.sql, s.timezone, s.service_level_s)
    tail = EventTail(hotline.redis_url)
    web = Blueprint("live_web", __name__)

    @web.get("/admin/dashboard")
    @allow("admin", "supervisor")
    def dashboard() -> str:
        return render_template("dashboard.html", service_level_s=s.service_level_s)

    @web.get("/api/live")
    @allow("admin", "supervisor")
    @doc({200: LiveSnapshot}, tags=("live",))
    def live() -> Response:
        """Queues, agents by state, calls in the menus and today's service level, as the dashboard shows them."""
        return jsonify(board.snapshot())

    @web.get("/api/live/stream")
    @allow("admin", "supervisor")
    @doc({200: None}, tags=("live",))
    def live_stream() -> PlainResponse:
        """Server-sent events: a ``snapshot`` event (the body of ``/api/live``) at once, then one after each
        batch of call or agent events; a comment line every 15 s keeps the connection open."""
        request_tail = _TailFromSnapshot(tail)

        def snapshot() -> dict[str, Any]:
            request_tail.mark()
            return board.snapshot(time.monotonic())

        return _unread(sse_response(with_late_records(snapshots(request_tail, snapshot, _wanted), snapshot)))

    return web


def with_late_records(frames: Iterator[Frame], snapshot: Callable[[], dict[str, Any]]) -> Iterator[Frame]:
    """A call's record lands about a second after its ``call_ended`` event, too late for that event's
    snapshot: on a quiet stream, a heartbeat becomes a snapshot when today's figures have changed since."""
    shown: dict[str, Any] | None = None
    for frame in frames:
        if frame is None and shown is not None:
            fresh = snapshot()
            if _figures(fresh) != _figures(shown):
                frame = ("snapshot", fresh)
        if frame is not None:
            shown = frame[1]
        yield frame


def _figures(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snapshot["today"].items() if k != "as_of"}


class _TailFromSnapshot(EventTail):
    """``EventTail.follow`` starts at ``$`` once the first snapshot is sent, so an event landing in between
    would not show until the next one; this follows from the stream's last entry as of the first snapshot."""

    def __init__(self, tail: EventTail) -> None:
        self.pool, self.stream, self.start = tail.pool, tail.stream, ""

    def mark(self) -> None:
        if not self.start:
            newest = redis.Redis(connection_pool=self.pool).xrevrange(self.stream, count=1)
            self.start = _text(newest[0][0]) if newest else "0-0"

    def follow(self, block_s: float = HEARTBEAT_S) -> Iterator[list[dict[str, str]]]:
        client = redis.Redis(connection_pool=self.pool)  # bytes, as EventTail's own pool gives
        last = self.start or "$"
        while True:
            reply = client.xread({self.stream: last}, block=int(block_s * 1000), count=500)
            batch = []
            for _, entries in reply or ():
                for entry_id, fields in entries:
                    last = entry_id
                    batch.append(fields)
            yield batch


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _unread(response: Response) -> PlainResponse:
    """spectree reads the whole body of a ``flask.Response`` it wraps (``get_data``), which an endless event
    stream never gives; a plain werkzeug response passes through untouched and Flask takes it as it is."""
    return PlainResponse(response.response, status=response.status, headers=response.headers)


def _wanted(event: dict[str, str]) -> bool:
    # EventTail's pool does not decode (decode_responses on a client with a given pool is ignored): take both.
    kind = event.get("type") or event.get(b"type", b"")  # type: ignore[call-overload]
    return (kind.decode() if isinstance(kind, bytes) else kind).startswith(LIVE_EVENTS)
