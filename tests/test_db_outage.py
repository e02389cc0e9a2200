"""The database unavailable during calls: every call is still answered on both channels, a complaint is kept
with the number the caller heard, and once the database is back every call has one record and every
complaint one work order with that number.

PostgreSQL is a private server the test stops for the outage and starts again. A locked SQLite is another
connection holding ``BEGIN EXCLUSIVE``: readers go on, so inquiries are still answered; writers fail
after their busy timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy
from sqlalchemy import func, select

from hotline.app import Hotline, build_hotline, create_app, prepare
from hotline.settings import Settings
from recordings.prompts import write_placeholder_prompts
from routing.keys import EVENTS_STREAM
from simulate.database import fill_with_an_earlier_day
from simulate.stack import TcpProxy
from softphone.agi_peer import AsteriskPeer, PeerCall
from store.db import connect
from store.models import CallRecord, DemoCard, MenuVersion, Recording, WorkOrder
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, serve_agi
from tests.fakes.clock import Now
from tests.fakes.private_postgres import PrivatePostgres
from tests.fakes.sqlite_lock import SqliteLock, hold_locked
from tests.fakes.twilio_api import TwilioApi
from tests.fakes.twilio_caller import TwilioCaller
from tests.fakes.twilio_media import MediaServer
from tests.test_recordings import recording_callback, run_jobs
from tests.test_survey import (
    HOTLINE_NUMBER,
    customer_phone,
    dial,
    dispositions,
    local,
    resolved_visit,
    scheduled,
    status_callback,
    visit_row,
)
from workers.records import RecordWriter
from workers.stream import RECORDS_GROUP, ConsumerConfig, StreamConsumer

CARD, PIN, ID_LAST6 = "6222021234567894", "123456", "12345*"
HEARD = re.compile(r"工单号：([0-9 ]+)。")


@pytest.fixture
def settings(settings: Settings, media: MediaServer) -> Settings:
    # A short SQL timeout: a locked SQLite makes each write wait this long before the caller's fallback.
    return settings.model_copy(update={"twilio_api_base": media.base, "db_timeout_s": 1.0})


def twilio_calls(hotline: Hotline, media: MediaServer, sqlite_readable: bool) -> dict[str, TwilioCaller]:
    """An inquiry, a loss report, a complaint (with its recording callback) and an agent call, each hung up."""
    client = create_app(hotline=hotline).test_client()
    calls = {kind: TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL) for kind in ("inquiry", "loss", "complaint", "agent")}
    for caller, keys in ((calls["inquiry"], ["1", CARD + "#"] + ([PIN] if sqlite_readable else [])),
                         (calls["loss"], ["2", CARD + "#"] + ([ID_LAST6] if sqlite_readable else [])),
                         (calls["complaint"], ["3", "2"]), (calls["agent"], ["0"])):
        caller.dial()  # TwilioCaller asserts every answer is 200 TwiML: never a 500
        for key in keys:
            caller.press(key)
    complaint = calls["complaint"]
    sid = f"RE{complaint.call_sid[2:]}"
    media.add(sid, complaint.call_sid)
    complaint.record(sid, 20, url=media.recording_url(sid))
    assert recording_callback(complaint, media.recording_url(sid), sid=sid).status_code == 204
    for caller in calls.values():
        assert caller.hang_up() == 204
    return calls


def agi_calls(address: tuple[str, int], sqlite_readable: bool) -> dict[str, tuple[AsteriskPeer, PeerCall]]:
    scripts = {
        "inquiry": ["1", CARD + "#"] + ([PIN, ""] if sqlite_readable else []),
        "loss": ["2", CARD + "#"] + ([ID_LAST6] if sqlite_readable else []),
        "complaint": ["3", "2", "record:3", ""],
        "agent": ["0"],
    }
    calls = {}
    for kind, keys in scripts.items():
        peer = AsteriskPeer(keys, caller=f"1390000000{len(calls)}")
        calls[kind] = (peer, peer.dial(*address))
    return calls


def records_consumer(hotline: Hotline) -> StreamConsumer:
    consumer = StreamConsumer(redis.Redis.from_url(hotline.redis_url),
                              ConsumerConfig(EVENTS_STREAM, RECORDS_GROUP, "test-writer", block_ms=100),
                              RecordWriter(hotline.sql).write)
    consumer.ensure_group()
    return consumer


def pending(hotline: Hotline) -> int:
    return int(redis.Redis.from_url(hotline.redis_url).xpending(EVENTS_STREAM, RECORDS_GROUP)["pending"])


def drain(consumer: StreamConsumer, hotline: Hotline) -> None:
    """The record writer's loop, after the outage: until every event is written and acknowledged."""
    while consumer.step() or pending(hotline):
        pass


