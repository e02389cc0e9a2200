"""The agent console: state, the offer pop-up, accept and decline against Twilio's agent leg, the wrap-up."""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from hotline.app import Hotline, create_app, prepare
from hotline.settings import Settings
from ivr.masking import number_key
from ivr.services import CallInfo
from routing.agents import Agent
from routing.config import QueueConfig
from routing.keys import EVENTS_STREAM
from store.models import CallDisposition
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_api import HOTLINE_NUMBER, TwilioApi
from tests.fakes.twilio_caller import TwilioCaller
from tests.web import PASSWORD, SessionClient, add_user, live_server
from workers.records import RecordWriter

CUSTOMER = "+8613912345678"
MASKED = "+86139****5678"
CARD, PIN = "6222021234567894", "123456"


@pytest.fixture
def hotline(settings: Settings, twilio_api: TwilioApi) -> Hotline:
    fast = QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, wrap_up=30)
    return prepare(settings.model_copy(update={
        "twilio_api_base": twilio_api.server.url, "twilio_number": HOTLINE_NUMBER, "queues": {"general": fast},
    }))


@pytest.fixture
def app(hotline: Hotline) -> Any:
    app = create_app(hotline=hotline)
    app.testing = True
    return app


@pytest.fixture
def caller(app: Any, twilio_api: TwilioApi) -> TwilioCaller:
    return TwilioCaller(app.test_client(), AUTH_TOKEN, PUBLIC_URL, caller=CUSTOMER, api=twilio_api)


def staff(app: Any, hotline: Hotline, *names: str) -> dict[str, SessionClient]:
    """Agents in the router with a user each (agent id = user name), logged in, still offline."""
    consoles = {}
    for name in names:
        hotline.agents.put(Agent(name, name.title(), f"client:{name}", {"general": 5, "inquiry": 5}, ["zh-CN"]))
        add_user(hotline, name, "agent")
        consoles[name] = SessionClient(app.test_client(), name)
    return consoles


def go(console: SessionClient, state: str, reason: str = "") -> dict[str, Any]:
    reply = console("POST", "/api/agent/state", {"state": state, "reason": reason})
    assert reply.status_code == 200, reply.json
    time.sleep(0.002)  # distinct idle-since: the first to go available has waited longest
    return reply.json  # type: ignore[no-any-return]


def agent_leg(caller: TwilioCaller) -> TwilioCaller:
    """The agent's phone picking up the first call the hotline placed (Twilio's fake knows its sid)."""
    api = caller.api
    return TwilioCaller(caller.client, AUTH_TOKEN, PUBLIC_URL, caller=HOTLINE_NUMBER, api=api,
                        call_sid=api.leg_sids[0] if api is not None and api.leg_sids else None)


def wait_for_leg(hotline: Hotline, call_id: str) -> str:
    deadline = time.monotonic() + 5
    while not (leg := (hotline.router.call(call_id).fields.get("agent_leg"))):  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the agent leg was never placed"
        time.sleep(0.01)
    return leg


def test_agent_sets_available_not_ready_with_a_reason_and_offline(app: Any, hotline: Hotline) -> None:
    ann = staff(app, hotline, "ann")["ann"]
    view = ann("GET", "/api/agent/console").json
    assert view["agent"]["state"] == "offline" and view["offer"] is None and "resolved" in view["dispositions"]
    assert go(ann, "available")["agent"]["state"] == "available"
    refused = ann("POST", "/api/agent/state", {"state": "not_ready"})
    assert refused.status_code == 400 and "needs a reason" in refused.json["error"]
    view = go(ann, "not_ready", "lunch")
    assert (view["agent"]["state"], view["agent"]["reason"]) == ("not_ready", "lunch")
    assert go(ann, "offline")["agent"]["state"] == "offline"
    assert ann("POST", "/api/agent/state", {"state": "busy"}).status_code == 400
    assert hotline.agents.get("ann").state == "offline"  # type: ignore[union-attr]
    states = [e["detail"]["state"] for e in reversed(hotline.audit.entries(action="agent_state_set", actor="ann"))]
    assert states == ["available", "not_ready", "offline"]


