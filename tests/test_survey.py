"""The satisfaction survey of a return visit, end to end: the dial job calls the fake Twilio API, the
customer's call is driven through signed webhooks (or, on Asterisk, through FastAGI over a socket after
an AMI Originate), and the answer lands on the visit and the work order.

Clocks of the desk and the visits are fixed at 2026-03-02 (a Monday) inside the calling window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Iterator
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import redis
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from hotline.app import Hotline, prepare
from hotline.settings import Settings
from ivr.services import CallInfo
from recordings.prompts import write_placeholder_prompts
from routing.keys import EVENTS_STREAM
from routing.router import CallRequest
from softphone.agi_peer import AsteriskPeer
from store.models import DoNotCall, ReturnVisit, VisitAttempt
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, serve_agi
from tests.fakes.ami_server import FakeAmiServer
from tests.fakes.clock import Now
from tests.fakes.http_server import LocalHttpServer, Reply, SeenRequest
from tests.fakes.twilio_caller import TwilioCaller

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CUSTOMER = "+8613812345678"
HOTLINE_NUMBER = "+8610095555"
AMI_SECRET = "survey-ami-secret"
RATING_PROMPT = ("请您对处理结果进行评价：非常满意请按1，满意请按2，一般请按3，不满意请按4，非常不满意请按5。"
                 "如不希望再接到回访电话，请按9。")


def local(day: int, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hh, mm, ss, tzinfo=SHANGHAI).astimezone(dt.UTC)


@pytest.fixture
def twilio_api() -> Iterator[LocalHttpServer]:
    sids = itertools.count(1)

    def answer(request: SeenRequest) -> Reply:
        if request.method == "POST" and request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json":
            return Reply.json(201, {"sid": f"CA{next(sids):032x}", "account_sid": ACCOUNT_SID, "status": "queued"})
        return Reply.json(404, {"code": 20404, "message": "not found", "status": 404})

    server = LocalHttpServer(answer).start()
    yield server
    server.stop()


@pytest.fixture
def ami() -> Iterator[FakeAmiServer]:
    with FakeAmiServer(secret=AMI_SECRET) as server:
        yield server


@pytest.fixture
def hotline(settings: Settings, twilio_api: LocalHttpServer, ami: FakeAmiServer) -> Hotline:
    """The hotline with its Twilio number on the fake API and its AMI dialer on the fake Asterisk."""
    hotline = prepare(settings.model_copy(update={
        "twilio_number": HOTLINE_NUMBER, "twilio_api_base": twilio_api.url,
        "ami_port": ami.port, "ami_secret": AMI_SECRET, "ring_timeout_s": 1,
    }))
    clock = Now(local(2, 10))
    hotline.desk._clock = clock  # noqa: SLF001 - the injected clock, as the constructor takes it
    hotline.visits.clock = clock
    return hotline


def resolved_visit(hotline: Hotline, call_id: str = "CA-in", category: str = "card_account",
                   language: str = "zh-CN", channel: str = "twilio") -> tuple[str, int]:
    """A complaint of CUSTOMER, resolved at 10:00: its return visit is due at 11:00."""
    number = hotline.desk.open_work_order(CallInfo(call_id, CUSTOMER, channel, language), category, f"RE-{call_id}")
    hotline.desk.act(number, "resolve", "bob", note="card re-issued")
    with hotline.sql() as db:
        visit_id = db.scalars(select(ReturnVisit.id).order_by(ReturnVisit.id.desc())).first()
    assert visit_id is not None
    return number, visit_id


def dial(hotline: Hotline, twilio_api: LocalHttpServer, visit_id: int, attempt: int = 1,
         at: dt.datetime | None = None) -> str:
    """Run the dial job; returns the survey URL the hotline gave Twilio."""
    hotline.visits.clock.at = at or local(2, 11)
    assert hotline.visits.dial(visit_id, attempt) == f"attempt {attempt}: pending"
    return parse_qs(twilio_api.requests[-1].body.decode())["Url"][0]


def customer_phone(client) -> TwilioCaller:  # noqa: ANN001
    """Twilio's webhooks for the call the hotline placed: From is the hotline, To the customer."""
    return TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL, caller=HOTLINE_NUMBER, called=CUSTOMER)


