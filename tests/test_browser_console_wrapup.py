"""In Chromium, in zh-CN and en-US: the wrap-up form outlives the queue's wrap-up time and a reload, the
router offers the agent nothing meanwhile, and submitting it makes her available."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from hotline.app import Hotline, prepare
from hotline.settings import Settings
from routing.agents import Agent
from routing.config import QueueConfig
from store.models import CallDisposition
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_api import HOTLINE_NUMBER, TwilioApi
from tests.fakes.twilio_caller import TwilioCaller
from tests.test_console import app, caller  # noqa: F401
from tests.test_i18n import VISIBLE_TEXT, choose, untranslated
from tests.web import add_user, browser_login

WRAP_S = 2
NOTES = "客户要求明天回电 / call back tomorrow"


@pytest.fixture
def hotline(settings: Settings, twilio_api: TwilioApi) -> Hotline:
    fast = QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, wrap_up=WRAP_S)
    return prepare(settings.model_copy(update={
        "twilio_api_base": twilio_api.server.url, "twilio_number": HOTLINE_NUMBER, "queues": {"general": fast},
    }))


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_notes_typed_stay_past_the_wrap_up_time_and_a_reload_and_submitting_makes_available(
    hotline: Hotline, caller: TwilioCaller, site: str, page: Any, app: Any, language: str,  # noqa: F811
) -> None:
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5}, ["zh-CN"]))
    add_user(hotline, "ann", "agent")
    browser_login(page, site, "ann", "/agent")
    choose(page, language)
    page.click("#go-available")
    expect(page.locator("#state")).to_have_attribute("data-state", "available")
    caller.dial()
    caller.press("0")
    expect(page.locator("#offer")).to_be_visible()
    hotline.router.answer(caller.call_sid, "ann")  # her phone picked up
    expect(page.locator("#state")).to_have_attribute("data-state", "busy")
    hotline.connector.settle(hotline.router.end_call(caller.call_sid, "completed", agent="ann"))
    expect(page.locator("#wrap-up")).to_be_visible()
    expect(page.locator("#wrap-left")).not_to_be_empty()  # the countdown runs
    expect(page.locator("#go-available")).to_be_disabled()  # no taking calls with the form unsent
    page.select_option("#disposition", "follow_up")
    with page.expect_response("**/api/agent/wrap-up/draft"):
        page.fill("#notes", NOTES)

    expect(page.locator("#wrap-over")).to_be_visible(timeout=WRAP_S * 1000 + 3000)  # the countdown is over
    texts = page.evaluate(VISIBLE_TEXT)
    assert untranslated(language, texts) == []
    hotline.router.tick()  # the reconciler's run after the wrap-up time: she stays in wrap-up
    waiting = TwilioCaller(app.test_client(), AUTH_TOKEN, PUBLIC_URL, caller="+8613900001111")
    waiting.dial()
    waiting.press("0")  # nothing is offered to her
    time.sleep(0.5)
    expect(page.locator("#offer")).to_be_hidden()
    expect(page.locator("#state")).to_have_attribute("data-state", "wrap_up")
    expect(page.locator("#notes")).to_have_value(NOTES)

    page.reload()  # what she typed is on the server
    expect(page.locator("#wrap-up")).to_be_visible()
    expect(page.locator("#notes")).to_have_value(NOTES)
    expect(page.locator("#disposition")).to_have_value("follow_up")
    page.click("#wrap-extend")  # one more minute on the countdown
    expect(page.locator("#wrap-over")).to_be_hidden()
    expect(page.locator("#wrap-left")).not_to_be_empty()

    page.click("#submit-wrap-up")
    expect(page.locator("#offer")).to_be_visible()  # available again: the waiting caller comes to her
    assert hotline.router.call(waiting.call_sid).agent == "ann"  # type: ignore[union-attr]
    with hotline.sql() as db:
        row = db.scalar(select(CallDisposition).where(CallDisposition.call_id == caller.call_sid))
    assert (row.code, row.notes) == ("follow_up", NOTES)  # type: ignore[union-attr]
