"""PIN guessing stops at the limit per card: over Twilio and FastAGI, over several calls, over processes
(two FastAGI servers and the web app sharing Redis and the database); the lock on the supervisors' page."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import redis

from hotline.app import Hotline
from routing.keys import EVENTS_STREAM
from softphone.agi_peer import AsteriskPeer, PeerCall
from tests.asterisk_stack import fastagi_process
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_caller import TwilioCaller
from tests.web import SessionClient, add_user

CARD, PIN = "6228480012345671", "654321"
MASKED = "6228********5671"
LOCKED_ZH = "为保护您的资金安全，该卡的密码验证已被暂停。正在为您转接人工服务。"
LOCKED_PROMPT = "hotline/hotline/zh-CN/inquiry_locked"
REPO = Path(__file__).resolve().parents[1]


def stream(redis_url: str, kind: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return [f for _, f in client.xrange(EVENTS_STREAM) if f["type"] == kind]


def pin_results(redis_url: str) -> list[str]:
    """What every PIN check of every ended call answered (the IVR paths of the call records)."""
    return [step["input"].removeprefix("result ") for end in stream(redis_url, "call_ended")
            for step in json.loads(end["ivr_path"]) if step["node"] == "inquiry_verify"]


def agi_call(port: int, *pins: str) -> PeerCall:
    """An inquiry over FastAGI: one card-and-PIN entry per PIN."""
    keys = ["1"] + [entry for pin in pins for entry in (CARD + "#", pin)]
    return AsteriskPeer(keys, timeout_s=20).dial("127.0.0.1", port)


def twilio_call(client: object, *pins: str) -> TwilioCaller:
    caller = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL)
    caller.dial()
    caller.press("1")
    for pin in pins:
        caller.press(CARD + "#")
        caller.press(pin)
    return caller


def test_pin_guessing_stops_at_the_limit_on_both_channels_across_processes(
    hotline: Hotline, client: object, redis_url: str, prompts: Path,
) -> None:
    with fastagi_process(hotline, redis_url) as (first, _), fastagi_process(hotline, redis_url) as (second, _):
        twilio_call(client, "000001", "000002").hang_up()  # 2 wrong on Twilio (the web app)
        agi_call(first, "000003", "000004")  # 2 more on one FastAGI process
        fifth = agi_call(second, "000005")  # the fifth, on the other: locked
        assert LOCKED_PROMPT in fifth.played
        assert "hotline/hotline/zh-CN/agent_inquiry" in fifth.played  # put through to an agent

        # The right PIN no longer opens the account, on any channel or process.
        late = twilio_call(client, PIN)
        assert late.said()[0] == LOCKED_ZH and not any("余额" in text for text in late.said())
        assert late.queue() == "inquiry:zh-CN"
        late.hang_up()
        for port in (first, second):
            call = agi_call(port, PIN)
            assert LOCKED_PROMPT in call.played
            assert not any("/dynamic/" in sound for sound in call.played)  # no balance was read out

    assert pin_results(redis_url) == ["wrong_pin"] * 4 + ["locked"] * 4
    (event,) = stream(redis_url, "pin_locked")
    assert (event["card"], event["failures"], event["by"], event["channel"]) == (MASKED, "5", "hotline", "asterisk")
    assert CARD not in str(stream(redis_url, "pin_locked"))
    (lock,) = hotline.pin_locks.listing()
    assert (lock.card_masked, lock.failures, lock.locked_at is not None) == (MASKED, 5, True)
    assert hotline.settings.pin_max_failures == 5  # the bank default: 5 wrong PINs in 24 hours


def test_parallel_guesses_on_two_fastagi_processes_get_exactly_the_limit(
    hotline: Hotline, redis_url: str, prompts: Path,
) -> None:
    """The attack of the issue: 8 parallel peers, 3 guesses each, on two processes. Only 5 guesses are ever
    judged; every other check is refused without asking the bank."""
    calls: list[PeerCall] = []
    with fastagi_process(hotline, redis_url) as (first, _), fastagi_process(hotline, redis_url) as (second, _):
        def guess(i: int) -> None:
            calls.append(agi_call((first, second)[i % 2], *(f"{i:02d}{n:04d}" for n in range(3))))

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(calls) == 8
        assert LOCKED_PROMPT in agi_call(first, PIN).played

    results = pin_results(redis_url)
    assert results.count("wrong_pin") + results.count("locked") == len(results)
    assert results.count("wrong_pin") == 4  # the fifth wrong one locks: it is answered "locked"
    assert len(stream(redis_url, "pin_locked")) == 1


def test_a_right_pin_clears_the_count_and_an_admin_reset_unlocks(hotline: Hotline, client: object) -> None:
    twilio_call(client, "000001", "000002", "000003").hang_up()
    assert twilio_call(client, PIN).said()[0].startswith("您的余额为88.00元")
    twilio_call(client, "000001", "000002", "000003").hang_up()  # three again: the count started afresh
    assert twilio_call(client, PIN).said()[0].startswith("您的余额为88.00元")
    twilio_call(client, "000001", "000002", "000003").hang_up()
    locked = twilio_call(client, "000004", "000005")
    assert locked.said()[0] == LOCKED_ZH
    (lock,) = hotline.pin_locks.listing()

    hotline.pin_locks.reset(lock.card_key)

    assert hotline.pin_locks.listing() == []
    assert twilio_call(client, PIN).said()[0].startswith("您的余额为88.00元")


def test_supervisors_see_the_lock_and_only_an_admin_resets_it_audited(hotline: Hotline, app: object,
                                                                      client: object) -> None:
    twilio_call(client, *(f"00000{n}" for n in range(3))).hang_up()
    twilio_call(client, "000003", "000004").hang_up()
    add_user(hotline, "ana", "admin")
    add_user(hotline, "bo", "supervisor")
    supervisor = SessionClient(app.test_client(), "bo")  # type: ignore[attr-defined]
    admin = SessionClient(app.test_client(), "ana")  # type: ignore[attr-defined]

    page = supervisor("GET", "/admin/pin-locks").get_data(as_text=True)
    assert MASKED in page and '<span class="tag bad">locked</span>' in page and CARD not in page
    assert "/reset" not in page  # no reset button for a supervisor
    (lock,) = hotline.pin_locks.listing()
    assert supervisor("POST", f"/admin/pin-locks/{lock.card_key}/reset").status_code == 403
    assert hotline.pin_locks.listing() == [lock]
    assert twilio_call(client, PIN).said()[0] == LOCKED_ZH

    assert f"/admin/pin-locks/{lock.card_key}/reset" in admin("GET", "/admin/pin-locks").get_data(as_text=True)
    reply = admin("POST", f"/admin/pin-locks/{lock.card_key}/reset")

    assert (reply.status_code, reply.headers["Location"]) == (303, "/admin/pin-locks")
    assert hotline.pin_locks.listing() == []
    (entry,) = hotline.audit.entries(action="pin_lock_reset")
    assert (entry["actor"], entry["target"], entry["detail"]) == ("ana", MASKED, {"failures": 5, "was_locked": True})
    assert twilio_call(client, PIN).said()[0].startswith("您的余额为88.00元")
    assert admin("POST", f"/admin/pin-locks/{lock.card_key}/reset").status_code == 404  # nothing left to reset
    assert admin("POST", "/admin/pin-locks/not-a-key/reset").status_code == 400