def queued(hotline: Hotline, call_id: str) -> tuple[str, str]:
    """(skill, priority) the call waited with, from the router's ``call_queued`` event."""
    client = redis.Redis.from_url(hotline.redis_url, decode_responses=True)
    found = [(e["skill"], e["priority"]) for _, e in client.xrange(EVENTS_STREAM)
             if e["type"] == "call_queued" and e["call_id"] == call_id]
    assert len(found) == 1, found
    return found[0]


def heard_number(said: list[str]) -> str:
    match = HEARD.search(" ".join(said))
    assert match, said
    return match[1].replace(" ", "")


def dynamic_sound(text: str) -> str:
    """The sound FastAGI plays for a prompt filled per call (``agi_scripts.commands.Prompts``)."""
    return hashlib.sha256(f"zh-CN\n{text}".encode()).hexdigest()[:24]


def heard_over_agi(call: PeerCall, number: str) -> bool:
    text = f"我们已受理您的投诉，工单号：{' '.join(number)}。我们会尽快处理并回访您。"
    return any(sound.endswith("/dynamic/" + dynamic_sound(text)) for sound in call.played)


def assert_answered(agi: dict[str, tuple[AsteriskPeer, PeerCall]]) -> None:
    """No FastAGI call ended at the server's error boundary (its apology)."""
    for kind, (_, call) in agi.items():
        assert "hotline/apology" not in str(call.commands), f"the {kind} call was dropped with an apology"


def assert_written_once(hotline: Hotline, call_ids: list[str], among_others: bool = False) -> dict[str, WorkOrder]:
    """One record per call, none twice (and no other record, unless the database held some before);
    returns the work orders by call id."""
    with hotline.sql() as db:
        counts = dict(db.execute(select(CallRecord.call_id, func.count()).group_by(CallRecord.call_id)).all())
        orders = {o.call_id: o for o in db.scalars(select(WorkOrder))}
        order_counts = db.execute(select(WorkOrder.call_id, func.count()).group_by(WorkOrder.call_id)).all()
    if among_others:
        counts = {call_id: n for call_id, n in counts.items() if call_id in call_ids}
    assert counts == dict.fromkeys(call_ids, 1)
    assert all(n == 1 for _, n in order_counts)
    return orders


