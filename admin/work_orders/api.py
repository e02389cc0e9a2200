"""``/api/complaints``: work orders as JSON, changed through the same desk as the CLI and the jobs."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from flask_babel import gettext as _

from admin.access import allow, current
from admin.api_models import WorkOrderAction, WorkOrderDetail, WorkOrderList, WorkOrderQuery, WorkOrderView
from admin.audit import AuditLog
from admin.errors import answer_errors_as_json
from admin.json_replies import json_body, json_error
from admin.openapi import ErrorBody, doc
from admin.users.accounts import Accounts
from admin.work_orders.assignees import assignee_refusal
from complaints.work_orders import TRANSITIONS, WorkOrderDesk


def create_complaints_api(desk: WorkOrderDesk, audit: AuditLog, accounts: Accounts) -> Blueprint:
    api = Blueprint("complaints_api", __name__, url_prefix="/api/complaints")

    @api.get("")
    @allow("admin", "supervisor")
    @doc({200: WorkOrderList}, query=WorkOrderQuery, tags=("work orders",))
    def list_orders() -> Response:
        """Work orders, highest priority then oldest first."""
        overdue = request.args.get("overdue")
        return jsonify(desk.list(
            status=request.args.get("status") or None, category=request.args.get("category") or None,
            overdue=None if overdue is None else overdue in ("1", "true", "yes"),
            limit=max(1, min(1000, request.args.get("limit", 200, type=int) or 200)),
        ))

    @api.get("/<number>")
    @allow("admin", "supervisor")
    @doc({200: WorkOrderDetail, 404: ErrorBody}, tags=("work orders",))
    def show(number: str) -> Response:
        """One work order with its audit trail."""
        return jsonify(desk.show(number))

    @api.post("/<number>/<action>")
    @allow("admin", "supervisor")
    @doc({200: WorkOrderView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody}, json=WorkOrderAction,
         tags=("work orders",))
    def act(number: str, action: str) -> Response | tuple[Response, int]:
        """Apply an action (assign, start, resolve, visit, reopen, close); 409 when the status forbids it."""
        if action not in TRANSITIONS:
            return json_error(404, _("no action %(action)r: one of %(transitions)s",
                                     action=action, transitions=", ".join(TRANSITIONS)))
        body = json_body()
        who = current()
        # A person acts as themselves; the shared API token must say on whose behalf.
        actor = who.name if who.via == "session" else str(body.get("by") or "").strip()
        if not actor:
            return json_error(400, _('"by" (who does it) is required: it goes into the audit trail'))
        if action == "assign" and (refusal := assignee_refusal(accounts, body.get("to") and str(body["to"]))):
            return json_error(400, refusal)
        order = desk.act(number, action, actor, note=str(body.get("note") or ""),
                         assignee=body.get("to") and str(body["to"]))
        # The audit names who really called (the token), and on whose behalf it says it acted, apart.
        on_behalf = {"by": actor[:64]} if who.via == "token" else {}
        audit.write(who.name, who.role, f"work_order_{action}", number, note=str(body.get("note") or "")[:500],
                    to=body.get("to") and str(body["to"]), status=order.get("status"), **on_behalf)
        return jsonify(order)

    answer_errors_as_json(api)
    return api
