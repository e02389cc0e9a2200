"""The floor: a row per agent in the live snapshot, and supervisors setting an agent's state, audited."""

from __future__ import annotations

import time
from typing import Any

import pytest

from admin.live.models import LiveSnapshot
from hotline.app import Hotline
from hotline.settings import Settings
from routing.agents import Agent
from routing.router import CallRequest
from tests.web import SessionClient, add_user


def put(hotline: Hotline, agent_id: str, name: str, skill: str, state: str = "") -> None:
    hotline.agents.put(Agent(id=agent_id, name=name, endpoint=f"PJSIP/{agent_id}", skills={skill: 5},
                             languages=["zh-CN"]))
    if state:
        hotline.router.set_agent_state(agent_id, state, "lunch" if state == "not_ready" else "")


def test_the_snapshot_has_a_row_per_agent_with_reason_time_in_state_and_masked_call(hotline: Hotline,
                                                                                   app: Any) -> None:
    put(hotline, "a1", "Ann", "general", "not_ready")
    put(hotline, "a2", "Bob", "loss", "available")
    put(hotline, "a3", "Cy", "loss")
    hotline.router.enqueue(CallRequest("c1", "loss", "zh-CN", 0, "twilio", caller="138****5678",
                                       enqueued_at=time.time() - 4))
    hotline.router.answer("c1", "a2")
    add_user(hotline, "sue", "supervisor")
    sue = SessionClient(app.test_client(), "sue")

    live = sue("GET", "/api/live").json
    LiveSnapshot.model_validate(live)  # the rows built as plain dicts keep the documented shape
    rows = {row["id"]: row for row in live["agent_rows"]}

    assert list(rows) == ["a1", "a2", "a3"]
    ann, bob, cy = rows["a1"], rows["a2"], rows["a3"]
    assert (ann["name"], ann["state"], ann["reason"], ann["call"]) == ("Ann", "not_ready", "lunch", None)
    assert 0 <= ann["in_state_s"] < 60
    assert (bob["state"], bob["reason"], bob["calls_today"]) == ("busy", "", 1)
    assert bob["call"]["queue"] == "loss:zh-CN" and bob["call"]["caller"] == "138****5678"
    assert bob["call"]["state"] == "busy" and 0 <= bob["call"]["talk_s"] < 60
    assert (cy["state"], cy["reason"], cy["call"]) == ("offline", "", None)


def test_a_supervisor_sets_an_agent_not_ready_with_a_reason_and_it_is_audited(hotline: Hotline, app: Any) -> None:
    put(hotline, "a1", "Ann", "general", "available")
    add_user(hotline, "sue", "supervisor")
    sue = SessionClient(app.test_client(), "sue")

    no_reason = sue("POST", "/api/agents/a1/state", {"state": "not_ready"})
    assert no_reason.status_code == 400 and "reason" in no_reason.json["error"]
    assert hotline.agents.get("a1").state == "available"  # type: ignore[union-attr]
    assert hotline.audit.entries(action="agent_state_set") == []

    reply = sue("POST", "/api/agents/a1/state", {"state": "not_ready", "reason": "coaching"})
    assert reply.status_code == 200 and (reply.json["state"], reply.json["reason"]) == ("not_ready", "coaching")
    entry = hotline.audit.entries(action="agent_state_set")[0]
    assert (entry["actor"], entry["role"], entry["target"]) == ("sue", "supervisor", "a1")
    assert entry["detail"] == {"state": "not_ready", "reason": "coaching", "previous": "available"}

    # another reason for a not-ready agent: the reason changes, the time in state does not restart
    since = hotline.agents.get("a1").since  # type: ignore[union-attr]
    sue("POST", "/api/agents/a1/state", {"state": "not_ready", "reason": "meeting"})
    agent = hotline.agents.get("a1")
    assert agent is not None and (agent.state, agent.reason, agent.since) == ("not_ready", "meeting", since)
    assert hotline.audit.entries(action="agent_state_set")[0]["detail"]["previous"] == "not_ready"

    assert sue("POST", "/api/agents/a1/state", {"state": "available"}).json["state"] == "available"
    entry = hotline.audit.entries(action="agent_state_set")[0]
    assert entry["detail"] == {"state": "available", "reason": "", "previous": "not_ready"}
    assert len(hotline.audit.entries(action="agent_state_set")) == 3


def test_an_agent_on_a_call_is_not_set_not_ready_and_nothing_is_audited(hotline: Hotline, app: Any) -> None:
    put(hotline, "a1", "Ann", "general", "available")
    hotline.router.enqueue(CallRequest("c1", "general", "zh-CN", 0, "twilio", caller="138****5678"))
    hotline.router.answer("c1", "a1")
    add_user(hotline, "sue", "supervisor")
    sue = SessionClient(app.test_client(), "sue")
    refused = sue("POST", "/api/agents/a1/state", {"state": "not_ready", "reason": "break"})
    assert refused.status_code == 409 and "on a call" in refused.json["error"]
    assert hotline.audit.entries(action="agent_state_set") == []


def test_an_agent_may_not_set_another_agents_state(hotline: Hotline, app: Any) -> None:
    put(hotline, "a1", "Ann", "general", "available")
    put(hotline, "a2", "Bob", "general", "available")
    add_user(hotline, "al", "agent", agent_id="a2")
    al = SessionClient(app.test_client(), "al")
    assert al("POST", "/api/agents/a1/state", {"state": "not_ready", "reason": "break"}).status_code == 403
    assert hotline.agents.get("a1").state == "available"  # type: ignore[union-attr]
    assert hotline.audit.entries(action="agent_state_set") == []


def test_the_console_shows_the_reason_a_supervisor_gave(hotline: Hotline, app: Any) -> None:
    put(hotline, "a1", "Ann", "general", "available")
    add_user(hotline, "sue", "supervisor")
    add_user(hotline, "al", "agent", agent_id="a1")
    SessionClient(app.test_client(), "sue")("POST", "/api/agents/a1/state", {"state": "not_ready", "reason": "training"})
    view = SessionClient(app.test_client(), "al")("GET", "/api/agent/console").json
    assert (view["agent"]["state"], view["agent"]["reason"]) == ("not_ready", "training")


@pytest.mark.parametrize(("env", "problem"), [
    ({"HOTLINE_WAIT_WARN_SECONDS": "90", "HOTLINE_WAIT_ALERT_SECONDS": "30"}, "HOTLINE_WAIT_ALERT_SECONDS"),
    ({"HOTLINE_SERVICE_LEVEL_WARN": "0.5", "HOTLINE_SERVICE_LEVEL_ALERT": "0.7"}, "HOTLINE_SERVICE_LEVEL_ALERT"),
    ({"HOTLINE_ABANDONMENT_WARN": "0.2", "HOTLINE_ABANDONMENT_ALERT": "0.1"}, "HOTLINE_ABANDONMENT_ALERT"),
])
def test_dashboard_thresholds_out_of_order_are_refused(env: dict[str, str], problem: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=problem):
        Settings(_env_file=None)  # type: ignore[call-arg]