def test_offer_pops_up_with_masked_caller_verified_intent_path_and_open_work_order(
    app: Any, hotline: Hotline, caller: TwilioCaller,
) -> None:
    earlier = hotline.desk.open_work_order(CallInfo("CA-earlier", CUSTOMER, "twilio", "zh-CN"), "fees", "RE-1")
    RecordWriter(hotline.sql).write([{"type": "call_started", "call_id": "CA-earlier", "ts": f"{time.time():.3f}",
                                      "caller": MASKED, "caller_key": number_key(CUSTOMER), "channel": "twilio"}])
    ann = staff(app, hotline, "ann")["ann"]
    go(ann, "available")
    caller.dial()
    caller.press("1")
    caller.press(CARD + "#")
    caller.press(PIN)  # the balance is read: the caller proved who they are
    caller.press("0")
    reply = ann("GET", "/api/agent/console")
    offer = reply.json["offer"]
    assert reply.json["agent"]["state"] == "offered" and offer["call_id"] == caller.call_sid
    assert offer["caller"] == MASKED and offer["verified"] is True
    assert offer["intent"] == hotline.router.call(caller.call_sid).fields["intent"] != ""  # type: ignore[union-attr]
    assert [step["node"] for step in offer["ivr_path"]][:3] == ["opening_check", "main", "inquiry_card"]
    assert [o["number"] for o in offer["work_orders"]] == [earlier]
    text = reply.get_data(as_text=True)
    assert CUSTOMER not in text and CARD not in text and PIN not in text


def test_an_unverified_caller_shows_as_not_verified(app: Any, hotline: Hotline, caller: TwilioCaller) -> None:
    ann = staff(app, hotline, "ann")["ann"]
    go(ann, "available")
    caller.dial()
    caller.press("0")
    offer = ann("GET", "/api/agent/console").json["offer"]
    assert offer["verified"] is False and offer["work_orders"] == []


def test_accept_in_the_console_then_the_phone_leg_connects_the_caller_then_wrap_up_makes_available(
    app: Any, hotline: Hotline, caller: TwilioCaller, twilio_api: TwilioApi,
) -> None:
    ann = staff(app, hotline, "ann")["ann"]
    go(ann, "available")
    caller.dial()
    caller.press("0")
    (create,) = twilio_api.created(1)
    offered_until = float(hotline.router.call(caller.call_sid).fields["offer_until"])  # type: ignore[union-attr]
    view = ann("POST", f"/api/agent/calls/{caller.call_sid}/accept").json
    # accepted on screen: still ringing her phone, and the offer no longer runs out before the ring does
    assert view["agent"]["state"] == "offered" and view["offer"]["accepted"] is True and view["call"] is None
    taken = hotline.router.call(caller.call_sid)
    assert taken.state == "offered" and float(taken.fields["offer_until"]) > offered_until  # type: ignore[union-attr]

    caller.hold()  # the caller is in their Twilio queue (its first waitUrl request): it can be dialled
    leg = agent_leg(caller)
    leg.post(create["Url"])  # ann picks up the phone: connected
    assert leg.verbs() == ["Say", "Dial"]
    assert leg.verb("Dial").find("Conference").text == f"hotline-{caller.call_sid}"
    view = ann("GET", "/api/agent/console").json
    assert view["agent"]["state"] == "busy" and view["call"]["call_id"] == caller.call_sid and view["offer"] is None
    assert ann("POST", f"/api/agent/calls/{caller.call_sid}/accept").status_code == 409  # no longer an offer

    caller.follow()  # Twilio moves the caller into the conference
    leg.leave_conference()
    assert leg.post_raw(create["StatusCallback"], CallStatus="completed").status_code == 204
    view = ann("GET", "/api/agent/console").json
    assert view["agent"]["state"] == "wrap_up" and view["wrap_up"]["caller"] == MASKED and view["call"] is None

    bad = ann("POST", "/api/agent/wrap-up", {"call_id": caller.call_sid, "code": "sold_a_car"})
    assert bad.status_code == 400 and "one of resolved" in bad.json["error"]
    done = ann("POST", "/api/agent/wrap-up", {"call_id": caller.call_sid, "code": "resolved",
                                              "notes": f"read card {CARD} back to the customer"})
    assert done.status_code == 200
    assert done.json["agent"]["state"] == "available" and done.json["wrap_up"] is None
    with hotline.sql() as db:
        row = db.scalar(select(CallDisposition).where(CallDisposition.call_id == caller.call_sid))
    assert (row.agent_id, row.code) == ("ann", "resolved") and CARD not in row.notes and "6222" in row.notes
    events = [f for _, f in hotline.redis.xrange(EVENTS_STREAM) if f[b"type"] == b"call_disposition"]
    assert events and events[-1][b"call_id"].decode() == caller.call_sid and events[-1][b"code"] == b"resolved"
    (audit,) = hotline.audit.entries(action="call_disposition")
    assert (audit["actor"], audit["detail"]["call_id"]) == ("ann", caller.call_sid)
    again = ann("POST", "/api/agent/wrap-up", {"call_id": caller.call_sid, "code": "resolved"})
    assert again.status_code == 409


