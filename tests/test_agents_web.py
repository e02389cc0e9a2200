"""The agents page and its roster API as an admin's browser session uses them: create, edit, deactivate,
reactivate; refusals by role; every change in the audit log."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.app import Hotline
from routing.router import CallRequest
from tests.web import SessionClient, add_user

ANN = {"name": "Ann", "endpoint": "PJSIP/1001", "skills": {"loss": 9, "general": 5}, "languages": ["zh-CN"]}


@pytest.fixture
def admin(hotline: Hotline, client: Any) -> SessionClient:
    add_user(hotline, "boss", "admin")
    return SessionClient(client, "boss")


def roster(call: Any) -> dict[str, dict[str, Any]]:
    reply = call("GET", "/api/roster")
    assert reply.status_code == 200
    return {agent["id"]: agent for agent in reply.json}


def actions(hotline: Hotline, target: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e["actor"], e["action"], e["detail"]) for e in reversed(hotline.audit.entries(target=target))]


def test_admin_creates_edits_deactivates_and_reactivates_an_agent(hotline: Hotline, admin: SessionClient) -> None:
    assert admin("PUT", "/api/agents/ann", ANN).status_code == 201
    assert admin("PUT", "/api/agents/ann", {**ANN, "skills": {"loss": 7, "general": 5}}).status_code == 200
    assert admin("POST", "/api/agents/ann/state", {"state": "available"}).status_code == 200
    listed = roster(admin)["ann"]
    assert (listed["state"], listed["skills"], listed["active"], listed["calls_today"]) == \
        ("available", {"loss": 7, "general": 5}, True, 0)

    off = admin("POST", "/api/agents/ann/deactivate")
    assert off.status_code == 200
    assert (off.json["state"], off.json["active"], off.json["deactivated_by"]) == ("deactivated", False, "boss")
    assert hotline.agents.get("ann") is None  # out of the router: no more offers
    hotline.router.enqueue(CallRequest("c1", "loss", "zh-CN", 5, "asterisk"))
    assert hotline.router.call("c1").state == "waiting"  # type: ignore[union-attr]
    kept = roster(admin)["ann"]
    assert (kept["active"], kept["skills"], kept["endpoint"], kept["languages"]) == \
        (False, {"loss": 7, "general": 5}, "PJSIP/1001", ["zh-CN"])

    on = admin("POST", "/api/agents/ann/reactivate")
    assert on.status_code == 200 and (on.json["state"], on.json["active"]) == ("offline", True)
    back = hotline.agents.get("ann")
    assert back is not None and (dict(back.skills), back.endpoint, back.name) == (
        {"loss": 7, "general": 5}, "PJSIP/1001", "Ann")
    assert list(roster(admin)) == ["ann"]  # listed once, active again

    assert [(actor, action) for actor, action, _ in actions(hotline, "ann")] == [
        ("boss", "agent_created"), ("boss", "agent_updated"), ("boss", "agent_state_set"),
        ("boss", "agent_deactivated"), ("boss", "agent_reactivated")]
    assert actions(hotline, "ann")[3][2] == {"skills": {"loss": 7, "general": 5}, "languages": ["zh-CN"],
                                             "endpoint": "PJSIP/1001"}


@pytest.mark.parametrize("body, message", [
    ({**ANN, "skills": {"astrology": 5}}, "agent ann: unknown skill 'astrology' (known: complaint, general, inquiry"),
    ({**ANN, "skills": {"loss": 11}}, "agent ann: skill loss level 11 is not 1-10"),
    ({**ANN, "skills": {"loss": "high"}}, "skills must be an object of skill -> level 1-10"),
    ({**ANN, "skills": {}}, "agent ann: at least one skill is required"),
    ({**ANN, "languages": []}, "agent ann: at least one language is required"),
])
def test_a_bad_skill_is_refused_with_the_reason(admin: SessionClient, body: object, message: str) -> None:
    reply = admin("PUT", "/api/agents/ann", body)
    assert reply.status_code == 400 and message in reply.json["error"]
    assert roster(admin) == {}


def test_an_agent_on_a_call_is_not_deactivated(hotline: Hotline, admin: SessionClient) -> None:
    admin("PUT", "/api/agents/ann", ANN)
    admin("POST", "/api/agents/ann/state", {"state": "available"})
    hotline.router.enqueue(CallRequest("c1", "general", "zh-CN", 5, "asterisk"))
    hotline.router.answer("c1", "ann")
    refused = admin("POST", "/api/agents/ann/deactivate")
    assert refused.status_code == 409 and refused.json["error"] == "agent ann is on a call"
    listed = roster(admin)["ann"]
    assert (listed["active"], listed["state"], listed["call"]) == (True, "busy", "c1")
    assert "agent_deactivated" not in [action for _, action, _ in actions(hotline, "ann")]


def test_a_ringing_agent_is_deactivated_and_the_call_goes_back_in_line(hotline: Hotline,
                                                                       admin: SessionClient) -> None:
    admin("PUT", "/api/agents/ann", ANN)
    admin("POST", "/api/agents/ann/state", {"state": "available"})
    hotline.router.enqueue(CallRequest("c1", "general", "zh-CN", 5, "asterisk"))
    assert hotline.agents.get("ann").state == "offered"  # type: ignore[union-attr]
    assert admin("POST", "/api/agents/ann/deactivate").status_code == 200
    assert hotline.router.call("c1").state == "waiting"  # type: ignore[union-attr]


def test_what_cannot_be_deactivated_or_reactivated(hotline: Hotline, admin: SessionClient) -> None:
    missing = admin("POST", "/api/agents/nobody/deactivate")
    assert missing.status_code == 404 and missing.json["error"] == "agent nobody does not exist"
    admin("PUT", "/api/agents/ann", ANN)
    twice = admin("POST", "/api/agents/ann/reactivate")
    assert twice.status_code == 409 and twice.json["error"] == "agent ann is active already"
    never = admin("POST", "/api/agents/bob/reactivate")
    assert never.status_code == 404 and never.json["error"] == "agent bob has no deactivated profile"
    admin("POST", "/api/agents/ann/deactivate")
    assert admin("POST", "/api/agents/ann/deactivate").status_code == 404  # already out of the router


def test_supervisors_read_the_roster_agents_are_refused(hotline: Hotline, app: Any) -> None:
    add_user(hotline, "sue", "supervisor")
    add_user(hotline, "al", "agent", agent_id="ann")
    add_user(hotline, "boss", "admin")
    admin = SessionClient(app.test_client(), "boss")
    admin("PUT", "/api/agents/ann", ANN)
    admin("POST", "/api/agents/ann/deactivate")

    sue = SessionClient(app.test_client(), "sue")
    assert roster(sue)["ann"]["state"] == "deactivated"
    page = sue("GET", "/admin/agents")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Only an admin edits agents" in html and "live dashboard" in html and 'data-can-edit="0"' in html and 'id="agent-form"' not in html
    for path in ("/api/agents/ann/reactivate", "/api/agents/ann/deactivate"):
        refused = sue("POST", path)
        assert refused.status_code == 403 and refused.json["error"] == f"sue (supervisor) may not use POST {path}"
    assert sue("PUT", "/api/agents/bob", ANN).status_code == 403

    al = SessionClient(app.test_client(), "al")
    assert al("GET", "/api/roster").status_code == 403
    assert al("GET", "/admin/agents").status_code == 403
    assert al("POST", "/api/agents/ann/reactivate").status_code == 403
    assert [action for _, action, _ in actions(hotline, "ann")] == ["agent_created", "agent_deactivated"]


def test_the_admin_page_has_the_form_with_every_known_skill(admin: SessionClient) -> None:
    html = admin("GET", "/admin/agents").get_data(as_text=True)
    assert 'id="agent-form"' in html and 'data-can-edit="1"' in html
    for skill in ("complaint", "general", "inquiry", "loss", "survey"):
        assert f'id="skill-{skill}"' in html


def test_writes_without_the_csrf_token_are_refused(hotline: Hotline, admin: SessionClient) -> None:
    admin("PUT", "/api/agents/ann", ANN)
    refused = admin.client.post("/api/agents/ann/deactivate")
    assert refused.status_code == 400 and "CSRF" in refused.json["error"]
    assert hotline.agents.get("ann") is not None


def test_the_roster_is_in_the_openapi_document(client: Any) -> None:
    paths = client.get("/api/openapi.json").json["paths"]
    assert set(paths["/api/agents/{agent_id}/deactivate"]["post"]["responses"]) >= {"200", "404", "409", "401", "403"}
    assert "/api/roster" in paths
