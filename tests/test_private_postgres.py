"""PostgreSQL for records: a real server started by the test (``hotline.private_postgres``), and the whole
records path into it, from real calls through a ``hotline worker`` process, across a restart of the server."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import sqlalchemy
from sqlalchemy import func, select

from hotline.app import Hotline, create_app
from routing.keys import EVENTS_STREAM
from store.db import connect
from store.models import CallRecord, MenuVersion, WorkOrder
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fakes.private_postgres import PrivatePostgres
from tests.fakes.twilio_caller import TwilioCaller
from tests.test_records import REPO, stop, wait_for
from workers.stream import RECORDS_GROUP

CARD, PIN = "6222021234567894", "123456"


def test_the_server_refuses_connections_while_stopped_and_keeps_its_data(
        private_postgres: PrivatePostgres, private_postgres_url: str) -> None:
    sql = connect(private_postgres_url, timeout_s=2)
    with sql.begin() as db:
        db.add(MenuVersion(menu="kept", version=1, source="name: kept", published_by="test"))
    with private_postgres.outage():
        assert not private_postgres.running()
        with pytest.raises(sqlalchemy.exc.OperationalError, match="Connection refused"), sql() as db:
            db.scalar(select(MenuVersion.source))
    with sql() as db:  # the pool's dead connections are replaced (pre-ping)
        assert db.scalar(select(MenuVersion.source).where(MenuVersion.menu == "kept")) == "name: kept"
    sql.kw["bind"].dispose()
    if os.geteuid() == 0:  # PostgreSQL refuses root: the server runs as another account
        assert pwd.getpwuid(private_postgres.data_dir.stat().st_uid).pw_name != "root"


def start_worker(redis_url: str, database_url: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url, "HOTLINE_DATA_DIR": str(data_dir),
           "HOTLINE_RECORDS_CLAIM_IDLE": "1"}
    return subprocess.Popen([sys.executable, "-m", "hotline.cli", "worker"], cwd=REPO, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def records(hotline: Hotline) -> dict[str, CallRecord]:
    with hotline.sql() as db:
        return {r.call_id: r for r in db.scalars(select(CallRecord))}


@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
def test_call_records_reach_postgres_through_a_worker_and_wait_out_a_restart(
        hotline: Hotline, private_postgres: PrivatePostgres, redis_url: str, tmp_path: Path) -> None:
    client = create_app(hotline=hotline).test_client()
    log = tmp_path / "worker.log"
    worker = start_worker(redis_url, private_postgres.url, tmp_path / "data", log)
    try:
        served = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL)
        served.dial()
        for key in ("1", CARD + "#", PIN):
            served.press(key)
        served.hang_up()
        wait_for(lambda: len(records(hotline)) == 1, 60, "the worker to write the first record")
        with private_postgres.outage():
            during = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL)
            during.dial()
            during.press("0")
            during.hang_up()
            complaint = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL)
            complaint.dial()
            complaint.press("3")
            complaint.press("1")
            complaint.record("RE-during-outage", 15)
            heard = re.search(r"工单号：([0-9 ]+)。", complaint.said()[0])
            assert heard, complaint.said()
            complaint.hang_up()
            wait_for(lambda: "record writer: OperationalError" in log.read_text(), 60,
                     "the worker to find the database gone")
            assert redis.Redis.from_url(redis_url).xpending(EVENTS_STREAM, RECORDS_GROUP)["pending"] > 0
        wait_for(lambda: len(records(hotline)) == 3, 90, "the records held back by the outage")
    finally:
        stop(worker)
    got = records(hotline)
    first, second = got[served.call_sid], got[during.call_sid]
    assert (first.channel, first.intent, first.outcome, first.verified, first.caller_masked) == (
        "twilio", "inquiry", "self_served", True, "+86138****5678")
    assert [step["node"] for step in first.ivr_path][:4] == ["opening_check", "main", "inquiry_card", "inquiry_lookup"]
    assert CARD not in str(first.ivr_path) and PIN not in str(first.ivr_path)
    assert (second.intent, second.queue, second.ended_at is not None) == ("agent", "general", True)
    with hotline.sql() as db:
        assert db.scalar(select(func.count()).select_from(CallRecord)) == 3
        order = db.scalar(select(WorkOrder))  # the worker opened the complaint kept during the outage
    assert (order.number, order.call_id, order.category, order.recording_ref) == (
        heard[1].replace(" ", ""), complaint.call_sid, "service", "RE-during-outage")
    assert got[complaint.call_sid].intent == "complaint"
