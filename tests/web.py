"""Helpers for the admin and agent web: users, logging in a test client, a live server for the browser."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from hotline.app import Hotline

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def add_user(hotline: Hotline, name: str, role: str, password: str = PASSWORD, agent_id: str | None = None) -> None:
    hotline.accounts.add(name, role, password, agent_id)


def csrf_of(client: Any, path: str = "/login") -> str:
    """The CSRF token a page of ``client``'s session carries (every page has it in a meta tag)."""
    page = client.get(path)
    found = _CSRF.search(page.get_data(as_text=True))
    assert found, f"no CSRF token on {path} ({page.status_code})"
    return found.group(1)


def login(client: Any, name: str, password: str = PASSWORD) -> str:
    """Log ``client`` in through the form; returns the session's CSRF token for later writes."""
    token = csrf_of(client)
    reply = client.post("/login", data={"name": name, "password": password, "csrf_token": token})
    assert reply.status_code == 302, reply.get_data(as_text=True)[:500]
    return token


def browser_login(page: Any, site: str, name: str, lands: str | None = None) -> None:
    """Log in through the /login form in the browser; wait until it lands on ``lands`` (a URL or glob under
    ``site``), or anywhere but the login page."""
    page.goto(f"{site}/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{site}{lands}" if lands else lambda url: "/login" not in url)


class SessionClient:
    """A logged-in Flask test client whose JSON writes carry the CSRF header, as the pages' script does."""

    def __init__(self, client: Any, name: str, password: str = PASSWORD) -> None:
        self.client = client
        self.csrf = login(client, name, password)

    def __call__(self, method: str, path: str, body: object = None, **kwargs: Any) -> Any:
        headers = {"X-CSRFToken": self.csrf, **kwargs.pop("headers", {})}
        if body is not None:
            kwargs["json"] = body
        return self.client.open(path, method=method, headers=headers, **kwargs)


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """``app`` on a free loopback port in a thread (threaded: event streams stay open); yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
