"""The live dashboard in a real browser: a supervisor watches a call arrive without reloading."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import expect

from hotline.app import Hotline
from routing.agents import Agent
from routing.router import CallRequest
from tests.fakes.twilio_caller import TwilioCaller
from tests.web import add_user, browser_login


def test_supervisor_sees_a_call_reach_the_menus_then_the_queue_without_reload(
        hotline: Hotline, site: str, page: Any, caller: TwilioCaller) -> None:
    add_user(hotline, "sue", "supervisor")
    hotline.agents.put(Agent(id="a1", name="Ann", endpoint="PJSIP/a1", skills={"general": 5}, languages=["zh-CN"]))
    hotline.router.set_agent_state("a1", "not_ready")
    browser_login(page, site, "sue", "/admin/dashboard")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    page.evaluate("window.stillThisPage = true")
    expect(page.locator("#waiting")).to_have_text("0")
    expect(page.locator("#longest-wait")).to_have_text("–")
    expect(page.locator("#agents-not_ready")).to_have_text("1")
    expect(page.locator("#link")).to_have_text("live")

    caller.dial()
    expect(page.locator("#in-ivr")).to_have_text("1")
    caller.press("0")  # to an agent: the only one serving general zh-CN is not ready, so the caller waits
    expect(page.locator("#waiting")).to_have_text("1")
    expect(page.locator("#in-ivr")).to_have_text("0")
    row = page.locator('#queues tr[data-queue="general:zh-CN"]')
    expect(row.locator("td.waiting")).to_have_text("1")
    expect(row).to_contain_text("1 not ready")

    hotline.router.enqueue(CallRequest("c-early", "general", "zh-CN", 0, "twilio", caller="139****0000",
                                       enqueued_at=time.time() - 95))
    expect(page.locator("#waiting")).to_have_text("2")
    expect(page.locator("#longest-wait")).to_have_text(re.compile(r"^1m 3\ds$"))
    expect(row.locator("td.longest .value")).to_have_text(re.compile(r"^1m 3\ds$"))
    expect(row.locator("td.longest .level")).to_have_text("▲▲ alert")  # past HOTLINE_WAIT_ALERT_SECONDS (60)
    assert page.evaluate("window.stillThisPage") is True


def test_an_agent_is_refused_the_dashboard(hotline: Hotline, site: str, page: Any) -> None:
    add_user(hotline, "al", "agent", agent_id="a1")
    browser_login(page, site, "al", "/agent")
    reply = page.goto(f"{site}/admin/dashboard")
    assert reply is not None and reply.status == 403
    assert "may not" in page.inner_text("main")


def test_on_a_390_px_phone_the_navigation_wraps_and_the_tables_keep_their_columns(
        hotline: Hotline, site: str, page: Any) -> None:
    add_user(hotline, "ada", "admin")  # the longest navigation
    hotline.agents.put(Agent(id="a1", name="Ann", endpoint="PJSIP/a1", skills={"general": 5}, languages=["zh-CN"]))
    page.set_viewport_size({"width": 390, "height": 844})
    browser_login(page, site, "ada")
    page.goto(f"{site}/admin/dashboard")
    expect(page.locator("#queues tbody tr")).not_to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the page itself never scrolls sideways
    links = page.locator("header nav a")
    assert links.count() >= 8
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, links.nth(i).inner_text()
    for table, columns in (("#queues", 5), ("#agent-rows", 9)):
        heads = page.locator(f"{table} thead th")
        expect(heads).to_have_count(columns)
        # a table wider than the screen scrolls in its card: its last column is reachable, not cut off
        page.locator(f"{table} thead th").last.scroll_into_view_if_needed()
        box = heads.last.bounding_box()
        assert box and box["width"] > 20 and 0 <= box["x"] and box["x"] + box["width"] <= 391, table
        overflow = page.evaluate(f"getComputedStyle(document.querySelector('{table}').parentElement).overflowX")
        assert overflow == "auto", table
