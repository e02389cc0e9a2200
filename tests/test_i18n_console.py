"""The agent console in Chromium, in zh-CN (the default) and en-US, through a real Twilio caller's offer, the
call and the wrap-up: no text of the other language at any step, times in HOTLINE_TIMEZONE."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from hotline.app import Hotline
from hotline.settings import Settings
from ivr.masking import number_key
from ivr.services import CallInfo
from routing.agents import Agent
from tests.fakes.twilio_api import TwilioApi
from tests.fakes.twilio_caller import TwilioCaller
from tests.test_console import CARD, CUSTOMER, MASKED, PIN, agent_leg, app, caller, hotline  # noqa: F401
from tests.test_i18n import RAW_TIMES, VISIBLE_TEXT, choose, untranslated
from tests.web import add_user, browser_login
from workers.records import RecordWriter


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ui_language": "zh-CN"})


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_the_console_speaks_one_language_from_offer_to_wrap_up(
    hotline: Hotline, caller: TwilioCaller, twilio_api: TwilioApi, site: str, page: Any,  # noqa: F811
    language: str,
) -> None:
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5, "inquiry": 5}, ["zh-CN"]))
    add_user(hotline, "ann", "agent")
    hotline.desk.open_work_order(CallInfo("CA-earlier", CUSTOMER, "twilio", "zh-CN"), "fees", "RE-1")
    RecordWriter(hotline.sql).write([{"type": "call_started", "call_id": "CA-earlier", "ts": f"{time.time():.3f}",
                                      "caller": MASKED, "caller_key": number_key(CUSTOMER), "channel": "twilio"}])
    browser_login(page, site, "ann", "/agent")
    if language != "zh-CN":
        choose(page, language)
    problems: dict[str, list[str]] = {}

    def look(step: str) -> None:
        texts = page.evaluate(VISIBLE_TEXT)
        wrong = untranslated(language, texts) + [t for t in texts if RAW_TIMES.search(t)]
        if wrong:
            problems[step] = wrong

    page.click("#go-available")
    expect(page.locator("#state")).to_have_attribute("data-state", "available")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page.inner_text("#state-since"))
    look("available")
    caller.dial()
    caller.press("1")
    caller.press(CARD + "#")
    caller.press(PIN)  # verified, with an intent and a path
    caller.press("0")
    expect(page.locator("#offer")).to_be_visible()
    expect(page.locator("#offer .work-orders li")).to_have_count(1)
    look("offer")
    page.click("#accept")
    expect(page.locator("#pick-up")).to_be_visible()
    look("accepted")
    (create,) = twilio_api.created(1)
    caller.hold()
    leg = agent_leg(caller)
    leg.post(create["Url"])
    expect(page.locator("#state")).to_have_attribute("data-state", "busy")
    look("on call")
    caller.follow()  # Twilio moves the caller into the agent's conference
    leg.leave_conference()
    expect(page.locator("#wrap-up")).to_be_visible()
    look("wrap-up")
    page.select_option("#disposition", "follow_up")
    page.click("#submit-wrap-up")
    expect(page.locator("#state")).to_have_attribute("data-state", "available")
    look("after wrap-up")
    assert problems == {}

