"""Opening hours per weekday and holidays (the admin's Hours page) for inbound calls on both channels and for
return visits; a caller pressing 0 with nobody of the queue logged in is answered at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy import select

from calls import announcements
from calls.hours import WEEKDAYS, DayHours, HoursBook
from hotline.app import Hotline, create_app, prepare
from hotline.settings import Settings
from routing.agents import Agent
from routing.keys import EVENTS_STREAM
from softphone.agi_peer import AsteriskPeer
from store.models import AuditEntry
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, serve_agi
from tests.fakes.twilio_api import HOTLINE_NUMBER, TwilioApi
from tests.fakes.twilio_caller import TwilioCaller
from tests.web import add_user, login

ZONE = ZoneInfo("Asia/Shanghai")
CLOSED_NOTICE = "现在是人工服务的非工作时间。自助查询和挂失服务二十四小时可用。"
CLOSED = "现在是人工服务的非工作时间，请在工作时间再来电。挂失业务二十四小时受理。"
NO_AGENT = "抱歉，目前没有可接听的客服人员，请稍后再拨。"
LOSS_CARD = "挂失服务，请输入需要挂失的卡号，以井号键结束。"


def today() -> dt.date:
    return dt.datetime.now(ZONE).date()


def new_caller(hotline: Hotline, number: str = "+8613912345678") -> TwilioCaller:
    app = create_app(hotline=hotline)
    app.testing = True
    return TwilioCaller(app.test_client(), AUTH_TOKEN, PUBLIC_URL, caller=number)


def audit_actions(hotline: Hotline) -> list[tuple[str, str, str]]:
    with hotline.sql() as db:
        return [(e.actor, e.action, e.target) for e in db.scalars(select(AuditEntry).order_by(AuditEntry.id))
                if e.action.startswith(("hours_", "holiday_"))]


# -- the calendar ---------------------------------------------------------------------------

def test_the_settings_are_the_calendar_until_the_admin_saves_and_a_removed_default_holiday_stays_removed(
        sql) -> None:  # noqa: ANN001
    new_year = dt.date(2027, 1, 1)
    book = HoursBook(sql, "Asia/Shanghai", dt.time(8), dt.time(22), [new_year])
    at = dt.datetime(2027, 1, 4, 9, 30, tzinfo=ZONE)  # a Monday morning
    assert book.is_open(at) and not book.is_open(at.replace(hour=7)) and not book.calendar().configured
    assert new_year in book.holidays and not book.is_open(dt.datetime(2027, 1, 1, 12, tzinfo=ZONE))
    assert book.remove_holiday(new_year)
    assert new_year not in book.holidays and book.calendar().configured
    assert book.calendar().week[0] == DayHours(dt.time(8), dt.time(22))  # the settings' week was kept
    week = {d: DayHours(dt.time(9), dt.time(17)) for d in WEEKDAYS} | {6: DayHours(None, None)}
    book.save_week(week)
    assert not book.is_open(at.replace(hour=8, minute=30)) and book.is_open(at)
    assert not book.is_open(dt.datetime(2027, 1, 10, 12, tzinfo=ZONE))  # a Sunday: closed all day
    with pytest.raises(ValueError):
        book.save_week(week | {2: DayHours(dt.time(18), dt.time(9))})


def test_another_process_sees_an_edit_when_its_short_cache_expires_without_a_restart(sql) -> None:  # noqa: ANN001
    now = [0.0]
    editor = HoursBook(sql, "Asia/Shanghai", dt.time(0), dt.time(23, 59, 59))
    other = HoursBook(sql, "Asia/Shanghai", dt.time(0), dt.time(23, 59, 59), ttl_s=5, clock=lambda: now[0])
    assert other.is_open()
    editor.add_holiday(today(), "检修日")
    assert not editor.is_open()  # the editing process at once
    now[0] = 4.0
    assert other.is_open()  # the other within its cache time
    now[0] = 5.5
    assert not other.is_open() and other.calendar().holidays[today()] == "检修日"


def test_return_visits_are_not_called_on_a_holiday_the_admin_added(hotline: Hotline) -> None:
    window = hotline.visits.policy.window
    day = today() + dt.timedelta(days=3)
    ten = dt.datetime.combine(day, dt.time(10), ZONE)
    assert window.is_open(ten)
    hotline.hours.add_holiday(day, "国庆节")
    assert not window.is_open(ten)
    assert window.next_open(ten) == dt.datetime.combine(day + dt.timedelta(days=1), window.start, ZONE)


# -- Twilio: a holiday set on the page, heard by the next caller --------------------------------

def test_twilio_caller_on_a_holiday_hears_agents_are_closed_and_still_reports_a_lost_card(
        hotline: Hotline, client) -> None:  # noqa: ANN001
    add_user(hotline, "boss", "admin")
    csrf = login(client, "boss")
    added = client.post("/admin/hours/holidays", data={"day": today().isoformat(), "name": "测试假日",
                                                       "csrf_token": csrf})
    assert added.status_code == 303

    caller = new_caller(hotline)
    caller.dial()
    assert CLOSED_NOTICE in caller.said() and caller.verbs()[-2:] == ["Gather", "Redirect"]
    caller.press("0")
    assert CLOSED in caller.said() and "Enqueue" not in caller.verbs() and caller.verbs()[-1] == "Hangup"

    loss = new_caller(hotline, "+8613900000001")
    loss.dial()
    loss.press("2")
    assert loss.said() == [LOSS_CARD]  # lost cards at any hour, holidays too

    english = new_caller(hotline, "+8613900000002")
    english.dial()
    english.press("9")
    english.press("0")
    assert "Our agents are closed now. Please call again during opening hours. Lost cards can be reported at any " \
           "time." in english.said()

    removed = client.post(f"/admin/hours/holidays/{today().isoformat()}/delete", data={"csrf_token": csrf})
    assert removed.status_code == 303
    after = new_caller(hotline, "+8613900000003")
    after.dial()
    assert CLOSED_NOTICE not in after.said()
    after.press("0")
    assert "Enqueue" in after.verbs()
    assert audit_actions(hotline) == [("boss", "holiday_added", today().isoformat()),
                                      ("boss", "holiday_removed", today().isoformat())]


def test_twilio_caller_outside_the_weekdays_hours_hears_the_closed_message(hotline: Hotline, client) -> None:  # noqa: ANN001
    add_user(hotline, "boss", "admin")
    csrf = login(client, "boss")
    form = {"csrf_token": csrf}
    for d in WEEKDAYS:
        form |= {f"opens_{d}": "00:00", f"closes_{d}": "23:59:59"}
    form[f"closed_{today().weekday()}"] = "1"  # today: closed all day
    assert client.post("/admin/hours/week", data=form).status_code == 303
    caller = new_caller(hotline)
    caller.dial()
    assert CLOSED_NOTICE in caller.said()
    caller.press("0")
    assert CLOSED in caller.said() and "Enqueue" not in caller.verbs()
    bad = {**form, f"opens_{(today().weekday() + 1) % 7}": "18:00", f"closes_{(today().weekday() + 1) % 7}": "09:00"}
    refused = client.post("/admin/hours/week", data=bad)
    assert refused.status_code == 400 and "a day must open before it closes" in refused.get_data(as_text=True)
    supervisor = create_app(hotline=hotline).test_client()
    add_user(hotline, "sue", "supervisor")
    sue_csrf = login(supervisor, "sue")
    assert supervisor.get("/admin/hours").status_code == 200
    assert supervisor.post("/admin/hours/week", data={**form, "csrf_token": sue_csrf}).status_code == 403


# -- pressing 0 with nobody of the queue logged in: answered at once -----------------------------

@pytest.fixture
def announcing(settings: Settings, twilio_api: TwilioApi) -> Hotline:
    """The default: callers are told at once when nobody of the queue works (not held)."""
    return prepare(settings.model_copy(update={
        "unstaffed_queues": "announce", "twilio_api_base": twilio_api.server.url, "twilio_number": HOTLINE_NUMBER}))


def staff_general(hotline: Hotline) -> None:
    hotline.agents.put(Agent("gus", "Gus", "client:gus", {"general": 5}, ["zh-CN"]))
    hotline.router.set_agent_state("gus", "available")


def test_twilio_complaint_caller_with_no_complaint_agent_goes_to_the_overflow_queue_at_once(
        announcing: Hotline, twilio_api: TwilioApi) -> None:
    staff_general(announcing)
    caller = new_caller(announcing)
    caller.dial()
    caller.press("3")
    caller.press("0")
    assert caller.queue() == "general:zh-CN"  # not complaint:zh-CN for overflow_after (90 s) first
    (ring,) = twilio_api.created(1)
    assert ring["To"] == "client:gus"  # the general agent is rung now


def test_twilio_caller_with_nobody_logged_in_is_offered_a_callback_at_once(announcing: Hotline) -> None:
    caller = new_caller(announcing)
    caller.dial()
    caller.press("0")
    wait_url = caller.verb("Enqueue").attrib["waitUrl"]
    caller.post(wait_url, QueuePosition="1", QueueTime="0")  # the first words on hold
    gather = caller.verb("Gather")
    assert announcements.NO_AGENT_CALLBACK["zh-CN"] in caller.said()
    caller.post(gather.attrib["action"], Digits="1")
    assert caller.verbs() == ["Say", "Hangup"]
    view = announcing.router.call(caller.call_sid)
    assert view is not None and view.state == "callback" and view.fields["callback_number"] == "+8613912345678"


def test_twilio_caller_with_nobody_for_a_queue_without_callbacks_hears_so_at_once(announcing: Hotline) -> None:
    announcing.redis.hset(announcing.router.key("qconf:general"), "callback_after", "0")
    announcing.router.queues = {**announcing.router.queues,
                                "general": announcing.router.queues["general"].model_copy(
                                    update={"callback_after": 0})}
    caller = new_caller(announcing)
    caller.dial()
    caller.press("0")
    assert NO_AGENT in caller.said() and "Enqueue" not in caller.verbs() and caller.verbs()[-1] == "Hangup"


# -- Asterisk (FastAGI): the same answers ----------------------------------------------------

def queued_skills(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return [f["skill"] for _, f in client.xrange(EVENTS_STREAM) if f["type"] == "call_queued"]


@pytest.fixture
def announcing_agi(settings: Settings, prompts: Path) -> Hotline:
    return prepare(settings.model_copy(update={"unstaffed_queues": "announce"}))


def test_asterisk_caller_with_nobody_logged_in_hears_so_at_once_and_goodbye(
        announcing_agi: Hotline, prompts: Path, redis_url: str) -> None:
    with serve_agi(announcing_agi) as server:
        call = AsteriskPeer(["0"]).dial(*server)
    assert call.commands[-3:] == ['STREAM FILE hotline/hotline/zh-CN/defaults.no_agent ""',
                                  'STREAM FILE hotline/hotline/zh-CN/goodbye ""', "HANGUP"]
    assert queued_skills(redis_url) == []


def test_asterisk_complaint_caller_with_no_complaint_agent_is_queued_for_the_overflow_queue(
        announcing_agi: Hotline, prompts: Path, redis_url: str) -> None:
    staff_general(announcing_agi)
    with serve_agi(announcing_agi) as server:
        AsteriskPeer(["3", "0"]).dial(*server)
    assert queued_skills(redis_url) == ["general"]


def test_asterisk_caller_on_a_holiday_hears_the_closed_notice_and_the_closed_message(
        announcing_agi: Hotline, prompts: Path, redis_url: str) -> None:
    announcing_agi.hours.add_holiday(today(), "")
    staff_general(announcing_agi)
    with serve_agi(announcing_agi) as server:
        call = AsteriskPeer(["0"]).dial(*server)
    assert "hotline/hotline/zh-CN/closed_notice" in call.commands[2]  # with the welcome, before the menu
    assert 'STREAM FILE hotline/hotline/zh-CN/defaults.closed ""' in call.commands
    assert queued_skills(redis_url) == []