def visit_row(hotline: Hotline, visit_id: int) -> ReturnVisit:
    with hotline.sql() as db:
        visit = db.get(ReturnVisit, visit_id)
        assert visit is not None
        return visit


def dispositions(hotline: Hotline, visit_id: int) -> list[str]:
    with hotline.sql() as db:
        return list(db.scalars(select(VisitAttempt.disposition).where(VisitAttempt.visit_id == visit_id)
                               .order_by(VisitAttempt.attempt)))


def status_callback(phone: TwilioCaller, visit_id: int, attempt: int, **form: str) -> int:
    return phone.post_raw(f"/twilio/visit/status?visit={visit_id}&attempt={attempt}", CallDuration="40",
                          Direction="outbound-api", **form).status_code


def scheduled(hotline: Hotline) -> dict[str, dt.datetime]:
    registry = ScheduledJobRegistry(queue=hotline.jobs)
    return {job_id: registry.get_scheduled_time(job_id) for job_id in registry.get_job_ids()}


# -- Twilio ---------------------------------------------------------------------------------------------------


def test_very_dissatisfied_customer_reopens_the_work_order(hotline: Hotline, client, twilio_api: LocalHttpServer,  # noqa: ANN001
                                                           redis_url: str) -> None:
    number, visit_id = resolved_visit(hotline)
    assert number == "260302000001"
    url = dial(hotline, twilio_api, visit_id)
    phone = customer_phone(client)

    phone.post(url, Direction="outbound-api")
    assert phone.said() == [
        "您好，这里是客户服务热线回访。关于您反映的银行卡和账户问题，工单号2 6 0 3 0 2 0 0 0 0 0 1，我们已经处理完毕。",
        RATING_PROMPT,
    ]
    assert phone.verb("Gather").attrib["numDigits"] == "1"
    phone.press("5")
    assert phone.said() == ["您的评价是：非常不满意。确认请按1，重新评价请按2。"]
    hotline.visits.clock.at = hotline.desk._clock.at = local(2, 11, 1)  # noqa: SLF001
    phone.press("1")
    assert phone.said() == ["感谢您的评价，祝您生活愉快，再见。"]
    assert phone.verbs()[-1] == "Hangup"

    order = hotline.desk.show(number)
    assert (order["status"], order["rating"]) == ("reopened", 5)
    last = order["changes"][-1]
    assert (last["actor"], last["action"], last["from"], last["to"], last["detail"]) == (
        "customer (survey)", "reopen", "resolved", "reopened", "rating 5; very dissatisfied")
    visit = visit_row(hotline, visit_id)
    assert (visit.status, visit.rating) == ("completed", 5)

    assert status_callback(phone, visit_id, 1, CallStatus="completed", AnsweredBy="human") == 204
    assert dispositions(hotline, visit_id) == ["answered"]
    assert visit_row(hotline, visit_id).status == "completed"
    assert list(scheduled(hotline)) == [f"visit-{visit_id}-1"], "a reached customer is not called again"
    ended = [f for _, f in redis.Redis.from_url(redis_url, decode_responses=True).xrange(EVENTS_STREAM)
             if f["type"] == "call_ended"]
    assert [(e["call_id"], e["intent"], e["outcome"]) for e in ended] == [
        (phone.call_sid, "survey", "survey_completed")]


