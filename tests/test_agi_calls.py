"""Whole calls over a real TCP socket to the FastAGI server, answered by a scripted Asterisk."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from hotline.app import Hotline
from hotline.settings import Settings
from routing.agents import Agent
from routing.keys import EVENTS_STREAM
from softphone.agi_peer import AsteriskPeer
from store.models import Recording, WorkOrder
from tests.conftest import serve_agi

CARD, PIN = "6222021234567894", "123456"


def ended(redis_url: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return [f for _, f in client.xrange(EVENTS_STREAM) if f["type"] == "call_ended"]


def assert_spoken(sound: Path) -> None:
    with wave.open(str(sound.with_suffix(".wav"))) as audio:
        assert (audio.getframerate(), audio.getnchannels()) == (8000, 1)
        assert audio.getnframes() > 8000  # more than a second of speech


def test_inquiry_sends_exact_agi_commands(agi_server: tuple[str, int], redis_url: str, prompts: Path) -> None:
    call = AsteriskPeer(["1", CARD + "#", PIN, ""]).dial(*agi_server)
    read_back = 'GET FULL VARIABLE "${READSTATUS}:${HOTLINE_DIGITS}"'
    # Every entry is one Read inside Asterisk (no key can fall between two commands): the prompts of the
    # step, the most keys, the finish key; first-key and between-key timeouts as the channel's TIMEOUT().
    assert call.commands[:4] == [
        "SET VARIABLE TIMEOUT(response) 6", "SET VARIABLE TIMEOUT(digit) 6",
        'EXEC Read "HOTLINE_DIGITS,hotline/hotline/zh-CN/welcome&hotline/hotline/zh-CN/main,1,t(),1,"', read_back,
    ]
    # the card: 10 s to find it, then 5 s between digits, up to 19 digits or the #
    assert call.commands[4:8] == [
        "SET VARIABLE TIMEOUT(response) 10", "SET VARIABLE TIMEOUT(digit) 5",
        'EXEC Read "HOTLINE_DIGITS,hotline/hotline/zh-CN/inquiry_card,19,t(#),1,"', read_back,
    ]
    assert call.commands[8:12] == [
        "SET VARIABLE TIMEOUT(response) 8", "SET VARIABLE TIMEOUT(digit) 4",
        'EXEC Read "HOTLINE_DIGITS,hotline/hotline/zh-CN/inquiry_pin,6,t(#),1,"', read_back,
    ]
    # the balance is filled for this call: spoken into a file named by its text's hash, played by the next Read
    balance = call.commands[14]
    assert re.fullmatch(r'EXEC Read "HOTLINE_DIGITS,hotline/hotline/zh-CN/dynamic/[0-9a-f]{24}'
                        r'&hotline/hotline/zh-CN/inquiry_after,1,t\(\),1,"', balance)
    assert_spoken(prompts / balance.split(",")[1].split("&")[0].removeprefix("hotline/"))
    assert call.commands[-2:] == ['STREAM FILE hotline/hotline/zh-CN/goodbye ""', "HANGUP"]
    (end,) = ended(redis_url)
    assert (end["outcome"], end["verified"], end["intent"], end["channel"]) == (
        "self_served", "yes", "inquiry", "asterisk")
    assert CARD not in str(call.commands) and CARD not in str(end)


def test_inquiry_in_english_reads_the_balance_prompt(agi_server: tuple[str, int], redis_url: str) -> None:
    call = AsteriskPeer(["1", CARD + "#", PIN, "0"], language="en").dial(*agi_server)
    assert any(sound.startswith("hotline/hotline/en-US/dynamic/") for sound in call.played)
    # no agent on duty: held with music; this caller hangs up at once, seen at the next command
    assert call.commands[-3:] == ['STREAM FILE hotline/hotline/en-US/agent_inquiry ""', "SET MUSIC on default",
                                  "NOOP"]
    (end,) = ended(redis_url)
    assert (end["language"], end["outcome"]) == ("en-US", "abandoned")


def test_caller_can_press_ahead_during_prompts(agi_server: tuple[str, int], redis_url: str) -> None:
    call = AsteriskPeer(["1", CARD + "#", PIN, ""], barge_in=True).dial(*agi_server)
    # the 1 pressed during the welcome: the main menu prompt is not played, no wait for a key
    assert call.played[:2] == ["hotline/hotline/zh-CN/welcome", "hotline/hotline/zh-CN/inquiry_card"]
    assert ended(redis_url)[0]["verified"] == "yes"


def test_loss_report_freezes_the_card(agi_server: tuple[str, int], hotline: Hotline, redis_url: str) -> None:
    call = AsteriskPeer(["2", CARD + "#", "12345*", ""]).dial(*agi_server)
    assert any(sound.startswith("hotline/hotline/zh-CN/dynamic/") for sound in call.played)  # the reference
    assert hotline.bank.account(hotline.bank.lookup_card(CARD).token).status == "frozen"
    assert ended(redis_url)[0]["intent"] == "loss"


def test_complaint_recording_is_stored_with_its_work_order(
    agi_server: tuple[str, int], hotline: Hotline, settings: Settings
) -> None:
    peer = AsteriskPeer(["3", "2", "record:12", ""])
    call = peer.dial(*agi_server)
    (record,) = [c for c in call.commands if c.startswith("RECORD FILE")]
    spool = settings.recordings_dir / "spool"
    assert record == f'RECORD FILE {(spool / (peer.uniqueid + "-1")).resolve()} wav "#" 120000 BEEP s=8'
    with hotline.sql() as db:
        order = db.scalar(select(WorkOrder))
        stored = db.scalar(select(Recording))
    assert (order.category, order.recording_ref, order.caller_masked) == ("fees", f"{peer.uniqueid}-1", "138****5678")
    assert stored.work_order == order.number and stored.duration_s == 12
    assert (settings.recordings_dir / stored.path).stat().st_size == 12 * 8000 * 2 + 44
    assert list(spool.iterdir()) == []


def test_agent_queue_timeout_goes_on_to_goodbye(hotline: Hotline, prompts: Path, redis_url: str) -> None:
    with serve_agi(hotline, hold_max_wait_s=0.5) as server:
        call = AsteriskPeer(["0"], patience_s=30).dial(*server)
    assert call.commands[-4:] == ["NOOP", "SET MUSIC off default", 'STREAM FILE hotline/hotline/zh-CN/goodbye ""',
                                  "HANGUP"]
    assert ended(redis_url)[0]["outcome"] == "unanswered"
    assert hotline.router.call(ended(redis_url)[0]["call_id"]) is None


BRANCHES = {
    # keys, intent, outcome at the end
    "inquiry": (["1", CARD + "#", PIN, ""], "inquiry", "self_served"),
    "inquiry, three wrong PINs": (["1", CARD + "#", "000000", CARD + "#", "000000", CARD + "#", "000000"],
                                  "inquiry", "routed"),
    "loss": (["2", CARD + "#", "12345*", ""], "loss", "self_served"),
    "complaint": (["3", "4", "record:20", ""], "complaint", "self_served"),
    "agent": (["0"], "agent", "routed"),
    "silence": (["", "", ""], "agent", "routed"),
}


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("branch", BRANCHES)
def test_every_branch_in_both_languages(
    branch: str, language: str, agi_server: tuple[str, int], redis_url: str, hotline: Hotline
) -> None:
    hotline.agents.put(Agent("ann", "Ann", "PJSIP/1001", {s: 9 for s in ("inquiry", "loss", "complaint", "general")},
                             ["zh-CN", "en-US"]))
    hotline.router.set_agent_state("ann", "available")
    keys, intent, outcome = BRANCHES[branch]
    peer = AsteriskPeer(keys, language=language, patience_s=30)
    call = peer.dial(*agi_server)
    lang = "zh-CN" if language == "zh" else "en-US"
    assert call.played[0] == f"hotline/hotline/{lang}/welcome"
    assert all(f"/{lang}/" in sound for sound in call.played)
    assert call.commands[-1] == "HANGUP"
    (end,) = ended(redis_url)
    assert (end["call_id"], end["intent"], end["outcome"], end["language"]) == (peer.uniqueid, intent, outcome, lang)