def test_decline_offers_the_call_to_the_next_agent_cancels_the_ring_and_leaves_the_agent_not_ready(
    app: Any, hotline: Hotline, caller: TwilioCaller, twilio_api: TwilioApi,
) -> None:
    consoles = staff(app, hotline, "ann", "bob")
    go(consoles["ann"], "available")
    go(consoles["bob"], "available")
    caller.dial()
    caller.press("0")
    first_leg = wait_for_leg(hotline, caller.call_sid)
    view = consoles["ann"]("POST", f"/api/agent/calls/{caller.call_sid}/decline").json
    assert view["agent"]["state"] == "not_ready" and view["offer"] is None and view["wrap_up"] is None
    assert twilio_api.created(2)[1]["To"] == "client:bob"
    assert consoles["bob"]("GET", "/api/agent/console").json["offer"]["call_id"] == caller.call_sid
    deadline = time.monotonic() + 5
    while not twilio_api.updates():
        assert time.monotonic() < deadline, "ann's ring was never cancelled"
        time.sleep(0.01)
    path, form = twilio_api.updates()[0]
    assert path.endswith(f"/Calls/{first_leg}.json") and form == {"Status": "canceled"}
    # Twilio then reports ann's leg canceled: bob's offer stands
    create = twilio_api.created(2)[0]
    assert agent_leg(caller).post_raw(create["StatusCallback"], CallStatus="canceled").status_code == 204
    assert hotline.router.call(caller.call_sid).agent == "bob"  # type: ignore[union-attr]
    assert [e["detail"]["call_id"] for e in hotline.audit.entries(action="call_declined", actor="ann")] == [
        caller.call_sid]


def test_an_agent_cannot_act_on_another_agents_call(app: Any, hotline: Hotline, caller: TwilioCaller) -> None:
    consoles = staff(app, hotline, "ann", "bob")
    go(consoles["ann"], "available")
    caller.dial()
    caller.press("0")
    bob = consoles["bob"]
    for action in ("accept", "decline"):
        reply = bob("POST", f"/api/agent/calls/{caller.call_sid}/{action}")
        assert reply.status_code == 409 and "not offered to you" in reply.json["error"]
    assert bob("GET", "/api/agent/console").json["offer"] is None
    consoles["ann"]("POST", f"/api/agent/calls/{caller.call_sid}/accept")
    hotline.router.answer(caller.call_sid, "ann")  # her phone picked up
    hotline.connector.settle(hotline.router.end_call(caller.call_sid, "completed"))
    stolen = bob("POST", "/api/agent/wrap-up", {"call_id": caller.call_sid, "code": "resolved"})
    assert stolen.status_code == 409
    assert hotline.agents.get("ann").state == "wrap_up"  # type: ignore[union-attr]


