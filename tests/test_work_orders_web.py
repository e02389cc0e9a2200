"""The work-order pages: filters, the detail with its trail and recording, actions audited as the person logged in."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from complaints.recording_links import record_recording
from complaints.work_orders import WorkOrderDesk
from hotline.app import Hotline
from ivr.services import CallInfo
from tests.web import SessionClient, add_user, browser_login

CUSTOMER = "+8613812345678"


@pytest.fixture
def orders(hotline: Hotline) -> dict[str, str]:
    """Three complaints: fees (with a stored recording), card_account, and service made overdue."""
    made = {}
    for call_id, category in (("CA-f", "fees"), ("CA-c", "card_account"), ("CA-s", "service")):
        made[category] = hotline.desk.open_work_order(CallInfo(call_id, CUSTOMER, "twilio", "zh-CN"), category,
                                                      f"RE-{call_id}")
    record_recording(hotline.sql, hotline.recordings.save("RE-CA-f", "CA-f", b"RIFF-fees", 2.0,
                                                          work_order=made["fees"]))
    later = WorkOrderDesk(hotline.sql, clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=25))
    hotline.desk.act(made["fees"], "assign", "sam", assignee="sam")
    hotline.desk.act(made["card_account"], "assign", "sam", assignee="sam")
    later.flag_overdue()  # only the service complaint has nobody on it: first contact late
    return made


@pytest.fixture
def sue(app: Any, hotline: Hotline) -> SessionClient:
    add_user(hotline, "sue", "supervisor")
    return SessionClient(app.test_client(), "sue")


def numbers_on(html: str) -> list[str]:
    return re.findall(r'<tr data-number="(\d+)"', html)


def test_list_filters_by_status_category_and_overdue(sue: SessionClient, orders: dict[str, str]) -> None:
    everything = sue("GET", "/admin/work-orders")
    assert everything.status_code == 200 and sorted(numbers_on(everything.get_data(as_text=True))) == sorted(
        orders.values())
    assigned = numbers_on(sue("GET", "/admin/work-orders?status=assigned").get_data(as_text=True))
    assert sorted(assigned) == sorted([orders["fees"], orders["card_account"]])
    assert numbers_on(sue("GET", "/admin/work-orders?category=fees").get_data(as_text=True)) == [orders["fees"]]
    overdue = sue("GET", "/admin/work-orders?overdue=yes").get_data(as_text=True)
    assert numbers_on(overdue) == [orders["service"]] and "first contact" in overdue
    on_time = numbers_on(sue("GET", "/admin/work-orders?overdue=no&category=card_account").get_data(as_text=True))
    assert on_time == [orders["card_account"]]
    page = sue("GET", "/admin/work-orders?status=closed").get_data(as_text=True)
    assert numbers_on(page) == [] and "No work orders match" in page
    assert CUSTOMER not in everything.get_data(as_text=True) and "+86138****5678" in everything.get_data(as_text=True)


def test_detail_shows_the_trail_and_a_player_for_its_recording(sue: SessionClient, orders: dict[str, str]) -> None:
    page = sue("GET", f"/admin/work-orders/{orders['fees']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    trail = html.split('id="trail"', 1)[1]
    assert re.search(r'<td translate="no">ivr</td><td>open</td>', trail)
    assert re.search(r'<td translate="no">sam</td><td>assign</td>', trail)
    assert 'data-ref="RE-CA-f"' in html and "work_orders.js" in html
    assert CUSTOMER not in html
    link = sue("POST", "/api/recordings/RE-CA-f/link").json  # what the page's button asks for
    assert sue("GET", link["url"]).data == b"RIFF-fees"
    assert sue("GET", "/admin/work-orders/999").status_code == 404


def test_actions_from_the_page_change_the_order_and_are_audited_as_the_person(
    sue: SessionClient, hotline: Hotline, orders: dict[str, str],
) -> None:
    number = orders["service"]
    add_user(hotline, "tom", "supervisor")
    steps = [("assign", {"to": "tom", "note": "tom knows fees"}, "assigned"),
             ("start", {}, "in_progress"),
             ("resolve", {"note": "fee refunded"}, "resolved"),
             ("close", {}, "closed")]
    for action, extra, status in steps:
        reply = sue("POST", f"/admin/work-orders/{number}",
                    data={"action": action, "csrf_token": sue.csrf, **extra})
        assert reply.status_code == 303, reply.get_data(as_text=True)[:400]
        page = sue("GET", reply.headers["Location"]).get_data(as_text=True)
        assert f'id="order-status" data-status="{status}">' in page and f"{action} done" in page
    shown = hotline.desk.show(number)
    assert shown["assignee"] == "tom" and shown["resolution"] == "fee refunded"
    assert [(c["actor"], c["action"]) for c in shown["changes"]][-4:] == [
        ("sue", "assign"), ("sue", "start"), ("sue", "resolve"), ("sue", "close")]
    audited = hotline.audit.entries(target=number)
    assert [(e["actor"], e["role"], e["action"]) for e in reversed(audited)] == [
        ("sue", "supervisor", f"work_order_{a}") for a, _, _ in steps]
    assert audited[1]["detail"]["note"] == "fee refunded"


def test_a_forbidden_transition_shows_the_409_sentence(sue: SessionClient, hotline: Hotline,
                                                       orders: dict[str, str]) -> None:
    number = orders["card_account"]
    reply = sue("POST", f"/admin/work-orders/{number}", data={"action": "close", "csrf_token": sue.csrf})
    assert reply.status_code == 409
    assert f"work order {number} is assigned: cannot close (allowed from resolved, visited)" in reply.get_data(
        as_text=True)
    assert hotline.desk.show(number)["status"] == "assigned" and hotline.audit.entries(target=number) == []
    api = sue("POST", f"/api/complaints/{number}/close", {})
    assert api.status_code == 409 and "cannot close" in api.json["error"]
    missing = sue("POST", f"/admin/work-orders/{number}", data={"action": "assign", "csrf_token": sue.csrf})
    assert missing.status_code == 400 and "needs the assignee" in missing.get_data(as_text=True)


@pytest.mark.parametrize("to", ["nobody", "amy", "old", ""])
def test_assign_takes_only_an_active_admin_or_supervisor_on_page_and_api(
    sue: SessionClient, hotline: Hotline, orders: dict[str, str], to: str,
) -> None:
    """Not any text: an unknown name, an agent, a deactivated user; each answered 400 naming the field."""
    add_user(hotline, "amy", "agent")
    add_user(hotline, "old", "supervisor")
    hotline.accounts.set_active("old", False)
    number = orders["service"]
    page = sue("POST", f"/admin/work-orders/{number}", data={"action": "assign", "to": to, "csrf_token": sue.csrf})
    assert page.status_code == 400 and "assignee" in page.get_data(as_text=True)
    api = sue("POST", f"/api/complaints/{number}/assign", {"to": to})
    assert api.status_code == 400 and "assignee" in api.json["error"]
    if to:
        assert repr(to) in api.json["error"] and "admin or supervisor" in api.json["error"]
    assert hotline.desk.show(number)["status"] == "open" and hotline.audit.entries(target=number) == []
    assert sue("POST", f"/api/complaints/{number}/assign", {"to": "sue"}).json["assignee"] == "sue"


def test_resolve_needs_a_note_on_page_and_api(sue: SessionClient, hotline: Hotline, orders: dict[str, str]) -> None:
    number = orders["fees"]
    page = sue("POST", f"/admin/work-orders/{number}", data={"action": "resolve", "note": "  ",
                                                               "csrf_token": sue.csrf})
    assert page.status_code == 400 and "resolve needs a note" in page.get_data(as_text=True)
    api = sue("POST", f"/api/complaints/{number}/resolve", {"note": ""})
    assert api.status_code == 400 and "resolve needs a note" in api.json["error"]
    assert hotline.desk.show(number)["status"] == "assigned" and hotline.audit.entries(target=number) == []
    assert sue("POST", f"/api/complaints/{number}/resolve", {"note": "fee refunded"}).json["status"] == "resolved"


def test_the_pages_are_for_admins_and_supervisors_and_writes_need_the_csrf_token(
    app: Any, hotline: Hotline, sue: SessionClient, orders: dict[str, str],
) -> None:
    add_user(hotline, "amy", "agent")
    add_user(hotline, "ana", "admin")
    amy, ana = SessionClient(app.test_client(), "amy"), SessionClient(app.test_client(), "ana")
    assert amy("GET", "/admin/work-orders").status_code == 403
    assert amy("POST", f"/admin/work-orders/{orders['fees']}", data={"action": "start", "csrf_token": amy.csrf}
               ).status_code == 403
    assert ana("GET", f"/admin/work-orders/{orders['fees']}").status_code == 200
    forged = sue.client.post(f"/admin/work-orders/{orders['fees']}", data={"action": "start"})
    assert forged.status_code == 400 and hotline.desk.show(orders["fees"])["status"] == "assigned"


def test_browser_plays_the_recording_and_starts_the_work(hotline: Hotline, orders: dict[str, str], site: str,
                                                                page: Any) -> None:
    add_user(hotline, "sue", "supervisor")
    browser_login(page, site, "sue", "/admin/dashboard")
    page.goto(f"{site}/admin/work-orders?category=fees")
    page.click(f"text={orders['fees']}")
    expect(page.locator("audio")).to_have_count(0)  # no player without a link: it would show dead
    page.click("#play-recording")
    expect(page.locator("#player")).to_be_visible()
    # (an expect, not wait_for_function: a polled string is eval'd, which the page's CSP rightly refuses)
    expect(page.locator("#player")).to_have_attribute("src", re.compile("/recordings/play/"))
    page.fill("form[data-action=start] input[name=note]", "calling the customer")
    page.click("#do-start")
    assert page.inner_text("#order-status") == "in progress"
    assert "calling the customer" in page.inner_text("#trail")


def test_the_page_offers_only_what_is_allowed(hotline: Hotline, orders: dict[str, str], site: str, page: Any) -> None:
    """Actions the status forbids are disabled (not only grey), the assignee is chosen among the people who work
    orders, and resolve says it needs a note; a page left open after someone else acted still gets the 409."""
    add_user(hotline, "sue", "supervisor")
    add_user(hotline, "ana", "admin")
    add_user(hotline, "amy", "agent")
    add_user(hotline, "old", "supervisor")
    hotline.accounts.set_active("old", False)
    browser_login(page, site, "sue", "/admin/dashboard")
    number = orders["fees"]  # assigned to sam (before the assignee check)
    page.goto(f"{site}/admin/work-orders/{number}")
    expect(page.locator("#do-close")).to_be_disabled()
    expect(page.locator("#why-not-close")).to_have_text("not from assigned")
    for action in ("assign", "start", "resolve"):
        expect(page.locator(f"#do-{action}")).to_be_enabled()

    options = page.locator("form[data-action=assign] select[name=to] option")
    expect(options).to_have_text(["assign to…", "ana", "sue"])  # not the agent, not the deactivated one
    page.click("#do-assign")  # nobody chosen: the browser asks, nothing is sent
    assert page.evaluate("() => document.querySelector('form[data-action=assign] select').validity.valueMissing")
    page.select_option("form[data-action=assign] select[name=to]", "ana")
    page.click("#do-assign")
    expect(page.locator("#order-assignee")).to_have_text("ana")

    expect(page.locator("#resolve-note-why")).to_have_text("A note is required: what was done for the caller.")
    page.click("#do-resolve")
    assert page.evaluate("() => document.querySelector('form[data-action=resolve] input.note').validity.valueMissing")
    expect(page.locator("#order-status")).to_have_text("assigned")
    hotline.desk.act(number, "resolve", "ana", note="done by phone")  # someone else, meanwhile
    page.fill("form[data-action=resolve] input[name=note]", "fee refunded")
    page.click("#do-resolve")
    expect(page.locator("#action-error")).to_contain_text("cannot resolve")
    expect(page.locator("#do-close")).to_be_enabled()
    expect(page.locator("#do-resolve")).to_be_disabled()
