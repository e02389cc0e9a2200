"""The floor in a real browser: a supervisor watches each agent's row change live, sorts the rows and sets an
agent not ready or available from their row; an agent cannot."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from playwright.sync_api import expect

from hotline.app import Hotline
from routing.agents import Agent
from routing.router import CallRequest
from store.models import CallRecord
from tests.web import add_user, browser_login


def staff(hotline: Hotline) -> None:
    """Ann (general) not ready for lunch, Bob (loss) available, Cy (loss) logged out."""
    for agent_id, name, skill in (("a1", "Ann", "general"), ("a2", "Bob", "loss"), ("a3", "Cy", "loss")):
        hotline.agents.put(Agent(id=agent_id, name=name, endpoint=f"PJSIP/{agent_id}", skills={skill: 5},
                                 languages=["zh-CN"]))
    hotline.router.set_agent_state("a1", "not_ready", "lunch")
    hotline.router.set_agent_state("a2", "available")


def agent_order(page: Any) -> list[str]:
    return [str(v) for v in page.eval_on_selector_all("#agent-rows tbody tr", "rows => rows.map(r => r.dataset.agent)")]


def test_supervisor_sees_each_agents_row_change_live_and_sorts_them(hotline: Hotline, site: str, page: Any) -> None:
    staff(hotline)
    add_user(hotline, "sue", "supervisor")
    browser_login(page, site, "sue", "/admin/dashboard")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    page.evaluate("window.stillThisPage = true")
    ann, bob = page.locator('#agent-rows tr[data-agent="a1"]'), page.locator('#agent-rows tr[data-agent="a2"]')
    expect(ann.locator("td.name")).to_have_text("Ann")
    expect(ann.locator("td.state")).to_have_text("not ready")
    expect(ann.locator("td.reason")).to_have_text("lunch")
    expect(ann.locator("td.in-state")).to_have_text(re.compile(r"^\d+s$"))
    shown = ann.locator("td.in-state").inner_text()
    expect(ann.locator("td.in-state")).not_to_have_text(shown)  # the time in state counts up on its own
    expect(bob.locator("td.state")).to_have_text("available")
    expect(bob.locator("td.calls")).to_have_text("0")

    # a caller reaches Bob: the row shows the ringing call, then the talk, with the caller masked
    hotline.router.enqueue(CallRequest("c1", "loss", "zh-CN", 0, "twilio", caller="138****5678"))
    expect(bob.locator("td.state")).to_have_text("offered")
    expect(bob.locator("td.talk")).to_have_text("ringing")
    expect(bob.locator("td.queue")).to_have_text("loss:zh-CN")
    expect(bob.locator("td.caller")).to_have_text("138****5678")
    hotline.router.answer("c1", "a2")
    expect(bob.locator("td.state")).to_have_text("busy")
    expect(bob.locator("td.talk")).to_have_text(re.compile(r"^\d+s$"))
    expect(bob.locator("td.calls")).to_have_text("1")
    # Ann's reason changes while she stays not ready; back at her desk, the reason goes
    hotline.router.set_agent_state("a1", "not_ready", "coaching")
    expect(ann.locator("td.reason")).to_have_text("coaching")
    hotline.router.set_agent_state("a1", "available")
    expect(ann.locator("td.state")).to_have_text("available")
    expect(ann.locator("td.reason")).to_have_text("")

    assert agent_order(page) == ["a1", "a2", "a3"]  # by name
    name_header = page.locator('#agent-rows th[data-sort="name"]')
    expect(name_header).to_have_attribute("aria-sort", "ascending")
    name_header.get_by_role("button").click()
    expect(name_header).to_have_attribute("aria-sort", "descending")
    assert agent_order(page) == ["a3", "a2", "a1"]
    page.locator('#agent-rows th[data-sort="calls"]').get_by_role("button").click()
    expect(page.locator('#agent-rows th[data-sort="calls"]')).to_have_attribute("aria-sort", "ascending")
    expect(name_header).not_to_have_attribute("aria-sort", re.compile("."))
    assert agent_order(page)[-1] == "a2"  # the one call today last
    page.locator('#agent-rows th[data-sort="state"]').get_by_role("button").click()
    assert agent_order(page) == ["a1", "a2", "a3"]  # available, busy, offline
    # the order holds as rows change: Cy logs in and moves up among the available
    hotline.router.set_agent_state("a3", "available")
    expect(page.locator("#agent-rows tbody tr").nth(1)).to_have_attribute("data-agent", "a3")
    assert page.evaluate("window.stillThisPage") is True


def test_service_level_and_abandonment_past_their_thresholds_say_so_in_words(hotline: Hotline, site: str,
                                                                            page: Any) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    with hotline.sql.begin() as db:  # 4 queued today: 1 answered in 5 s, 1 after 50 s, 2 abandoned
        for n, (wait, outcome) in enumerate(((5.0, "routed"), (50.0, "routed"), (None, "abandoned"),
                                             (None, "abandoned"))):
            db.add(CallRecord(call_id=f"r{n}", channel="twilio", started_at=now, queue="general:zh-CN", wait_s=wait,
                              answered_at=now + dt.timedelta(seconds=wait) if wait is not None else None,
                              outcome=outcome))
    add_user(hotline, "sue", "supervisor")
    browser_login(page, site, "sue", "/admin/dashboard")
    expect(page.locator("#service-level")).to_have_text("25.0%")
    expect(page.locator("#service-level-level")).to_have_text("▲▲ alert")  # below 60 %
    expect(page.locator("#service-level")).to_have_class(re.compile("lvl-alert"))
    expect(page.locator("#abandonment")).to_have_text("50.0%")
    expect(page.locator("#abandonment-level")).to_have_text("▲▲ alert")  # above 10 %
    expect(page.locator("#longest-wait-level")).to_have_text("")  # nobody waiting: no mark


def test_supervisor_sets_an_agent_not_ready_then_available_from_the_row(hotline: Hotline, site: str,
                                                                        page: Any) -> None:
    staff(hotline)
    hotline.router.enqueue(CallRequest("c1", "loss", "zh-CN", 0, "twilio", caller="138****5678"))
    hotline.router.answer("c1", "a2")
    add_user(hotline, "sue", "supervisor")
    browser_login(page, site, "sue", "/admin/dashboard")
    ann = page.locator('#agent-rows tr[data-agent="a1"]')
    expect(ann.locator("td.state")).to_have_text("not ready")

    ann.get_by_role("button", name="Change state of Ann").click()
    dialog = page.locator("#state-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#state-now")).to_have_text("not ready (lunch)")
    dialog.get_by_role("button", name="Available").click()
    expect(dialog).to_be_hidden()
    expect(ann.locator("td.state")).to_have_text("available")
    assert hotline.agents.get("a1").state == "available"  # type: ignore[union-attr]

    ann.get_by_role("button", name="Change state of Ann").click()
    dialog.get_by_label("Not-ready reason").select_option("coaching")
    dialog.get_by_role("button", name="Not ready").click()
    expect(ann.locator("td.state")).to_have_text("not ready")
    expect(ann.locator("td.reason")).to_have_text("coaching")
    entry = hotline.audit.entries(action="agent_state_set")[0]
    assert (entry["actor"], entry["target"], entry["detail"]) == (
        "sue", "a1", {"state": "not_ready", "reason": "coaching", "previous": "available"})

    # Bob is talking: the router refuses, the dialog says why and Bob's row stays as it was
    page.locator('#agent-rows tr[data-agent="a2"]').get_by_role("button", name="Change state of Bob").click()
    dialog.get_by_role("button", name="Not ready").click()
    expect(dialog.locator("#state-error")).to_contain_text("on a call")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator('#agent-rows tr[data-agent="a2"] td.state')).to_have_text("busy")
    assert len(hotline.audit.entries(action="agent_state_set")) == 2


def test_an_agent_cannot_change_another_agents_state(hotline: Hotline, site: str, page: Any) -> None:
    staff(hotline)
    add_user(hotline, "al", "agent", agent_id="a3")
    browser_login(page, site, "al", "/agent")
    status = page.evaluate("""async () => {
        try { await hotline.api("POST", "/api/agents/a2/state", { state: "not_ready", reason: "break" }); return 200; }
        catch (error) { return error.status; }
    }""")
    assert status == 403
    assert hotline.agents.get("a2").state == "available"  # type: ignore[union-attr]
    reply = page.goto(f"{site}/admin/dashboard")
    assert reply is not None and reply.status == 403