def on_a_call_then_wrap_up(app: Any, hotline: Hotline, caller: TwilioCaller) -> SessionClient:
    """ann, from her console, takes the caller and the call ends: she is in wrap-up."""
    ann = staff(app, hotline, "ann")["ann"]
    go(ann, "available")
    caller.dial()
    caller.press("0")
    ann("POST", f"/api/agent/calls/{caller.call_sid}/accept")
    hotline.router.answer(caller.call_sid, "ann")  # her phone picked up
    assert ann("GET", "/api/agent/console").json["call"]["call_id"] == caller.call_sid  # her open page sees it
    hotline.connector.settle(hotline.router.end_call(caller.call_sid, "completed", agent="ann"))
    return ann


def test_wrap_up_outlasts_the_queues_time_nothing_is_offered_and_submitting_makes_available(
    app: Any, hotline: Hotline, caller: TwilioCaller,
) -> None:
    ann = on_a_call_then_wrap_up(app, hotline, caller)
    view = ann("GET", "/api/agent/console").json
    assert view["agent"]["wrap_until"] == pytest.approx(view["now"] + 30, abs=2)  # the queue's 30 s countdown
    assert view["agent"]["wrap_max_until"] == pytest.approx(view["agent"]["since"] + 600)
    hotline.router.scripts.run("tick", 500, now=time.time() + 31)  # the countdown is over
    next_caller = TwilioCaller(app.test_client(), AUTH_TOKEN, PUBLIC_URL, caller="+8613900001111")
    next_caller.dial()
    next_caller.press("0")
    view = ann("GET", "/api/agent/console").json
    assert view["agent"]["state"] == "wrap_up" and view["offer"] is None  # nothing offered to her
    assert view["wrap_up"]["call_id"] == caller.call_sid
    assert hotline.router.call(next_caller.call_sid).state == "waiting"  # type: ignore[union-attr]
    refused = ann("POST", "/api/agent/state", {"state": "available"})  # no skipping the form
    assert refused.status_code == 409 and "submit the wrap-up" in refused.json["error"]
    done = ann("POST", "/api/agent/wrap-up", {"call_id": caller.call_sid, "code": "follow_up"}).json
    assert done["agent"]["state"] == "offered" and done["offer"]["call_id"] == next_caller.call_sid


def test_the_wrap_up_countdown_extends_up_to_the_cap(app: Any, hotline: Hotline, caller: TwilioCaller) -> None:
    ann = on_a_call_then_wrap_up(app, hotline, caller)
    before = ann("GET", "/api/agent/console").json["agent"]["wrap_until"]
    view = ann("POST", "/api/agent/wrap-up/extend", {"seconds": 60}).json
    assert view["agent"]["wrap_until"] == pytest.approx(before + 60)
    for _ in range(10):
        view = ann("POST", "/api/agent/wrap-up/extend", {"seconds": 600}).json
    assert view["agent"]["wrap_until"] == pytest.approx(view["agent"]["wrap_max_until"])
    assert ann("POST", "/api/agent/wrap-up/extend", {"seconds": "lots"}).status_code == 400
    assert [e["actor"] for e in hotline.audit.entries(action="wrap_up_extended")][:1] == ["ann"]
    ann("POST", "/api/agent/wrap-up", {"call_id": caller.call_sid, "code": "resolved"})
    assert ann("POST", "/api/agent/wrap-up/extend", {"seconds": 60}).status_code == 409  # not in wrap-up


def test_the_wrap_up_draft_is_kept_on_the_server_masked_until_submitted(
    app: Any, hotline: Hotline, caller: TwilioCaller,
) -> None:
    ann = on_a_call_then_wrap_up(app, hotline, caller)
    saved = ann("PUT", "/api/agent/wrap-up/draft", {"call_id": caller.call_sid, "code": "follow_up",
                                                    "notes": f"card {CARD}: call back"})
    assert saved.status_code == 200
    draft = ann("GET", "/api/agent/console").json["wrap_draft"]  # what a reloaded page reads
    assert draft["code"] == "follow_up" and draft["notes"].endswith(": call back") and CARD not in draft["notes"]
    assert ann("PUT", "/api/agent/wrap-up/draft", {"call_id": "CA-other", "notes": "x"}).status_code == 409
    ann("POST", "/api/agent/wrap-up", {"call_id": caller.call_sid, "code": "follow_up", "notes": draft["notes"]})
    assert ann("GET", "/api/agent/console").json["wrap_draft"] is None