def test_satisfied_customer_in_english_may_change_the_answer_before_confirming(
    hotline: Hotline, client, twilio_api: LocalHttpServer,  # noqa: ANN001
) -> None:
    number, visit_id = resolved_visit(hotline, category="fees", language="en-US")
    url = dial(hotline, twilio_api, visit_id)
    assert url.endswith("&lang=en-US")
    phone = customer_phone(client)

    phone.post(url, Direction="outbound-api")
    assert phone.said()[0] == ("Hello, this is the customer service hotline calling back about your fees complaint, "
                               "work order 2 6 0 3 0 2 0 0 0 0 0 1, which we have now handled.")
    phone.press("4")
    assert phone.said() == ["You chose dissatisfied. To confirm, press 1. To change it, press 2."]
    phone.press("2")
    assert phone.said()[-1].startswith("How satisfied are you")
    phone.press("2")
    assert phone.said() == ["You chose satisfied. To confirm, press 1. To change it, press 2."]
    phone.press("1")
    assert phone.said() == ["Thank you for your answer. Goodbye."]

    order = hotline.desk.show(number)
    assert (order["status"], order["rating"]) == ("visited", 2)
    assert order["changes"][-1]["detail"] == "rating 2; satisfied"
    assert (visit_row(hotline, visit_id).status, visit_row(hotline, visit_id).rating) == ("completed", 2)
    assert status_callback(phone, visit_id, 1, CallStatus="completed") == 204
    assert dispositions(hotline, visit_id) == ["answered"]


def test_hanging_up_before_rating_completes_the_visit_without_a_rating(
    hotline: Hotline, client, twilio_api: LocalHttpServer,  # noqa: ANN001
) -> None:
    number, visit_id = resolved_visit(hotline)
    phone = customer_phone(client)
    phone.post(dial(hotline, twilio_api, visit_id), Direction="outbound-api")
    phone.press("7")  # not on the scale
    assert phone.said() == ["您的输入有误。", RATING_PROMPT]
    phone.press("4")  # dissatisfied, then hangs up instead of confirming

    assert status_callback(phone, visit_id, 1, CallStatus="completed", AnsweredBy="human") == 204
    visit = visit_row(hotline, visit_id)
    assert (visit.status, visit.rating) == ("completed", None)
    assert dispositions(hotline, visit_id) == ["answered"]
    order = hotline.desk.show(number)
    assert (order["status"], order["rating"]) == ("resolved", None), "an unconfirmed answer is not stored"
    assert order["changes"][-1]["detail"] == "customer reached, no rating given"
    assert list(scheduled(hotline)) == [f"visit-{visit_id}-1"]


def test_replayed_confirm_webhook_rates_once(hotline: Hotline, client, twilio_api: LocalHttpServer) -> None:  # noqa: ANN001
    number, visit_id = resolved_visit(hotline)
    phone = customer_phone(client)
    phone.post(dial(hotline, twilio_api, visit_id), Direction="outbound-api")
    phone.press("3")
    confirm_url = phone.verb("Gather").attrib["action"]
    first = phone.post(confirm_url, Digits="1")
    again = phone.post(confirm_url, Digits="1")  # Twilio retried the request

    assert [el.text for el in first.iter("Say")] == [el.text for el in again.iter("Say")] == [
        "感谢您的评价，祝您生活愉快，再见。"]
    order = hotline.desk.show(number)
    assert (order["status"], order["rating"]) == ("visited", 3)
    assert [c["action"] for c in order["changes"]] == ["open", "resolve", "visit"]


def test_survey_call_leaves_the_customers_pending_agent_callback_alone(
    hotline: Hotline, client, twilio_api: LocalHttpServer,  # noqa: ANN001
) -> None:
    hotline.router.enqueue(CallRequest("CA-waiting", "complaint", "zh-CN", 5, "twilio"))
    hotline.router.request_callback("CA-waiting", CUSTOMER)
    hotline.router.end_call("CA-waiting", "caller_hangup")  # hung up after asking to be called back
    _, visit_id = resolved_visit(hotline)
    phone = customer_phone(client)

    phone.post(dial(hotline, twilio_api, visit_id), Direction="outbound-api")

    assert phone.said()[-1] == RATING_PROMPT
    waiting = hotline.router.call("CA-waiting")
    assert waiting is not None, "the hotline calling the customer is not the customer calling again"
    assert waiting.state == "callback"
    TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL, caller=CUSTOMER).dial()  # now the customer calls the hotline
    assert hotline.router.call("CA-waiting") is None


