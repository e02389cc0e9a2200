"""The work-order pages: a filtered list, and each work order with its trail, its recording and its actions.

Actions go through ``WorkOrderDesk.act`` like ``/api/complaints`` and are audited the same way, as the
person logged in; a transition the status forbids is answered 409 with the desk's sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request
from flask_babel import gettext as _

from admin.access import allow, current
from admin.audit import AuditLog
from admin.i18n import label
from admin.i18n import refusal as refusal_text
from admin.users.accounts import Accounts
from admin.work_orders.assignees import assignee_refusal, assignees
from complaints.work_orders import TRANSITIONS, BadTransition, MissingField, NoSuchWorkOrder, WorkOrderDesk
from ivr.services import COMPLAINT_CATEGORIES

STATUSES = ("open", "assigned", "in_progress", "resolved", "visited", "closed", "reopened")
PAGE_ACTIONS = ("assign", "start", "resolve", "close")
"""What a person does from the page (visit and reopen come from the return-visit survey)."""


def create_work_orders_web(desk: WorkOrderDesk, audit: AuditLog, accounts: Accounts,
                           on_line: Callable[[str], frozenset[str]] = lambda agent_id: frozenset()) -> Blueprint:
    """``on_line(agent_id)``: the numbers of the work orders of the caller on that agent's line now."""
    bp = Blueprint("work_orders_web", __name__, url_prefix="/admin/work-orders")

    @bp.get("")
    @allow("admin", "supervisor")
    def index() -> str:
        wanted = {name: request.args.get(name, "") for name in ("status", "category", "overdue")}
        orders = desk.list(status=wanted["status"] or None, category=wanted["category"] or None,
                                   overdue={"yes": True, "no": False}.get(wanted["overdue"]))
        return render_template("work_orders.html", orders=orders, wanted=wanted, statuses=STATUSES,
                               categories=COMPLAINT_CATEGORIES)

    @bp.get("/<number>")
    @allow("admin", "supervisor", "agent")
    def detail(number: str) -> str | tuple[str, int]:
        who = current()
        if who.role == "agent":  # the screen pop's links: the orders of the caller on their line, read-only
            if not who.agent_id or number not in on_line(who.agent_id):
                return render_template("error.html", status=403,
                                       message=_("only the work orders of the caller on your line")), 403
            return _detail(desk, number, read_only=True)
        return _detail(desk, number, accounts=accounts)

    @bp.post("/<number>")
    @allow("admin", "supervisor")
    def act(number: str) -> Response | str | tuple[str, int]:
        action = request.form.get("action", "")
        if action not in PAGE_ACTIONS:
            return _detail(desk, number, f"no action {action!r} here: one of {', '.join(PAGE_ACTIONS)}", 400,
                           accounts=accounts)
        note, to = request.form.get("note", "").strip()[:2000], request.form.get("to", "").strip()[:64] or None
        if action == "assign" and (refusal := assignee_refusal(accounts, to)):
            return _detail(desk, number, refusal, 400, accounts=accounts)
        who = current()
        try:
            order = desk.act(number, action, who.name, note=note, assignee=to)
        except BadTransition as exc:
            return _detail(desk, number, refusal_text(str(exc)), 409, accounts=accounts)
        except MissingField as exc:
            return _detail(desk, number, refusal_text(str(exc)), 400, accounts=accounts)
        except NoSuchWorkOrder as exc:
            return render_template("error.html", status=404, message=refusal_text(str(exc))), 404
        audit.write(who.name, who.role, f"work_order_{action}", number, note=note[:500], to=to,
                            status=order["status"])
        flash(_("work order %(number)s: %(action)s done, now %(status)s", number=number, action=label(action),
                status=label(order["status"])), "ok")
        return redirect(f"/admin/work-orders/{number}", code=303)  # type: ignore[return-value]

    return bp


def _detail(desk: WorkOrderDesk, number: str, error: str = "", status: int = 200,
            read_only: bool = False, accounts: Accounts | None = None) -> tuple[str, int]:
    try:
        order = desk.show(number)
    except NoSuchWorkOrder as exc:
        return render_template("error.html", status=404, message=refusal_text(str(exc))), 404
    return render_template("work_orders_detail.html", order=order, error=error, read_only=read_only,
                           actions=_possible(order), all_actions=PAGE_ACTIONS,
                           assignees=assignees(accounts) if accounts else []), status


def _possible(order: dict[str, Any]) -> list[str]:
    return [a for a in PAGE_ACTIONS if order["status"] in TRANSITIONS[a].sources]