def test_a_wrap_up_never_submitted_keeps_its_draft_as_a_row_when_the_next_call_comes(
    app: Any, hotline: Hotline, caller: TwilioCaller,
) -> None:
    ann = on_a_call_then_wrap_up(app, hotline, caller)
    ann("PUT", "/api/agent/wrap-up/draft", {"call_id": caller.call_sid, "notes": "half written"})
    hotline.router.set_agent_state("ann", "available", "supervisor")  # a supervisor frees her from the dashboard
    next_caller = TwilioCaller(app.test_client(), AUTH_TOKEN, PUBLIC_URL, caller="+8613900001111")
    next_caller.dial()
    next_caller.press("0")
    assert ann("GET", "/api/agent/console").json["offer"]["call_id"] == next_caller.call_sid
    with hotline.sql() as db:
        row = db.scalar(select(CallDisposition).where(CallDisposition.call_id == caller.call_sid))
    assert (row.agent_id, row.code, row.notes) == ("ann", "not_submitted", "half written")  # type: ignore[union-attr]


def test_a_declined_offer_leaves_a_disposition_row(app: Any, hotline: Hotline, caller: TwilioCaller) -> None:
    ann = staff(app, hotline, "ann")["ann"]
    go(ann, "available")
    caller.dial()
    caller.press("0")
    assert ann("POST", f"/api/agent/calls/{caller.call_sid}/decline").status_code == 200
    with hotline.sql() as db:
        rows = db.scalars(select(CallDisposition).where(CallDisposition.call_id == caller.call_sid)).all()
    assert [(r.agent_id, r.code) for r in rows] == [("ann", "declined")]


def test_phone_leg_unanswered_after_accept_puts_the_call_back_in_line_for_the_next_agent(
    app: Any, hotline: Hotline, caller: TwilioCaller, twilio_api: TwilioApi,
) -> None:
    consoles = staff(app, hotline, "ann", "bob")
    go(consoles["ann"], "available")
    caller.dial()
    caller.press("0")
    (create,) = twilio_api.created(1)
    consoles["ann"]("POST", f"/api/agent/calls/{caller.call_sid}/accept")
    go(consoles["bob"], "available")  # bob comes back from his break while ann's phone rings
    assert agent_leg(caller).post_raw(create["StatusCallback"], CallStatus="no-answer").status_code == 204
    # the caller keeps the call: offered to bob now, his phone rung; ann is not ready
    assert hotline.router.call(caller.call_sid).agent == "bob"  # type: ignore[union-attr]
    assert twilio_api.created(2)[1]["To"] == "client:bob"
    assert consoles["ann"]("GET", "/api/agent/console").json["agent"]["state"] == "not_ready"
    assert consoles["bob"]("GET", "/api/agent/console").json["offer"]["call_id"] == caller.call_sid


def test_the_stream_sends_the_console_at_once_and_again_when_an_offer_comes(
    app: Any, hotline: Hotline, caller: TwilioCaller,
) -> None:
    ann = staff(app, hotline, "ann")["ann"]
    go(ann, "available")
    with live_server(app) as url, requests.Session() as browser:
        token = re.search(r'name="csrf-token" content="([^"]+)"', browser.get(f"{url}/login").text).group(1)  # type: ignore[union-attr]
        browser.post(f"{url}/login", data={"name": "ann", "password": PASSWORD, "csrf_token": token})
        with browser.get(f"{url}/api/agent/stream", stream=True, timeout=20) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            frames = _frames(stream.iter_content(chunk_size=None))
            assert next(frames)["offer"] is None
            got: queue.Queue[dict[str, Any]] = queue.Queue()
            # The page reads on while the call comes in (the stream follows events from when it reads again).
            threading.Thread(target=lambda: got.put(next(frames)), daemon=True).start()
            time.sleep(1)
            caller.dial()
            caller.press("0")
            assert got.get(timeout=10)["offer"]["caller"] == MASKED


