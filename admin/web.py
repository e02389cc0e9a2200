"""The admin and agent web around the blueprints: accounts, sessions, the role guard, the navigation, and the
OpenAPI document of what was registered (the blueprints themselves are registered by ``hotline.app``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, redirect, url_for
from flask_babel import lazy_gettext as _l

from admin.access import Access, public
from admin.errors import answer_outages
from admin.i18n import create_language_switch, init_i18n
from admin.live.sse import StreamSlots, stream_limit
from admin.openapi import register_openapi
from store.secret_files import installation_secret

if TYPE_CHECKING:
    from hotline.app import Hotline

NAV = (
    (_l("Menus"), "/admin/menus", ("admin",)),
    (_l("Agents"), "/admin/agents", ("admin", "supervisor")),
    (_l("Users"), "/admin/users", ("admin",)),
    (_l("Dashboard"), "/admin/dashboard", ("admin", "supervisor")),
    (_l("Reports"), "/admin/reports", ("admin", "supervisor")),
    (_l("Work orders"), "/admin/work-orders", ("admin", "supervisor")),
    (_l("PIN locks"), "/admin/pin-locks", ("admin", "supervisor")),
    (_l("Hours"), "/admin/hours", ("admin", "supervisor")),
    (_l("Quality"), "/admin/quality", ("admin", "supervisor", "qa")),
    (_l("Audit"), "/admin/audit", ("admin",)),
    (_l("Console"), "/agent", ("agent",)),
    (_l("My evaluations"), "/agent/evaluations", ("agent",)),
)
EXEMPT_BLUEPRINTS = ("twilio", "metrics")
"""Twilio's webhooks check Twilio's signature instead of a login; ``/metrics`` its own scrape token."""


def init_web(app: Flask, hotline: Hotline) -> Access:
    """Accounts, sessions, CSRF and the role guard; call before registering the blueprints."""
    s = hotline.settings
    app.secret_key = s.secret_key or _stored_secret(s.data_dir)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=s.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SECURE=s.secure_cookies,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=s.session_hours),
    )
    # gevent: as many live pages as HOTLINE_LIVE_STREAM_MEMORY_MB holds; threads: all threads but a reserve that
    # always serves webhooks.
    app.extensions["stream_slots"] = StreamSlots(stream_limit(s.web_runtime, s.live_stream_memory_mb, s.web_threads),
                                                 s.live_streams_per_person)
    access = Access(hotline.accounts, s.api_token, EXEMPT_BLUEPRINTS)
    access.init_app(app)
    app.extensions["access"] = access
    answer_outages(app)
    init_i18n(app, s.ui_language, s.timezone)
    app.register_blueprint(create_language_switch(hotline.accounts))

    @app.context_processor
    def _layout() -> dict[str, Any]:
        principal = g.get("principal")
        links = [{"label": label, "href": href} for label, href, roles in NAV
                 if principal is not None and principal.role in roles]
        return {"principal": principal, "nav_links": links}

    @app.get("/favicon.ico")
    @public
    def _favicon() -> Response:
        """Browsers ask for it on every page, linked or not: send them to the one in static."""
        return redirect(url_for("static", filename="favicon.svg"), code=301)  # type: ignore[return-value]

    return access


def finish_web(app: Flask) -> None:
    """After every blueprint: the OpenAPI document of what was registered."""
    register_openapi(app)


def _stored_secret(data_dir: Path) -> str:
    """One secret per installation, shared by every web process and kept across restarts."""
    return installation_secret(data_dir, "secret_key")