# -- PostgreSQL stopped ---------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
def test_calls_during_a_postgres_outage_are_answered_and_everything_is_written_after(
        hotline: Hotline, private_postgres: PrivatePostgres, media: MediaServer, prompts: Path) -> None:
    consumer = records_consumer(hotline)
    with serve_agi(hotline) as address:
        private_postgres.stop()
        try:
            twilio = twilio_calls(hotline, media, sqlite_readable=False)
            agi = agi_calls(address, sqlite_readable=False)
            with pytest.raises(sqlalchemy.exc.OperationalError):
                consumer.step()  # the record writer cannot write: the events stay unacknowledged
            assert pending(hotline) > 0
        finally:
            private_postgres.start()
    drain(consumer, hotline)

    assert_answered(agi)
    for kind, skill in (("inquiry", "inquiry"), ("loss", "loss")):  # both need the bank: an agent takes over
        assert queued(hotline, twilio[kind].call_sid) == queued(hotline, agi[kind][0].uniqueid) == (
            skill, "10" if skill == "loss" else "5")
    assert twilio["loss"].transcript[-1] == "正在为您优先转接挂失专员，请稍候。"

    call_ids = [c.call_sid for c in twilio.values()] + [peer.uniqueid for peer, _ in agi.values()]
    orders = assert_written_once(hotline, call_ids)
    twilio_order, agi_order = orders[twilio["complaint"].call_sid], orders[agi["complaint"][0].uniqueid]
    assert twilio_order.number == heard_number(twilio["complaint"].transcript)
    assert heard_over_agi(agi["complaint"][1], agi_order.number)
    assert len(orders) == 2 and all(re.fullmatch(r"\d{6}0\d{6}", o.number) for o in orders.values())
    assert (twilio_order.category, twilio_order.status, twilio_order.callback_number) == (
        "fees", "open", twilio["complaint"].caller)
    with hotline.sql() as db:
        recordings = {r.call_id: r for r in db.scalars(select(Recording))}
    # Both recordings were stored while the database was away; their rows came after, linked.
    assert recordings[twilio["complaint"].call_sid].work_order == twilio_order.number
    assert recordings[agi["complaint"][0].uniqueid].work_order == agi_order.number
    assert hotline.desk.show(twilio_order.number)["changes"][0]["action"] == "open"

    drain(consumer, hotline)  # written twice (a replayed batch): nothing doubles
    assert_written_once(hotline, call_ids)


@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
def test_a_process_started_during_the_outage_answers_calls_with_the_menu_copied_to_redis(
        hotline: Hotline, settings: Settings, private_postgres: PrivatePostgres, prompts: Path) -> None:
    with private_postgres.outage():
        answers_both_channels(build_hotline(settings))  # a process restarted while the database is away


def answers_both_channels(hotline: Hotline) -> None:
    """A Twilio and a FastAGI caller reach the main menu and an agent's queue, with no apology."""
    caller = TwilioCaller(create_app(hotline=hotline).test_client(), AUTH_TOKEN, PUBLIC_URL)
    caller.dial()
    caller.press("3")
    assert caller.said() == ["服务态度请按1，收费问题请按2，银行卡和账户问题请按3，其他问题请按4。"]
    with serve_agi(hotline) as address:
        call = AsteriskPeer(["0"]).dial(*address)
    assert call.played[:2] == ["hotline/hotline/zh-CN/welcome", "hotline/hotline/zh-CN/main"]
    assert "hotline/apology" not in str(call.commands)


@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
def test_a_new_redis_beside_a_database_that_has_menus_does_not_make_calls_need_the_database(
        hotline: Hotline, settings: Settings, private_postgres: PrivatePostgres, prompts: Path) -> None:
    # A new (or restarted, unpersisted) Redis next to a used database: the live menu number is only in SQL.
    redis.Redis.from_url(hotline.redis_url).flushdb()
    restarted = build_hotline(settings)
    restarted.menus.ensure_published(settings.menu_name)  # what every process does at start
    with private_postgres.outage():
        answers_both_channels(restarted)


@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
def test_redis_losing_the_live_menu_during_a_database_outage_leaves_calls_on_the_menu_last_seen(
        hotline: Hotline, private_postgres: PrivatePostgres, prompts: Path) -> None:
    answers_both_channels(hotline)
    with private_postgres.outage():
        redis.Redis.from_url(hotline.redis_url).flushdb()  # Redis restarted without its data, meanwhile
        answers_both_channels(hotline)


