"""The users and audit-log pages (admin only) and their JSON: ``/api/users``, ``/api/audit``.

Every change goes through ``Accounts`` (the one place users change) and into the audit log. A
password is taken in, never given back: not in answers, not in the audit detail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from flask_babel import gettext as _

from admin.access import allow, current
from admin.audit import AuditLog
from admin.errors import answer_errors_as_json
from admin.json_replies import json_body, json_error
from admin.openapi import ErrorBody, doc
from admin.users.accounts import ROLES, Account, Accounts, NoSuchUser
from admin.users.models import AuditList, AuditQuery, NewUser, PasswordBody, RoleBody, UserList, UserView

AUDIT_PAGE = 200


def create_users_web(accounts: Accounts, audit: AuditLog,
                     agent_exists: Callable[[str], bool] = lambda agent_id: True) -> Blueprint:
    """``agent_exists(agent_id)``: whether the router knows that agent (an agent user must work as one)."""
    web = Blueprint("users_web", __name__)

    def known_agent(role: str, agent_id: str | None, name: str) -> None:
        wanted = (agent_id or name) if role == "agent" else None
        if wanted and not agent_exists(wanted):
            raise ValueError(_("agent id %(id)r is not set up in the router: add the agent on the Agents page "
                               "first, or give the agent id of an existing agent", id=wanted[:70]))

    def view(account: Account) -> dict[str, Any]:
        locked = account.locked_until is not None and _aware(account.locked_until) > accounts.clock()
        return {**account.to_json(), "locked": locked}

    def changed(action: str, account: Account, **detail: Any) -> Response:
        who = current()
        audit.write(who.name, who.role, action, account.name, **detail)
        return jsonify(view(account))

    @web.get("/admin/users")
    @allow("admin")
    def users_page() -> str:
        return render_template("users.html", roles=ROLES)

    @web.get("/admin/audit")
    @allow("admin")
    def audit_page() -> str:
        wanted = {key: request.args.get(key, "").strip() for key in ("action", "actor", "target")}
        entries = audit.entries(limit=AUDIT_PAGE, **{k: v for k, v in wanted.items() if v})
        return render_template("audit.html", entries=entries, wanted=wanted, limit=AUDIT_PAGE)

    @web.get("/api/users")
    @allow("admin")
    @doc({200: UserList}, tags=("users",))
    def list_users() -> Response:
        """Everyone who can log in, by name (never a password or its hash)."""
        return jsonify([view(account) for account in accounts.all()])

    @web.post("/api/users")
    @allow("admin")
    @doc({201: UserView, 400: ErrorBody, 409: ErrorBody}, json=NewUser, tags=("users",))
    def create_user() -> tuple[Response, int]:
        """Create a user with an initial password; an agent works as ``agent_id`` (their name by default)."""
        body = json_body()
        known_agent(_text(body, "role"), _text(body, "agent_id") or None, _text(body, "name"))
        account = accounts.add(_text(body, "name"), _text(body, "role"), _text(body, "password"),
                               _text(body, "agent_id") or None)
        return changed("user_created", account, as_role=account.role, agent_id=account.agent_id), 201

    @web.get("/api/users/<name>")
    @allow("admin")
    @doc({200: UserView, 404: ErrorBody}, tags=("users",))
    def show_user(name: str) -> Response | tuple[Response, int]:
        account = accounts.get(name)
        return jsonify(view(account)) if account else json_error(404, _("no user %(name)r", name=name))

    @web.post("/api/users/<name>/role")
    @allow("admin")
    @doc({200: UserView, 400: ErrorBody, 404: ErrorBody}, json=RoleBody, tags=("users",))
    def change_role(name: str) -> Response:
        """Change the role; the user's sessions end (they log in again with the new role)."""
        body = json_body()
        role = _text(body, "role")
        _not_yourself(name, role != "admin", _("you cannot change your own role: ask another admin"))
        before = _existing(accounts, name).role
        known_agent(role, _text(body, "agent_id") or None, name)
        account = accounts.set_role(name, role, _text(body, "agent_id") or None)
        return changed("user_role_changed", account, before=before, after=account.role, agent_id=account.agent_id)

    @web.post("/api/users/<name>/password")
    @allow("admin")
    @doc({200: UserView, 400: ErrorBody, 404: ErrorBody}, json=PasswordBody, tags=("users",))
    def reset_password(name: str) -> Response:
        """Set a new password: the user's sessions end and login waits are lifted."""
        account = accounts.set_password(name, _text(json_body(), "password"))
        return changed("user_password_reset", account)

    @web.post("/api/users/<name>/deactivate")
    @allow("admin")
    @doc({200: UserView, 400: ErrorBody, 404: ErrorBody}, tags=("users",))
    def deactivate(name: str) -> Response:
        """No more logging in; the user's sessions end at once."""
        _not_yourself(name, True, _("you cannot deactivate yourself: ask another admin"))
        return changed("user_deactivated", accounts.set_active(name, False))

    @web.post("/api/users/<name>/reactivate")
    @allow("admin")
    @doc({200: UserView, 404: ErrorBody}, tags=("users",))
    def reactivate(name: str) -> Response:
        return changed("user_reactivated", accounts.set_active(name, True))

    @web.post("/api/users/<name>/unlock")
    @allow("admin")
    @doc({200: UserView, 404: ErrorBody}, tags=("users",))
    def unlock(name: str) -> Response:
        """Lift the wait new addresses face after many failed logins at this account."""
        return changed("user_unlocked", accounts.unlock(name))

    @web.get("/api/audit")
    @allow("admin")
    @doc({200: AuditList}, query=AuditQuery, tags=("audit",))
    def audit_entries() -> Response:
        """The audit log, newest first; each filter is an exact match."""
        args = request.args
        limit = max(1, min(1000, args.get("limit", AUDIT_PAGE, type=int) or AUDIT_PAGE))
        return jsonify(audit.entries(action=args.get("action") or None, actor=args.get("actor") or None,
                                     target=args.get("target") or None, limit=limit))

    answer_errors_as_json(web)

    return web


def _not_yourself(name: str, refused: bool, refusal: str) -> None:
    """An admin who locked themselves out would need the command line to get back in."""
    if refused and name == current().name:
        raise ValueError(refusal)


def _existing(accounts: Any, name: str) -> Account:
    account = accounts.get(name)
    if account is None:
        raise NoSuchUser(_("no user %(name)r", name=name))
    return account  # type: ignore[no-any-return]


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(_("%(key)s must be a string", key=key))
    return value.strip() if key != "password" else value


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
