"""Who may call what: one guard in front of every page and API call.

A request is made by a logged-in person (session cookie, Flask-Login) or by a program holding
``HOTLINE_API_TOKEN`` (bearer, acts as an admin named ``api-token``). Every view declares the roles
it allows with ``@allow(...)``; a view that declares none is refused to everyone, so a route added
without a decision is closed, not open. Cookie-authenticated writes must carry the CSRF token;
bearer calls need none (a browser never attaches that header on its own).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from flask import Flask, Response, current_app, g, redirect, render_template, request
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from admin.json_replies import json_error
from admin.users.accounts import TOKEN_ACTOR, Account, Accounts

F = TypeVar("F", bound=Callable[..., Any])
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Principal:
    """Who is making this request."""

    name: str
    role: str
    agent_id: str | None
    via: str
    """``session`` or ``token``."""


class SessionUser(UserMixin):  # type: ignore[misc]  # flask_login ships no type hints: UserMixin is Any
    """Flask-Login's view of an account. The id carries the session epoch: a password change or a
    deactivation raises it, and every cookie issued before stops working."""

    def __init__(self, account: Account) -> None:
        self.account = account

    def get_id(self) -> str:
        return f"{self.account.id}:{self.account.session_epoch}"


def allow(*roles: str) -> Callable[[F], F]:
    """Declare which roles may call a view (``admin``, ``supervisor``, ``agent``)."""

    def mark(view: F) -> F:
        view.allowed_roles = frozenset(roles)  # type: ignore[attr-defined]
        return view

    return mark


def public(view: F) -> F:
    """A view anyone may call (login page, health check)."""
    view.allowed_roles = None  # type: ignore[attr-defined]
    view.public = True  # type: ignore[attr-defined]
    return view


def current() -> Principal:
    """The principal of the request being served (the guard has already checked it)."""
    return g.principal  # type: ignore[no-any-return]


def allowed_roles(view: Callable[..., Any]) -> frozenset[str] | None:
    """The roles a view allows; None for a public view; an empty set when it declared nothing."""
    if getattr(view, "public", False):
        return None
    return getattr(view, "allowed_roles", frozenset())


class Access:
    def __init__(self, accounts: Accounts, api_token: str | None, exempt_blueprints: Iterable[str] = ()) -> None:
        self.accounts, self.api_token = accounts, api_token
        self.exempt = frozenset(exempt_blueprints)
        self.csrf = CSRFProtect()
        self.logins = LoginManager()

    def init_app(self, app: Flask) -> None:
        # CSRF is checked by the guard below (cookie sessions only), not on every request by default.
        app.config["WTF_CSRF_CHECK_DEFAULT"] = False
        app.config["WTF_CSRF_TIME_LIMIT"] = None  # valid as long as the session: no expired form mid-shift
        self.csrf.init_app(app)
        self.logins.init_app(app)
        self.logins.session_protection = "basic"
        self.logins.user_loader(self._load_user)
        app.before_request(self._guard)
        app.after_request(_security_headers)
        app.register_error_handler(CSRFError, _csrf_refused)
        app.register_error_handler(404, _not_found)
        app.register_error_handler(405, _not_allowed)
        app.register_error_handler(413, _too_large)

    def _load_user(self, user_id: str) -> SessionUser | None:
        raw_id, _, epoch = user_id.partition(":")
        account = self.accounts.by_id(int(raw_id)) if raw_id.isdigit() else None
        if account is None or not account.active or str(account.session_epoch) != epoch:
            return None
        return SessionUser(account)

    def _guard(self) -> Response | None:
        if request.endpoint is None or request.blueprint in self.exempt or request.endpoint == "static":
            return None  # 404s, Twilio's own signature check, the static assets
        view = current_app.view_functions[request.endpoint]
        roles = allowed_roles(view)
        principal, refusal = self._principal()
        if refusal is not None:
            return refusal
        g.principal = principal
        if principal is not None and principal.via == "session" and request.method in UNSAFE:
            self.csrf.protect()  # raises CSRFError
        if roles is None:
            if principal is None and request.method in UNSAFE:
                self.csrf.protect()  # the login form too: no logging someone in from another site
            return None
        if principal is None:
            return _unauthenticated()
        if principal.role not in roles:
            return _forbidden(principal)
        return None

    def _principal(self) -> tuple[Principal | None, Response | None]:
        given = request.headers.get("Authorization", "")
        if given:
            if self.api_token and hmac.compare_digest(given.encode(), f"Bearer {self.api_token}".encode()):
                return Principal(TOKEN_ACTOR, "admin", None, "token"), None
            return None, _unauthenticated()
        if current_user.is_authenticated:
            account = current_user.account
            return Principal(account.name, account.role, account.agent_id, "session"), None
        return None, None


CONTENT_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; "
                  "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
"""Pages run only this site's own scripts (libraries are vendored) and cannot be framed by another site."""


def _security_headers(response: Response) -> Response:
    if request.blueprint in ("twilio",):
        return response  # TwiML for Twilio
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CONTENT_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
    return response


def is_api() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _unauthenticated() -> Response:
    if is_api():
        return json_error(401, _("log in, or send a valid bearer token (Authorization: Bearer <HOTLINE_API_TOKEN>)"),
                          {"WWW-Authenticate": 'Bearer realm="hotline"'})[0]
    target = request.full_path if request.query_string else request.path
    return redirect(f"/login?next={quote(target)}")  # type: ignore[return-value]


def _forbidden(principal: Principal) -> Response:
    message = _("%(name)s (%(role)s) may not use %(method)s %(path)s", name=principal.name, role=principal.role,
                method=request.method, path=request.path)
    if is_api():
        return json_error(403, message)[0]
    return Response(render_template("error.html", status=403, message=message), status=403)


def _csrf_refused(exc: CSRFError) -> Response:
    message = _("refused: %(why)s (reload the page and try again)", why=exc.description)
    if is_api():
        return json_error(400, message)[0]
    return Response(render_template("error.html", status=400, message=message), status=400)


def _not_found(exc: Exception) -> Response:
    return _error_page(404, _("nothing at %(path)s", path=request.path))


def _not_allowed(exc: Exception) -> Response:
    return _error_page(405, _("%(method)s is not allowed on %(path)s", method=request.method, path=request.path))


def _too_large(exc: Exception) -> Response:
    return _error_page(413, _("the request body is larger than this address accepts (%(path)s)", path=request.path))


def _error_page(status: int, message: str) -> Response:
    if is_api() or request.path.startswith("/twilio/"):
        return json_error(status, message)[0]
    return Response(render_template("error.html", status=status, message=message), status=status)