@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
def test_a_fastagi_call_that_meets_the_error_boundary_still_gets_a_whole_record(
        hotline: Hotline, settings: Settings, private_postgres: PrivatePostgres, prompts: Path) -> None:
    redis.Redis.from_url(hotline.redis_url).flushdb()  # nothing of the menus left anywhere but in SQL
    consumer = records_consumer(hotline)
    with private_postgres.outage():
        fresh = build_hotline(settings)  # a FastAGI process started now cannot know any menu
        with serve_agi(fresh) as address:
            peer = AsteriskPeer(["0"])
            call = peer.dial(*address)
    assert "hotline/apology" in str(call.commands)  # the boundary's apology: nothing else could be said
    drain(consumer, hotline)
    with hotline.sql() as db:
        row = db.scalar(select(CallRecord).where(CallRecord.call_id == peer.uniqueid))
    assert row is not None, "the failed call has no record"
    assert (row.outcome, row.end_status, row.channel, row.direction, row.caller_masked) == (
        "failed", "failed", "asterisk", "inbound", "138****5678")
    assert row.started_at is not None and row.ended_at is not None


@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
def test_a_complaint_made_twice_in_one_call_during_the_outage_gets_one_number(
        hotline: Hotline, private_postgres: PrivatePostgres) -> None:
    caller = TwilioCaller(create_app(hotline=hotline).test_client(), AUTH_TOKEN, PUBLIC_URL)
    with private_postgres.outage():
        caller.dial()
        numbers = []
        for attempt in range(2):  # complain, back to the main menu, complain again
            caller.press("3")
            caller.press("4")
            caller.record(f"RE-twice-{attempt}", 10)
            numbers.append(heard_number(caller.said()))
            caller.press("2")
        caller.hang_up()
    drain(records_consumer(hotline), hotline)
    assert numbers[0] == numbers[1]
    with hotline.sql() as db:
        assert [o.number for o in db.scalars(select(WorkOrder))] == [numbers[0]]


# -- SQLite locked --------------------------------------------------------------------------------


def test_calls_while_sqlite_is_locked_read_what_they_can_and_everything_is_written_after(
        hotline: Hotline, settings: Settings, media: MediaServer, prompts: Path) -> None:
    consumer = records_consumer(hotline)
    with serve_agi(hotline) as address, SqliteLock(settings.sql_url):
        twilio = twilio_calls(hotline, media, sqlite_readable=True)
        agi = agi_calls(address, sqlite_readable=True)
        with pytest.raises(sqlalchemy.exc.OperationalError, match="database is locked"):
            consumer.step()
        assert pending(hotline) > 0
    drain(consumer, hotline)

    assert_answered(agi)
    # Reads go on under the lock: the inquiry is answered in full.
    assert twilio["inquiry"].transcript[-2].startswith("您的余额为12345.67元")
    # The freeze is a write: it waits, fails, and the caller goes to the loss queue first.
    assert queued(hotline, twilio["loss"].call_sid) == queued(hotline, agi["loss"][0].uniqueid) == ("loss", "10")
    with hotline.sql() as db:
        assert db.scalar(select(DemoCard.status).where(DemoCard.last4 == CARD[-4:])) == "active"

    call_ids = [c.call_sid for c in twilio.values()] + [peer.uniqueid for peer, _ in agi.values()]
    orders = assert_written_once(hotline, call_ids)
    assert orders[twilio["complaint"].call_sid].number == heard_number(twilio["complaint"].transcript)
    assert heard_over_agi(agi["complaint"][1], orders[agi["complaint"][0].uniqueid].number)


def test_hold_locked_refuses_writers_until_it_lets_go_and_readers_go_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    sql = connect(url, timeout_s=0.2)
    with sql.begin() as db:
        db.add(MenuVersion(menu="m", version=1, source="before", published_by="test"))
    released = hold_locked(url, 1.0)  # what the day simulator uses for its SQLite outage
    with sql() as db:
        assert db.scalar(select(MenuVersion.source)) == "before"
    with pytest.raises(sqlalchemy.exc.OperationalError, match="database is locked"), sql.begin() as db:
        db.add(MenuVersion(menu="m", version=2, source="during", published_by="test"))
    released.join()
    with sql.begin() as db:
        db.add(MenuVersion(menu="m", version=2, source="after", published_by="test"))
    with sql() as db:
        assert list(db.scalars(select(MenuVersion.source).order_by(MenuVersion.version))) == ["before", "after"]