def test_survey_for_an_unknown_visit_says_goodbye(hotline: Hotline, client) -> None:  # noqa: ANN001
    phone = customer_phone(client)
    phone.post("/twilio/voice?menu=survey&visit=999&attempt=1&lang=zh-CN", Direction="outbound-api")
    assert phone.said() == ["感谢您的接听，再见。"] and phone.verbs() == ["Say", "Hangup"]
    bad = customer_phone(client).post_raw("/twilio/voice?menu=survey&visit=abc&attempt=1", Direction="outbound-api")
    assert bad.status_code == 400


def test_pressing_9_puts_the_number_on_the_do_not_call_list(
    hotline: Hotline, client, twilio_api: LocalHttpServer,  # noqa: ANN001
) -> None:
    number, visit_id = resolved_visit(hotline)
    url = dial(hotline, twilio_api, visit_id)
    phone = customer_phone(client)

    phone.post(url, Direction="outbound-api")
    phone.press("9")
    assert phone.said() == ["好的，我们今后不会再致电回访您。再见。"]
    assert phone.verbs()[-1] == "Hangup"
    with hotline.sql() as db:
        (listed,) = db.scalars(select(DoNotCall)).all()
    assert (listed.number_masked, listed.source) == ("+86138****5678", "survey")
    assert visit_row(hotline, visit_id).status == "refused"
    assert dispositions(hotline, visit_id) == ["refused"]
    order = hotline.desk.show(number)
    assert (order["status"], order["rating"]) == ("resolved", None)
    assert order["changes"][-1]["detail"] == "asked never to be called again: number on do-not-call list"
    assert status_callback(phone, visit_id, 1, CallStatus="completed") == 204
    assert dispositions(hotline, visit_id) == ["refused"] and visit_row(hotline, visit_id).status == "refused"

    later, later_visit = resolved_visit(hotline, call_id="CA-again", category="fees")
    assert visit_row(hotline, later_visit).status == "cancelled"
    assert list(scheduled(hotline)) == [f"visit-{visit_id}-1"], "nothing scheduled for the number any more"
    assert len(twilio_api.requests) == 1


@pytest.mark.parametrize("answered_by", ["machine_start", "fax", "unknown"])
def test_a_machine_answering_a_return_visit_hears_nothing_of_the_complaint_and_is_called_again(
    answered_by: str, hotline: Hotline, client, twilio_api: LocalHttpServer,  # noqa: ANN001
) -> None:
    number, visit_id = resolved_visit(hotline)
    phone = customer_phone(client)
    # MachineDetection=Enable: AnsweredBy comes on the request to the call's Url
    # (https://www.twilio.com/docs/voice/answering-machine-detection#webhook-parameters), not on the status callback.
    phone.post(dial(hotline, twilio_api, visit_id), Direction="outbound-api", AnsweredBy=answered_by)
    assert phone.verbs() == ["Hangup"] and phone.said() == []

    assert status_callback(phone, visit_id, 1, CallStatus="completed") == 204
    assert dispositions(hotline, visit_id) == ["voicemail"]
    assert visit_row(hotline, visit_id).status == "scheduled"
    assert f"visit-{visit_id}-2" in scheduled(hotline)
    assert hotline.desk.show(number)["status"] == "resolved"


