"""Return visits: scheduled on resolve inside the calling window, never to a do-not-call number, retried
with backoff, given up as unreachable, capped per number across visits, idempotent per attempt.

The policy tests inject the clock and record what would go to RQ; the calls go through the real
dialers to a fake Twilio REST API and a fake Asterisk AMI, over real sockets. One test runs the
whole path through RQ. Local times are Asia/Shanghai (UTC+8, no DST); 2026-03-02 is a Monday.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from complaints.calling_window import CallingWindow
from complaints.return_visits import ReturnVisits, VisitPolicy, add_do_not_call
from complaints.visit_calls import VisitDialer
from complaints.work_orders import WorkOrderDesk
from hotline.app import Hotline, prepare, visit_policy
from hotline.settings import Settings
from ivr.services import CallInfo
from store.models import ReturnVisit, VisitAttempt, WorkOrder
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.fakes.ami_server import FakeAmiServer
from tests.fakes.clock import Now
from tests.fakes.http_server import LocalHttpServer, Reply, SeenRequest
from workers import jobs
from workers.dialers import AmiConfig, AmiVisitDialer, TwilioVisitConfig, TwilioVisitDialer
from workers.runner import JobWorker

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CUSTOMER = "+8613812345678"
HOTLINE_NUMBER = "+8610095555"
AMI_SECRET = "visits-ami-secret"
NO_ANSWER, BUSY = ("Failure", 3), ("Failure", 5)


def local(day: int, hh: int, mm: int = 0, ss: int = 0, month: int = 3) -> dt.datetime:
    """2026-<month>-<day> hh:mm:ss in Shanghai, as the UTC time the hotline stores."""
    return dt.datetime(2026, month, day, hh, mm, ss, tzinfo=SHANGHAI).astimezone(dt.UTC)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives stored UTC times back without their zone."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass
class Rig:
    """ReturnVisits with an injected clock; ``enqueued`` is what would have gone to RQ."""

    sql: sessionmaker
    now: Now
    desk: WorkOrderDesk
    visits: ReturnVisits
    enqueued: list[tuple[dt.datetime, int, int]] = field(default_factory=list)
    calls: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def resolve(self, at: dt.datetime, caller: str = CUSTOMER, channel: str = "asterisk") -> str:
        self.now.at = at
        number = self.desk.open_work_order(
            CallInfo(f"CA-{next(self.calls)}", caller, channel, "zh-CN"), "card_account", "RE")
        self.desk.act(number, "resolve", "bob", note="card re-issued")
        return number

    def visit(self, work_order: str) -> ReturnVisit:
        """The (latest) return visit of ``work_order``."""
        with self.sql() as db:
            return db.scalars(select(ReturnVisit).join(WorkOrder, WorkOrder.id == ReturnVisit.work_order_id)
                              .where(WorkOrder.number == work_order).order_by(ReturnVisit.id)).all()[-1]

    def visit_rows(self) -> list[ReturnVisit]:
        with self.sql() as db:
            return list(db.scalars(select(ReturnVisit).order_by(ReturnVisit.id)))

    def attempts(self, visit_id: int | None = None) -> list[tuple[int, int, str, dt.datetime | None]]:
        with self.sql() as db:
            query = select(VisitAttempt).order_by(VisitAttempt.placed_at, VisitAttempt.id)
            if visit_id is not None:
                query = query.where(VisitAttempt.visit_id == visit_id)
            return [(a.visit_id, a.attempt, a.disposition, aware(a.placed_at)) for a in db.scalars(query)]

    def dial(self, at: dt.datetime, visit_id: int, attempt: int) -> str:
        self.now.at = at
        return self.visits.dial(visit_id, attempt)


def make_rig(sql: sessionmaker, dialers: dict[str, VisitDialer] | None = None,
             holidays: tuple[dt.date, ...] = (), policy: VisitPolicy | None = None) -> Rig:
    now = Now(local(2, 10))
    desk = WorkOrderDesk(sql, None, clock=now)
    policy = policy or VisitPolicy(window=CallingWindow(dt.time(9), dt.time(20), holidays, "Asia/Shanghai"))
    rig = Rig(sql, now, desk, None)  # type: ignore[arg-type]

    def enqueue(when: dt.datetime, visit_id: int, attempt: int) -> None:
        with sql() as db:  # only after the commit: the job must find its visit
            visible = db.get(ReturnVisit, visit_id)
            assert visible is not None and visible.status == "scheduled", "enqueued before the visit was committed"
        rig.enqueued.append((when, visit_id, attempt))

    rig.visits = ReturnVisits(sql, desk, policy, enqueue, dialers or {}, clock=now)
    return rig


# -- fake Twilio REST and AMI servers ------------------------------------------------------------------


@pytest.fixture
def twilio_api() -> Iterator[LocalHttpServer]:
    sids = itertools.count(1)

    def answer(request: SeenRequest) -> Reply:
        if request.method == "POST" and request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json":
            sid = f"CA{next(sids):032x}"
            return Reply.json(201, {"sid": sid, "account_sid": ACCOUNT_SID, "status": "queued",
                                    "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"})
        return Reply.json(404, {"code": 20404, "message": "not found", "status": 404})

    server = LocalHttpServer(answer).start()
    yield server
    server.stop()


def twilio_dialer(api_base: str) -> TwilioVisitDialer:
    return TwilioVisitDialer(TwilioVisitConfig(ACCOUNT_SID, AUTH_TOKEN, api_base, HOTLINE_NUMBER,
                                               "https://hotline.example.com", request_timeout_s=5))


@pytest.fixture
def ami() -> Iterator[FakeAmiServer]:
    with FakeAmiServer(secret=AMI_SECRET) as server:
        yield server


def ami_dialer(port: int) -> AmiVisitDialer:
    return AmiVisitDialer(AmiConfig("127.0.0.1", port, "hotline", AMI_SECRET, ring_timeout_s=1,
                                    connect_timeout_s=1.0, result_grace_s=0.5))


def calls_json(server: LocalHttpServer) -> list[dict[str, list[str]]]:
    return [parse_qs(r.body.decode()) for r in server.requests if r.path.endswith("/Calls.json")]


# -- scheduling -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("resolved", "holidays", "due"), [
    (local(2, 10), (), local(2, 11)),  # an hour later, inside the window
    (local(2, 7), (), local(2, 9)),  # 08:00 is before the window opens
    (local(2, 18, 59), (), local(2, 19, 59)),  # the last minute of the window
    (local(2, 19), (), local(3, 9)),  # 20:00: the window has closed
    (local(2, 19, 30), (), local(3, 9)),
    (local(2, 19, 30), (dt.date(2026, 3, 3), dt.date(2026, 3, 4)), local(5, 9)),  # holidays are skipped
    (local(3, 12), (dt.date(2026, 3, 3),), local(4, 9)),  # resolved on a holiday
])
def test_resolving_schedules_the_visit_inside_the_calling_window(
    sql: sessionmaker, resolved: dt.datetime, holidays: tuple[dt.date, ...], due: dt.datetime,
) -> None:
    rig = make_rig(sql, holidays=holidays)
    number = rig.resolve(resolved)
    visit = rig.visit(number)
    assert (visit.status, aware(visit.due_at), visit.attempts, visit.channel) == ("scheduled", due, 0, "asterisk")
    assert rig.enqueued == [(due, visit.id, 1)]


def test_do_not_call_number_gets_no_visit(sql: sessionmaker, twilio_api: LocalHttpServer) -> None:
    rig = make_rig(sql, {"twilio": twilio_dialer(twilio_api.url)})
    with sql.begin() as db:  # written without the country code: the same phone
        assert add_do_not_call(db, "138 1234 5678", "agent", local(1, 12))
        assert not add_do_not_call(db, CUSTOMER, "agent", local(1, 12)), "already on the list"

    number = rig.resolve(local(2, 10), channel="twilio")

    visit = rig.visit(number)
    assert (visit.status, aware(visit.finished_at)) == ("cancelled", local(2, 10))
    assert rig.enqueued == []
    assert rig.dial(local(2, 11), visit.id, 1).startswith("skipped")
    assert twilio_api.requests == [] and rig.attempts() == []
    assert rig.desk.show(number)["status"] == "resolved"


def test_number_put_on_the_list_after_scheduling_is_not_called(sql: sessionmaker, twilio_api: LocalHttpServer) -> None:
    rig = make_rig(sql, {"twilio": twilio_dialer(twilio_api.url)})
    visit_id = rig.visit(rig.resolve(local(2, 10), channel="twilio")).id
    with sql.begin() as db:
        add_do_not_call(db, CUSTOMER, "agent", local(2, 10, 30))

    assert rig.dial(local(2, 11), visit_id, 1) == "skipped: the number is on the do-not-call list"
    assert rig.visit_rows()[0].status == "refused"
    assert twilio_api.requests == [] and rig.attempts() == [] and rig.enqueued == [(local(2, 11), visit_id, 1)]


def test_reopened_work_order_is_not_surveyed_until_resolved_again(
    sql: sessionmaker, twilio_api: LocalHttpServer,
) -> None:
    rig = make_rig(sql, {"twilio": twilio_dialer(twilio_api.url)})
    number = rig.resolve(local(2, 10), channel="twilio")
    first = rig.visit(number).id
    rig.now.at = local(2, 10, 30)
    rig.desk.act(number, "reopen", "alice", note="customer called again: the card still does not work")

    assert rig.dial(local(2, 11), first, 1).startswith("skipped")
    assert twilio_api.requests == [], "no call asking how satisfied they are with work still going on"
    assert rig.visit_rows()[0].status == "cancelled"

    rig.now.at = local(2, 14)
    rig.desk.act(number, "resolve", "bob", note="card replaced")
    second = rig.visit(number).id
    assert rig.enqueued[-1] == (local(2, 15), second, 1)
    assert rig.dial(local(2, 15), second, 1) == "attempt 1: pending"
    assert len(twilio_api.requests) == 1


def test_resolving_again_replaces_the_visit_still_waiting(sql: sessionmaker, twilio_api: LocalHttpServer) -> None:
    rig = make_rig(sql, {"twilio": twilio_dialer(twilio_api.url)})
    number = rig.resolve(local(2, 10), channel="twilio")
    first = rig.visit(number).id
    rig.now.at = local(2, 10, 20)
    rig.desk.act(number, "reopen", "alice")
    rig.now.at = local(2, 10, 40)
    rig.desk.act(number, "resolve", "bob", note="fee refunded after all")
    second = rig.visit(number).id

    assert [v.status for v in rig.visit_rows()] == ["cancelled", "scheduled"]
    assert rig.dial(local(2, 11), first, 1).startswith("skipped"), "the first visit's job still runs"
    assert rig.dial(local(2, 11, 40), second, 1) == "attempt 1: pending"
    assert len(twilio_api.requests) == 1, "the customer is called once about the work order"


# -- retries, backoff, unreachable --------------------------------------------------------------------------


def test_no_answer_and_busy_retry_with_backoff_inside_the_window_then_unreachable(
    sql: sessionmaker, ami: FakeAmiServer,
) -> None:
    rig = make_rig(sql, {"asterisk": ami_dialer(ami.port)}, holidays=(dt.date(2026, 3, 4),))
    number = rig.resolve(local(2, 17))
    visit_id = rig.visit(number).id
    assert rig.enqueued == [(local(2, 18), visit_id, 1)]

    ami.outcomes[CUSTOMER] = BUSY
    assert rig.dial(local(2, 18), visit_id, 1) == "attempt 1: busy"
    assert rig.enqueued[-1] == (local(2, 18, 30), visit_id, 2)  # 30 min later
    ami.outcomes[CUSTOMER] = NO_ANSWER
    assert rig.dial(local(2, 18, 30), visit_id, 2) == "attempt 2: no-answer"
    assert rig.enqueued[-1] == (local(3, 9), visit_id, 3)  # 2 h later is 20:30: the next morning
    ami.outcomes[CUSTOMER] = BUSY
    assert rig.dial(local(3, 9), visit_id, 3) == "attempt 3: busy"
    assert rig.enqueued[-1] == (local(5, 9), visit_id, 4)  # a day later is the 4th, a holiday
    visit = rig.visit(number)
    assert (visit.status, aware(visit.due_at), visit.attempts) == ("scheduled", local(5, 9), 3)
    ami.outcomes[CUSTOMER] = NO_ANSWER
    assert rig.dial(local(5, 9), visit_id, 4) == "attempt 4: no-answer"

    assert len(rig.enqueued) == 4, "no retry after the last one"
    visit = rig.visit(number)
    assert (visit.status, aware(visit.finished_at)) == ("unreachable", local(5, 9))
    assert rig.attempts() == [(visit_id, 1, "busy", local(2, 18)), (visit_id, 2, "no-answer", local(2, 18, 30)),
                              (visit_id, 3, "busy", local(3, 9)), (visit_id, 4, "no-answer", local(5, 9))]
    order = rig.desk.show(number)
    assert order["status"] == "resolved"
    last = order["changes"][-1]
    assert (last["actor"], last["action"], last["detail"]) == (
        "return visit", "note", "customer unreachable after 4 attempts")
    originates = ami.named("Originate")
    assert [o["Channel"] for o in originates] == [f"PJSIP/{CUSTOMER}@hotline-trunk"] * 4
    assert [o["Variable"][:2] for o in originates] == [
        [f"HOTLINE_VISIT={visit_id}", f"HOTLINE_ATTEMPT={n}"] for n in range(1, 5)]
    assert rig.dial(local(5, 9, 1), visit_id, 4).startswith("skipped"), "a retried job changes nothing"
    assert len(ami.named("Originate")) == 4


def test_retries_and_backoff_come_from_the_settings(sql: sessionmaker, ami: FakeAmiServer, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, visit_retries=1, visit_backoff_s=[600], visit_delay_s=300,
                        calling_window_start="08:00", calling_window_end="21:00", holidays=["2026-03-03"])
    rig = make_rig(sql, {"asterisk": ami_dialer(ami.port)}, policy=visit_policy(settings))
    ami.outcomes[CUSTOMER] = NO_ANSWER
    number = rig.resolve(local(2, 20, 50))
    visit_id = rig.visit(number).id
    assert rig.enqueued == [(local(2, 20, 55), visit_id, 1)]  # 5 min later, 21:00 is the end
    rig.dial(local(2, 20, 55), visit_id, 1)
    assert rig.enqueued[-1] == (local(4, 8), visit_id, 2)  # 21:05 is closed; the 3rd is a holiday
    rig.dial(local(4, 8), visit_id, 2)
    assert len(rig.enqueued) == 2
    assert rig.visit(number).status == "unreachable"
    assert rig.desk.show(number)["changes"][-1]["detail"] == "customer unreachable after 2 attempts"


def test_answered_call_without_a_rating_still_completes_the_visit(sql: sessionmaker, ami: FakeAmiServer) -> None:
    rig = make_rig(sql, {"asterisk": ami_dialer(ami.port)})
    number = rig.resolve(local(2, 10))
    visit_id = rig.visit(number).id

    assert rig.dial(local(2, 11), visit_id, 1) == "attempt 1: answered"
    assert rig.visit(number).status == "in_call"
    rig.now.at = local(2, 11, 2)
    rig.visits.call_ended(visit_id)  # the customer hung up during the survey

    visit = rig.visit(number)
    assert (visit.status, visit.rating, aware(visit.finished_at)) == ("completed", None, local(2, 11, 2))
    assert rig.attempts() == [(visit_id, 1, "answered", local(2, 11))]
    assert rig.enqueued == [(local(2, 11), visit_id, 1)], "a reached customer is not called again"
    assert rig.desk.show(number)["changes"][-1]["detail"] == "customer reached, no rating given"


# -- at most 7 calls in 7 days per number -----------------------------------------------------------------


def test_eighth_call_in_seven_days_waits_until_the_oldest_leaves_the_period(
    sql: sessionmaker, ami: FakeAmiServer,
) -> None:
    rig = make_rig(sql, {"asterisk": ami_dialer(ami.port)})
    ami.outcomes[CUSTOMER] = NO_ANSWER
    first = rig.visit(rig.resolve(local(2, 9))).id  # two complaints of the same customer
    second = rig.visit(rig.resolve(local(2, 9, 5))).id
    plan = [(local(2, 10), first, 1), (local(2, 10, 5), second, 1), (local(2, 10, 30), first, 2),
            (local(2, 10, 35), second, 2), (local(2, 12, 30), first, 3), (local(2, 12, 35), second, 3),
            (local(3, 12, 30), first, 4)]
    for at, visit_id, attempt in plan:
        assert (at, visit_id, attempt) in rig.enqueued
        assert rig.dial(at, visit_id, attempt) == f"attempt {attempt}: no-answer"
    assert len(ami.named("Originate")) == 7
    assert (local(3, 12, 35), second, 4) in rig.enqueued

    # The 8th call in 7 days: not placed, deferred to just after the oldest call (Mon 10:00) is 7 days old.
    free = local(9, 10, 0, 1)
    assert rig.dial(local(3, 12, 35), second, 4) == f"deferred to {free.isoformat()}"
    assert rig.enqueued[-1] == (free, second, 4)
    visit = rig.visit_rows()[1]
    assert (visit.status, visit.attempts, aware(visit.due_at)) == ("scheduled", 3, free)
    assert len(ami.named("Originate")) == 7 and len(rig.attempts()) == 7
    assert rig.dial(local(9, 9, 59, 59), second, 4) == f"deferred to {free.isoformat()}"  # still 7 in the period
    assert len(ami.named("Originate")) == 7

    assert rig.dial(free, second, 4) == "attempt 4: no-answer"
    assert len(ami.named("Originate")) == 8
    assert rig.attempts(second)[-1] == (second, 4, "no-answer", free)
    assert rig.visit_rows()[1].status == "unreachable"


# -- idempotency ----------------------------------------------------------------------------------------------


def test_dial_job_run_twice_places_one_call(sql: sessionmaker, twilio_api: LocalHttpServer) -> None:
    rig = make_rig(sql, {"twilio": twilio_dialer(twilio_api.url)})
    number = rig.resolve(local(2, 10), channel="twilio")
    visit_id = rig.visit(number).id

    assert rig.dial(local(2, 11), visit_id, 1) == "attempt 1: pending"
    assert rig.dial(local(2, 11, 0, 5), visit_id, 1).startswith("skipped")
    assert len(twilio_api.requests) == 1
    assert rig.attempts() == [(visit_id, 1, "dialing", local(2, 11))]
    with sql() as db:
        assert db.scalar(select(VisitAttempt.provider_call_id)) == f"CA{1:032x}"

    rig.now.at = local(2, 11, 1)
    for _ in range(2):  # Twilio retries its status callback
        rig.visits.finish_attempt(visit_id, 1, "no-answer")
    assert rig.enqueued == [(local(2, 11), visit_id, 1), (local(2, 11, 31), visit_id, 2)]
    assert rig.dial(local(2, 11, 31), visit_id, 1).startswith("skipped"), "the old job, run late"
    assert rig.dial(local(2, 11, 31), visit_id, 2) == "attempt 2: pending"
    assert rig.dial(local(2, 11, 31), visit_id, 2).startswith("skipped")
    assert len(twilio_api.requests) == 2
    assert [a[1:3] for a in rig.attempts()] == [(1, "no-answer"), (2, "dialing")]


def test_sweep_requeues_a_lost_job_and_fails_a_call_whose_outcome_never_came(
    sql: sessionmaker, twilio_api: LocalHttpServer,
) -> None:
    rig = make_rig(sql, {"twilio": twilio_dialer(twilio_api.url)})
    lost = rig.visit(rig.resolve(local(2, 10), channel="twilio")).id  # due 11:00; Redis lost its job
    silent = rig.visit(rig.resolve(local(2, 10, 10), channel="twilio")).id
    assert rig.dial(local(2, 11, 10), silent, 1) == "attempt 1: pending"  # no status callback ever comes
    rig.enqueued.clear()

    rig.now.at = local(2, 11, 10)
    assert rig.visits.sweep() == 0, "15 minutes' grace"
    rig.now.at = local(2, 11, 25, 1)
    assert rig.visits.sweep() == 2
    assert rig.enqueued == [(local(2, 11, 25, 1), lost, 1), (local(2, 11, 55, 1), silent, 2)]
    assert rig.attempts() == [(silent, 1, "failed", local(2, 11, 10))]
    assert rig.dial(local(2, 11, 25, 1), lost, 1) == "attempt 1: pending"


def test_sweep_completes_an_answered_visit_whose_end_was_missed(
    sql: sessionmaker, twilio_api: LocalHttpServer,
) -> None:
    rig = make_rig(sql, {"twilio": twilio_dialer(twilio_api.url)})
    visit_id = rig.visit(rig.resolve(local(2, 10), channel="twilio")).id
    assert rig.dial(local(2, 11), visit_id, 1) == "attempt 1: pending"
    rig.now.at = local(2, 11, 1)
    rig.visits.finish_attempt(visit_id, 1, "answered")  # the customer took the survey call ...
    # ... and its end never reached the database (it was away when the call ended)
    rig.now.at = local(2, 11, 10)
    assert rig.visits.sweep() == 0, "a survey call may still be going on"
    rig.now.at = local(2, 11, 20)
    assert rig.visits.sweep() == 1
    visit = next(v for v in rig.visit_rows() if v.id == visit_id)
    assert (visit.status, aware(visit.finished_at)) == ("completed", local(2, 11, 20))
    assert rig.visits.sweep() == 0


def test_twilio_refusing_the_call_is_a_failed_attempt_and_retried(sql: sessionmaker) -> None:
    error = {"code": 21215, "message": "Geo permission not enabled", "status": 400}
    server = LocalHttpServer(lambda request: Reply.json(400, error)).start()
    try:
        rig = make_rig(sql, {"twilio": twilio_dialer(server.url)})
        visit_id = rig.visit(rig.resolve(local(2, 10), channel="twilio")).id
        result = rig.dial(local(2, 11), visit_id, 1)
    finally:
        server.stop()
    assert result.startswith("attempt 1: failed Twilio refused the call (HTTP 400, error 21215)")
    assert rig.attempts() == [(visit_id, 1, "failed", local(2, 11))]
    assert rig.enqueued[-1] == (local(2, 11, 30), visit_id, 2)


# -- through RQ ---------------------------------------------------------------------------------------------


@pytest.fixture
def rq_hotline(settings: Settings, twilio_api: LocalHttpServer, monkeypatch: pytest.MonkeyPatch) -> Hotline:
    hotline = prepare(settings.model_copy(update={"twilio_number": HOTLINE_NUMBER, "twilio_api_base": twilio_api.url}))
    clock = Now(local(2, 10))
    hotline.desk._clock = clock  # noqa: SLF001 - the injected clock, as the constructor takes it
    hotline.visits.clock = clock
    monkeypatch.setattr(jobs, "_context", hotline)  # what `hotline worker` installs
    return hotline


def test_resolving_enqueues_the_dial_job_at_the_due_time_and_the_job_calls_twilio(
    rq_hotline: Hotline, twilio_api: LocalHttpServer,
) -> None:
    hotline = rq_hotline
    number = hotline.desk.open_work_order(CallInfo("CA-rq", CUSTOMER, "twilio", "zh-CN"), "fees", "RE-rq")
    hotline.desk.act(number, "resolve", "bob", note="fee refunded")
    with hotline.sql() as db:
        (visit,) = db.scalars(select(ReturnVisit)).all()

    registry = ScheduledJobRegistry(queue=hotline.jobs)
    job_id = f"visit-{visit.id}-1"
    assert registry.get_job_ids() == [job_id]
    assert registry.get_scheduled_time(job_id) == local(2, 11)
    job = Job.fetch(job_id, connection=hotline.jobs.connection)
    assert (job.func_name, job.args) == ("workers.jobs.dial_visit", (visit.id, 1))
    assert twilio_api.requests == [], "nothing is dialled before the due time"

    hotline.visits.clock.at = local(2, 11)  # the due time (long past for the real clock: RQ runs it now)
    worker = JobWorker([hotline.jobs], connection=hotline.jobs.connection)
    assert worker.work(burst=True, with_scheduler=True)
    assert Job.fetch(job_id, connection=hotline.jobs.connection).return_value() == "attempt 1: pending"

    [request] = twilio_api.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(
        f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    form = parse_qs(request.body.decode())
    assert form["To"] == [CUSTOMER] and form["From"] == [HOTLINE_NUMBER]
    assert form["Url"] == [f"https://hotline.example.com/twilio/voice?menu=survey&visit={visit.id}&attempt=1"
                           "&lang=zh-CN"]
    assert form["StatusCallback"] == [f"https://hotline.example.com/twilio/visit/status?visit={visit.id}&attempt=1"]
    assert form["MachineDetection"] == ["Enable"]

    # The same job again (a worker that died after dialling, RQ's retry): no second call.
    hotline.jobs.enqueue(jobs.dial_visit, visit.id, 1)
    JobWorker([hotline.jobs], connection=hotline.jobs.connection).work(burst=True)
    assert len(twilio_api.requests) == 1
    with hotline.sql() as db:
        assert len(db.scalars(select(VisitAttempt)).all()) == 1
