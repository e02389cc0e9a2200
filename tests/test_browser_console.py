"""In Chromium: an agent takes a real Twilio caller from the console, from the pop-up to the wrap-up."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from hotline.app import Hotline
from routing.agents import Agent
from store.models import CallDisposition
from tests.fakes.twilio_api import TwilioApi
from tests.fakes.twilio_caller import TwilioCaller
from tests.test_console import CUSTOMER, MASKED, agent_leg, app, caller, hotline  # noqa: F401
from tests.test_i18n import VISIBLE_TEXT, choose, untranslated
from tests.web import add_user, browser_login


def test_agent_goes_available_takes_the_call_from_the_pop_up_and_wraps_up(
    hotline: Hotline, caller: TwilioCaller, twilio_api: TwilioApi, site: str, page: Any,  # noqa: F811
) -> None:
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5}, ["zh-CN"]))
    add_user(hotline, "ann", "agent")
    browser_login(page, site, "ann", "/agent")
    expect(page.locator("#state")).to_have_text("offline")
    page.click("#go-available")
    expect(page.locator("#state")).to_have_text("available")

    caller.dial()
    caller.press("0")  # a real Twilio caller asks for an agent
    offer = page.locator("#offer")
    expect(offer).to_be_visible()
    expect(offer.locator(".caller")).to_have_text(MASKED)
    expect(offer.locator(".ivr-path")).to_contain_text("main")
    expect(offer.locator(".verified")).to_have_text("not verified")
    assert CUSTOMER not in page.content()

    page.click("#accept")
    expect(page.locator("#pick-up")).to_be_visible()  # accepted: her phone rings on
    expect(page.locator("#accept")).to_be_hidden()
    (create,) = twilio_api.created(1)
    caller.hold()  # the caller is in their Twilio queue (its first waitUrl request): it can be dialled
    leg = agent_leg(caller)
    leg.post(create["Url"])  # she picks up the phone: connected
    assert leg.verb("Dial").find("Conference").text == f"hotline-{caller.call_sid}"
    expect(page.locator("#state")).to_have_text("busy")
    expect(page.locator("#on-call .caller")).to_have_text(MASKED)

    caller.follow()  # Twilio moves the caller into the agent's conference
    leg.leave_conference()  # the call ends
    expect(page.locator("#state")).to_have_text("wrap-up")
    expect(page.locator("#wrap-up")).to_be_visible()
    page.select_option("#disposition", "follow_up")
    page.fill("#notes", "call back about the fee")
    page.click("#submit-wrap-up")
    expect(page.locator("#state")).to_have_text("available")
    expect(page.locator("#wrap-up")).to_be_hidden()
    with hotline.sql() as db:
        row = db.scalar(select(CallDisposition).where(CallDisposition.call_id == caller.call_sid))
    assert (row.agent_id, row.code, row.notes) == ("ann", "follow_up", "call back about the fee")


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_a_user_whose_agent_is_not_in_the_router_sees_one_clear_message_and_no_working_buttons(
    hotline: Hotline, site: str, page: Any, language: str,  # noqa: F811
) -> None:
    add_user(hotline, "zed", "agent")  # stored before the check, or its agent deactivated since
    browser_login(page, site, "zed", "/agent")
    choose(page, language)
    expect(page.locator("#console-missing")).to_be_visible()
    expect(page.locator("#console-missing")).to_contain_text("zed")
    for button in ("#go-available", "#go-not-ready", "#go-offline"):
        expect(page.locator(button)).to_be_disabled()
    page.wait_for_timeout(2500)  # the page would have polled and re-shown the error by now
    assert page.locator(".flash.error, [role=alert]").count() == 1
    texts = [text.replace("zed", "") for text in page.evaluate(VISIBLE_TEXT)]  # the agent id is data
    assert untranslated(language, texts) == []
