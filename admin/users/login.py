"""Log in, log out, the start page of each role, and ``/api/me``."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, redirect, render_template, request
from flask_login import login_user, logout_user
from pydantic import BaseModel

from admin.access import SessionUser, allow, current, public
from admin.audit import AuditLog
from admin.openapi import doc
from admin.users.accounts import Accounts, LoginRefused

log = logging.getLogger(__name__)

HOME = {"admin": "/admin/menus", "supervisor": "/admin/dashboard", "agent": "/agent"}


class Me(BaseModel):
    name: str
    role: str
    agent_id: str | None
    via: str


def create_auth_pages(accounts: Accounts, audit: AuditLog) -> Blueprint:
    pages = Blueprint("auth", __name__)

    @pages.get("/")
    @allow("admin", "supervisor", "agent")
    def home() -> Response:
        return redirect(HOME[current().role])  # type: ignore[return-value]

    @pages.route("/login", methods=["GET", "POST"])
    @public
    def login() -> Response | str | tuple[str, int]:
        target = _safe_next(request.values.get("next", ""))
        if request.method == "GET":
            return render_template("login.html", next=target, name="", error=None)
        name = request.form.get("name", "").strip()
        try:
            account = accounts.authenticate(name, request.form.get("password", ""))
        except LoginRefused as exc:
            log.info("login refused for %r from %s: %s", name[:64], request.remote_addr, exc)
            return render_template("login.html", next=target, name=name, error=str(exc)), 401
        login_user(SessionUser(account))
        audit.write(account.name, account.role, "login", account.name, address=request.remote_addr or "")
        return redirect(target or HOME[account.role])  # type: ignore[return-value]

    @pages.post("/logout")
    @allow("admin", "supervisor", "agent")
    def logout() -> Response:
        logout_user()
        return redirect("/login")  # type: ignore[return-value]

    @pages.get("/api/me")
    @allow("admin", "supervisor", "agent")
    @doc({200: Me}, tags=("accounts",))
    def me() -> Response:
        """Who the caller is: name, role and, for an agent, the router agent they work as."""
        who = current()
        return jsonify({"name": who.name, "role": who.role, "agent_id": who.agent_id, "via": who.via})

    return pages


def _safe_next(target: str) -> str:
    """Only a path on this site: a login link must not send anyone elsewhere afterwards."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return ""
