"""Log in, log out, the start page of each role, and ``/api/me``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_user, logout_user
from pydantic import BaseModel, Field

from admin.access import SessionUser, allow, current, public
from admin.audit import AuditLog
from admin.i18n import when_here
from admin.json_replies import json_body, json_error
from admin.openapi import ErrorBody, doc
from admin.redirects import same_site_path
from admin.users.accounts import MIN_PASSWORD, AccountError, Accounts, LoginRefused

log = logging.getLogger(__name__)

HOME = {"admin": "/admin/menus", "supervisor": "/admin/dashboard", "agent": "/agent", "qa": "/admin/quality"}
ANONYMOUS = "-"
"""The actor of a refused login: nobody has shown who they are (the name they typed is the target)."""


class Me(BaseModel):
    name: str
    role: str
    agent_id: str | None
    via: str


class OwnPasswordBody(BaseModel):
    current_password: str
    new_password: str = Field(min_length=MIN_PASSWORD)


def create_auth_pages(accounts: Accounts, audit: AuditLog) -> Blueprint:
    pages = Blueprint("auth", __name__)

    @pages.get("/")
    @allow("admin", "supervisor", "agent", "qa")
    def home() -> Response:
        return redirect(HOME[current().role])  # type: ignore[return-value]

    @pages.route("/login", methods=["GET", "POST"])
    @public
    def login() -> Response | str | tuple[str, int]:
        target = same_site_path(request.values.get("next", ""))
        if request.method == "GET":
            return render_template("login.html", next=target, name="", error=None)
        name, address = request.form.get("name", "").strip()[:64], request.remote_addr or ""
        try:
            account = accounts.authenticate(name, request.form.get("password", ""), address)
        except LoginRefused as exc:
            # Same answer whatever the reason; the reason (never the password) goes to the audit log only.
            audit.write(ANONYMOUS, ANONYMOUS, "login_failed", name, address=address, reason=exc.reason)
            refused = _("wrong name or password, or too many tries: wait a little")
            return render_template("login.html", next=target, name=name, error=refused), 401
        failures, newest = audit.failed_logins_since(account.name, account.previous_login_at)
        login_user(SessionUser(account))
        audit.write(account.name, account.role, "login", account.name, address=address)
        if failures:
            flash(_failures_notice(failures, newest), "warn")
        return redirect(target or HOME[account.role])  # type: ignore[return-value]

    @pages.post("/logout")
    @allow("admin", "supervisor", "agent", "qa")
    def logout() -> Response:
        if current().via == "session":  # ended on the server: a copy of the old cookie is worth nothing
            accounts.end_sessions(current_user.account.id)
        logout_user()
        return redirect("/login")  # type: ignore[return-value]

    @pages.route("/account/password", methods=["GET", "POST"])
    @allow("admin", "supervisor", "agent", "qa")
    def password_page() -> Response | str | tuple[str, int]:
        """Change one's own password (the current one is required)."""
        if request.method == "GET":
            return render_template("password.html", error=None, min_length=MIN_PASSWORD)
        form = request.form
        if form.get("new_password", "") != form.get("repeat_password", ""):
            return render_template("password.html", error=_("the two new passwords differ"),
                                   min_length=MIN_PASSWORD), 400
        try:
            _change_own(accounts, audit, form.get("current_password", ""), form.get("new_password", ""))
        except AccountError as exc:
            return render_template("password.html", error=str(exc), min_length=MIN_PASSWORD), 400
        flash(_("password changed: your other sessions are logged out"), "ok")
        return redirect(HOME[current().role])  # type: ignore[return-value]

    @pages.post("/api/me/password")
    @allow("admin", "supervisor", "agent", "qa")
    @doc({200: Me, 400: ErrorBody}, json=OwnPasswordBody, tags=("accounts",))
    def change_password() -> Response | tuple[Response, int]:
        """Change one's own password: ``current_password`` and ``new_password``; every other session ends."""
        try:
            body = json_body()
        except ValueError as exc:
            return json_error(400, str(exc))
        current_password, new_password = body.get("current_password"), body.get("new_password")
        if not isinstance(current_password, str) or not isinstance(new_password, str):
            return json_error(400, _("current_password and new_password are required (strings)"))
        try:
            _change_own(accounts, audit, current_password, new_password)
        except AccountError as exc:
            return json_error(400, str(exc))
        who = current()
        return jsonify({"name": who.name, "role": who.role, "agent_id": who.agent_id, "via": who.via})

    @pages.get("/api/me")
    @allow("admin", "supervisor", "agent", "qa")
    @doc({200: Me}, tags=("accounts",))
    def me() -> Response:
        """Who the caller is: name, role and, for an agent, the router agent they work as."""
        who = current()
        return jsonify({"name": who.name, "role": who.role, "agent_id": who.agent_id, "via": who.via})

    return pages


def _change_own(accounts: Accounts, audit: AuditLog, current_password: str, new_password: str) -> None:
    who = current()
    if who.via != "session":
        raise AccountError(_("the API token has no password of its own: an admin sets users' passwords"))
    account = accounts.change_own_password(who.name, current_password, new_password, request.remote_addr or "")
    login_user(SessionUser(account))  # this session goes on under the new epoch; every other one has ended
    audit.write(who.name, who.role, "password_changed", who.name, address=request.remote_addr or "")


def _failures_notice(count: int, newest: dict[str, Any] | None) -> str:
    where = newest["detail"].get("address") or "?" if newest else "?"
    at = when_here(newest["at"]) if newest else "?"
    return str(ngettext("%(num)d failed login attempt since your last login, last from %(where)s at %(at)s. Not you? "
                    "Change your password and tell an admin.",
                    "%(num)d failed login attempts since your last login, last from %(where)s at %(at)s. Not you? "
                    "Change your password and tell an admin.", count, where=where, at=at))

