"""The call controls' refusals worded by the channels (``workers.asterisk_control``, ``workers.twilio_control``,
``workers.monitor``: English, they know no languages) reach a person in that person's language: the web translates
them on their way out (``admin.i18n.refusal``). The logs keep the English."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from admin.i18n import refusal
from hotline.app import Hotline
from routing.agents import Agent
from routing.router import CallRequest
from tests.fakes.ami_server import FakeAmiServer
from tests.test_browser_monitor import ami, settings  # noqa: F401  (the AMI server and the settings naming it)
from tests.web import SessionClient, add_user

REPO = Path(__file__).resolve().parents[1]
CHANNELS = ("workers/asterisk_control.py", "workers/twilio_control.py", "workers/monitor.py", "calls/control.py")
REFUSED = {"ControlRefused", "MonitorRefused"}


@pytest.fixture
def sue(hotline: Hotline, app: Any) -> SessionClient:
    """A supervisor who reads zh-CN; Ann on an Asterisk call that the PBX does not know (yet)."""
    hotline.agents.put(Agent("ann", "Ann", "PJSIP/ann", {"general": 5}, ["zh-CN"]))
    hotline.router.set_agent_state("ann", "available")
    hotline.router.enqueue(CallRequest("c-1", "general", "zh-CN", 5, "asterisk", caller="138****5678"))
    hotline.router.answer("c-1", "ann")
    add_user(hotline, "sue", "supervisor")
    hotline.accounts.set_language(hotline.accounts.get("sue").id, "zh-CN")  # type: ignore[union-attr]
    return SessionClient(app.test_client(), "sue")


def test_a_channels_refusal_is_in_the_supervisors_language(hotline: Hotline, ami: FakeAmiServer,  # noqa: F811
                                                           sue: SessionClient) -> None:
    cold = {"mode": "cold", "to": {"kind": "queue", "value": "loss"}}
    refused = sue("POST", "/api/calls/c-1/transfer", cold)
    assert (refused.status_code, refused.json["error"]) == (409, "Asterisk 上来电者与坐席未接通")
    refused = sue("POST", "/api/calls/c-1/hangup")  # the PBX's own words stay as it said them
    assert (refused.status_code, refused.json["error"]) == (409, "Asterisk 拒绝了 Hangup：No such channel")
    refused = sue("POST", "/api/calls/c-1/transfer", {"mode": "warm", "to": {"kind": "queue", "value": "loss"}})
    assert refused.json["error"] == "咨询转接只能转给坐席或班长；转队列请用直接转接"
    refused = sue("POST", "/api/calls/c-1/monitor", {"mode": "listen", "endpoint": "client:sue"})
    assert (refused.status_code, refused.json["error"]) == (400, "班长的话机 'client:sue' 不是 Asterisk 通道：请填写 "
                                                                  "PJSIP/<分机号> 或分机号")
    assert hotline.audit.entries(action="call_transfer") == [] and hotline.audit.entries(action="call_hangup") == []

    hotline.accounts.set_language(hotline.accounts.get("sue").id, "en-US")  # type: ignore[union-attr]
    refused = sue("POST", "/api/calls/c-1/transfer", cold)
    assert refused.json["error"] == "the caller is not bridged to the agent on Asterisk"
    assert sue("POST", "/api/calls/c-1/hangup").json["error"] == "Asterisk refused Hangup: No such channel"


def _sample(node: ast.expr) -> str | None:
    """The text a raise of ``node`` says, a value in place of each {field} ('x' quoted for !r); None when the
    text is not written there (``str(exc)`` of a lower room: the router's, checked by its own patterns)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            else:
                assert isinstance(value, ast.FormattedValue)
                parts.append("'x'" if value.conversion == ord("r") else "x")
        return "".join(parts)
    return None


def _channel_texts() -> list[str]:
    """Every refusal the channels write, and every step Twilio may refuse (``_rest``'s second argument)."""
    texts = []
    for name in CHANNELS:
        for node in ast.walk(ast.parse((REPO / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Name) \
                    and node.func.id in REFUSED:
                texts.append(_sample(node.args[0]))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_rest":
                texts.append(f"Twilio did not {_sample(node.args[1])}: HTTP 404 (not found)")
    return [t for t in texts if t is not None]


def test_every_refusal_a_channel_writes_has_a_zh_cn_translation(app: Any) -> None:
    """A new refusal in a channel without its pattern in ``admin.i18n.REFUSALS`` would reach zh-CN pages in
    English: found here."""
    texts = _channel_texts()
    assert len(texts) > 30  # the walk found them
    app.config["HOTLINE_UI_LANGUAGE"] = "zh-CN"
    with app.test_request_context("/api/calls/c-1/hangup"):
        english = [t for t in texts if refusal(t) == t]
        assert refusal("Twilio did not hang up the caller: HTTP 404 (not found)") == \
            "Twilio 未能挂断来电者：HTTP 404 (not found)"
        assert refusal("Twilio did not ring the supervisor (whisper): HTTP 400 (x)") == \
            "Twilio 未能呼叫班长（密语）：HTTP 400 (x)"
        assert refusal("agent bob is busy") == "坐席 bob 当前为通话中"  # the router's, on a cold transfer to bob
    assert english == []
