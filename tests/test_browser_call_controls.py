"""In Chromium, in zh-CN and en-US: the on-call panel's controls (issue 18) under the call the agent is on. (What they do on a
PBX: tests/test_real_asterisk_transfer.py; here no AMI is configured, so the channel's refusal shows.)"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from hotline.app import Hotline
from routing.agents import Agent
from routing.router import CallRequest
from tests.test_i18n import VISIBLE_TEXT, choose, untranslated
from tests.web import add_user, browser_login

BUTTONS = {"en-US": ("Hang up", "Hold"), "zh-CN": ("挂断", "保持")}


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_the_agent_on_a_call_sees_hang_up_hold_and_transfer_with_the_free_targets(
    hotline: Hotline, site: str, page: Any, language: str,
) -> None:
    for agent_id in ("ann", "bob"):
        hotline.agents.put(Agent(agent_id, agent_id.title(), f"PJSIP/{agent_id}", {"general": 5}, ["zh-CN"]))
        hotline.router.set_agent_state(agent_id, "available")
    (offer,) = hotline.router.enqueue(CallRequest("c-1", "general", "zh-CN", 5, "asterisk", caller="138****5678"))
    assert offer.agent_id == "ann"
    hotline.router.answer("c-1", "ann")
    add_user(hotline, "ann", "agent")
    browser_login(page, site, "ann", "/agent")
    choose(page, language)
    controls = page.locator("#call-controls")
    expect(controls).to_be_visible()
    hang_up, hold = BUTTONS[language]
    expect(controls.locator("#hang-up")).to_have_text(hang_up)
    expect(controls.locator("#hold")).to_have_text(hold)
    assert untranslated(language, page.evaluate(VISIBLE_TEXT)) == []
    expect(page.locator("#transfer-target option")).to_have_count(len(hotline.router.queues) + 1)
    expect(page.locator("#transfer-target option[value='agent:bob']")).to_have_text("Bob (bob)")
    page.select_option("#transfer-target", "queue:loss")
    page.click("#transfer")
    expect(page.locator("#message")).to_contain_text("HOTLINE_AMI_SECRET")  # the channel's answer, shown
    expect(controls).to_be_visible()  # refused: still on the call
    hotline.router.end_call("c-1", "completed")
    page.reload()
    expect(page.locator("#call-controls")).to_be_hidden()


def test_a_reloaded_console_shows_the_caller_on_hold_and_a_warm_transfer_under_way(
    hotline: Hotline, site: str, page: Any,
) -> None:
    for agent_id in ("ann", "bob"):
        hotline.agents.put(Agent(agent_id, agent_id.title(), f"PJSIP/{agent_id}", {"general": 5}, ["zh-CN"]))
        hotline.router.set_agent_state(agent_id, "available")
    hotline.router.enqueue(CallRequest("c-1", "general", "zh-CN", 5, "asterisk", caller="138****5678"))
    hotline.router.answer("c-1", "ann")
    add_user(hotline, "ann", "agent")
    hotline.router.note_hold("c-1", True)  # as POST /api/calls/c-1/hold does once the channel held the caller
    browser_login(page, site, "ann", "/agent")
    controls = page.locator("#call-controls")
    expect(controls.locator("#hold")).to_have_text("Resume")
    expect(controls.locator(".tag")).to_have_text("on hold")
    expect(controls.locator("#transfer-complete")).to_have_count(0)

    # A warm transfer under way (what the channel's control keeps on the call while the target is consulted).
    hotline.redis.hset(hotline.router.key("call:c-1"), mapping={"consult_agent": "bob", "consult_kind": "agent"})
    page.reload()
    expect(controls.locator("#transfer-complete")).to_have_text("Complete transfer")
    expect(controls.locator("#transfer-cancel")).to_have_text("Cancel transfer")
    expect(controls.locator("#hold")).to_be_disabled()
