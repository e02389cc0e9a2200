"""Accounts: hashed passwords, log-in and lock-out, sessions that end, CSRF, the ``hotline users`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from admin.users.accounts import AccountError, Accounts, LoginRefused
from admin.users.throttle import LoginThrottle
from hotline.app import Hotline
from store.models import User
from tests.fakes.clock import Clock
from tests.web import PASSWORD, SessionClient, add_user, csrf_of, login


def test_passwords_are_stored_hashed_and_checked(hotline: Hotline) -> None:
    add_user(hotline, "ana", "admin")
    with hotline.sql() as db:
        stored = db.scalar(select(User.password_hash).where(User.name == "ana"))
    assert PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))
    assert hotline.accounts.authenticate("ana", PASSWORD).role == "admin"
    with pytest.raises(LoginRefused, match="wrong name or password"):
        hotline.accounts.authenticate("ana", PASSWORD + "x")
    with pytest.raises(LoginRefused, match="wrong name or password"):
        hotline.accounts.authenticate("nobody", PASSWORD)


@pytest.mark.parametrize(("name", "role", "password", "reason"), [
    ("bad name", "admin", PASSWORD, "user name"),
    ("ana", "root", PASSWORD, "role 'root'"),
    ("ana", "admin", "short", "at least 10 characters"),
])
def test_bad_accounts_are_refused_with_the_reason(hotline: Hotline, name: str, role: str, password: str,
                                                  reason: str) -> None:
    with pytest.raises(AccountError, match=reason):
        hotline.accounts.add(name, role, password)


def test_failures_never_lock_the_account_they_make_its_guessers_wait(hotline: Hotline) -> None:
    accounts = Accounts(hotline.sql, LoginThrottle(hotline.redis, "t", clock=Clock()))
    accounts.add("bo", "supervisor", PASSWORD)
    for _ in range(5):
        with pytest.raises(LoginRefused, match="wrong name or password"):
            accounts.authenticate("bo", "wrong password", "10.9.9.9")
    with pytest.raises(LoginRefused, match="wrong name or password"):
        accounts.authenticate("bo", PASSWORD, "10.9.9.9")  # even the right password, from where the guesses came
    assert accounts.authenticate("bo", PASSWORD, "10.0.0.1").name == "bo"  # not locked: another address gets in


def test_login_page_sets_an_httponly_samesite_cookie_and_lands_on_the_role_home(hotline: Hotline, client: Any) -> None:
    add_user(hotline, "ana", "admin")
    add_user(hotline, "ag1", "agent")
    token = csrf_of(client)
    reply = client.post("/login", data={"name": "ana", "password": PASSWORD, "csrf_token": token})
    assert reply.status_code == 302 and reply.headers["Location"] == "/admin/menus"
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/api/me").json == {"name": "ana", "role": "admin", "agent_id": None, "via": "session"}
    other = client.application.test_client()
    assert login(other, "ag1") and other.get("/").headers["Location"] == "/agent"
    assert other.get("/api/me").json["agent_id"] == "ag1"


def test_wrong_password_is_refused_on_the_page_without_saying_which_part(hotline: Hotline, client: Any) -> None:
    add_user(hotline, "ana", "admin")
    token = csrf_of(client)
    reply = client.post("/login", data={"name": "ana", "password": "nope nope nope", "csrf_token": token})
    assert reply.status_code == 401 and "wrong name or password" in reply.get_data(as_text=True)
    assert client.get("/api/me").status_code == 401


def test_login_without_csrf_token_is_refused(hotline: Hotline, client: Any) -> None:
    add_user(hotline, "ana", "admin")
    csrf_of(client)
    reply = client.post("/login", data={"name": "ana", "password": PASSWORD})
    assert reply.status_code == 400 and "CSRF" in reply.get_data(as_text=True)
    assert client.get("/api/me").status_code == 401


def test_cookie_writes_need_the_csrf_token_bearer_writes_do_not(hotline: Hotline, client: Any) -> None:
    add_user(hotline, "ana", "admin")
    admin = SessionClient(client, "ana")
    agent = {"name": "Li", "endpoint": "PJSIP/1001", "skills": {"general": 5}, "languages": ["zh-CN"]}
    refused = client.put("/api/agents/li", json=agent)  # the session cookie alone, as a forged form would send
    assert refused.status_code == 400 and "CSRF" in refused.json["error"]
    forged = client.put("/api/agents/li", json=agent, headers={"X-CSRFToken": "made-up"})
    assert forged.status_code == 400
    assert client.get("/api/agents/li").status_code == 404  # nothing was created
    assert admin("PUT", "/api/agents/li", agent).status_code == 201
    token_hotline = hotline.settings.model_copy(update={"api_token": "t0ken-for-tests"})
    hotline.settings = token_hotline
    from hotline.app import create_app

    bearer = create_app(hotline=hotline).test_client()
    reply = bearer.put("/api/agents/mo", json={**agent, "name": "Mo"},
                       headers={"Authorization": "Bearer t0ken-for-tests"})
    assert reply.status_code == 201
    entries = hotline.audit.entries(action="agent_created")
    assert [(e["actor"], e["target"]) for e in entries] == [("api-token", "mo"), ("ana", "li")]


def test_password_change_and_deactivation_end_existing_sessions(hotline: Hotline, client: Any) -> None:
    add_user(hotline, "bo", "supervisor")
    login(client, "bo")
    assert client.get("/api/me").status_code == 200
    hotline.accounts.set_password("bo", "another long password")
    assert client.get("/api/me").status_code == 401
    login(client, "bo", "another long password")
    hotline.accounts.set_active("bo", False)
    assert client.get("/api/me").status_code == 401
    with pytest.raises(LoginRefused, match="wrong name or password") as refused:  # the same text as any refusal
        hotline.accounts.authenticate("bo", "another long password")
    assert refused.value.reason == "deactivated"


def test_logout_ends_the_session(hotline: Hotline, client: Any) -> None:
    add_user(hotline, "bo", "supervisor")
    token = login(client, "bo")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/records").status_code == 401
    assert client.get("/").headers["Location"] == "/login?next=/"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_login_never_redirects_off_site(hotline: Hotline, client: Any, target: str) -> None:
    add_user(hotline, "ana", "admin")
    token = csrf_of(client)
    reply = client.post("/login", data={"name": "ana", "password": PASSWORD, "csrf_token": token, "next": target})
    assert reply.headers["Location"] == "/admin/menus"


def test_secret_key_is_generated_once_and_kept(hotline: Hotline) -> None:
    from hotline.app import create_app

    first, second = create_app(hotline=hotline), create_app(hotline=hotline)
    assert first.secret_key == second.secret_key and len(first.secret_key) > 40
    key_file = hotline.settings.data_dir / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_users_command_creates_the_first_admin_who_can_log_in(tmp_path: Path, client: Any,
                                                              hotline: Hotline) -> None:
    env = {**os.environ, "DATABASE_URL": hotline.settings.sql_url, "HOTLINE_DATA_DIR": str(tmp_path)}
    run = [sys.executable, "-m", "hotline.cli", "users"]
    made = subprocess.run([*run, "add", "root-admin", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n",
                          env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert "user root-admin created with role admin" in made.stdout
    again = subprocess.run([*run, "add", "root-admin", "--role", "admin", "--password-stdin"],
                           input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already exists" in again.stderr
    listed = subprocess.run([*run, "list"], env=env, capture_output=True, text=True, timeout=60)
    assert "root-admin" in listed.stdout and "admin" in listed.stdout and PASSWORD not in listed.stdout
    login(client, "root-admin")
    assert client.get("/api/me").json["role"] == "admin"


def test_browser_logs_in_and_out(hotline: Hotline, site: str, page: Any) -> None:
    add_user(hotline, "bo", "supervisor")
    page.goto(f"{site}/api/me")
    assert "401" in page.title() or page.url.endswith("/api/me")
    page.goto(f"{site}/")
    assert "/login" in page.url
    page.fill("#name", "bo")
    page.fill("#password", "wrong password!")
    page.click("#login")
    assert "wrong name or password" in page.inner_text("main")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{site}/admin/dashboard")
    page.click("#logout")
    page.wait_for_url(f"{site}/login")


def test_pages_cannot_be_framed_and_run_only_this_sites_scripts(client: Any, caller: Any) -> None:
    page = client.get("/login")
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy
    assert "Content-Security-Policy" not in caller.post_raw("/twilio/voice").headers  # TwiML is not a page