def test_a_machine_may_be_left_a_short_message_without_details(
    hotline: Hotline, twilio_api: LocalHttpServer,
) -> None:
    from hotline.app import create_app

    hotline.settings = hotline.settings.model_copy(update={
        "visit_machine_message": "这里是客户服务热线，我们稍后再联系您。", "visit_unknown_answer": "human"})
    phone = customer_phone(create_app(hotline=hotline).test_client())
    _, visit_id = resolved_visit(hotline)
    url = dial(hotline, twilio_api, visit_id)
    phone.post(url, Direction="outbound-api", AnsweredBy="machine_start")
    assert phone.verbs() == ["Say", "Hangup"] and phone.said() == ["这里是客户服务热线，我们稍后再联系您。"]
    phone.call_sid += "x"  # the retry is a new call: "unknown" now runs the survey
    phone.post(url, Direction="outbound-api", AnsweredBy="unknown")
    assert phone.said()[0].startswith("您好，这里是客户服务热线回访。")


def test_no_answer_busy_and_voicemail_are_retried_then_unreachable(
    hotline: Hotline, client, twilio_api: LocalHttpServer,  # noqa: ANN001
) -> None:
    number, visit_id = resolved_visit(hotline)
    phone = customer_phone(client)
    outcomes = [
        ({"CallStatus": "completed", "AnsweredBy": "fax"}, "voicemail"),  # values MachineDetection=Enable sends
        ({"CallStatus": "busy"}, "busy"),
        ({"CallStatus": "no-answer"}, "no-answer"),
        ({"CallStatus": "completed", "AnsweredBy": "machine_start"}, "voicemail"),
    ]
    due = scheduled(hotline)[f"visit-{visit_id}-1"]
    assert due == local(2, 11)
    # backoff 30 min, 2 h, 1 day from when each call ended, 40 s after it was placed
    expected_retries = [local(2, 11, 30, 40), local(2, 13, 31, 20), local(3, 13, 32)]
    for attempt, (form, disposition) in enumerate(outcomes, start=1):
        dial(hotline, twilio_api, visit_id, attempt, at=due)  # the job runs when RQ schedules it
        hotline.visits.clock.at = due + dt.timedelta(seconds=40)
        assert status_callback(phone, visit_id, attempt, **form) == 204
        assert dispositions(hotline, visit_id)[-1] == disposition
        if attempt <= 3:
            due = scheduled(hotline)[f"visit-{visit_id}-{attempt + 1}"]
            assert due == expected_retries[attempt - 1]
            assert (visit_row(hotline, visit_id).status, visit_row(hotline, visit_id).attempts) == ("scheduled", attempt)

    assert dispositions(hotline, visit_id) == ["voicemail", "busy", "no-answer", "voicemail"]
    assert visit_row(hotline, visit_id).status == "unreachable"
    assert len(scheduled(hotline)) == 4 and len(twilio_api.requests) == 4
    assert hotline.desk.show(number)["changes"][-1]["detail"] == "customer unreachable after 4 attempts"


def test_progress_callbacks_change_nothing(hotline: Hotline, client, twilio_api: LocalHttpServer) -> None:  # noqa: ANN001
    _, visit_id = resolved_visit(hotline)
    dial(hotline, twilio_api, visit_id)
    phone = customer_phone(client)
    for status in ("initiated", "ringing", "in-progress"):
        assert status_callback(phone, visit_id, 1, CallStatus=status) == 204
    assert dispositions(hotline, visit_id) == ["dialing"]
    assert visit_row(hotline, visit_id).status == "dialing"


