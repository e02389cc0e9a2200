"""The agent console: ``/agent`` and ``/api/agent/...``, for the logged-in agent's own state and calls only.

Accept means the same on every channel: ``Router.answer`` (``admin.console``); a Twilio agent still
picks up the ringing leg to talk, an Asterisk agent their phone. Decline is ``Router.reject`` plus
cancelling the ring, and a ``declined`` disposition row. After the call the agent is in wrap_up until
the disposition is submitted: the queue's wrap-up time is a countdown the agent may extend
(``HOTLINE_WRAPUP_MAX``), and the form's draft is kept on the server as the agent types.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template
from flask_babel import gettext as _
from pydantic import BaseModel

from admin.access import allow, current
from admin.audit import AuditLog
from admin.console.desk import Console, ConsoleDeps, ConsoleView, NoAgent
from admin.errors import answer_errors_as_json
from admin.json_replies import json_body
from admin.live.fanout import EventFanout, Interest, snapshots
from admin.live.sse import sse_response
from admin.openapi import ErrorBody, doc

TAGS = ("agent console",)


class StateBody(BaseModel):
    state: str
    """available, not_ready or offline."""
    reason: str = ""


class WrapUpBody(BaseModel):
    call_id: str
    code: str
    notes: str = ""


class DraftBody(BaseModel):
    call_id: str
    code: str = ""
    notes: str = ""


class ExtendBody(BaseModel):
    seconds: float = 60


def create_console_web(console_deps: ConsoleDeps, events: EventFanout, audit: AuditLog) -> Blueprint:
    bp = Blueprint("console_web", __name__)
    console = Console(console_deps)

    @bp.get("/agent")
    @allow("agent")
    def page() -> str:
        return render_template("console.html")

    @bp.get("/api/agent/console")
    @allow("agent")
    @doc({200: ConsoleView, 404: ErrorBody}, tags=TAGS)
    def show() -> Response:
        return _answer(console, _me())

    @bp.get("/api/agent/stream")
    @allow("agent")
    @doc({200: None, 404: ErrorBody, 429: ErrorBody, 503: ErrorBody}, tags=TAGS)
    def stream() -> Response:
        """Server-sent ``console`` events: the console view now, and again after each event about this agent."""
        me = _me()
        console.view(me)  # an agent missing from the router is a 404 now, not a broken stream
        return sse_response(snapshots(events, lambda _: console.view(me).model_dump(mode="json"),
                                      Interest(agent=me), name="console"))

    @bp.post("/api/agent/state")
    @allow("agent")
    @doc({200: ConsoleView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody}, json=StateBody, tags=TAGS)
    def set_state() -> Response:
        body = json_body()
        state, reason = str(body.get("state") or ""), str(body.get("reason") or "").strip()[:64]
        console.set_state(_me(), state, reason)
        _audit(audit, "agent_state_set", state=state, reason=reason)
        return _answer(console, _me())

    @bp.post("/api/agent/calls/<call_id>/accept")
    @allow("agent")
    @doc({200: ConsoleView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody}, tags=TAGS)
    def accept(call_id: str) -> Response:
        console.accept(_me(), call_id)
        _audit(audit, "call_accepted", call_id=call_id)
        return _answer(console, _me())

    @bp.post("/api/agent/calls/<call_id>/decline")
    @allow("agent")
    @doc({200: ConsoleView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody}, tags=TAGS)
    def decline(call_id: str) -> Response:
        console.decline(_me(), call_id)
        _audit(audit, "call_declined", call_id=call_id)
        return _answer(console, _me())

    @bp.post("/api/agent/wrap-up")
    @allow("agent")
    @doc({200: ConsoleView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody}, json=WrapUpBody, tags=TAGS)
    def wrap_up() -> Response:
        body = json_body()
        call_id, code = str(body.get("call_id") or ""), str(body.get("code") or "")
        console.wrap_up(_me(), call_id, code, str(body.get("notes") or ""))
        _audit(audit, "call_disposition", call_id=call_id, code=code)
        return _answer(console, _me())

    @bp.put("/api/agent/wrap-up/draft")
    @allow("agent")
    @doc({200: ConsoleView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody}, json=DraftBody, tags=TAGS)
    def save_draft() -> Response:
        """Keep what the agent typed so far into the wrap-up form (the page saves it as they type)."""
        body = json_body()
        console.save_draft(_me(), str(body.get("call_id") or ""), str(body.get("code") or ""),
                           str(body.get("notes") or ""))
        return _answer(console, _me())

    @bp.post("/api/agent/wrap-up/extend")
    @allow("agent")
    @doc({200: ConsoleView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody}, json=ExtendBody, tags=TAGS)
    def extend() -> Response:
        """More time on the wrap-up countdown, up to ``HOTLINE_WRAPUP_MAX`` from its start."""
        body = json_body()
        try:
            seconds = float(body.get("seconds", 60))
        except (TypeError, ValueError):
            seconds = 0.0
        until = console.extend_wrap_up(_me(), seconds)
        _audit(audit, "wrap_up_extended", until=f"{until:.0f}")
        return _answer(console, _me())

    answer_errors_as_json(bp)
    return bp


def _me() -> str:
    who = current()
    if not who.agent_id:
        raise NoAgent(_("user %(name)s is not linked to an agent: ask an admin", name=who.name))
    return who.agent_id


def _answer(console: Console, agent_id: str) -> Response:
    return jsonify(console.view(agent_id).model_dump(mode="json"))


def _audit(audit: AuditLog, action: str, **detail: str) -> None:
    who = current()
    audit.write(who.name, who.role, action, who.agent_id or "", **detail)