def test_a_malformed_pending_work_order_does_not_hold_back_the_call_records(hotline: Hotline) -> None:
    client = redis.Redis.from_url(hotline.redis_url)
    client.xadd(EVENTS_STREAM, {"type": "work_order_pending", "call_id": "CA-bad", "work_order": "2601010000001",
                                "priority": "high", "created_at": "soon"})
    client.xadd(EVENTS_STREAM, {"type": "call_ended", "call_id": "CA-next", "ts": "1764000000", "outcome": "hangup"})
    drain(records_consumer(hotline), hotline)
    with hotline.sql() as db:
        assert list(db.scalars(select(CallRecord.call_id))) == ["CA-next"]
        assert db.scalar(select(func.count()).select_from(WorkOrder)) == 0


# -- the back office -------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
def test_the_back_office_answers_503_with_the_reason_while_the_database_is_away(
        hotline: Hotline, private_postgres: PrivatePostgres) -> None:
    from tests.conftest import API_TOKEN
    from tests.web import SessionClient, add_user

    add_user(hotline, "wang", "admin")
    hotline.settings = hotline.settings.model_copy(update={"api_token": API_TOKEN})
    app = create_app(hotline=hotline)
    api, page = app.test_client(), SessionClient(app.test_client(), "wang")
    token = {"Authorization": f"Bearer {API_TOKEN}"}
    assert api.get("/api/complaints", headers=token).status_code == 200
    with private_postgres.outage():
        for path in ("/api/complaints", "/api/records", "/api/reports/summary?from=2026-12-01&to=2026-12-06"):
            reply = api.get(path, headers=token)
            assert (reply.status_code, reply.get_json()) == (503, {"error": "database unavailable"}), path
            assert reply.headers["Retry-After"] == "5"
        reply = api.post("/api/complaints/202612060000001/resolve", headers=token, json={"by": "bo", "note": "x"})
        assert reply.status_code == 503
        shown = page("GET", "/admin/work-orders")  # a page of a logged-in supervisor
        assert shown.status_code == 503 and "数据库不可用" in shown.get_data(as_text=True)
        assert "127.0.0.1" not in shown.get_data(as_text=True)  # no host or port of the database
    assert api.get("/api/complaints", headers=token).status_code == 200


@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
def test_a_server_that_accepts_but_does_not_answer_sends_the_complaint_to_its_outage_path_in_time(
        hotline: Hotline, database_url: str) -> None:
    # A stuck job holds a lock on the work orders: the server takes the statement and never answers it.
    stuck = sqlalchemy.create_engine(database_url).connect()
    stuck.exec_driver_sql("BEGIN")
    stuck.exec_driver_sql("LOCK TABLE work_orders IN ACCESS EXCLUSIVE MODE")
    let_go = threading.Timer(20, stuck.rollback)  # at the latest: a hotline that waits fails, not hangs
    let_go.start()
    caller = TwilioCaller(create_app(hotline=hotline).test_client(), AUTH_TOKEN, PUBLIC_URL)
    try:
        caller.dial()
        caller.press("3")
        caller.press("2")
        began = time.monotonic()
        caller.record("RE-locked", 10)
        waited = time.monotonic() - began
        number = heard_number(caller.said())  # the number was given all the same, for the pending write
        caller.hang_up()
    finally:
        let_go.cancel()
        stuck.rollback()
        stuck.close()
    assert waited < 10, f"the caller waited {waited:.1f} s for a locked table (Twilio gives up at 15 s)"
    drain(records_consumer(hotline), hotline)
    with hotline.sql() as db:
        assert [o.number for o in db.scalars(select(WorkOrder))] == [number]


# -- connections cut at the moment each service runs, on a database in service ----------------------

SERVICE_CUTS = {
    # service: (keys before it, the prompt asking for its input, its input, what the caller gets)
    "bank.lookup_card": (["1"], "inquiry_card", [CARD + "#"], ("inquiry", "5")),
    "bank.verify_pin": (["1", CARD + "#"], "inquiry_pin", [PIN], ("inquiry", "5")),
    "bank.freeze_card": (["2", CARD + "#"], "loss_id", [ID_LAST6], ("loss", "10")),
    "complaint.open": (["3", "2"], "complaint_record", ["record:3", ""], None),
}


