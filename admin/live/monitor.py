"""``POST /api/calls/<id>/monitor``: a supervisor listens to, whispers to or barges into an agent's call from
the floor, audited. It goes to the ``CallControl`` of the call's channel (Asterisk: ChanSpy dialled to the
supervisor's phone, ``workers.asterisk_control``); a channel without one is answered 409."""

from __future__ import annotations

from typing import get_args

from flask import Blueprint, Response, jsonify
from flask_babel import gettext as _

from admin.access import allow, current
from admin.api_models import MonitorBody, MonitorStarted
from admin.audit import AuditLog
from admin.i18n import refusal
from admin.json_replies import json_body, json_error
from admin.live.call_control import Controls, control_for
from admin.openapi import ErrorBody, doc
from calls.control import ControlRefused, MonitorMode
from routing.agents import AgentRegistry
from routing.router import Router

MODES: tuple[MonitorMode, ...] = get_args(MonitorMode)


def create_monitor_api(router: Router, agents: AgentRegistry, audit: AuditLog, controls: Controls) -> Blueprint:
    api = Blueprint("monitor", __name__, url_prefix="/api")

    @api.post("/calls/<call_id>/monitor")
    @allow("admin", "supervisor")
    @doc({202: MonitorStarted, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody}, json=MonitorBody, tags=("queues",))
    def monitor_call(call_id: str) -> tuple[Response, int]:
        """Ring the supervisor's phone and join the agent's call as ``listen``, ``whisper`` or ``barge``."""
        body = json_body()
        mode, phone = str(body.get("mode") or ""), str(body.get("endpoint") or "")
        if mode not in MODES:
            return json_error(400, _("mode must be one of %(modes)s", modes=", ".join(MODES)))
        view = router.call(call_id)
        if view is None or view.state != "busy" or not view.agent:
            return json_error(404, _("call %(call_id)s is not connected to an agent", call_id=call_id[:64]))
        control = control_for(controls, view)
        if isinstance(control, tuple):
            return control
        agent = agents.get(view.agent)
        if agent is None:
            return json_error(404, _("call %(call_id)s is not connected to an agent", call_id=call_id[:64]))
        try:
            control.monitor(view, agent.endpoint, phone, mode)
        except ControlRefused as exc:
            # the PBX or Twilio saying no is a conflict; an endpoint that cannot be rung is the request's fault
            return json_error(409 if str(exc).startswith(("Asterisk", "Twilio")) else 400, refusal(str(exc)))
        return _started(call_id, agent.id, mode, phone)

    def _started(call_id: str, agent_id: str, mode: str, phone: str) -> tuple[Response, int]:
        who = current()
        audit.write(who.name, who.role, "call_monitored", call_id, mode=mode, agent=agent_id, endpoint=phone)
        return jsonify({"call_id": call_id, "agent": agent_id, "mode": mode, "ringing": phone}), 202

    return api
