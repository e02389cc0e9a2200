"""Inquiry over Twilio, in both languages: card, PIN, balance; and three wrong PINs."""

from __future__ import annotations

from tests.fakes.twilio_caller import TwilioCaller

CARD, PIN = "6222021234567894", "123456"


def test_inquiry_reads_balance_and_status_in_chinese(caller: TwilioCaller) -> None:
    caller.dial()
    # The welcome plays inside the Gather: a caller who knows the menu may press 1 straight away.
    assert caller.verbs() == ["Gather", "Redirect"]
    welcome, menu = caller.verb("Gather").findall("Say")
    assert welcome.text.startswith("您好，欢迎致电") and menu.text.startswith("查询余额")
    assert welcome.attrib == {"language": "cmn-CN", "voice": "Polly.Zhiyu"}
    caller.press("1")
    gather = caller.verb("Gather")
    assert (gather.attrib["finishOnKey"], gather.attrib["numDigits"]) == ("#", "19")
    caller.press(CARD + "#")
    assert caller.verb("Gather").attrib["numDigits"] == "6"
    assert caller.said() == ["请输入六位密码。"]
    caller.press(PIN)
    assert caller.said()[0] == "您的余额为12345.67元，卡片状态：正常。"
    assert caller.verbs() == ["Gather", "Redirect"]


def test_inquiry_in_english_after_pressing_nine(caller: TwilioCaller) -> None:
    caller.dial()
    caller.press("9")
    assert caller.said()[0].startswith("For balance and card status, press 1.")
    assert caller.verb("Gather").find("Say").attrib["language"] == "en-US"
    caller.press("1")
    caller.press(CARD + "#")
    caller.press(PIN)
    assert caller.said()[0] == "Your balance is 12345.67 yuan. Your card is active."


def test_frozen_card_status_is_read_out(caller: TwilioCaller) -> None:
    caller.dial()
    caller.press("1")
    caller.press("622202123456789012#")
    caller.press("111111")
    assert caller.said()[0] == "您的余额为0.00元，卡片状态：已冻结。"


def test_three_wrong_pins_reach_an_inquiry_agent(caller: TwilioCaller) -> None:
    caller.dial()
    caller.press("1")
    for _ in range(3):
        caller.press(CARD + "#")
        caller.press("999999")
    assert caller.said()[-2:] == ["验证失败次数过多，正在为您转接人工服务。", "正在为您转接人工服务，请稍候。"]
    assert caller.queue() == "inquiry:zh-CN"


def test_repeat_key_reads_the_balance_again(caller: TwilioCaller) -> None:
    caller.dial()
    caller.press("1")
    caller.press(CARD + "#")
    caller.press(PIN)
    caller.press("1")
    assert caller.said()[0] == "您的余额为12345.67元，卡片状态：正常。"
    caller.press("2")
    assert caller.said() == ["查询余额和卡片状态请按1，挂失请按2，投诉请按3，人工服务请按0。"]


def test_the_english_menu_reads_its_chinese_words_with_a_chinese_voice(caller: TwilioCaller) -> None:
    caller.dial()
    caller.press("9")
    says = [(el.get("voice"), el.text) for el in caller.twiml.iter("Say")]  # type: ignore[union-attr]
    assert ("Polly.Zhiyu", "中文服务请按9。") in says
    assert all(voice != "Polly.Joanna" or not any("\u4e00" <= ch <= "\u9fff" for ch in text or "")
               for voice, text in says)
