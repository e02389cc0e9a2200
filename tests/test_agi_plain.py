"""The plain AGI script, run as Asterisk runs it: environment and commands over pipes, SIGHUP to hang up."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import redis

from hotline.settings import Settings
from routing.keys import EVENTS_STREAM
from softphone.agi_peer import AsteriskPeer
from tests.asterisk_stack import agi_environment

SCRIPT = Path(__file__).resolve().parent.parent / "hotline" / "plain_agi.py"
"""Run as a file, the way an admin may (the launcher of `hotline agi-script install` runs `-m hotline.plain_agi`)."""
CARD, PIN = "6222021234567894", "123456"


def script_env(settings: Settings) -> dict[str, str]:
    return agi_environment(settings)  # the fixture's stores and its opening hours (the whole day)


def test_plain_agi_runs_the_same_inquiry_as_fastagi(settings: Settings, prompts: Path, redis_url: str) -> None:
    call = AsteriskPeer(["1", CARD + "#", PIN, ""]).run([sys.executable, str(SCRIPT)], script_env(settings))
    assert call.commands[2] == 'EXEC Read "HOTLINE_DIGITS,hotline/hotline/zh-CN/welcome&hotline/hotline/zh-CN/main,1,t(),1,"'
    assert any(c.startswith('EXEC Read "HOTLINE_DIGITS,hotline/hotline/zh-CN/dynamic/') for c in call.commands)  # the balance
    assert call.commands[-1] == "HANGUP"
    ended = [f for _, f in redis.Redis.from_url(redis_url, decode_responses=True).xrange(EVENTS_STREAM)
             if f["type"] == "call_ended"]
    assert ended[0]["verified"] == "yes" and ended[0]["channel"] == "asterisk"


def test_sighup_mid_call_ends_the_script_cleanly(settings: Settings, prompts: Path, redis_url: str) -> None:
    peer = AsteriskPeer(["2", CARD + "#"], hangup_at=6)
    call = peer.run([sys.executable, str(SCRIPT)], script_env(settings))
    assert call.closed_by_server and len(call.commands) == 7
    ended = [f for _, f in redis.Redis.from_url(redis_url, decode_responses=True).xrange(EVENTS_STREAM)
             if f["type"] == "call_ended"]
    assert [(e["call_id"], e["outcome"], e["intent"]) for e in ended] == [(peer.uniqueid, "hangup", "loss")]


@pytest.mark.parametrize(("keys", "intent"), [
    (["2", CARD + "#", "12345*", ""], "loss"),
    (["3", "1", "record:5", ""], "complaint"),
])
def test_plain_agi_loss_and_complaint(
    keys: list[str], intent: str, settings: Settings, prompts: Path, redis_url: str
) -> None:
    call = AsteriskPeer(keys, language="en").run([sys.executable, str(SCRIPT)], script_env(settings))
    assert call.commands[-1] == "HANGUP"
    ended = [f for _, f in redis.Redis.from_url(redis_url, decode_responses=True).xrange(EVENTS_STREAM)
             if f["type"] == "call_ended"]
    assert (ended[0]["intent"], ended[0]["outcome"], ended[0]["language"]) == (intent, "self_served", "en-US")