def test_forged_status_callback_is_refused_and_changes_nothing(
    hotline: Hotline, client, twilio_api: LocalHttpServer,  # noqa: ANN001
) -> None:
    _, visit_id = resolved_visit(hotline)
    dial(hotline, twilio_api, visit_id)
    phone = customer_phone(client)
    path = f"/twilio/visit/status?visit={visit_id}&attempt=1"
    form = {"CallSid": phone.call_sid, "AccountSid": "ACtest", "From": HOTLINE_NUMBER, "To": CUSTOMER,
            "CallStatus": "busy", "Direction": "outbound-api", "ApiVersion": "2010-04-01"}
    signed_elsewhere = phone.validator.compute_signature(f"{PUBLIC_URL}/twilio/visit/status?visit={visit_id}"
                                                         "&attempt=2", form)
    for signature in ("forged", "", signed_elsewhere):
        reply = client.post(path, data=form, headers={"X-Twilio-Signature": signature})
        assert reply.status_code == 403
    assert dispositions(hotline, visit_id) == ["dialing"]
    assert visit_row(hotline, visit_id).status == "dialing"
    assert list(scheduled(hotline)) == [f"visit-{visit_id}-1"], "no retry scheduled"


# -- Asterisk: AMI Originate, then the survey over FastAGI ------------------------------------------------------


def test_survey_over_fastagi_after_the_ami_call_is_answered(
    hotline: Hotline, settings: Settings, ami: FakeAmiServer,
) -> None:
    number, visit_id = resolved_visit(hotline, category="fees", channel="asterisk")
    hotline.visits.clock.at = local(2, 11)
    assert hotline.visits.dial(visit_id, 1) == "attempt 1: answered"
    (originate,) = ami.named("Originate")
    assert originate["Channel"] == f"PJSIP/{CUSTOMER}@hotline-trunk"
    *variables, token = originate["Variable"]
    assert variables == [f"HOTLINE_VISIT={visit_id}", "HOTLINE_ATTEMPT=1", "HOTLINE_LANGUAGE=zh"]
    assert token.startswith("HOTLINE_VISIT_TOKEN=") and len(token) > 40
    assert visit_row(hotline, visit_id).status == "in_call"

    write_placeholder_prompts(hotline.menus.live("survey"), settings.recordings_dir / "prompts")
    with serve_agi(hotline) as address:  # hotline-outbound runs survey?visit=<id>&attempt=<n>&token=<token>
        call = AsteriskPeer(["1", "1"], caller=CUSTOMER, script=survey_script(visit_id, 1, originate)).dial(*address)

    intro = ("您好，这里是客户服务热线回访。关于您反映的收费问题，工单号2 6 0 3 0 2 0 0 0 0 0 1，"
             "我们已经处理完毕。")
    confirm = "您的评价是：非常满意。确认请按1，重新评价请按2。"
    spoken = [f"hotline/survey/zh-CN/dynamic/{hashlib.sha256(('zh-CN' + chr(10) + text).encode()).hexdigest()[:24]}"
              for text in (intro, confirm)]
    assert call.played == [spoken[0], "hotline/survey/zh-CN/rating", spoken[1], "hotline/survey/zh-CN/thanks"]
    assert call.commands[-1] == "HANGUP"
    order = hotline.desk.show(number)
    assert (order["status"], order["rating"]) == ("visited", 1)
    assert order["changes"][-1]["detail"] == "rating 1; very satisfied"
    visit = visit_row(hotline, visit_id)
    assert (visit.status, visit.rating) == ("completed", 1)
    assert dispositions(hotline, visit_id) == ["answered"]



def survey_script(visit_id: int, attempt: int, originate: dict) -> str:  # type: ignore[type-arg]
    """What hotline-outbound runs for that Originate: its visit, attempt and one-time token."""
    token = next(v for v in originate["Variable"] if v.startswith("HOTLINE_VISIT_TOKEN="))
    return f"survey?visit={visit_id}&attempt={attempt}&token={token.split('=', 1)[1]}"


