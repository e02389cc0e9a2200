"""Redis going away: callers still get an answer, and call events are kept and sent later."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import threading
import time
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
    spooled = [line for f in (tmp_path / "spool").glob("events-*.jsonl") for line in f.read_text().splitlines()]
    assert len(spooled) == 2
    own_redis.start()  # a fresh, empty server on the same port
    log.emit("call_ended", call_id="b")
    got = [(f[b"type"].decode(), f[b"call_id"].decode()) for _, f in client.xrange(EVENTS_STREAM)]
    assert got == [("call_ended", "a"), ("call_started", "b"), ("call_ended", "b")]
    assert list((tmp_path / "spool").iterdir()) == []


def _emit_many(url: str, spool: str, name: str, count: int, threads: int) -> None:
    """One process of the hotline emitting, from several threads, while Redis comes and goes."""
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    events = EventLog(client, Path(spool))

    def run(thread: int) -> None:
        for i in range(count):
            events.emit("call_started", call_id=f"{name}-{thread}-{i}")
            time.sleep(0.001)

    runners = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()


def test_processes_sharing_the_spool_through_redis_restarts_lose_no_event(tmp_path: Path) -> None:
    """Four processes of one machine, four threads each, emit while Redis restarts four times: each flushes
    the others' spooled events when Redis answers it first. Every event arrives (one shared append-only
    file lost about one in ten here: a process appended to a file another had just claimed and deleted)."""
    server = RedisProcess(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    server.persistent = True
    server.start()
    spool = tmp_path / "spool"
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_emit_many, args=(server.url, str(spool), f"p{k}", 300, 4)) for k in range(4)]
    try:
        for process in processes:
            process.start()
        for _ in range(4):
            time.sleep(0.4)
            server.stop()
            time.sleep(0.2)
            server.start()
        for process in processes:
            process.join(timeout=120)
            assert process.exitcode == 0
        client = redis.Redis.from_url(server.url)
        EventLog(client, spool).flush()  # what the worker's clock does for a machine gone quiet
        sent = [f[b"call_id"].decode() for _, f in client.xrange(EVENTS_STREAM)]
    finally:
        server.stop()
    expected = {f"p{k}-{t}-{i}" for k in range(4) for t in range(4) for i in range(300)}
    assert set(sent) == expected, f"{len(expected - set(sent))} events lost"
    assert list(spool.glob("events-*")) == []


def test_a_spool_file_claimed_by_a_process_that_died_is_sent_by_another(own_redis: RedisProcess,
                                                                         tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    gone_pid = _exited_pid()
    (spool / f"events-{time.time_ns():020d}-{gone_pid}-ab12cd34.{gone_pid}.replay").write_text(
        json.dumps({"type": "call_ended", "call_id": "left-behind", "ts": "1"}) + "\n")
    client = redis.Redis.from_url(own_redis.url)
    EventLog(client, spool).emit("call_started", call_id="next")
    assert [f[b"call_id"] for _, f in client.xrange(EVENTS_STREAM)] == [b"left-behind", b"next"]
    assert list(spool.iterdir()) == []


def _exited_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


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