@pytest.fixture
def cut_hotline(settings: Settings, private_postgres_url: str) -> Iterator[tuple[Hotline, TcpProxy]]:
    """A hotline whose PostgreSQL already holds an earlier day, reached through a proxy that cuts it."""
    fill_with_an_earlier_day(private_postgres_url, 2000, seed=5)
    proxy = TcpProxy(private_postgres_url)
    hotline = prepare(settings.model_copy(update={"database_url": proxy.url}))
    write_placeholder_prompts(hotline.menus.live(settings.menu_name), settings.recordings_dir / "prompts")
    yield hotline, proxy
    proxy.close()


@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
@pytest.mark.parametrize("service", list(SERVICE_CUTS))
def test_connections_cut_as_a_service_runs_take_the_menus_error_branch_on_both_channels(
        cut_hotline: tuple[Hotline, TcpProxy], service: str) -> None:
    hotline, proxy = cut_hotline
    before, prompt, given, queued_as = SERVICE_CUTS[service]
    consumer = records_consumer(hotline)
    # Twilio: the caller's next key runs the service, with every pooled connection just cut.
    caller = TwilioCaller(create_app(hotline=hotline).test_client(), AUTH_TOKEN, PUBLIC_URL)
    caller.dial()
    for key in before:
        caller.press(key)
    with proxy.cut():
        if queued_as is None:
            caller.record("RE-cut", 10)
        else:
            caller.press(given[0])
        caller.hang_up()
    # FastAGI: the cut comes as the prompt asking for the service's input plays.
    with contextlib.ExitStack() as outage, serve_agi(hotline) as address:
        def cut_at(sound: str) -> None:
            if sound.endswith(f"/{prompt}") and not proxy.down:
                outage.enter_context(proxy.cut())
        peer = AsteriskPeer([*before, *given], on_play=cut_at)
        call = peer.dial(*address)
    assert "hotline/apology" not in str(call.commands)
    if queued_as is not None:
        assert queued(hotline, caller.call_sid) == queued(hotline, peer.uniqueid) == queued_as
    drain(consumer, hotline)
    orders = assert_written_once(hotline, [caller.call_sid, peer.uniqueid], among_others=True)
    if queued_as is None:  # the number each caller heard is the one their work order got
        assert orders[caller.call_sid].number == heard_number(caller.said())
        assert heard_over_agi(call, orders[peer.uniqueid].number)


# -- return visits --------------------------------------------------------------------------------

@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
def test_a_status_callback_while_the_database_is_away_is_written_by_a_job_once_it_is_back(
    settings: Settings, twilio_api: TwilioApi, private_postgres: PrivatePostgres,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rest = twilio_api.server
    hotline = prepare(settings.model_copy(update={"twilio_number": HOTLINE_NUMBER, "twilio_api_base": rest.url}))
    hotline.desk._clock = hotline.visits.clock = Now(local(2, 10))  # noqa: SLF001 - the injected clock
    number, visit_id = resolved_visit(hotline)
    phone = customer_phone(create_app(hotline=hotline).test_client())
    phone.post(dial(hotline, rest, visit_id), Direction="outbound-api")
    phone.press("2")
    with private_postgres.outage():  # the customer hangs up; Twilio posts its status callback once
        assert status_callback(phone, visit_id, 1, CallStatus="completed") == 204
    assert dispositions(hotline, visit_id) == ["dialing"]
    assert f"visit-outcome-{visit_id}-1" in scheduled(hotline)

    run_jobs(hotline, monkeypatch)
    assert dispositions(hotline, visit_id) == ["answered"], "the customer was reached: not called again"
    assert visit_row(hotline, visit_id).status == "completed"
    assert hotline.desk.show(number)["changes"][-1]["detail"] == "customer reached, no rating given"
