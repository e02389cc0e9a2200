"""Supervisors run the floor (issue 18): from an agent's row on the dashboard, a supervisor transfers the call to
another queue (cold) and hangs up another after confirming, in zh-CN and en-US. The calls are Asterisk calls as
the hold loop leaves them (the caller's channel, named by the call id, bridged to the agent's leg), on the
project's AMI server on loopback; the router is the real one."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from hotline.app import Hotline
from routing.agents import Agent
from routing.router import CallRequest
from tests.fakes.ami_server import FakeAmiServer
from tests.test_browser_axe import violations
from tests.test_browser_monitor import ami, settings  # noqa: F401  (the AMI server and the settings naming it)
from tests.test_i18n import VISIBLE_TEXT, choose, untranslated
from tests.web import add_user, browser_login

SAID = {
    "en-US": {
        "transfer": "Transfer the call of Ann", "hangup": "Hang up the call of Bob",
        "not bridged": "the caller is not bridged to the agent on Asterisk",
        "sent": "Ann's call sent to complaint.", "hung up": "Hung up Bob's call.", "wrap_up": "wrap-up",
    },
    "zh-CN": {
        "transfer": "转接 Ann 的通话", "hangup": "挂断 Bob 的通话",
        "not bridged": "Asterisk 上来电者与坐席未接通",
        "sent": "已将 Ann 的通话转到 投诉。", "hung up": "已挂断 Bob 的通话。", "wrap_up": "话后处理",
    },
}


def connect(hotline: Hotline, call_id: str, agent_id: str, skill: str) -> None:
    (offer,) = hotline.router.enqueue(CallRequest(call_id, skill, "zh-CN", 0, "asterisk", caller="138****5678"))
    assert offer.agent_id == agent_id
    hotline.router.answer(call_id, agent_id)


def bridge(pbx: FakeAmiServer, call_id: str, agent_id: str) -> str:
    """The call's channels on the PBX: the caller's (its uniqueid is the call id) and the agent's leg."""
    leg = f"PJSIP/{agent_id}-00000001"
    pbx.channels[call_id] = {"CHANNEL": f"PJSIP/trunk-{call_id}", "BRIDGEPEER": leg}
    pbx.channels[leg] = {"CHANNEL": leg}
    return leg


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_a_supervisor_transfers_one_call_and_hangs_up_another_from_the_dashboard(
        hotline: Hotline, ami: FakeAmiServer, site: str, page: Any, language: str) -> None:  # noqa: F811
    said = SAID[language]
    # Ann takes losses, Bob inquiries; Li (general) is free: an agent to transfer to. Nobody takes complaints.
    for agent_id, name, skill in (("a1", "Ann", "loss"), ("a2", "Bob", "inquiry"), ("a3", "Li", "general")):
        hotline.agents.put(Agent(agent_id, name, f"PJSIP/{agent_id}", {skill: 5}, ["zh-CN"]))
        hotline.router.set_agent_state(agent_id, "available")
    connect(hotline, "c1", "a1", "loss")
    connect(hotline, "c2", "a2", "inquiry")
    bob_leg = bridge(ami, "c2", "a2")
    add_user(hotline, "sue", "supervisor")
    browser_login(page, site, "sue", "/admin/dashboard")
    choose(page, language)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    ann, bob = page.locator('#agent-rows tr[data-agent="a1"]'), page.locator('#agent-rows tr[data-agent="a2"]')
    expect(page.locator('#agent-rows tr[data-agent="a3"] button.transfer')).to_be_hidden()  # no call: no actions
    expect(ann.locator("button.transfer")).to_have_attribute("aria-label", said["transfer"])
    expect(bob.locator("button.hangup")).to_have_attribute("aria-label", said["hangup"])

    # -- transfer, from the keyboard: the row's button, the targets, a refusal in words, then the transfer
    ann.locator("button.transfer").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#transfer-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#transfer-agent")).to_have_text("Ann")
    expect(page.locator("#transfer-target option[value='agent:a3']")).to_have_text("Li (a3)")
    expect(page.locator("#transfer-target option[value='agent:a2']")).to_have_count(0)  # on a call: not a target
    expect(page.locator("#transfer-target")).to_be_focused()
    assert untranslated(language, page.evaluate(VISIBLE_TEXT)) == []
    assert violations(page) == []
    page.select_option("#transfer-target", "queue:complaint")
    page.click("#transfer-send")  # Ann's call is not bridged on the PBX (yet): the channel's refusal, translated
    expect(page.locator("#transfer-error")).to_have_text(said["not bridged"])
    expect(dialog).to_be_visible()
    assert hotline.router.call("c1").state == "busy"  # type: ignore[union-attr]
    assert hotline.audit.entries(action="call_transfer") == []

    ann_leg = bridge(ami, "c1", "a1")
    page.click("#transfer-send")
    expect(dialog).to_be_hidden()
    expect(page.locator("#message")).to_contain_text(said["sent"])
    expect(ann.locator("td.state")).to_have_text(said["wrap_up"])  # the row follows the router
    expect(ann.locator("button.transfer")).to_be_hidden()
    expect(page.locator("#queues tr[data-queue^='complaint'] td.waiting")).to_have_text("1")
    moved = hotline.router.call("c1")
    assert moved is not None and (moved.state, moved.queue.split(":")[0], moved.agent) == ("waiting", "complaint", None)
    assert [a["Channel"] for a in ami.named("Hangup")] == [ann_leg]  # the agent's leg: the caller stays on
    (entry,) = hotline.audit.entries(action="call_transfer")
    assert (entry["actor"], entry["role"], entry["target"]) == ("sue", "supervisor", "c1")
    assert entry["detail"] == {"agent": "a1", "mode": "cold", "to_kind": "queue", "to": "complaint"}

    # -- hang up: not one mis-click. The dialog opens on Cancel; Escape or Cancel leave the call alone.
    bob.locator("button.hangup").click()
    expect(page.locator("#hangup-dialog")).to_be_visible()
    expect(page.locator("#hangup-agent")).to_have_text("Bob")
    expect(page.locator("#hangup-cancel")).to_be_focused()
    assert untranslated(language, page.evaluate(VISIBLE_TEXT)) == []
    assert violations(page) == []
    page.keyboard.press("Escape")
    expect(page.locator("#hangup-dialog")).to_be_hidden()
    bob.locator("button.hangup").click()
    page.keyboard.press("Enter")  # on Cancel
    expect(page.locator("#hangup-dialog")).to_be_hidden()
    assert [a["Channel"] for a in ami.named("Hangup")] == [ann_leg]
    assert hotline.audit.entries(action="call_hangup") == []

    bob.locator("button.hangup").click()
    page.click("#hangup-confirm")
    expect(page.locator("#hangup-dialog")).to_be_hidden()
    expect(page.locator("#message")).to_contain_text(said["hung up"])
    assert [a["Channel"] for a in ami.named("Hangup")] == [ann_leg, "c2"]  # the caller's channel: all of the call
    (entry,) = hotline.audit.entries(action="call_hangup")
    assert (entry["actor"], entry["role"], entry["target"], entry["detail"]) == ("sue", "supervisor", "c2",
                                                                                {"agent": "a2"})
    assert "c2" not in ami.channels and bob_leg in ami.channels
    # the caller's channel gone, the hold loop ends the call: the row follows
    hotline.router.end_call("c2", "completed")
    expect(bob.locator("td.state")).to_have_text(said["wrap_up"])
    expect(bob.locator("button.hangup")).to_be_hidden()
    assert hotline.router.call("c2") is None
