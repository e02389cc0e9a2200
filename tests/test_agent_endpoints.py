"""Agent endpoints go into Asterisk's Dial() and Twilio's calls.create as they are (issue 17): refused when an
agent is saved (API, CLI), and never dialled if a bad one is already stored."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from click.testing import CliRunner

from hotline.app import Hotline, prepare
from hotline.cli import main
from hotline.settings import Settings
from routing.agents import Agent
from softphone.agi_peer import AsteriskPeer
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, api_caller
from webhooks.agent_legs import AgentLegConfig, TwilioAgentDialer

TOKEN = "api-token-for-tests-0123456789"
ANN = {"name": "Ann", "endpoint": "PJSIP/1001", "skills": {"general": 5}, "languages": ["zh-CN"]}
DIAL_INJECTION = "PJSIP/1002&Local/0900123456@outbound,60,G(evil^s^1)"


@pytest.fixture
def hotline(settings: Settings) -> Hotline:
    return prepare(settings.model_copy(update={
        "api_token": TOKEN, "twilio_sip_domain": "agents.sip.twilio.com",
        "twilio_agent_sip_domains": ["pbx.bank.example"]}))


@pytest.fixture
def api(hotline: Hotline) -> Any:
    return api_caller(hotline, TOKEN)


@pytest.mark.parametrize("endpoint, why", [
    (DIAL_INJECTION, "is not one the hotline can ring"),
    ("PJSIP/1001,20,G(x^s^1)", "is not one the hotline can ring"),
    ("PJSIP/1001)", "is not one the hotline can ring"),
    ('PJSIP/1001"', "is not one the hotline can ring"),
    ("PJSIP/10 01", "is not one the hotline can ring"),
    ("sip:ann@attacker.example", "rings SIP domain 'attacker.example', which is not an allowed one"),
    ("sip:ann@pbx.bank.example.attacker.example", "not an allowed one"),
    ("client:ann bob", "is not one the hotline can ring"),
    ("+86 138", "is not one the hotline can ring"),
])
def test_an_endpoint_that_is_not_one_agent_is_refused_naming_the_field(api: Any, endpoint: str, why: str) -> None:
    reply = api("PUT", "/api/agents/ann", {**ANN, "endpoint": endpoint})
    assert reply.status_code == 400
    assert "endpoint" in reply.json["error"] and why in reply.json["error"]
    assert api("GET", "/api/agents/ann").status_code == 404, "nothing stored"


def test_a_bare_name_is_refused_for_twilio_cannot_ring_it_and_the_reply_says_what_to_write(api: Any) -> None:
    """``alice`` was stored as ``PJSIP/alice``: Twilio cannot ring it, and it looks like a Client identity."""
    reply = api("PUT", "/api/agents/ann", {**ANN, "endpoint": "alice"})
    assert reply.status_code == 400 and "endpoint 'alice'" in reply.json["error"]
    assert "client:alice" in reply.json["error"] and "PJSIP/alice" in reply.json["error"]
    assert api("GET", "/api/agents/ann").status_code == 404, "nothing stored"
    assert api("PUT", "/api/agents/ann", {**ANN, "endpoint": "client:alice"}).status_code == 201


@pytest.mark.parametrize("endpoint", [
    "PJSIP/1001", "SIP/1001", "IAX2/desk-7", "PJSIP/13800138000@hotline-trunk", "Local/answer@test-agents", "1001",
    "client:ann", "client:ann.li@bank", "+8613800000000", "sip:ann@pbx.bank.example", "sip:1001@agents.sip.twilio.com",
])
def test_every_kind_of_real_endpoint_is_accepted(api: Any, endpoint: str) -> None:
    assert api("PUT", "/api/agents/ann", {**ANN, "endpoint": endpoint}).status_code == 201


def test_the_cli_refuses_it_too(hotline: Hotline, monkeypatch: pytest.MonkeyPatch) -> None:
    s = hotline.settings
    for name, value in (("REDIS_URL", s.redis_url), ("DATABASE_URL", s.database_url),
                        ("HOTLINE_DATA_DIR", str(s.data_dir))):
        monkeypatch.setenv(name, value or "")
    bad = CliRunner().invoke(main, ["agents", "add", "ann", "--endpoint", DIAL_INJECTION, "--skill", "general:5"])
    assert bad.exit_code != 0 and "endpoint" in bad.output and "is not one the hotline can ring" in bad.output
    assert hotline.agents.get("ann") is None


def test_a_bad_endpoint_already_stored_never_reaches_dial(
    agi_server: tuple[str, int], hotline: Hotline, caplog: pytest.LogCaptureFixture,
) -> None:
    """Stored before the check existed (or written into Redis behind the hotline's back): the hold loop
    does not dial it, the offer fails and the caller goes on waiting."""
    hotline.agents.put(Agent("ann", "Ann", "PJSIP/1001", {"general": 5}, ["zh-CN"]))
    hotline.router.redis.hset(hotline.router.key("agent:ann"), "endpoint", DIAL_INJECTION)
    hotline.router.set_agent_state("ann", "available")
    with caplog.at_level(logging.ERROR):
        call = AsteriskPeer(["0"], patience_s=1.5).dial(*agi_server)
    assert not [c for c in call.commands if c.startswith("EXEC Dial")]
    assert f"agent ann not dialled: endpoint {DIAL_INJECTION!r}" in caplog.text
    deadline = time.monotonic() + 3
    while hotline.agents.get("ann").state == "offered":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert hotline.agents.get("ann").state == "not_ready"  # type: ignore[union-attr]


def test_twilio_never_rings_a_sip_uri_outside_the_allowed_domains(hotline: Hotline) -> None:
    dialer = TwilioAgentDialer(AgentLegConfig(
        "https://hotline.example.com", ACCOUNT_SID, AUTH_TOKEN, "http://127.0.0.1:9", "+8610095555",
        sip_domain="agents.sip.twilio.com", sip_domains=("agents.sip.twilio.com", "pbx.bank.example")), hotline.router)
    assert dialer.address("sip:ann@attacker.example") is None
    assert dialer.address(DIAL_INJECTION) is None
    assert dialer.address("sip:ann@pbx.bank.example") == "sip:ann@pbx.bank.example"
    assert dialer.address("PJSIP/1001") == "sip:1001@agents.sip.twilio.com"
    assert dialer.address("client:ann") == "client:ann"
