"""Inquiry over Twilio: card, PIN, balance; and the ways it goes wrong."""

from __future__ import annotations

from tests.fakes.twilio_caller import TwilioCaller

CARD, PIN = "6222021234567894", "123456"


def test_inquiry_reads_balance_and_status_in_chinese(caller: TwilioCaller) -> None:
    caller.dial()
    assert caller.verbs() == ["Say", "Gather", "Redirect"]
    caller.press("1")
    assert caller.verb("Gather").attrib["finishOnKey"] == "#"
    caller.press(CARD + "#")
    assert caller.verb("Gather").attrib["numDigits"] == "6"
    caller.press(PIN)
    assert "您的余额为12345.67元，卡片状态：正常。" in caller.said()
