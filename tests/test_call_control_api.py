"""``/api/calls/<id>/hangup|hold|transfer...``: who may control a call, and what a call without a control gets.
(The controls themselves on a real Asterisk: tests/test_real_asterisk_transfer.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from hotline.app import Hotline
from routing.agents import Agent
from routing.router import CallRequest
from tests.web import SessionClient, add_user

ACTIONS = [
    ("hangup", None),
    ("hold", {"on": True}),
    ("transfer", {"mode": "cold", "to": {"kind": "queue", "value": "loss"}}),
    ("transfer/complete", None),
    ("transfer/cancel", None),
]


def connected(hotline: Hotline, call_id: str, agent_id: str, channel: str = "asterisk") -> None:
    hotline.agents.put(Agent(agent_id, agent_id.title(), f"PJSIP/{agent_id}", {"general": 5}, ["zh-CN"]))
    hotline.router.set_agent_state(agent_id, "available")
    (offer,) = hotline.router.enqueue(CallRequest(call_id, "general", "zh-CN", 5, channel, caller="138****5678"))
    assert offer.agent_id == agent_id
    hotline.router.answer(call_id, agent_id)


@pytest.fixture
def people(hotline: Hotline, app: Any) -> dict[str, SessionClient]:
    connected(hotline, "c-ann", "ann")
    connected(hotline, "c-bob", "bob")
    add_user(hotline, "ann", "agent", agent_id="ann")
    add_user(hotline, "bob", "agent", agent_id="bob")
    add_user(hotline, "sue", "supervisor")
    return {name: SessionClient(app.test_client(), name) for name in ("ann", "bob", "sue")}


@pytest.mark.parametrize(("action", "body"), ACTIONS)
def test_an_agent_may_not_control_another_agents_call(people: dict[str, SessionClient], action: str,
                                                      body: object) -> None:
    refused = people["bob"]("POST", f"/api/calls/c-ann/{action}", body)
    assert refused.status_code == 403 and "your own calls" in refused.json["error"]


@pytest.mark.parametrize(("action", "body"), ACTIONS)
def test_the_agent_on_the_call_and_a_supervisor_get_through_to_the_channel(people: dict[str, SessionClient],
                                                                          action: str, body: object) -> None:
    for who in ("ann", "sue"):  # no AMI configured in these tests: the channel's control is missing, and says so
        reply = people[who]("POST", f"/api/calls/c-ann/{action}", body)
        assert reply.status_code == 409 and "HOTLINE_AMI_SECRET" in reply.json["error"], (who, reply.json)


def test_a_call_not_connected_is_404_and_a_channel_without_control_409(hotline: Hotline,
                                                                      people: dict[str, SessionClient]) -> None:
    assert people["sue"]("POST", "/api/calls/nobody/hangup").status_code == 404
    connected(hotline, "SIP-1", "cy", channel="sip")  # a channel the hotline has no control for
    reply = people["sue"]("POST", "/api/calls/SIP-1/hangup")
    assert reply.status_code == 409 and "sip" in reply.json["error"]


@pytest.mark.parametrize("body", [
    {"mode": "hot", "to": {"kind": "queue", "value": "loss"}},
    {"mode": "cold", "to": {"kind": "room", "value": "loss"}},
    {"mode": "cold", "to": {"kind": "agent", "value": ""}},
    {"mode": "cold"},
])
def test_a_transfer_without_a_mode_or_a_target_is_400(people: dict[str, SessionClient], body: object) -> None:
    assert people["ann"]("POST", "/api/calls/c-ann/transfer", body).status_code == 400


def test_hold_needs_true_or_false(people: dict[str, SessionClient]) -> None:
    assert people["ann"]("POST", "/api/calls/c-ann/hold", {"on": "yes"}).status_code == 400


def test_transfer_targets_are_the_queues_and_the_free_agents_and_supervisors(hotline: Hotline,
                                                                             people: dict[str, SessionClient]) -> None:
    for agent_id in ("dee", "sam"):
        hotline.agents.put(Agent(agent_id, agent_id.title(), f"PJSIP/{agent_id}", {"general": 5}, ["zh-CN"]))
        hotline.router.set_agent_state(agent_id, "available")
    add_user(hotline, "sam", "supervisor")  # takes calls as router agent "sam"
    targets = people["ann"]("GET", "/api/calls/transfer-targets").json
    assert "loss" in targets["queues"] and "general" in targets["queues"]
    assert targets["agents"] == [{"id": "dee", "name": "Dee"}]  # ann and bob are on calls
    assert targets["supervisors"] == [{"id": "sam", "name": "Sam"}]
