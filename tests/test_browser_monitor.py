"""The dashboard's Monitor action: a supervisor listens to, whispers to or barges into an agent's connected call
from the agent's row; the page asks for the supervisor's phone once and posts to ``POST /api/calls/<id>/monitor``,
which rings that phone through AMI (here the project's AMI server on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from hotline.app import Hotline
from hotline.settings import Settings
from routing.agents import Agent
from routing.router import CallRequest
from tests.fakes.ami_server import FakeAmiServer
from tests.test_browser_axe import violations
from tests.test_i18n import VISIBLE_TEXT, choose, untranslated
from tests.web import add_user, browser_login

AMI_SECRET = "monitor-test-secret"


@pytest.fixture
def ami() -> Iterator[FakeAmiServer]:
    with FakeAmiServer(secret=AMI_SECRET) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, ami: FakeAmiServer) -> Settings:
    return settings.model_copy(update={"ami_port": ami.port, "ami_secret": AMI_SECRET})


def test_a_supervisor_monitors_a_connected_call_from_the_agents_row(hotline: Hotline, ami: FakeAmiServer,
                                                                     site: str, page: Any) -> None:
    for agent_id, name in (("a1", "Ann"), ("a2", "Bob")):
        hotline.agents.put(Agent(id=agent_id, name=name, endpoint=f"PJSIP/{agent_id}", skills={"loss": 5},
                                 languages=["zh-CN"]))
        hotline.router.set_agent_state(agent_id, "available")
    add_user(hotline, "sue", "supervisor")
    browser_login(page, site, "sue", "/admin/dashboard")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    ann, bob = page.locator('#agent-rows tr[data-agent="a1"]'), page.locator('#agent-rows tr[data-agent="a2"]')
    expect(ann.locator("button.monitor")).to_be_hidden()  # no call: nothing to join

    hotline.router.enqueue(CallRequest("c1", "loss", "zh-CN", 0, "asterisk", caller="138****5678"))
    ringing = ann if page.locator('#agent-rows tr[data-state="offered"]').get_attribute("data-agent") == "a1" else bob
    expect(ringing.locator("td.talk")).to_have_text("ringing")
    expect(ringing.locator("button.monitor")).to_be_hidden()  # ringing the agent: not yet a conversation
    agent_id = ringing.get_attribute("data-agent")
    hotline.router.answer("c1", agent_id)
    expect(ringing.locator("td.state")).to_have_text("busy")
    other = bob if ringing == ann else ann
    expect(other.locator("button.monitor")).to_be_hidden()
    name = ringing.locator("td.name").inner_text()

    ringing.locator("button.monitor").click()  # the first time: the page asks for the supervisor's phone
    expect(page.locator("#monitor-dialog")).to_be_visible()
    expect(page.locator("#monitor-agent")).to_have_text(name)
    expect(page.locator("#monitor-endpoint")).to_have_value("")
    expect(page.locator("#monitor-endpoint")).to_be_focused()
    assert violations(page) == []  # axe-core, with the dialog open
    page.click("#monitor-listen")
    expect(page.locator("#monitor-error")).to_have_text("Give the phone to ring: your extension or PJSIP endpoint.")
    page.fill("#monitor-endpoint", "PJSIP/sup1")
    page.click("#monitor-listen")
    expect(page.locator("#monitor-dialog")).to_be_hidden()
    expect(page.locator("#message")).to_contain_text(f"Ringing PJSIP/sup1: answer to listen to {name}'s call.")
    (originate,) = ami.named("Originate")
    assert (originate["Channel"], originate["Application"]) == ("PJSIP/sup1", "ChanSpy")
    assert originate["Data"] == f"PJSIP/{agent_id}-,qE"
    (entry,) = hotline.audit.entries(action="call_monitored")
    assert (entry["actor"], entry["target"], entry["detail"]["mode"]) == ("sue", "c1", "listen")

    page.reload()  # remembered in this browser: asked once
    ringing.locator("button.monitor").click()
    expect(page.locator("#monitor-endpoint")).to_have_value("PJSIP/sup1")
    page.click("#monitor-whisper")
    expect(page.locator("#message")).to_contain_text(f"Ringing PJSIP/sup1: answer to whisper to {name}.")
    assert ami.named("Originate")[-1]["Data"] == f"PJSIP/{agent_id}-,qwE"

    ringing.locator("button.monitor").click()  # a refusal is said in the dialog, which stays open
    page.fill("#monitor-endpoint", "client:sue")
    page.click("#monitor-barge")
    expect(page.locator("#monitor-error")).to_contain_text("is not an Asterisk channel")
    expect(page.locator("#monitor-dialog")).to_be_visible()
    assert len(ami.named("Originate")) == 2


def test_the_monitor_dialog_speaks_the_supervisors_language(hotline: Hotline, ami: FakeAmiServer, site: str,
                                                            page: Any) -> None:
    """The same action in zh-CN, the pages' default: the button, the dialog and the answer in Chinese."""
    hotline.agents.put(Agent(id="a1", name="Ann", endpoint="PJSIP/a1", skills={"loss": 5}, languages=["zh-CN"]))
    hotline.router.set_agent_state("a1", "available")
    add_user(hotline, "sue", "supervisor")
    browser_login(page, site, "sue", "/admin/dashboard")
    choose(page, "zh-CN")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    hotline.router.enqueue(CallRequest("c1", "loss", "zh-CN", 0, "asterisk", caller="138****5678"))
    hotline.router.answer("c1", "a1")
    row = page.locator('#agent-rows tr[data-agent="a1"]')
    expect(row.locator("button.monitor")).to_be_visible()
    expect(row.locator("button.monitor")).to_have_text("监控…")
    row.locator("button.monitor").click()
    expect(page.locator("#monitor-dialog")).to_be_visible()
    assert untranslated("zh-CN", page.evaluate(VISIBLE_TEXT)) == []
    page.fill("#monitor-endpoint", "PJSIP/1003")
    page.click("#monitor-listen")
    expect(page.locator("#message")).to_contain_text("PJSIP/1003")
    assert untranslated("zh-CN", [page.locator("#message").inner_text()]) == []
    assert len(ami.named("Originate")) == 1
