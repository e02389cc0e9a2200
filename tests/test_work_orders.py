"""Complaint work orders on SQLite and PostgreSQL: lifecycle and audit trail, forbidden transitions,
deadlines per category, escalation of overdue work orders, the CLI and the JSON API.

Times are UTC; T0 is 2026-03-02 09:00 in Asia/Shanghai. The desk's clock is injected.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from complaints.work_orders import BadTransition, MissingField, NoSuchWorkOrder, WorkOrderDesk
from hotline.app import Hotline, prepare
from hotline.cli import main
from hotline.settings import Settings
from ivr.services import CallInfo
from routing.events import EventLog
from routing.keys import EVENTS_STREAM
from store.models import ReturnVisit
from tests.conftest import api_caller
from tests.fakes.clock import Now
from tests.web import add_user
from workers import jobs

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
CUSTOMER = "+8613812345678"
MASKED = "+86138****5678"
TOKEN = "complaints-token-for-tests-0123456789"
H, MIN, S = dt.timedelta(hours=1), dt.timedelta(minutes=1), dt.timedelta(seconds=1)


@pytest.fixture
def now() -> Now:
    return Now(T0)


@pytest.fixture
def desk(sql: sessionmaker, redis_url: str, tmp_path: Path, now: Now) -> WorkOrderDesk:
    return WorkOrderDesk(sql, EventLog(redis.Redis.from_url(redis_url), tmp_path / "spool"), clock=now)


def open_order(desk: WorkOrderDesk, call_id: str = "CA-1", category: str = "card_account") -> str:
    return desk.open_work_order(CallInfo(call_id, CUSTOMER, "twilio", "zh-CN"), category, f"RE-{call_id}")


def when(iso: str | None) -> dt.datetime | None:
    return None if iso is None else dt.datetime.fromisoformat(iso)


def history(desk: WorkOrderDesk, number: str) -> list[tuple[Any, ...]]:
    return [(when(c["at"]), c["actor"], c["action"], c["from"], c["to"], c["detail"])
            for c in desk.show(number)["changes"]]


def stream(redis_url: str, *kinds: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return [fields for _, fields in client.xrange(EVENTS_STREAM) if not kinds or fields["type"] in kinds]


# -- the lifecycle and its audit trail -------------------------------------------------------------


def test_lifecycle_from_intake_to_closed_keeps_who_when_what(desk: WorkOrderDesk, now: Now, redis_url: str) -> None:
    number = open_order(desk)
    assert number == "260302000001"  # the day it was opened, then its id
    now.at = T0 + 10 * MIN
    assert desk.act(number, "assign", "alice", assignee="bob")["status"] == "assigned"
    now.at = T0 + 20 * MIN
    desk.act(number, "start", "bob")
    now.at = T0 + 3 * H
    desk.act(number, "resolve", "bob", note="card re-issued, fee refunded")
    now.at = T0 + 24 * H
    desk.act(number, "visit", "customer (survey)", rating=2, note="satisfied")
    now.at = T0 + 48 * H
    closed = desk.act(number, "close", "carol")

    assert closed["status"] == "closed"
    shown = desk.show(number)
    assert (shown["category"], shown["priority"], shown["caller"], shown["assignee"], shown["resolution"],
            shown["rating"], shown["overdue"]) == (
        "card_account", 7, MASKED, "bob", "card re-issued, fee refunded", 2, None)
    assert CUSTOMER not in json.dumps(shown)
    assert [when(shown[k]) for k in ("created_at", "first_contact_at", "resolved_at", "closed_at")] == [
        T0, T0 + 10 * MIN, T0 + 3 * H, T0 + 48 * H]
    assert history(desk, number) == [
        (T0, "ivr", "open", None, "open", "category card_account"),
        (T0 + 10 * MIN, "alice", "assign", "open", "assigned", "assignee bob"),
        (T0 + 20 * MIN, "bob", "start", "assigned", "in_progress", ""),
        (T0 + 3 * H, "bob", "resolve", "in_progress", "resolved", "card re-issued, fee refunded"),
        (T0 + 24 * H, "customer (survey)", "visit", "resolved", "visited", "rating 2; satisfied"),
        (T0 + 48 * H, "carol", "close", "visited", "closed", ""),
    ]
    assert [(e["type"], e["work_order"], e.get("status"), e.get("actor")) for e in stream(redis_url)] == [
        ("work_order_opened", number, None, None),
        ("work_order_assign", number, "assigned", "alice"),
        ("work_order_start", number, "in_progress", "bob"),
        ("work_order_resolve", number, "resolved", "bob"),
        ("work_order_visit", number, "visited", "customer (survey)"),
        ("work_order_close", number, "closed", "carol"),
    ]


def test_dissatisfied_customer_reopens_and_the_work_order_is_worked_again(desk: WorkOrderDesk, now: Now) -> None:
    number = open_order(desk, category="fees")
    desk.act(number, "resolve", "bob", note="explained the fee")
    now.at = T0 + 2 * H
    assert desk.act(number, "reopen", "customer (survey)", rating=5, note="very dissatisfied")["status"] == "reopened"
    with pytest.raises(BadTransition, match="is reopened: cannot close"):
        desk.act(number, "close", "carol")
    now.at = T0 + 3 * H
    desk.act(number, "start", "bob")
    now.at = T0 + 4 * H
    resolved = desk.act(number, "resolve", "bob", note="fee refunded")

    assert (resolved["status"], resolved["rating"], resolved["resolution"]) == ("resolved", 5, "fee refunded")
    assert when(resolved["resolved_at"]) == T0 + 4 * H
    assert history(desk, number)[1:] == [
        (T0, "bob", "resolve", "open", "resolved", "explained the fee"),
        (T0 + 2 * H, "customer (survey)", "reopen", "resolved", "reopened", "rating 5; very dissatisfied"),
        (T0 + 3 * H, "bob", "start", "reopened", "in_progress", ""),
        (T0 + 4 * H, "bob", "resolve", "in_progress", "resolved", "fee refunded"),
    ]


# Which actions each status allows, as the issue describes the lifecycle.
ALLOWED = {
    "open": {"assign": "assigned", "resolve": "resolved"},
    "assigned": {"assign": "assigned", "start": "in_progress", "resolve": "resolved"},
    "in_progress": {"assign": "assigned", "resolve": "resolved"},
    "resolved": {"visit": "visited", "reopen": "reopened", "close": "closed"},
    "visited": {"reopen": "reopened", "close": "closed"},
    "closed": {"reopen": "reopened"},
    "reopened": {"assign": "assigned", "start": "in_progress", "resolve": "resolved"},
}
PATH_TO = {
    "open": [], "assigned": ["assign"], "in_progress": ["assign", "start"], "resolved": ["resolve"],
    "visited": ["resolve", "visit"], "closed": ["resolve", "close"], "reopened": ["resolve", "reopen"],
}
ACTIONS = ("assign", "start", "resolve", "visit", "reopen", "close")


@pytest.mark.parametrize("status", ALLOWED)
def test_each_status_allows_exactly_its_transitions(desk: WorkOrderDesk, status: str) -> None:
    for n, action in enumerate(ACTIONS):
        number = open_order(desk, f"CA-{status}-{n}")
        for step in PATH_TO[status]:
            desk.act(number, step, "setup", assignee="bob", note="done")
        assert desk.show(number)["status"] == status
        before = desk.show(number)
        target = ALLOWED[status].get(action)
        if target is None:
            with pytest.raises(BadTransition) as refused:
                desk.act(number, action, "mallory", assignee="eve")
            assert str(refused.value).startswith(f"work order {number} is {status}: cannot {action} (allowed from ")
            assert desk.show(number) == before, "a refused action changes nothing, not even the audit trail"
        else:
            after = desk.act(number, action, "alice", assignee="bob", note="done")
            assert after["status"] == target, (status, action)
            assert desk.show(number)["changes"][-1]["action"] == action


def test_unknown_work_order_action_or_assignee_is_refused(desk: WorkOrderDesk) -> None:
    number = open_order(desk)
    with pytest.raises(NoSuchWorkOrder, match="work order 999 does not exist"):
        desk.act("999", "assign", "alice", assignee="bob")
    with pytest.raises(NoSuchWorkOrder):
        desk.show("999")
    with pytest.raises(BadTransition, match="unknown action 'escalate'"):
        desk.act(number, "escalate", "alice")
    with pytest.raises(MissingField, match="assign needs the assignee"):
        desk.act(number, "assign", "alice")
    assert len(desk.show(number)["changes"]) == 1


def test_replayed_intake_step_returns_the_same_work_order(desk: WorkOrderDesk) -> None:
    first = open_order(desk, "CA-same")
    assert open_order(desk, "CA-same") == first
    assert [o["number"] for o in desk.list()] == [first]


# -- deadlines and escalation ------------------------------------------------------------------------


@pytest.mark.parametrize(("category", "stored", "first_h", "resolve_h", "priority"), [
    ("card_account", "card_account", 4, 48, 7),
    ("fees", "fees", 24, 120, 5),
    ("service", "service", 24, 120, 5),
    ("other", "other", 24, 168, 4),
    ("astrology", "other", 24, 168, 4),
])
def test_deadlines_and_priority_come_from_the_category(
    desk: WorkOrderDesk, category: str, stored: str, first_h: int, resolve_h: int, priority: int,
) -> None:
    order = desk.show(open_order(desk, category=category))
    assert (order["category"], order["priority"]) == (stored, priority)
    assert when(order["first_contact_due"]) == T0 + first_h * H
    assert when(order["resolve_due"]) == T0 + resolve_h * H


def test_configured_deadlines_replace_the_defaults_of_their_category(
    sql: sessionmaker, now: Now, tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, complaint_deadlines={"fees": {"first_contact_h": 2, "resolve_h": 8,
                                                                         "priority": 10}})
    desk = WorkOrderDesk(sql, None, settings.deadlines, clock=now)
    fees, card = desk.show(open_order(desk, "CA-1", "fees")), desk.show(open_order(desk, "CA-2", "card_account"))
    assert (when(fees["first_contact_due"]), when(fees["resolve_due"]), fees["priority"]) == (T0 + 2 * H, T0 + 8 * H, 10)
    assert (when(card["first_contact_due"]), when(card["resolve_due"]), card["priority"]) == (T0 + 4 * H, T0 + 48 * H, 7)
    now.at = T0 + 9 * H
    assert sorted(desk.flag_overdue()) == sorted([fees["number"], fees["number"], card["number"]])
    assert desk.show(fees["number"])["priority"] == 10, "priority never goes above 10"


def test_overdue_work_order_is_escalated_once_per_deadline(desk: WorkOrderDesk, now: Now, redis_url: str) -> None:
    late = open_order(desk, "CA-late")  # card_account: first contact by T0+4h, resolution by T0+48h
    contacted = open_order(desk, "CA-contacted")
    resolved = open_order(desk, "CA-resolved")
    now.at = T0 + 1 * H
    desk.act(contacted, "assign", "alice", assignee="bob")
    desk.act(resolved, "assign", "alice", assignee="bob")

    for at, flagged in ((4 * H - S, []), (4 * H, []), (4 * H + S, [late]), (5 * H, [])):
        now.at = T0 + at
        assert desk.flag_overdue() == flagged, at
    shown = desk.show(late)
    assert (shown["overdue"], shown["priority"]) == ("first_contact", 8)
    assert history(desk, late)[-1] == (T0 + 4 * H + S, "scheduler", "escalate", "open", "open",
                                       "first contact deadline passed; priority 8")
    now.at = T0 + 6 * H
    desk.act(late, "assign", "alice", assignee="bob")  # contacted late: nothing more to escalate until 48 h
    now.at = T0 + 47 * H
    desk.act(resolved, "resolve", "bob", note="fee refunded")

    for at, flagged in ((48 * H - S, []), (48 * H + S, {late, contacted}), (49 * H, []), (30 * 24 * H, [])):
        now.at = T0 + at
        result = desk.flag_overdue()
        assert (set(result) if isinstance(flagged, set) else result) == flagged, at
    assert [(o["number"], o["overdue"], o["priority"]) for o in desk.list(overdue=True)] == [
        (late, "resolution", 9), (contacted, "resolution", 8)]
    assert desk.show(resolved)["overdue"] is None and desk.show(resolved)["priority"] == 7
    assert history(desk, late)[-1] == (T0 + 48 * H + S, "scheduler", "escalate", "assigned", "assigned",
                                       "resolution deadline passed; priority 9")
    overdue = [(e["work_order"], e["deadline"]) for e in stream(redis_url, "work_order_overdue")]
    assert sorted(overdue) == sorted([(late, "first_contact"), (late, "resolution"), (contacted, "resolution")])
    assert overdue[0] == (late, "first_contact")


def test_both_deadlines_missed_while_the_job_was_down_escalate_twice(
    desk: WorkOrderDesk, now: Now, redis_url: str,
) -> None:
    number = open_order(desk)
    now.at = T0 + 49 * H
    assert desk.flag_overdue() == [number, number]
    assert (desk.show(number)["priority"], desk.show(number)["overdue"]) == (9, "resolution")
    assert [e["deadline"] for e in stream(redis_url, "work_order_overdue")] == ["first_contact", "resolution"]
    now.at = T0 + 50 * H
    assert desk.flag_overdue() == []


def test_flag_overdue_job_escalates_through_the_installed_hotline(
    desk: WorkOrderDesk, now: Now, monkeypatch: pytest.MonkeyPatch,
) -> None:
    number = open_order(desk)
    monkeypatch.setattr(jobs, "_context", type("Context", (), {"desk": desk})())
    now.at = T0 + 4 * H + S
    assert jobs.flag_overdue() == 1
    assert jobs.flag_overdue() == 0
    assert desk.show(number)["overdue"] == "first_contact"


# -- the CLI ---------------------------------------------------------------------------------------------


def cli(settings: Settings, *args: str) -> Any:
    env = {"REDIS_URL": settings.redis_url or "", "DATABASE_URL": settings.sql_url,
           "HOTLINE_DATA_DIR": str(settings.data_dir)}
    return CliRunner(env=env).invoke(main, ["complaints", *args])


def test_cli_lists_shows_assigns_resolves_and_closes(settings: Settings, hotline: Hotline, redis_url: str) -> None:
    fees = hotline.desk.open_work_order(CallInfo("CA-f", CUSTOMER, "twilio", "zh-CN"), "fees", "RE-f")
    card = hotline.desk.open_work_order(CallInfo("CA-c", "+8613900001111", "asterisk", "en-US"), "card_account", "")

    listed = cli(settings, "list")
    assert listed.exit_code == 0, listed.output
    lines = [line.split() for line in listed.output.splitlines()]
    assert lines[0] == ["number", "status", "category", "priority", "caller", "assignee", "overdue", "created"]
    assert [line[:7] for line in lines[1:]] == [  # the most urgent first
        [card, "open", "card_account", "7", "+86139****1111", "-", "-"],
        [fees, "open", "fees", "5", MASKED, "-", "-"],
    ]

    add_user(hotline, "bob", "supervisor")  # an assignee is a person who works orders
    assigned = cli(settings, "assign", fees, "--by", "alice", "--to", "bob")
    assert (assigned.exit_code, assigned.output) == (0, f"work order {fees}: assigned\n")
    assert cli(settings, "start", fees, "--by", "bob").output == f"work order {fees}: in_progress\n"
    resolved = cli(settings, "resolve", fees, "--by", "bob", "--note", "fee refunded")
    assert (resolved.exit_code, resolved.output) == (0, f"work order {fees}: resolved\n")
    with hotline.sql() as db:
        (visit,) = db.scalars(select(ReturnVisit)).all()
    assert visit.status == "scheduled"
    scheduled = ScheduledJobRegistry("hotline", connection=redis.Redis.from_url(redis_url))
    assert scheduled.get_job_ids() == [f"visit-{visit.id}-1"], "resolving from the CLI schedules the return visit"
    assert cli(settings, "close", fees, "--by", "carol").output == f"work order {fees}: closed\n"

    shown = cli(settings, "show", fees)
    assert shown.exit_code == 0, shown.output
    fields = dict(line.split(None, 1) for line in shown.output.splitlines() if not line.startswith((" ", "history")))
    assert (fields["status"], fields["assignee"], fields["resolution"], fields["caller"]) == (
        "closed", "bob", "fee refunded", MASKED)
    rows = [line.split()[1:] for line in shown.output.splitlines() if line.startswith("  ")]
    assert rows == [
        ["ivr", "open", "-", "->", "open", "category", "fees"], ["alice", "assign", "open", "->", "assigned", "assignee", "bob"],
        ["bob", "start", "assigned", "->", "in_progress"],
        ["bob", "resolve", "in_progress", "->", "resolved", "fee", "refunded"],
        ["carol", "close", "resolved", "->", "closed"]]
    assert CUSTOMER not in shown.output

    only_closed = json.loads(cli(settings, "list", "--status", "closed", "--json").output)
    assert [o["number"] for o in only_closed] == [fees]
    assert cli(settings, "list", "--overdue").output.splitlines()[1:] == []


def test_cli_refuses_what_cannot_be_done_with_an_error_exit(settings: Settings, hotline: Hotline) -> None:
    number = hotline.desk.open_work_order(CallInfo("CA-x", CUSTOMER, "twilio", "zh-CN"), "service", "RE-x")

    bad = cli(settings, "close", number, "--by", "carol")
    assert bad.exit_code == 1
    assert bad.output == f"Error: work order {number} is open: cannot close (allowed from resolved, visited)\n"
    missing = cli(settings, "show", "999")
    assert (missing.exit_code, missing.output) == (1, "Error: work order 999 does not exist\n")
    nobody = cli(settings, "assign", number, "--by", "alice")
    assert nobody.exit_code == 1 and "assign needs the assignee" in nobody.output
    add_user(hotline, "ann", "agent")
    for not_a_handler in ("the complaints team", "ann"):  # free text, or someone who does not work orders
        refused = cli(settings, "assign", number, "--by", "alice", "--to", not_a_handler)
        assert refused.exit_code == 1 and "is not an active admin or supervisor" in refused.output
    anonymous = cli(settings, "resolve", number)
    assert anonymous.exit_code == 2 and "--by" in anonymous.output
    assert [c["action"] for c in hotline.desk.show(number)["changes"]] == ["open"]


# -- the JSON API ------------------------------------------------------------------------------------------


@pytest.fixture
def api_hotline(settings: Settings) -> Hotline:
    return prepare(settings.model_copy(update={"api_token": TOKEN}))


@pytest.fixture
def api(api_hotline: Hotline) -> Any:
    return api_caller(api_hotline, TOKEN)


def test_api_needs_the_bearer_token(api: Any, api_hotline: Hotline) -> None:
    number = api_hotline.desk.open_work_order(CallInfo("CA-a", CUSTOMER, "twilio", "zh-CN"), "fees", "RE-a")
    for token in (None, "wrong"):
        for method, path, body in (("GET", "/api/complaints", None), ("GET", f"/api/complaints/{number}", None),
                                   ("POST", f"/api/complaints/{number}/resolve", {"by": "mallory"})):
            reply = api(method, path, body, token=token)
            assert reply.status_code == 401, (method, path, token)
            assert "bearer token" in reply.json["error"]
    assert api_hotline.desk.show(number)["status"] == "open"


def test_api_works_a_complaint_through_its_lifecycle(api: Any, api_hotline: Hotline) -> None:
    number = api_hotline.desk.open_work_order(CallInfo("CA-a", CUSTOMER, "twilio", "zh-CN"), "fees", "RE-a")
    other = api_hotline.desk.open_work_order(CallInfo("CA-b", CUSTOMER, "twilio", "zh-CN"), "service", "RE-b")
    add_user(api_hotline, "bob", "supervisor")  # an assignee is a person who works orders

    assigned = api("POST", f"/api/complaints/{number}/assign", {"by": "alice", "to": "bob"})
    assert assigned.status_code == 200
    assert (assigned.json["status"], assigned.json["assignee"], assigned.json["caller"]) == ("assigned", "bob", MASKED)
    # "to" means nothing to resolve: the audit trail must not claim the work order changed hands
    resolved = api("POST", f"/api/complaints/{number}/resolve", {"by": "bob", "note": "fee refunded", "to": "dave"})
    assert (resolved.status_code, resolved.json["status"], resolved.json["resolution"], resolved.json["assignee"]) == (
        200, "resolved", "fee refunded", "bob")
    assert [o["number"] for o in api("GET", "/api/complaints?status=resolved").json] == [number]
    assert [o["number"] for o in api("GET", "/api/complaints?category=service").json] == [other]
    assert {o["number"] for o in api("GET", "/api/complaints").json} == {number, other}
    assert api("GET", "/api/complaints?overdue=1").json == []
    shown = api("GET", f"/api/complaints/{number}").json
    assert [(c["actor"], c["action"], c["from"], c["to"], c["detail"]) for c in shown["changes"]] == [
        ("ivr", "open", None, "open", "category fees"),
        ("alice", "assign", "open", "assigned", "assignee bob"),
        ("bob", "resolve", "assigned", "resolved", "fee refunded"),
    ]
    assert CUSTOMER not in json.dumps(shown)
    assert api("POST", f"/api/complaints/{number}/close", {"by": "carol"}).json["status"] == "closed"


def test_api_errors_say_what_is_wrong(api: Any, api_hotline: Hotline) -> None:
    number = api_hotline.desk.open_work_order(CallInfo("CA-a", CUSTOMER, "twilio", "zh-CN"), "fees", "RE-a")

    missing = api("GET", "/api/complaints/999")
    assert (missing.status_code, missing.json) == (404, {"error": "work order 999 does not exist"})
    assert api("POST", "/api/complaints/999/resolve", {"by": "bob"}).status_code == 404
    no_action = api("POST", f"/api/complaints/{number}/escalate", {"by": "bob"})
    assert no_action.status_code == 404 and "no action 'escalate'" in no_action.json["error"]
    conflict = api("POST", f"/api/complaints/{number}/close", {"by": "carol"})
    assert conflict.status_code == 409
    assert conflict.json["error"] == f"work order {number} is open: cannot close (allowed from resolved, visited)"
    no_actor = api("POST", f"/api/complaints/{number}/resolve", {"note": "done"})
    assert no_actor.status_code == 400 and '"by"' in no_actor.json["error"]
    no_assignee = api("POST", f"/api/complaints/{number}/assign", {"by": "alice"})
    assert no_assignee.status_code == 400 and "assign needs the assignee" in no_assignee.json["error"]
    not_json = api("POST", f"/api/complaints/{number}/resolve", data="by=bob",
                   content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 400 and "JSON object" in not_json.json["error"]
    assert [c["action"] for c in api_hotline.desk.show(number)["changes"]] == ["open"]
