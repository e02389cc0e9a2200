"""``POST /api/calls/<id>/monitor``: a supervisor listens to, whispers to or barges into an agent's call from
the floor, audited. Asterisk calls only: ChanSpy dialled to the supervisor's phone (``workers.monitor``).
Twilio connects agents with ``<Dial><Queue>``, which no third party can join; that takes a ``<Conference>``
connection (issue 18), so a Twilio call is answered 409 with that reason."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from flask_babel import gettext as _

from admin.access import allow, current
from admin.api_models import MonitorBody, MonitorStarted
from admin.audit import AuditLog
from admin.json_replies import json_body, json_error
from admin.openapi import ErrorBody, doc
from routing.agents import AgentRegistry
from routing.router import Router
from workers.monitor import MODES, AmiMonitor, MonitorRefused


def create_monitor_api(router: Router, agents: AgentRegistry, audit: AuditLog,
                       monitor: AmiMonitor | None) -> Blueprint:
    """``monitor`` is None when no AMI is configured (``HOTLINE_AMI_SECRET``): every request is then 409."""
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
        if view.channel != "asterisk":
            return json_error(409, _("only Asterisk calls can be joined for now: Twilio connects agents with "
                                     "<Dial><Queue>, which a supervisor cannot join"))
        agent = agents.get(view.agent)
        if monitor is None or agent is None:
            return json_error(409, _("no Asterisk manager (AMI) is configured: set HOTLINE_AMI_SECRET"))
        try:
            monitor.spy(agent.endpoint, phone, mode)
        except MonitorRefused as exc:
            return json_error(409 if str(exc).startswith("Asterisk") else 400, str(exc))
        who = current()
        audit.write(who.name, who.role, "call_monitored", call_id, mode=mode, agent=agent.id, endpoint=phone)
        return jsonify({"call_id": call_id, "agent": agent.id, "mode": mode, "ringing": phone}), 202

    return api
