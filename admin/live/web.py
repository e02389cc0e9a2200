"""The live dashboard (``/admin/dashboard``) and its JSON: ``/api/live`` and the event stream ``/api/live/stream``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from flask import Blueprint, Response, jsonify, render_template

from admin.access import allow
from admin.console.desk import NOT_READY_REASONS
from admin.live.board import LiveBoard
from admin.live.fanout import EventFanout, Interest, snapshots
from admin.live.models import LiveSnapshot
from admin.live.sse import sse_response
from admin.openapi import ErrorBody, doc

Frame = tuple[str, Any] | None
LIVE_EVENTS = ("call", "agent")
"""Event types (by prefix) that change the picture: calls starting, queuing, ending; agents changing state."""


def create_live_web(board: LiveBoard, events: EventFanout, service_level_s: float,
                    thresholds: Mapping[str, Mapping[str, float]] | None = None,
                    not_ready_reasons: Sequence[str] = NOT_READY_REASONS, refresh_s: float = 0.0) -> Blueprint:
    """``thresholds``: warn and alert levels of ``wait_s``, ``service_level`` and ``abandonment``
    (``Settings.dashboard_thresholds``); ``refresh_s``: the least time between two snapshots of one open dashboard
    (``Settings.dashboard_refresh_s``). Supervisors and admins set agents' states from the page through
    ``POST /api/agents/<id>/state`` (admin.agents.api), which audits each change."""
    web = Blueprint("live_web", __name__)
    levels = dict(thresholds or {"wait_s": {"warn": service_level_s, "alert": 3 * service_level_s},
                                 "service_level": {"warn": 0.8, "alert": 0.6},
                                 "abandonment": {"warn": 0.05, "alert": 0.10}})

    @web.get("/admin/dashboard")
    @allow("admin", "supervisor")
    def dashboard() -> str:
        return render_template("dashboard.html", service_level_s=service_level_s, thresholds=levels,
                               not_ready_reasons=list(not_ready_reasons))

    @web.get("/api/live")
    @allow("admin", "supervisor")
    @doc({200: LiveSnapshot}, tags=("live",))
    def live() -> Response:
        """Queues, agents by state and a row per agent, calls in the menus and today's service level, as the
        dashboard shows them."""
        return jsonify(board.snapshot())

    @web.get("/api/live/stream")
    @allow("admin", "supervisor")
    @doc({200: None, 429: ErrorBody, 503: ErrorBody}, tags=("live",))
    def live_stream() -> Response:
        """Server-sent events: a ``snapshot`` event (the body of ``/api/live``) at once, then one after each
        batch of call or agent events (at most one per ``HOTLINE_DASHBOARD_REFRESH_SECONDS``, 1 s by default); a
        comment line every 15 s keeps the connection open."""

        # The pages of this process woken by one batch of events share the snapshot begun after it was read; on a
        # heartbeat, one begun in the last second will do (the figures of the day in it are cached for 5 s anyway).
        return sse_response(with_late_records(snapshots(events, board.snapshot, Interest(types=LIVE_EVENTS),
                                                        gap_s=refresh_s),
                                              lambda: board.snapshot(time.monotonic() - 1.0)))

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