def test_only_agents_use_the_console(app: Any, hotline: Hotline) -> None:
    add_user(hotline, "sue", "supervisor")
    add_user(hotline, "ana", "admin")
    for name in ("sue", "ana"):
        other = SessionClient(app.test_client(), name)
        assert other("GET", "/agent").status_code == 403
        assert other("GET", "/api/agent/console").status_code == 403
        assert other("POST", "/api/agent/state", {"state": "available"}).status_code == 403
    add_user(hotline, "zed", "agent")  # a user whose agent is not in the router
    zed = SessionClient(app.test_client(), "zed")
    assert zed("GET", "/agent").status_code == 200
    missing = zed("GET", "/api/agent/console")
    assert missing.status_code == 404 and "not set up" in missing.json["error"]


def _frames(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            if frame.startswith(b"event: console"):
                yield json.loads(frame.decode().split("data: ", 1)[1])


def test_the_agent_on_the_call_reads_the_callers_work_orders_from_the_screen_pop_and_nobody_else(
    app: Any, hotline: Hotline, caller: TwilioCaller,
) -> None:
    earlier = hotline.desk.open_work_order(CallInfo("CA-earlier", CUSTOMER, "twilio", "zh-CN"), "fees", "RE-1")
    other = hotline.desk.open_work_order(CallInfo("CA-other", "+8613700000000", "twilio", "zh-CN"), "fees", "RE-2")
    RecordWriter(hotline.sql).write([{"type": "call_started", "call_id": "CA-earlier", "ts": f"{time.time():.3f}",
                                      "caller": MASKED, "caller_key": number_key(CUSTOMER), "channel": "twilio"}])
    consoles = staff(app, hotline, "ann", "ben")
    ann, ben = consoles["ann"], consoles["ben"]
    assert ann("GET", f"/admin/work-orders/{earlier}").status_code == 403  # no call on the line yet
    go(ann, "available")
    caller.dial()
    caller.press("0")
    assert ann("GET", "/api/agent/console").json["offer"]["work_orders"][0]["number"] == earlier
    page = ann("GET", f"/admin/work-orders/{earlier}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and f"Work order {earlier}" in html and CUSTOMER not in html
    assert 'id="actions"' not in html and "do-assign" not in html  # read-only: no actions for agents
    assert ann("GET", f"/admin/work-orders/{other}").status_code == 403  # not this caller's
    assert ben("GET", f"/admin/work-orders/{earlier}").status_code == 403  # not on ben's line
    acting = ann("POST", f"/admin/work-orders/{earlier}", data={"action": "start", "csrf_token": ann.csrf})
    assert acting.status_code == 403 and hotline.desk.show(earlier)["status"] == "open"
    assert ann("GET", "/admin/work-orders").status_code == 403  # no list of everybody's orders
    # while she wraps the call up, the orders its card shows stay open to her; after, they close
    ann("POST", f"/api/agent/calls/{caller.call_sid}/accept")
    hotline.router.answer(caller.call_sid, "ann")
    ann("GET", "/api/agent/console")
    hotline.connector.settle(hotline.router.end_call(caller.call_sid, "completed", agent="ann"))
    assert ann("GET", "/api/agent/console").json["agent"]["state"] == "wrap_up"
    assert ann("GET", f"/admin/work-orders/{earlier}").status_code == 200
    assert ann("GET", f"/admin/work-orders/{other}").status_code == 403
    ann("POST", "/api/agent/wrap-up", {"call_id": caller.call_sid, "code": "resolved"})
    assert ann("GET", f"/admin/work-orders/{earlier}").status_code == 403