def test_a_survey_without_the_dials_one_time_token_changes_nothing(
    hotline: Hotline, settings: Settings, ami: FakeAmiServer, caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 17: ``survey?visit=1`` with keys 5,1 completed a visit that was only scheduled and reopened its
    work order. Now: no token, another visit's token, a used token, an old attempt's token change nothing."""
    number, visit_id = resolved_visit(hotline, category="fees", channel="asterisk")
    _, other_id = resolved_visit(hotline, call_id="CA-other", category="fees", channel="asterisk")
    write_placeholder_prompts(hotline.menus.live("survey"), settings.recordings_dir / "prompts")
    with serve_agi(hotline) as address:
        def attempt(script: str) -> list[str]:
            return AsteriskPeer(["5", "1"], caller=CUSTOMER, script=script).dial(*address).commands

        with caplog.at_level("WARNING"):
            # Only scheduled, never dialled: the attack of the issue.
            assert attempt(f"survey?visit={visit_id}&attempt=1") == []
            assert attempt(f"survey?visit={visit_id}&attempt=0&token=guess") == []
            hotline.visits.clock.at = local(2, 11)
            assert hotline.visits.dial(other_id, 1) == "attempt 1: answered"
            other_token = survey_script(other_id, 1, ami.named("Originate")[-1]).rsplit("=", 1)[1]
            assert attempt(f"survey?visit={visit_id}&attempt=1&token={other_token}") == [], "another visit's"
        assert visit_row(hotline, visit_id).status == "scheduled"
        assert hotline.desk.show(number)["status"] == "resolved"
        assert "survey refused" in caplog.text

        # Dialled now: its own token runs the survey once; a second use (a replay) changes nothing.
        assert hotline.visits.dial(visit_id, 1) == "attempt 1: answered"
        script = survey_script(visit_id, 1, ami.named("Originate")[-1])
        assert "hotline/survey/zh-CN/rating" in AsteriskPeer(["2", "1"], caller=CUSTOMER, script=script).dial(
            *address).played
        assert visit_row(hotline, visit_id).rating == 2
        assert attempt(script) == []
        assert visit_row(hotline, visit_id).rating == 2 and hotline.desk.show(number)["status"] == "visited"


def test_an_old_attempts_token_is_refused_once_the_next_attempt_is_dialled(
    hotline: Hotline, settings: Settings, ami: FakeAmiServer,
) -> None:
    number, visit_id = resolved_visit(hotline, category="fees", channel="asterisk")
    ami.outcomes[CUSTOMER] = ("Failure", 3)
    hotline.visits.clock.at = local(2, 11)
    assert hotline.visits.dial(visit_id, 1).startswith("attempt 1: no-answer")
    old_script = survey_script(visit_id, 1, ami.named("Originate")[-1])
    del ami.outcomes[CUSTOMER]
    hotline.visits.clock.at = local(2, 12)
    assert hotline.visits.dial(visit_id, 2) == "attempt 2: answered"
    write_placeholder_prompts(hotline.menus.live("survey"), settings.recordings_dir / "prompts")
    with serve_agi(hotline) as address:
        for script in (old_script, old_script.replace("attempt=1", "attempt=2")):
            assert AsteriskPeer(["5", "1"], caller=CUSTOMER, script=script).dial(*address).commands == []
    assert visit_row(hotline, visit_id).rating is None and hotline.desk.show(number)["status"] == "resolved"


@pytest.mark.parametrize("visit", ["99999999999999999999999999", "4294967296", "-1", "0", "１"])
def test_a_survey_for_an_impossible_visit_id_is_refused_cleanly(
    hotline: Hotline, prompts, caplog: pytest.LogCaptureFixture, visit: str,  # noqa: ANN001
) -> None:
    """``survey?visit=<huge>`` raised OverflowError (issue 17): now a logged refusal, nothing else."""
    with serve_agi(hotline) as address, caplog.at_level("WARNING"):
        call = AsteriskPeer(["5", "1"], script=f"survey?visit={visit}&attempt=1&token=x").dial(*address)
    assert call.commands == [] and call.closed_by_server
    assert "survey refused: no usable visit" in caplog.text
    assert "Overflow" not in caplog.text and "Traceback" not in caplog.text
