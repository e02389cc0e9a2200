"""Redis going away: callers still get an answer, and call events are kept and sent later."""

from __future__ import annotations

import threading
from pathlib import Path

import redis

from hotline.app import create_app, prepare
from hotline.settings import Settings
from routing.events import EventLog
from routing.keys import EVENTS_STREAM
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, RedisProcess
from tests.fakes.twilio_caller import TwilioCaller


def test_redis_down_mid_call_the_caller_hears_an_apology(
    own_redis: RedisProcess, settings: Settings
) -> None:
    hotline = prepare(settings.model_copy(update={"redis_url": own_redis.url}))
    caller = TwilioCaller(create_app(hotline=hotline).test_client(), AUTH_TOKEN, PUBLIC_URL)
    caller.dial()
    own_redis.stop()
    caller.press("1")
    assert caller.verbs() == ["Say", "Say", "Hangup"]  # no HOTLINE_BACKUP_NUMBER: see test_twilio_fallbacks
    assert "Sorry, something went wrong" in caller.said()[1]
    own_redis.start()  # back, empty: the same process serves the next call, the menu version from SQL
    again = TwilioCaller(caller.client, AUTH_TOKEN, PUBLIC_URL)
    again.dial()
    again.press("1")
    assert again.said() == ["请输入您的卡号，以井号键结束。"]


def test_events_spool_to_disk_while_redis_is_down_and_arrive_in_order_after(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(own_redis.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    log = EventLog(client, tmp_path / "spool")
    log.emit("call_started", call_id="a")
    own_redis.stop()
    log.emit("call_ended", call_id="a")
    log.emit("call_started", call_id="b")
    assert len(list((tmp_path / "spool").glob("events-*.jsonl"))) == 1
    own_redis.start()  # a fresh, empty server on the same port
    log.emit("call_ended", call_id="b")
    got = [(f[b"type"].decode(), f[b"call_id"].decode()) for _, f in client.xrange(EVENTS_STREAM)]
    assert got == [("call_ended", "a"), ("call_started", "b"), ("call_ended", "b")]
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_call_redis_refused_still_gets_its_record_once_redis_is_back(
    own_redis: RedisProcess, settings: Settings
) -> None:
    hotline = prepare(settings.model_copy(update={"redis_url": own_redis.url}))
    client = create_app(hotline=hotline).test_client()
    own_redis.stop()
    caller = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL, caller="+8613912345678")
    caller.dial()  # the very first webhook fails: apology
    assert "Sorry, something went wrong" in caller.said()[1]
    own_redis.start()
    TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL).dial()  # the next event sends the spooled ones first
    stream = redis.Redis.from_url(own_redis.url, decode_responses=True).xrange(hotline.events.stream)
    kept = [f for _, f in stream if f["call_id"] == caller.call_sid]
    assert [(f["type"], f.get("outcome", "")) for f in kept] == [("call_started", ""), ("call_ended", "error")]
    assert kept[0]["caller"] == "+86139****5678"  # masked like every call record


def test_a_call_whose_final_status_callback_fails_still_gets_its_end_recorded(
    own_redis: RedisProcess, settings: Settings
) -> None:
    hotline = prepare(settings.model_copy(update={"redis_url": own_redis.url}))
    client = create_app(hotline=hotline).test_client()
    caller = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL)
    caller.dial()
    caller.press("3")
    own_redis.stop()
    caller.hang_up()  # Twilio does not post a status callback again after a failure: this one is all there is
    own_redis.start()
    TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL).dial()  # the next event sends the spooled ones first
    stream = redis.Redis.from_url(own_redis.url, decode_responses=True).xrange(hotline.events.stream)
    ends = [(f["status"], f["outcome"]) for _, f in stream if f["call_id"] == caller.call_sid and f["type"] == "call_ended"]
    assert ends == [("failed", "error")]


def test_a_redis_restart_of_a_second_goes_unnoticed_by_the_caller(
    own_redis: RedisProcess, settings: Settings
) -> None:
    own_redis.stop()
    own_redis.persistent = True
    own_redis.start()
    hotline = prepare(settings.model_copy(update={"redis_url": own_redis.url}))
    caller = TwilioCaller(create_app(hotline=hotline).test_client(), AUTH_TOKEN, PUBLIC_URL)
    caller.dial()
    own_redis.stop()
    back = threading.Timer(1.0, own_redis.start)
    back.start()
    caller.press("1")  # asked while Redis is down: answered once it is back
    back.join()
    assert caller.said() == ["请输入您的卡号，以井号键结束。"]
