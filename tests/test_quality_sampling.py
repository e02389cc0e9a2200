"""The sampling rules on a fixed synthetic week: exactly the calls they should pick, queued round-robin."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hotline.app import Hotline
from hotline.cli import main
from quality.sampling import Sampler, SamplingRules
from quality.weeks import week_of
from store.models import CallRecord, ReturnVisit, ReviewItem, User, WorkOrder, WorkOrderChange
from workers.jobs import PERIODIC, install, sample_calls

ZONE = "Asia/Shanghai"
WEEK = "2026-W10"  # Monday 2026-03-02 .. Sunday 2026-03-08, Shanghai time
MONDAY = dt.datetime(2026, 3, 2, tzinfo=ZoneInfo(ZONE)).astimezone(dt.UTC)  # stored as UTC, as the writer does

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def call(db: Session, call_id: str, agent: str, at: dt.datetime, talk_s: float | None = 100.0) -> None:
    db.add(CallRecord(call_id=call_id, agent_id=agent, queue="general", started_at=at,
                      answered_at=at + dt.timedelta(seconds=5) if agent else None, talk_s=talk_s))


def order(db: Session, call_id: str, reopened: bool = False, rating: int | None = None) -> None:
    wo = WorkOrder(number=f"WO-{call_id}", call_id=call_id, category="fees", caller_masked="", callback_number="",
                   language="zh-CN", recording_ref="")
    db.add(wo)
    db.flush()
    if reopened:
        db.add(WorkOrderChange(work_order_id=wo.id, actor="x", action="reopen"))
    if rating is not None:
        db.add(ReturnVisit(work_order_id=wo.id, number="", number_key="k", channel="twilio", language="zh-CN",
                           status="completed", due_at=MONDAY, rating=rating))


def synthetic_week(db: Session) -> None:
    for i in range(10):  # a1: 10 calls; 20 % -> ceil(2.0) = 2 of them
        call(db, f"CA-a1-{i:02d}", "a1", MONDAY + dt.timedelta(hours=9, minutes=i))
    for i in range(3):  # a2: 3 calls; 20 % -> ceil(0.6) = 1
        call(db, f"CA-a2-{i}", "a2", MONDAY + dt.timedelta(days=1, hours=10 + i))
    # a3: 5 calls; 20 % -> ceil(1.0) = 1, and the other rules
    day3 = MONDAY + dt.timedelta(days=2, hours=11)
    call(db, "CA-a3-long", "a3", day3, talk_s=601.0)  # longer than 600 s
    call(db, "CA-a3-edge", "a3", day3 + dt.timedelta(minutes=1), talk_s=600.0)  # not longer than 600 s
    call(db, "CA-a3-reopened", "a3", day3 + dt.timedelta(minutes=2))
    order(db, "CA-a3-reopened", reopened=True)
    call(db, "CA-a3-unhappy", "a3", day3 + dt.timedelta(minutes=3))
    order(db, "CA-a3-unhappy", rating=4)  # 4 = dissatisfied
    call(db, "CA-a3-happy", "a3", day3 + dt.timedelta(minutes=4))
    order(db, "CA-a3-happy", rating=2)  # 2 = satisfied: no rule
    # outside: nobody answered (IVR only, reopened work order, long), the week before, the week after
    call(db, "CA-ivr", "", day3, talk_s=900.0)
    order(db, "CA-ivr", reopened=True, rating=5)
    call(db, "CA-before", "a1", MONDAY - dt.timedelta(minutes=30), talk_s=900.0)  # Sunday 23:30 of W09
    call(db, "CA-after", "a1", MONDAY + dt.timedelta(days=7), talk_s=900.0)  # Monday 00:00 of W11
    # reviewers: two supervisors (lin is agent a1 too), a qa; an inactive qa and an admin are not reviewers
    db.add_all([User(name="lin", role="supervisor", password_hash="x", agent_id="a1"),
                User(name="quinn", role="qa", password_hash="x"),
                User(name="sue", role="supervisor", password_hash="x"),
                User(name="old", role="qa", password_hash="x", active=False),
                User(name="boss", role="admin", password_hash="x")])
    db.commit()


EXPECTED = {
    # the share rule: each agent's calls ranked by sha256(call id), the first ceil(n * 20 / 100)
    "CA-a1-03": ["share"], "CA-a1-01": ["share"],
    "CA-a2-0": ["share"],
    "CA-a3-unhappy": ["share", "dissatisfied"],
    "CA-a3-reopened": ["reopened"],
    "CA-a3-long": ["long"],
}


def test_the_rules_pick_exactly_the_calls_they_should_and_queue_them_round_robin(sql: sessionmaker[Session]) -> None:
    with sql() as db:
        synthetic_week(db)
    sampler = Sampler(sql, SamplingRules(share_percent=20, long_call_s=600), ZONE)
    result = sampler.run(WEEK)
    assert (result.week, result.picked, result.added) == (WEEK, 6, 6)
    assert result.by_reason == {"share": 4, "dissatisfied": 1, "reopened": 1, "long": 1}
    with sql() as db:
        items = list(db.scalars(select(ReviewItem).order_by(ReviewItem.call_started_at, ReviewItem.call_id)))
    assert {i.call_id: i.reasons for i in items} == EXPECTED
    assert all(i.week == WEEK and not i.calibration and i.status == "open" for i in items)
    # in call order: lin, quinn, sue in turn, but lin never gets a call of a1 (lin is a1)
    assert [(i.call_id, i.reviewer) for i in items] == [
        ("CA-a1-01", "quinn"), ("CA-a1-03", "sue"),  # lin skipped twice
        ("CA-a2-0", "lin"), ("CA-a3-long", "quinn"), ("CA-a3-reopened", "sue"), ("CA-a3-unhappy", "lin")]
    # a re-run over the same week picks the same calls and queues nothing new
    again = sampler.run(WEEK)
    assert (again.picked, again.added) == (6, 0)
    with sql() as db:
        assert len(list(db.scalars(select(ReviewItem)))) == 6


def test_rules_switched_off_pick_nothing(sql: sessionmaker[Session]) -> None:
    with sql() as db:
        synthetic_week(db)
    result = Sampler(sql, SamplingRules(share_percent=0, long_call_s=None, reopened=False, dissatisfied=False),
                     ZONE).run(WEEK)
    assert (result.picked, result.added) == (0, 0)


def test_the_worker_clock_and_the_cli_run_the_same_rules(hotline: Hotline, database_url: str, tmp_path: Path) -> None:
    with hotline.sql() as db:
        synthetic_week(db)
    assert PERIODIC["sample_calls"] == (sample_calls, 3600.0)  # enqueued hourly by one worker's clock
    install(hotline)
    now = dt.datetime.now(dt.UTC)
    last, this = (week_of(now - dt.timedelta(days=7), ZONE), week_of(now, ZONE))
    assert sample_calls() == f"quality sampling {last}: 0 picked, 0 queued; quality sampling {this}: 0 picked, 0 queued"
    env = {"DATABASE_URL": database_url, "HOTLINE_DATA_DIR": str(tmp_path / "var"), "HOTLINE_QA_SHARE_PERCENT": "20",
           "HOTLINE_QA_LONG_CALL_SECONDS": "600"}
    ran = CliRunner().invoke(main, ["quality", "sample", "--week", WEEK], env=env)
    assert ran.exit_code == 0, ran.output
    assert ran.output.strip() == (f"{WEEK}: 6 calls picked (dissatisfied 1, long 1, reopened 1, share 4), "
                                  "6 new in the review queues")
    assert CliRunner().invoke(main, ["quality", "sample", "--week", "2026-W60"], env=env).exit_code == 2
