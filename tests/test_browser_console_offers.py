"""In Chromium, in zh-CN and en-US: an offer is noticed (a beep, the page title, the assertive live region, the
focus on Accept, a desktop notification once allowed), a talk timer runs while on the call, and the screen
pop's work-order link opens read-only for the agent on the call."""

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
from tests.fakes.twilio_caller import TwilioCaller
from tests.test_console import CUSTOMER, MASKED, app, caller, hotline  # noqa: F401
from tests.test_i18n import VISIBLE_TEXT, choose, untranslated
from tests.web import add_user, browser_login
from workers.records import RecordWriter

# Records the tones and desktop notifications the page makes (Chromium headless shows none).
NOTIFICATIONS_SEEN = """
window.tonesPlayed = 0;
const createOscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () { window.tonesPlayed += 1; return createOscillator.call(this); };
window.notificationsSeen = [];
const Real = window.Notification;
window.Notification = class extends Real {
  constructor(title, options) { super(title, options); window.notificationsSeen.push([title, options.body]); }
};
"""
INCOMING = {"zh-CN": "来电", "en-US": "Incoming call"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ui_language": "zh-CN"})


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_an_offer_changes_the_title_is_announced_and_takes_the_focus_then_the_call_is_timed(
    hotline: Hotline, caller: TwilioCaller, site: str, page: Any, language: str,  # noqa: F811
) -> None:
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5}, ["zh-CN"]))
    add_user(hotline, "ann", "agent")
    page.context.grant_permissions(["notifications"], origin=site)
    page.add_init_script(NOTIFICATIONS_SEEN)
    browser_login(page, site, "ann", "/agent")
    if language != "zh-CN":
        choose(page, language)
    title = page.title()
    expect(page.locator("#notify-enable")).to_be_hidden()  # already allowed: nothing to ask
    page.click("#go-available")
    expect(page.locator("#state")).to_have_attribute("data-state", "available")

    caller.dial()
    caller.press("0")
    expect(page).to_have_title(re.compile(r"^\(1\) " + INCOMING[language]))
    expect(page.locator("#announce")).to_have_attribute("aria-live", "assertive")
    expect(page.locator("#announce")).to_contain_text(MASKED)
    expect(page.locator("#announce")).to_contain_text(INCOMING[language])
    expect(page.locator("#accept")).to_be_focused()
    assert page.evaluate("window.tonesPlayed") == 2  # the beep: two short tones (sound allowed by her click)
    seen = page.evaluate("window.notificationsSeen")
    assert seen and seen[0][0] == INCOMING[language] and MASKED in seen[0][1]
    texts = page.evaluate(VISIBLE_TEXT)
    assert untranslated(language, texts) == []
    page.keyboard.press("Enter")  # the focused Accept
    expect(page.locator("#pick-up")).to_be_visible()

    hotline.router.answer(caller.call_sid, "ann")  # her phone picked up
    expect(page.locator("#state")).to_have_attribute("data-state", "busy")
    expect(page).to_have_title(title)
    expect(page.locator("#talk-time")).to_contain_text(re.compile(r"\d+"))
    first = page.inner_text("#talk-time")
    expect(page.locator("#talk-time")).not_to_have_text(first, timeout=3000)  # it counts
    expect(page.locator("#call-controls")).to_be_attached()  # where hang-up, hold and transfer go
    assert untranslated(language, page.evaluate(VISIBLE_TEXT)) == []


def test_desktop_notifications_are_asked_for_on_a_click_not_at_load(
    hotline: Hotline, site: str, page: Any,  # noqa: F811
) -> None:
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5}, ["zh-CN"]))
    add_user(hotline, "ann", "agent")
    page.add_init_script("""
      window.permissionAsked = 0;
      Object.defineProperty(Notification, "permission", { get: () => "default" });
      Notification.requestPermission = () => { window.permissionAsked += 1; return Promise.resolve("default"); };
    """)
    browser_login(page, site, "ann", "/agent")
    expect(page.locator("#notify-enable")).to_be_visible()
    assert page.evaluate("window.permissionAsked") == 0
    page.click("#notify-enable")
    assert page.evaluate("window.permissionAsked") == 1


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_the_screen_pops_work_order_opens_read_only_in_a_tab_of_its_own_and_no_other_order_does(
    hotline: Hotline, caller: TwilioCaller, site: str, page: Any, language: str,  # noqa: F811
) -> None:
    earlier = hotline.desk.open_work_order(CallInfo("CA-earlier", CUSTOMER, "twilio", "zh-CN"), "fees", "RE-1")
    other = hotline.desk.open_work_order(CallInfo("CA-other", "+8613700000000", "twilio", "zh-CN"), "fees", "RE-2")
    RecordWriter(hotline.sql).write([{"type": "call_started", "call_id": "CA-earlier", "ts": f"{time.time():.3f}",
                                      "caller": MASKED, "caller_key": number_key(CUSTOMER), "channel": "twilio"}])
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5}, ["zh-CN"]))
    add_user(hotline, "ann", "agent")
    browser_login(page, site, "ann", "/agent")
    if language != "zh-CN":
        choose(page, language)
    page.click("#go-available")
    caller.dial()
    caller.press("0")
    with page.context.expect_page() as opened:
        page.click(f"#offer .work-orders a:text('{earlier}')")
    order = opened.value
    order.wait_for_load_state()
    expect(order.locator("h1")).to_contain_text(earlier)
    expect(order.locator("#actions")).to_have_count(0)  # read-only
    assert CUSTOMER not in order.content()
    assert untranslated(language, order.evaluate(VISIBLE_TEXT)) == []
    expect(page.locator("#offer")).to_be_visible()  # the console stays with the call
    refused = order.goto(f"{site}/admin/work-orders/{other}")
    assert refused is not None and refused.status == 403
