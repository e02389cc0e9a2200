"""``POST /api/calls/<id>/hangup|hold|transfer|transfer/complete|transfer/cancel``: the agent on a call (their own
only) or a supervisor controls it from the console or the floor, audited. Each request goes to the ``CallControl``
of the call's channel (``calls.control``; built in ``hotline.app``): a channel without one is answered 409."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Blueprint, Response, jsonify
from flask_babel import gettext as _
from pydantic import BaseModel

from admin.access import allow, current
from admin.api_models import CallControlDone, HoldBody, TransferBody, TransferTargets
from admin.audit import AuditLog
from admin.i18n import refusal
from admin.json_replies import json_body, json_error
from admin.openapi import ErrorBody, doc
from admin.users.accounts import Accounts
from calls.control import CallControl, ControlRefused, TransferTarget
from routing.agents import AgentRegistry
from routing.router import CallView, Router

Reply = tuple[Response, int]
Controls = Mapping[str, CallControl]
MODES = ("cold", "warm")
KINDS = ("queue", "agent", "supervisor")
_ANSWERS: dict[int, type[BaseModel] | None] = {
    200: CallControlDone, 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody}


def control_for(controls: Controls, view: CallView) -> CallControl | Reply:
    """The control of the call's channel, or the 409 that says there is none."""
    control = controls.get(view.channel or "")
    if control is None:
        if view.channel == "asterisk":
            return json_error(409, _("no Asterisk manager (AMI) is configured: set HOTLINE_AMI_SECRET"))
        if view.channel == "twilio":
            return json_error(409, _("no Twilio account is configured: set TWILIO_ACCOUNT_SID"))
        return json_error(409, _("calls on %(channel)s cannot be controlled from here yet",
                                 channel=(view.channel or "?")[:16]))
    return control


def connected_call(router: Router, call_id: str) -> CallView | Reply:
    """The call, connected to an agent and, for an agent, their own; else the 404/403 to answer."""
    view = router.call(call_id)
    if view is None or view.state != "busy" or not view.agent:
        return json_error(404, _("call %(call_id)s is not connected to an agent", call_id=call_id[:64]))
    who = current()
    if who.role == "agent" and view.agent != who.agent_id:
        return json_error(403, _("you can only control your own calls"))
    return view


def create_call_control_api(router: Router, agents: AgentRegistry, accounts: Accounts, audit: AuditLog,
                            controls: Controls) -> Blueprint:
    """``accounts``: who is a supervisor (the router agent named like a supervisor's account is one)."""
    api = Blueprint("call_control", __name__, url_prefix="/api")

    @api.get("/calls/transfer-targets")
    @allow("admin", "supervisor", "agent")
    @doc({200: TransferTargets}, tags=("queues",))
    def transfer_targets() -> Response:
        """Where a call may be sent now: the queues (skills), the available agents, the available supervisors."""
        # Supervisors' accounts carry no agent id (admin.users.accounts): a supervisor who takes calls is the
        # router agent named like their account.
        supervisors = {a.name for a in accounts.all() if a.role == "supervisor" and a.active}
        me = current().agent_id
        free = [a for a in agents.all() if a.state == "available" and a.id != me]
        return jsonify({
            "queues": sorted(router.queues),
            "agents": [{"id": a.id, "name": a.name} for a in free if a.id not in supervisors],
            "supervisors": [{"id": a.id, "name": a.name} for a in free if a.id in supervisors],
        })

    def run(call_id: str, action: str, act: Callable[[CallControl, CallView], None], **detail: str) -> Reply:
        view = connected_call(router, call_id)
        if isinstance(view, tuple):
            return view
        control = control_for(controls, view)
        if isinstance(control, tuple):
            return control
        try:
            act(control, view)
        except ControlRefused as exc:
            return json_error(409, refusal(str(exc)))  # worded by the channel in English: translated here
        if action in ("hold", "resume") or action.startswith("transfer"):
            # what the console shows after a reload; any transfer step ends with the caller off hold
            router.note_hold(call_id, action == "hold")
        who = current()
        audit.write(who.name, who.role, f"call_{action}", call_id, agent=view.agent or "", **detail)
        return jsonify({"call_id": call_id, "action": action}), 200

    @api.post("/calls/<call_id>/hangup")
    @allow("admin", "supervisor", "agent")
    @doc(_ANSWERS, tags=("queues",))
    def hangup(call_id: str) -> Reply:
        """End the call, the caller's side too."""
        return run(call_id, "hangup", lambda control, view: control.hangup(view))

    @api.post("/calls/<call_id>/hold")
    @allow("admin", "supervisor", "agent")
    @doc(_ANSWERS, json=HoldBody, tags=("queues",))
    def hold(call_id: str) -> Reply:
        """Put the caller on hold (music) with ``{"on": true}``, or take them back with ``{"on": false}``."""
        on = json_body().get("on")
        if not isinstance(on, bool):
            return json_error(400, _("on must be true or false"))
        return run(call_id, "hold" if on else "resume", lambda control, view: control.hold(view, on))

    @api.post("/calls/<call_id>/transfer")
    @allow("admin", "supervisor", "agent")
    @doc(_ANSWERS, json=TransferBody, tags=("queues",))
    def transfer(call_id: str) -> Reply:
        """Send the caller to a queue, an agent or a supervisor: ``cold`` at once, or ``warm`` (talk first)."""
        body = json_body()
        mode, to = body.get("mode"), body.get("to")
        if mode not in MODES:
            return json_error(400, _("mode must be one of %(modes)s", modes=", ".join(MODES)))
        if not isinstance(to, dict) or to.get("kind") not in KINDS or not isinstance(to.get("value"), str) \
                or not 0 < len(to["value"]) <= 64:
            return json_error(400, _("to must name a kind (queue, agent or supervisor) and a value (a skill or "
                                     "an agent id)"))
        target = TransferTarget(to["kind"], to["value"])
        return run(call_id, "transfer", lambda control, view: control.transfer(view, target, mode),
                   mode=mode, to_kind=target.kind, to=target.value)

    @api.post("/calls/<call_id>/transfer/complete")
    @allow("admin", "supervisor", "agent")
    @doc(_ANSWERS, tags=("queues",))
    def transfer_complete(call_id: str) -> Reply:
        """Warm transfer: join the caller with the target; the agent leaves the call."""
        return run(call_id, "transfer_complete", lambda control, view: control.complete_transfer(view))

    @api.post("/calls/<call_id>/transfer/cancel")
    @allow("admin", "supervisor", "agent")
    @doc(_ANSWERS, tags=("queues",))
    def transfer_cancel(call_id: str) -> Reply:
        """Warm transfer: drop the target; the agent has the caller back."""
        return run(call_id, "transfer_cancel", lambda control, view: control.cancel_transfer(view))

    return api
