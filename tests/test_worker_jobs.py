"""The worker's scheduled jobs: escalation run by a real worker process on its own, and retention."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from rq import Queue
from sqlalchemy import select

from complaints.work_orders import WorkOrderDesk
from hotline.app import Hotline
from ivr.services import CallInfo
from routing.keys import EVENTS_STREAM
from store.models import CallRecord, Recording, WorkOrder
from workers.records import RecordWriter
from workers.retention import Retention
from workers.runner import JobWorker

REPO = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2027, 3, 2, 6, 0, tzinfo=dt.UTC)


def test_a_running_worker_escalates_overdue_work_orders_and_sends_spooled_events_by_itself(
        hotline: Hotline, tmp_path: Path) -> None:
    s = hotline.settings
    # Opened 30 hours ago: the 24 h first-contact deadline of a fees complaint has passed.
    desk = WorkOrderDesk(hotline.sql, hotline.events, s.deadlines,
                         clock=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(hours=30))
    number = desk.open_work_order(CallInfo("CA-late", "13812345678", "twilio", "zh-CN"), "fees", "RE1")
    env = {**os.environ, "REDIS_URL": hotline.redis_url, "DATABASE_URL": s.sql_url,
           "HOTLINE_DATA_DIR": str(s.data_dir)}
    worker = subprocess.Popen([sys.executable, "-m", "hotline.cli", "worker"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60  # a worker process starting on a busy machine
        while time.monotonic() < deadline and hotline.desk.show(number)["overdue"] is None:
            time.sleep(0.2)
        # Then a call's events kept on disk while Redis was away, and nothing emitted since to carry them:
        # the worker's clock sends them.
        spool = s.data_dir / "spool"
        spool.mkdir(parents=True, exist_ok=True)
        (spool / f"events-{time.time_ns():020d}-1-0000.jsonl").write_text("".join(
            json.dumps({"type": kind, "call_id": "CA-spooled", "ts": f"{time.time():.3f}", "channel": "twilio"})
            + "\n" for kind in ("call_started", "call_ended")))
        while time.monotonic() < deadline and not _recorded(hotline, "CA-spooled"):
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    order = hotline.desk.show(number)
    assert (order["overdue"], order["priority"]) == ("first_contact", 6)
    assert order["changes"][-1]["actor"] == "scheduler"
    assert _recorded(hotline, "CA-spooled") and list(spool.glob("events-*")) == []
    events = redis.Redis.from_url(hotline.redis_url, decode_responses=True).xrange(EVENTS_STREAM)
    assert {"type": "work_order_overdue", "work_order": number, "deadline": "first_contact"}.items() <= next(
        e for _, e in events if e["type"] == "work_order_overdue").items()


def _recorded(hotline: Hotline, call_id: str) -> bool:
    with hotline.sql() as db:
        return db.scalar(select(CallRecord.ended_at).where(CallRecord.call_id == call_id)) is not None


def test_retention_purges_old_records_with_their_recordings_but_keeps_evidence_of_open_complaints(
        hotline: Hotline) -> None:
    writer = RecordWriter(hotline.sql)
    old, recent = NOW - dt.timedelta(days=400), NOW - dt.timedelta(days=30)
    writer.write([{"type": "call_started", "ts": f"{at.timestamp():.3f}", "call_id": call_id, "channel": "twilio"}
                  for call_id, at in (("old-1", old), ("old-2", old), ("new-1", recent))])
    saved = {}
    for call_id, work_order in (("old-1", None), ("old-2", "2601010001"), ("new-1", None)):
        meta = hotline.recordings.save(f"RE-{call_id}", call_id, b"RIFF....", 3.0, work_order=work_order)
        saved[call_id] = hotline.recordings.root / meta.path
        with hotline.sql.begin() as db:
            db.add(Recording(ref=meta.ref, call_id=call_id, work_order=work_order, path=meta.path, duration_s=3.0,
                             sha256=meta.sha256, size_bytes=meta.size_bytes))
    with hotline.sql.begin() as db:  # old-2's complaint is still being worked
        db.add(WorkOrder(number="2601010001", call_id="old-2", category="fees", caller_masked="138****5678",
                         callback_number="13812345678", language="zh-CN", recording_ref="RE-old-2", status="assigned"))

    purged = Retention(hotline.sql, hotline.recordings, dt.timedelta(days=365), clock=lambda: NOW).purge()

    assert purged == (2, 1)
    with hotline.sql() as db:
        assert set(db.scalars(select(CallRecord.call_id))) == {"new-1"}
        assert set(db.scalars(select(Recording.call_id))) == {"old-2", "new-1"}
    assert not saved["old-1"].exists() and not saved["old-1"].with_suffix(".json").exists()
    assert saved["old-2"].exists() and saved["new-1"].exists()


def test_a_job_scheduled_for_later_runs_and_a_killed_worker_leaves_no_process_behind(hotline: Hotline) -> None:
    s = hotline.settings
    env = {**os.environ, "REDIS_URL": hotline.redis_url, "DATABASE_URL": s.sql_url, "HOTLINE_DATA_DIR": str(s.data_dir)}
    worker = subprocess.Popen([sys.executable, "-m", "hotline.cli", "worker"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        job = hotline.jobs.enqueue_at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1), "workers.jobs.sweep_visits")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and job.get_status(refresh=True) != "finished":
            time.sleep(0.1)
        assert job.get_status(refresh=True) == "finished"
        assert job.return_value() == 0
    finally:
        worker.kill()
        worker.wait()
    # Nothing of the worker (RQ forks its scheduler by default) goes on running against this Redis.
    time.sleep(0.5)
    survivors = subprocess.run(["pgrep", "-s", str(worker.pid)], capture_output=True, text=True).stdout.split()
    assert survivors == []


def test_conversation_recordings_go_at_their_own_age_keeping_the_record_and_a_worked_complaints_evidence(
        hotline: Hotline) -> None:
    paths = {}
    for ref, kind, age_days, work_order in (("conv-old", "conversation", 100, None), ("conv-new", "conversation", 10,
                                            None), ("conv-evidence", "conversation", 100, "2601010009"),
                                           ("msg-old", "complaint", 100, None)):
        meta = hotline.recordings.save(ref, "call-" + ref, b"RIFF....", 3.0, kind="conversations")
        paths[ref] = hotline.recordings.root / meta.path
        with hotline.sql.begin() as db:
            db.add(Recording(ref=ref, call_id="call-" + ref, work_order=work_order, path=meta.path, duration_s=3.0,
                             sha256=meta.sha256, size_bytes=meta.size_bytes, kind=kind,
                             created_at=NOW - dt.timedelta(days=age_days)))
    with hotline.sql.begin() as db:
        db.add(WorkOrder(number="2601010009", call_id="call-conv-evidence", category="fees", caller_masked="138****5678",
                         callback_number="13812345678", language="zh-CN", recording_ref="x", status="in_progress"))
    retention = Retention(hotline.sql, hotline.recordings, dt.timedelta(days=365), clock=lambda: NOW,
                          conversation_max_age=dt.timedelta(days=90))
    assert retention.purge() == (0, 1)
    with hotline.sql() as db:
        assert set(db.scalars(select(Recording.ref))) == {"conv-new", "conv-evidence", "msg-old"}
    assert not paths["conv-old"].exists() and paths["conv-new"].exists()


def test_a_stopping_worker_lets_go_of_its_command_channel_at_once(redis_url: str) -> None:
    """RQ reads its command channel in 60 s waits and redis-py 8 makes the shutdown wait for the reader: a worker
    told to stop (SIGTERM, the end of a burst) hung for a minute whenever the reader was between two waits."""
    connection = redis.Redis.from_url(redis_url)
    worker = JobWorker([Queue("hotline-test", connection=connection)], connection=connection)
    worker.subscribe()
    worker.pubsub.unsubscribe()
    time.sleep(0.5)  # the reader has taken the confirmation and waits for the next message, unsubscribed
    stopping = threading.Thread(target=worker.unsubscribe, daemon=True)
    stopping.start()
    stopping.join(10)
    assert not stopping.is_alive(), "the worker is still waiting for its command reader"
