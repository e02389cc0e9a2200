"""Call records: one row per call from the event stream, whatever order, duplication or failure.

The writer runs as real ``hotline worker`` processes reading the real Redis stream into SQLite or
PostgreSQL; the tests kill it, lock the database under it and replay events at it.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import sqlalchemy
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from routing.keys import EVENTS_STREAM
from store.models import CallRecord
from tests.fakes.call_events import T0, call_ended, routed_call
from workers.records import RecordWriter
from workers.stream import RECORDS_GROUP, ConsumerConfig, StreamConsumer

REPO = Path(__file__).resolve().parent.parent


def count(sql: sessionmaker) -> int:
    with sql() as db:
        return int(db.scalar(select(func.count()).select_from(CallRecord)) or 0)


def record(sql: sessionmaker, call_id: str) -> CallRecord:
    with sql() as db:
        row = db.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
        assert row is not None, f"no record for {call_id}"
        return row


def utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


# -- the fold ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_routed_call_becomes_one_full_record_in_any_order_and_split_over_batches(sql: sessionmaker) -> None:
    events = routed_call("CA-1", wait_s=12.5, talk_s=95.0)
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    writer = RecordWriter(sql)
    writer.write(shuffled[:2])
    writer.write(shuffled[2:] + shuffled[:1])  # one event delivered twice

    row = record(sql, "CA-1")
    assert (row.channel, row.direction, row.caller_masked, row.called) == ("twilio", "inbound", "138****5678", "95555")
    assert aware(row.started_at) == utc(T0)
    assert aware(row.queued_at) == utc(T0 + 8)
    assert aware(row.answered_at) == utc(T0 + 20.5)
    assert aware(row.ended_at) == utc(T0 + 20.5 + 95 + 0.2)
    assert (row.queue, row.agent_id, row.wait_s, row.predicted_wait_s, row.talk_s) == ("general", "a7", 12.5, 10.0, 95.0)
    assert (row.intent, row.outcome, row.verified, row.language, row.menu_version) == (
        "agent", "routed", False, "zh-CN", 3)
    assert row.ivr_path == [{"node": "main", "input": "key 0", "at": "2027-01-15T08:00:08Z"}]
    assert count(sql) == 1


@pytest.mark.parametrize(("events", "outcome"), [
    ([call_ended("c", outcome="self_served")], "self_served"),
    ([call_ended("c", outcome="survey_completed")], "survey_completed"),
    ([call_ended("c", outcome="failed")], "failed"),
    ([call_ended("c", outcome="hangup")], "abandoned"),  # hung up in the menu
    (routed_call("c")[:2] + [{"type": "call_abandoned", "ts": f"{T0 + 30:.3f}", "call_id": "c", "state": "waiting",
                               "reason": "caller_hangup", "wait_s": "22.000"}], "abandoned"),
    (routed_call("c")[:1], ""),  # still in progress: no outcome yet
])
def test_the_outcome_follows_from_what_happened(sql: sessionmaker, events: list[dict[str, str]], outcome: str) -> None:
    RecordWriter(sql).write(events)
    assert record(sql, "c").outcome == outcome


@pytest.mark.parametrize("order", ["boundary last", "boundary first", "separate batches, boundary first"])
def test_a_call_that_met_the_error_boundary_stays_failed_whatever_order_its_ends_arrive_in(
        sql: sessionmaker, order: str) -> None:
    own_end = call_ended("c", at=T0 + 5, outcome="hangup")  # the call's own end, written on the way out
    boundary = [{"type": "call_started", "ts": f"{T0 + 6:.3f}", "call_id": "c", "channel": "asterisk",
                 "caller": "138****5678", "direction": "inbound"},
                {"type": "call_ended", "ts": f"{T0 + 6:.3f}", "call_id": "c", "channel": "asterisk",
                 "status": "failed", "outcome": "error"}]
    writer = RecordWriter(sql)
    if order == "boundary last":
        writer.write([own_end, *boundary])
    elif order == "boundary first":
        writer.write([*boundary, own_end])
    else:
        writer.write(boundary)
        writer.write([own_end])
    row = record(sql, "c")
    assert (row.outcome, row.end_status, row.intent) == ("failed", "failed", "inquiry")
    assert count(sql) == 1


def test_a_late_answer_event_turns_an_ended_call_into_a_routed_one(sql: sessionmaker) -> None:
    events = routed_call("CA-2")
    writer = RecordWriter(sql)
    writer.write([events[0], events[4]])  # started, ended ("queued" in the menu): looks abandoned for now
    assert record(sql, "CA-2").outcome == "abandoned"
    writer.write([events[2], events[3]])
    assert (record(sql, "CA-2").outcome, record(sql, "CA-2").talk_s) == ("routed", 95.0)


def test_events_that_are_not_about_calls_write_nothing(sql: sessionmaker) -> None:
    assert RecordWriter(sql).write([{"type": "agent_state", "agent": "a1", "state": "available", "ts": "1"},
                                    {"type": "call_ended", "ts": "1"}]) == 0
    assert count(sql) == 0


# -- the consumer, in process ------------------------------------------------------------------------


def push(client: redis.Redis, events: list[dict[str, str]]) -> None:
    pipe = client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(EVENTS_STREAM, event)
    pipe.execute()


def test_a_batch_is_acknowledged_only_after_its_commit(redis_url: str, sql: sessionmaker, database_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    push(client, [call_ended(f"c{i}") for i in range(5)])
    # A writer that gives up on a locked database after 0.2 s rather than the default 10 s.
    impatient = sessionmaker(sqlalchemy.create_engine(database_url, connect_args={"timeout": 0.2}))
    consumer = StreamConsumer(client, ConsumerConfig(EVENTS_STREAM, RECORDS_GROUP, "w1", block_ms=10),
                              RecordWriter(impatient).write)
    consumer.ensure_group()
    lock = sqlite3.connect(database_url.removeprefix("sqlite:///"))
    lock.execute("BEGIN EXCLUSIVE")  # the database is unavailable to the writer
    with pytest.raises(sqlalchemy.exc.OperationalError):
        consumer.step()
    assert client.xpending(EVENTS_STREAM, RECORDS_GROUP)["pending"] == 5  # read, not acknowledged
    lock.rollback()
    lock.close()
    assert consumer.step() == 5  # the same entries again, from this consumer's pending list
    assert client.xpending(EVENTS_STREAM, RECORDS_GROUP)["pending"] == 0
    assert count(sql) == 5
    impatient.kw["bind"].dispose()


# -- real worker processes -------------------------------------------------------------------------


def start_worker(redis_url: str, database_url: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url, "HOTLINE_DATA_DIR": str(data_dir),
           "HOTLINE_RECORDS_CLAIM_IDLE": "1"}
    return subprocess.Popen([sys.executable, "-m", "hotline.cli", "worker"], cwd=REPO, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_worker_killed_mid_burst_loses_nothing_and_doubles_nothing(
        redis_url: str, database_url: str, sql: sessionmaker, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    calls = 3000
    log = tmp_path / "workers.log"
    first = start_worker(redis_url, database_url, tmp_path / "data", log)
    try:
        # Events arrive while the worker writes: five per routed call, the calls interleaved.
        events = [e for i in range(calls) for e in routed_call(f"CA{i:05d}", at=T0 + i)]
        random.Random(3).shuffle(events)
        for i in range(0, len(events), 1000):
            push(client, events[i:i + 1000])
        wait_for(lambda: count(sql) > 200, 60, "the first worker to write some records")
        first.kill()  # SIGKILL: mid-batch, its read entries stay pending
        first.wait()
        written_by_first = count(sql)
        push(client, routed_call("CA00007", at=T0 + 7))  # a whole call's events again: duplicates
        second = start_worker(redis_url, database_url, tmp_path / "data", log)
        try:
            wait_for(lambda: count(sql) == calls and not client.xpending(EVENTS_STREAM, RECORDS_GROUP)["pending"]
                     and _all_complete(sql), 90, "every call to have its complete record")
        finally:
            stop(second)
    finally:
        stop(first)
    assert 0 < written_by_first < calls, "the kill was not mid-burst"
    with sql() as db:
        rows = db.execute(select(CallRecord.call_id, func.count()).group_by(CallRecord.call_id)
                          .having(func.count() > 1)).all()
        assert rows == []
        assert db.scalar(select(func.count()).where(CallRecord.outcome == "routed")) == calls
        assert db.scalar(select(func.count()).where(CallRecord.talk_s != 95.0)) == 0
    assert "took over" in log.read_text() or written_by_first > 0


def _all_complete(sql: sessionmaker) -> bool:
    with sql() as db:
        return not db.scalar(select(func.count()).where(
            (CallRecord.outcome != "routed") | CallRecord.started_at.is_(None) | CallRecord.talk_s.is_(None)))


def test_records_written_while_the_database_is_locked_arrive_when_it_is_back(
        redis_url: str, database_url: str, sql: sessionmaker, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    worker = start_worker(redis_url, database_url, tmp_path / "data", tmp_path / "worker.log")
    try:
        push(client, [call_ended("before")])
        wait_for(lambda: count(sql) == 1, 30, "the worker to run")
        lock = sqlite3.connect(database_url.removeprefix("sqlite:///"), check_same_thread=False)
        lock.execute("BEGIN EXCLUSIVE")
        released = threading.Timer(12, lock.rollback)  # longer than the writer's 10 s busy timeout
        released.start()
        push(client, [call_ended(f"during-{i}") for i in range(50)])
        time.sleep(1)
        assert client.xpending(EVENTS_STREAM, RECORDS_GROUP)["pending"] > 0
        released.join()
        lock.close()
        wait_for(lambda: count(sql) == 51, 60, "the records held back by the lock")
    finally:
        stop(worker)
    assert "OperationalError" in (tmp_path / "worker.log").read_text()  # it said why it waited


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_two_writers_merging_one_calls_events_at_once_lose_neither(sql: sessionmaker) -> None:
    """After a writer takes over another's events, both may write one call's record at the same moment:
    the answer one writes and the talk time the other writes must both be in the record."""
    first, second = RecordWriter(sql), RecordWriter(sql)
    calls = [routed_call(f"CArace{i:04d}", at=T0 + i) for i in range(150)]
    first.write([e for trail in calls for e in trail if e["type"] == "call_started"])
    start = threading.Barrier(2)

    def write(writer: RecordWriter, kind: str) -> None:
        start.wait()
        for trail in calls:  # one call per transaction, interleaving with the other writer
            writer.write([e for e in trail if e["type"] == kind])

    threads = [threading.Thread(target=write, args=(first, "call_answered")),
               threading.Thread(target=write, args=(second, "call_completed"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with sql() as db:
        rows = db.execute(select(CallRecord.call_id, CallRecord.answered_at, CallRecord.talk_s)).all()
    assert len(rows) == 150
    assert [r.call_id for r in rows if r.answered_at is None or r.talk_s is None] == []
