"""Loss reporting and complaints over Twilio, and the agent key."""

from __future__ import annotations

import json

import pytest
import redis
from sqlalchemy import select

from hotline.app import Hotline
from routing.keys import EVENTS_STREAM
from store.models import DemoCard, WorkOrder
from tests.fakes.twilio_caller import TwilioCaller

CARD = "6222021234567894"


def events(url: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(url, decode_responses=True)
    return [fields for _, fields in client.xrange(EVENTS_STREAM)]


def test_loss_report_freezes_the_card_and_reads_reference_digit_by_digit(caller: TwilioCaller, hotline: Hotline) -> None:
    caller.dial()
    caller.press("2")
    caller.press(CARD + "#")
    assert caller.said() == ["请输入开户证件号码的后六位，最后一位是X请按星号键。"]
    caller.press("12345*")  # the ID ends in X
    said = caller.said()[0]
    with hotline.sql() as db:
        card = db.scalar(select(DemoCard).where(DemoCard.last4 == "7894"))
    assert card.status == "frozen"
    spoken = " ".join(card.freeze_reference)
    assert said == f"您的卡片已冻结。挂失编号：{spoken}。"


def test_loss_report_in_english_with_wrong_id_three_times_goes_to_loss_agent_first(caller: TwilioCaller) -> None:
    caller.dial()
    caller.press("9")
    caller.press("2")
    caller.press(CARD + "#")
    for _ in range(2):
        caller.press("000000")
        assert caller.said() == ["The ID digits do not match.",
                                 "Enter the last six digits of your ID number. If the last one is X, press star."]
    caller.press("000000")
    assert caller.queue() == "loss:en-US"
    assert caller.said()[-1] == "Connecting you with priority to a lost-card specialist, please hold."


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_complaint_opens_a_work_order_and_reads_its_number(caller: TwilioCaller, hotline: Hotline) -> None:
    caller.dial()
    caller.press("3")
    caller.press("2")  # fees
    record = caller.verb("Record")
    assert (record.attrib["maxLength"], record.attrib["finishOnKey"]) == ("120", "#")
    assert record.attrib["recordingStatusCallback"] == "https://hotline.example.com/twilio/recording"
    caller.record("RE0001", 35)
    with hotline.sql() as db:
        order = db.scalar(select(WorkOrder))
    assert (order.category, order.status, order.recording_ref) == ("fees", "open", "RE0001")
    assert order.caller_masked == "+86138****5678"
    assert caller.said()[0] == f"我们已受理您的投诉，工单号：{' '.join(order.number)}。我们会尽快处理并回访您。"
    caller.press("0")
    assert caller.queue() == "complaint:zh-CN"


def test_complaint_in_english_with_nothing_recorded_twice_goes_to_complaint_agent(caller: TwilioCaller) -> None:
    caller.dial()
    caller.press("9")
    caller.press("3")
    caller.press("1")
    caller.wait()
    assert caller.verbs() == ["Say", "Say", "Record", "Redirect"]
    caller.wait()
    assert caller.queue() == "complaint:en-US"


def test_agent_key_queues_with_skill_priority_and_ivr_path(caller: TwilioCaller, redis_url: str) -> None:
    caller.dial()
    caller.press("0")
    assert caller.queue() == "general:zh-CN"
    queued = [e for e in events(redis_url) if e["type"] == "call_queued"]
    assert (queued[0]["skill"], queued[0]["priority"], queued[0]["channel"]) == ("general", "5", "twilio")
    view = caller.client.application.extensions["hotline"].router.call(caller.call_sid)
    assert [step["input"] for step in json.loads(view.fields["ivr_path"])] == [
        "result open", "key 0", "queued general"]
    caller.leave_queue("bridged")
    assert caller.verbs() == ["Hangup"]
    assert caller.hang_up() == 204
    (ended,) = [e for e in events(redis_url) if e["type"] == "call_ended"]
    assert (ended["outcome"], ended["intent"], ended["status"]) == ("routed", "agent", "completed")


def test_silence_reprompts_then_reaches_an_agent_in_business_hours(caller: TwilioCaller) -> None:
    caller.dial()
    caller.wait()
    assert caller.said()[0] == "我们没有收到您的输入。"
    caller.wait()
    caller.wait()
    assert caller.queue() == "general:zh-CN"
