"""Users and the audit log through /api/users, /api/audit and their pages: admins only, every change audited."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

import pytest

from admin.users.accounts import LoginRefused
from hotline.app import Hotline
from routing.agents import Agent
from tests.web import PASSWORD, SessionClient, add_user, browser_login, csrf_of, login

NEW_PASSWORD = "a brand new password"


@pytest.fixture
def admin(hotline: Hotline, client: Any) -> SessionClient:
    add_user(hotline, "ana", "admin")
    return SessionClient(client, "ana")


def other_client(client: Any) -> Any:
    return client.application.test_client()


def actions(hotline: Hotline, target: str) -> list[tuple[str, str, str]]:
    return [(e["actor"], e["action"], e["target"]) for e in reversed(hotline.audit.entries(target=target))
            if e["action"] not in ("login", "login_failed")]


def test_admin_creates_users_and_the_list_never_shows_a_password(hotline: Hotline, admin: SessionClient) -> None:
    made = admin("POST", "/api/users", {"name": "bo", "role": "supervisor", "password": PASSWORD})
    assert made.status_code == 201
    assert made.json == {"name": "bo", "role": "supervisor", "agent_id": None, "active": True, "locked": False,
                         "locked_until": None, "last_login_at": None, "language": None}
    hotline.agents.put(Agent("1001", "Cy", "PJSIP/1001", {"general": 5}, ["zh-CN"]))
    agent = admin("POST", "/api/users", {"name": "cy", "role": "agent", "password": PASSWORD, "agent_id": "1001"})
    assert agent.status_code == 201 and agent.json["agent_id"] == "1001"
    listed = admin("GET", "/api/users")
    assert [(u["name"], u["role"], u["agent_id"]) for u in listed.json] == [
        ("ana", "admin", None), ("bo", "supervisor", None), ("cy", "agent", "1001")]
    assert listed.json[0]["last_login_at"] is not None  # ana logged in to make these calls
    assert PASSWORD not in listed.get_data(as_text=True) and PASSWORD not in made.get_data(as_text=True)
    entry = hotline.audit.entries(action="user_created", target="bo")[0]
    assert (entry["actor"], entry["role"], entry["detail"]) == ("ana", "admin", {"as_role": "supervisor",
                                                                                  "agent_id": None})
    assert PASSWORD not in str(hotline.audit.entries())
    bo = other_client(admin.client)
    login(bo, "bo")
    assert bo.get("/api/me").json["role"] == "supervisor"


def test_the_new_user_form_starts_on_the_least_privileged_role(admin: SessionClient) -> None:
    """A hurried admin who types a name and a password makes an agent, not another admin."""
    html = admin("GET", "/admin/users").get_data(as_text=True)
    select = re.search(r'<select id="new-role"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None
    options = re.findall(r'<option value="(\w+)"( selected)?>', select.group(1))
    chosen = [value for value, selected in options if selected] or [options[0][0]]  # a browser's default
    assert chosen == ["agent"]


@pytest.mark.parametrize(("body", "status", "reason"), [
    ({"name": "bo", "role": "supervisor", "password": "short"}, 400, "at least 10 characters"),
    ({"name": "b o", "role": "supervisor", "password": PASSWORD}, 400, "user name"),
    ({"name": "bo", "role": "root", "password": PASSWORD}, 400, "role 'root'"),
    ({"name": "bo", "role": "agent", "password": PASSWORD, "agent_id": "x/y"}, 400, "agent id"),
    ({"name": "ana", "role": "admin", "password": PASSWORD}, 409, "already exists"),
    ({"name": ["bo"], "role": "admin", "password": PASSWORD}, 400, "name must be a string"),
])
def test_bad_new_users_are_refused_with_the_reason(hotline: Hotline, admin: SessionClient, body: dict[str, Any],
                                                   status: int, reason: str) -> None:
    reply = admin("POST", "/api/users", body)
    assert reply.status_code == status and reason in reply.json["error"]
    assert [u.name for u in hotline.accounts.all()] == ["ana"]
    assert not hotline.audit.entries(action="user_created")


def test_an_agent_user_must_work_as_an_agent_the_router_knows(hotline: Hotline, admin: SessionClient) -> None:
    """Else the console shows its error twice and an Available button that cannot work."""
    made = admin("POST", "/api/users", {"name": "cy", "role": "agent", "password": PASSWORD, "agent_id": "9999"})
    assert made.status_code == 400 and "agent id '9999'" in made.json["error"]
    by_name = admin("POST", "/api/users", {"name": "cy", "role": "agent", "password": PASSWORD})
    assert by_name.status_code == 400 and "agent id 'cy'" in by_name.json["error"]
    add_user(hotline, "bo", "supervisor")
    moved = admin("POST", "/api/users/bo/role", {"role": "agent", "agent_id": "9999"})
    assert moved.status_code == 400 and "agent id '9999'" in moved.json["error"]
    assert hotline.accounts.get("cy") is None and hotline.accounts.get("bo").role == "supervisor"  # type: ignore[union-attr]
    assert not hotline.audit.entries(action="user_created") and not hotline.audit.entries(action="user_role_changed")
    hotline.agents.put(Agent("cy", "Cy", "PJSIP/1003", {"general": 5}, ["zh-CN"]))
    assert admin("POST", "/api/users", {"name": "cy", "role": "agent", "password": PASSWORD}).status_code == 201


def test_role_change_ends_the_users_sessions_and_is_audited(hotline: Hotline, admin: SessionClient) -> None:
    add_user(hotline, "bo", "supervisor")
    bo = other_client(admin.client)
    login(bo, "bo")
    hotline.agents.put(Agent("1002", "Bo", "PJSIP/1002", {"general": 5}, ["zh-CN"]))
    reply = admin("POST", "/api/users/bo/role", {"role": "agent", "agent_id": "1002"})
    assert reply.status_code == 200 and (reply.json["role"], reply.json["agent_id"]) == ("agent", "1002")
    assert bo.get("/api/me").status_code == 401  # logged out: the old role's cookie is worth nothing
    login(bo, "bo")
    assert bo.get("/api/me").json == {"name": "bo", "role": "agent", "agent_id": "1002", "via": "session"}
    assert bo.get("/api/records").status_code == 403
    entry = hotline.audit.entries(action="user_role_changed")[0]
    assert entry["detail"] == {"before": "supervisor", "after": "agent", "agent_id": "1002"}


def test_password_reset_ends_the_users_sessions_and_the_old_password(hotline: Hotline, admin: SessionClient) -> None:
    add_user(hotline, "bo", "supervisor")
    bo = other_client(admin.client)
    login(bo, "bo")
    assert admin("POST", "/api/users/bo/password", {"password": "short"}).status_code == 400
    assert bo.get("/api/me").status_code == 200  # a refused reset changes nothing
    reply = admin("POST", "/api/users/bo/password", {"password": NEW_PASSWORD})
    assert reply.status_code == 200 and NEW_PASSWORD not in reply.get_data(as_text=True)
    assert bo.get("/api/me").status_code == 401
    with pytest.raises(LoginRefused):
        hotline.accounts.authenticate("bo", PASSWORD)
    login(bo, "bo", NEW_PASSWORD)
    assert actions(hotline, "bo") == [("ana", "user_password_reset", "bo")]
    assert NEW_PASSWORD not in str(hotline.audit.entries())


def test_deactivate_logs_the_user_out_and_reactivate_lets_them_back(hotline: Hotline, admin: SessionClient) -> None:
    add_user(hotline, "bo", "supervisor")
    bo = other_client(admin.client)
    login(bo, "bo")
    reply = admin("POST", "/api/users/bo/deactivate")
    assert reply.status_code == 200 and reply.json["active"] is False
    assert bo.get("/api/me").status_code == 401
    token = csrf_of(bo)
    refused = bo.post("/login", data={"name": "bo", "password": PASSWORD, "csrf_token": token})
    # the same answer as a wrong password (saying "deactivated" would confirm the password); the audit says why
    assert refused.status_code == 401 and "wrong name or password" in refused.get_data(as_text=True)
    assert hotline.audit.entries(action="login_failed", target="bo")[0]["detail"]["reason"] == "deactivated"
    assert admin("POST", "/api/users/bo/reactivate").json["active"] is True
    login(bo, "bo")
    assert actions(hotline, "bo") == [("ana", "user_deactivated", "bo"), ("ana", "user_reactivated", "bo")]


def test_unlock_lifts_the_wait_after_failed_logins(hotline: Hotline, admin: SessionClient) -> None:
    add_user(hotline, "bo", "supervisor")
    _long_waits(hotline)
    for n in range(hotline.settings.login_account_free_tries):
        with pytest.raises(LoginRefused):
            hotline.accounts.authenticate("bo", "wrong password", f"10.0.0.{n}")
    shown = admin("GET", "/api/users/bo").json
    assert shown["locked"] is True and dt.datetime.fromisoformat(shown["locked_until"]) > dt.datetime.now(dt.UTC)
    with pytest.raises(LoginRefused) as refused:
        hotline.accounts.authenticate("bo", PASSWORD)
    assert refused.value.reason == "throttled"
    assert admin("POST", "/api/users/bo/unlock").json["locked"] is False
    assert hotline.accounts.authenticate("bo", PASSWORD).name == "bo"
    assert actions(hotline, "bo") == [("ana", "user_unlocked", "bo")]


def test_an_admin_cannot_deactivate_or_demote_themselves(hotline: Hotline, admin: SessionClient) -> None:
    add_user(hotline, "ed", "admin")
    for path, body in (("/api/users/ana/deactivate", None), ("/api/users/ana/role", {"role": "supervisor"})):
        reply = admin("POST", path, body if body is not None else {})
        assert reply.status_code == 400 and "you cannot" in reply.json["error"]
    assert admin("GET", "/api/me").json["role"] == "admin"
    assert admin("POST", "/api/users/ed/role", {"role": "supervisor"}).status_code == 200  # another admin: fine
    assert actions(hotline, "ana") == []


def test_the_last_active_admin_stays_even_through_the_api_token(hotline: Hotline, admin: SessionClient) -> None:
    from tests.conftest import api_caller

    hotline.settings = hotline.settings.model_copy(update={"api_token": "t0ken-for-tests"})
    call = api_caller(hotline, "t0ken-for-tests")
    hotline.agents.put(Agent("ana", "Ana", "PJSIP/1009", {"general": 5}, ["zh-CN"]))  # she could be an agent
    for path, body in (("/api/users/ana/deactivate", {}), ("/api/users/ana/role", {"role": "agent"})):
        reply = call("POST", path, body)
        assert reply.status_code == 400 and "last active admin" in reply.json["error"]
    assert hotline.accounts.get("ana").active and hotline.accounts.get("ana").role == "admin"  # type: ignore[union-attr]
    assert call("POST", "/api/users", {"name": "ed", "role": "admin", "password": PASSWORD}).status_code == 201
    assert call("POST", "/api/users/ana/deactivate", {}).status_code == 200
    assert hotline.audit.entries(action="user_deactivated")[0]["actor"] == "api-token"


def test_unknown_users_are_404(admin: SessionClient) -> None:
    for path in ("/api/users/nobody/unlock", "/api/users/nobody/deactivate", "/api/users/nobody/reactivate"):
        reply = admin("POST", path, {})
        assert reply.status_code == 404 and "no user 'nobody'" in reply.json["error"]
    assert admin("POST", "/api/users/nobody/password", {"password": NEW_PASSWORD}).status_code == 404
    assert admin("POST", "/api/users/nobody/role", {"role": "agent"}).status_code == 404
    assert admin("GET", "/api/users/nobody").status_code == 404


@pytest.mark.parametrize("role", ["supervisor", "agent"])
def test_only_admins_see_or_change_users_and_the_audit_log(hotline: Hotline, client: Any, role: str) -> None:
    add_user(hotline, "someone", role)
    add_user(hotline, "bo", "supervisor")
    user = SessionClient(client, "someone")
    for method, path, body in (("GET", "/api/users", None), ("GET", "/api/audit", None),
                               ("POST", "/api/users", {"name": "x1", "role": "admin", "password": PASSWORD}),
                               ("POST", "/api/users/bo/deactivate", {}), ("POST", "/api/users/someone/role",
                                                                          {"role": "admin"})):
        reply = user(method, path, body)
        assert reply.status_code == 403, (method, path)
    for page in ("/admin/users", "/admin/audit"):
        assert user("GET", page).status_code == 403
    assert hotline.accounts.get("someone").role == role  # type: ignore[union-attr]
    assert hotline.accounts.get("bo").active  # type: ignore[union-attr]
    assert hotline.accounts.get("x1") is None


def test_audit_api_and_page_filter_by_action_actor_and_target(hotline: Hotline, admin: SessionClient) -> None:
    hotline.audit.write("bo", "supervisor", "work_order_assign", "260302000001", to="cy")
    hotline.audit.write("ana", "admin", "agent_created", "li", endpoint="PJSIP/1001")
    hotline.audit.write("ana", "admin", "agent_updated", "li")
    everything = admin("GET", "/api/audit").json
    assert [e["action"] for e in everything[:3]] == ["agent_updated", "agent_created", "work_order_assign"]
    assert [e["action"] for e in admin("GET", "/api/audit?target=li").json] == ["agent_updated", "agent_created"]
    by_bo = admin("GET", "/api/audit?actor=bo").json
    assert [(e["action"], e["detail"]) for e in by_bo] == [("work_order_assign", {"to": "cy"})]
    assert admin("GET", "/api/audit?action=agent_created&actor=bo").json == []
    assert len(admin("GET", "/api/audit?limit=1").json) == 1
    page = admin("GET", "/admin/audit?target=li").get_data(as_text=True)
    assert "agent_created" in page and "PJSIP/1001" in page and "work_order_assign" not in page
    assert "no entries match" in admin("GET", "/admin/audit?actor=nobody").get_data(as_text=True)


def test_browser_admin_creates_a_supervisor_who_then_logs_in(hotline: Hotline, site: str, page: Any,
                                                              browser: Any) -> None:
    add_user(hotline, "ana", "admin")
    browser_login(page, site, "ana", "/admin/menus")
    page.goto(f"{site}/admin/users")
    page.wait_for_selector('tr[data-user="ana"]')
    assert page.is_visible("#new-agent")  # the form starts on the least privileged role: agent
    page.fill("#new-name", "bo")
    page.select_option("#new-role", "supervisor")
    assert page.is_hidden("#new-agent")  # the agent id is asked only for agents
    page.fill("#new-password", NEW_PASSWORD)
    page.click("#create")
    row = page.wait_for_selector('tr[data-user="bo"]')
    assert "supervisor" == row.query_selector("select.role").input_value() and "active" in row.inner_text()
    assert "bo created as supervisor" in page.inner_text("#message")
    assert NEW_PASSWORD not in page.content()
    page.click('tr[data-user="bo"] button.deactivate')
    page.wait_for_selector('tr[data-user="bo"] button.reactivate')
    page.click('tr[data-user="bo"] button.reactivate')
    page.wait_for_selector('tr[data-user="bo"] button.deactivate')

    other = browser.new_context()
    try:
        bo = other.new_page()
        bo.goto(f"{site}/login")
        bo.fill("#name", "bo")
        bo.fill("#password", NEW_PASSWORD)
        bo.click("#login")
        bo.wait_for_url(f"{site}/admin/dashboard")
        assert bo.evaluate("hotline.api('GET', '/api/me')")["role"] == "supervisor"
    finally:
        other.close()
    page.goto(f"{site}/admin/audit?target=bo")
    assert [a for a in ("user_created", "user_deactivated", "user_reactivated") if a not in page.inner_text("#audit")] \
        == []


def _long_waits(hotline: Hotline) -> None:
    """A first wait of minutes, not 1 s: a loaded machine may take a second between the last failure and the check."""
    throttle = hotline.accounts.throttle
    assert throttle is not None
    throttle.rules = dataclasses.replace(throttle.rules, base_s=300.0)
