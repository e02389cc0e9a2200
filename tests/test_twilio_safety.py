"""Forged requests, replays, hang-ups, bad input and publishing mid-call on the Twilio channel."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from calls.keys import session_key
from calls.sessions import SessionStore
from hotline.app import Hotline, create_app
from hotline.settings import Settings
from ivr.session import Session
from routing.keys import EVENTS_STREAM
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_caller import TwilioCaller

MENU_FILE = Path(__file__).resolve().parent.parent / "ivr" / "menus" / "hotline.yaml"


def stored_session(url: str, call_sid: str) -> dict:
    raw = redis.Redis.from_url(url).get(session_key(call_sid))
    return json.loads(raw.split(b"\n")[1]) if raw else {}


def ended_events(url: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(url, decode_responses=True)
    return [f for _, f in client.xrange(EVENTS_STREAM) if f["type"] == "call_ended"]


def test_forged_and_missing_signatures_get_403_and_change_nothing(caller: TwilioCaller, redis_url: str) -> None:
    caller.dial()
    before = stored_session(redis_url, caller.call_sid)
    step = caller.verb("Gather").attrib["action"]
    forged = caller.post_raw(step, signature="bm90IGEgc2lnbmF0dXJl", Digits="1")
    missing = caller.post_raw(step, signature="", Digits="1")
    assert (forged.status_code, missing.status_code) == (403, 403)
    assert stored_session(redis_url, caller.call_sid) == before


def test_signature_over_other_params_is_refused(caller: TwilioCaller) -> None:
    caller.dial()
    step = caller.verb("Gather").attrib["action"]
    good = caller.validator.compute_signature(step, {"CallSid": caller.call_sid, "Digits": "1"})
    assert caller.post_raw(step, signature=good, Digits="2").status_code == 403


def test_without_auth_token_every_webhook_is_refused(hotline: Hotline, settings: Settings) -> None:
    hotline.settings = settings.model_copy(update={"twilio_auth_token": None})
    client = create_app(hotline=hotline).test_client()
    assert TwilioCaller(client, "anything", PUBLIC_URL).post_raw("/twilio/voice").status_code == 403


def test_replayed_step_gets_the_same_answer_and_advances_once(caller: TwilioCaller, redis_url: str) -> None:
    caller.dial()
    step = caller.verb("Gather").attrib["action"]
    first = caller.post_raw(step, Digits="1").data
    path_len = len(stored_session(redis_url, caller.call_sid)["path"])
    again = caller.post_raw(step, Digits="1").data
    assert again == first
    assert len(stored_session(redis_url, caller.call_sid)["path"]) == path_len


def test_replayed_first_request_does_not_start_a_second_call(caller: TwilioCaller, redis_url: str) -> None:
    first = caller.post_raw("/twilio/voice").data
    assert caller.post_raw("/twilio/voice").data == first
    starts = redis.Redis.from_url(redis_url, decode_responses=True).xrange(EVENTS_STREAM)
    assert [f["type"] for _, f in starts] == ["call_started"]


def test_step_for_an_unknown_call_starts_over_instead_of_failing(caller: TwilioCaller) -> None:
    caller.post(f"{PUBLIC_URL}/twilio/voice?seq=4", Digits="1")
    assert caller.said()[0] == "您好，欢迎致电客户服务热线。For English, press 9."


def test_missing_call_sid_is_a_400(client) -> None:  # noqa: ANN001
    caller = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL)
    reply = caller.post_raw("/twilio/voice", CallSid="")
    assert reply.status_code == 400 and b"CallSid" in reply.data


def test_garbage_digits_are_an_invalid_choice(caller: TwilioCaller) -> None:
    caller.dial()
    caller.press("<script>")
    assert caller.said()[0] == "您的输入有误。"


def test_huge_body_is_refused_with_413(caller: TwilioCaller) -> None:
    assert caller.post_raw("/twilio/voice", Junk="x" * 100_000).status_code == 413


def test_wrong_method_is_405(client) -> None:  # noqa: ANN001
    assert client.get("/twilio/voice").status_code == 405


def test_hangup_mid_menu_emits_call_ended_once_with_path(caller: TwilioCaller, redis_url: str) -> None:
    caller.dial()
    caller.press("2")
    assert caller.hang_up() == 204
    assert caller.hang_up() == 204  # Twilio may send the final status twice
    (ended,) = ended_events(redis_url)
    assert (ended["outcome"], ended["intent"], ended["call_id"]) == ("hangup", "loss", caller.call_sid)
    path = json.loads(ended["ivr_path"])
    assert [(p["node"], p["input"]) for p in path] == [
        ("opening_check", "result open"), ("main", "key 2"), ("loss_card", "hangup")]
    assert stored_session(redis_url, caller.call_sid) == {}


def test_non_final_status_keeps_the_call(caller: TwilioCaller, redis_url: str) -> None:
    caller.dial()
    assert caller.hang_up(status="ringing") == 204
    assert stored_session(redis_url, caller.call_sid)["node"] == "main"
    assert ended_events(redis_url) == []


def test_call_finishes_on_the_menu_version_it_began_with(caller: TwilioCaller, hotline: Hotline, client) -> None:  # noqa: ANN001
    caller.dial()
    changed = MENU_FILE.read_text(encoding="utf-8").replace("请输入您的卡号", "请输入新版卡号")
    assert hotline.menus.publish(changed, published_by="test").version == 2
    caller.press("1")
    assert caller.said() == ["请输入您的卡号，以井号键结束。"]
    newcomer = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL)
    newcomer.dial()
    newcomer.press("1")
    assert newcomer.said() == ["请输入新版卡号，以井号键结束。"]


def test_a_step_served_twice_at_once_is_stored_once(hotline: Hotline) -> None:
    store = SessionStore(hotline.redis, ttl_s=60)
    first = Session("CAx", "twilio", "+8613800000000", "95555", "hotline", 1, "zh-CN", node="main", seq=3)
    rival = Session("CAx", "twilio", "+8613800000000", "95555", "hotline", 1, "zh-CN", node="loss_card", seq=3)
    assert store.save(first, "<Response>first</Response>") is True
    assert store.save(rival, "<Response>rival</Response>") is False
    kept = store.load("CAx")
    assert kept is not None and kept.session.node == "main" and kept.last_answer == "<Response>first</Response>"
    assert store.save(Session(**{**vars(first), "seq": 4, "node": "inquiry_card"}), "<Response>4</Response>")
    assert store.load("CAx").session.node == "inquiry_card"


def test_webhooks_signed_with_a_shared_key_are_accepted_when_its_secret_is_configured(
    hotline: Hotline, settings: Settings,
) -> None:
    secret = "shared-key-secret-0123456789"
    hotline.settings = settings.model_copy(update={"twilio_webhook_key_secret": secret})
    caller = TwilioCaller(create_app(hotline=hotline).test_client(), AUTH_TOKEN, PUBLIC_URL)
    caller.shared_key = ("webhooks_sharedkey_1", secret)
    caller.dial()
    assert caller.said()[0] == "您好，欢迎致电客户服务热线。For English, press 9."
    caller.shared_key = ("webhooks_sharedkey_1", "another-secret")
    assert caller.post_raw("/twilio/voice?seq=0", Digits="1").status_code == 403


def test_a_shared_key_signature_without_its_secret_configured_is_refused(caller: TwilioCaller) -> None:
    caller.shared_key = ("webhooks_sharedkey_1", "shared-key-secret-0123456789")
    assert caller.post_raw("/twilio/voice").status_code == 403
