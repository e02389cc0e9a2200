"""A caller hanging up mid-verb: Twilio's action and status callbacks arrive in any order, and each once only
the hotline makes it so. A complaint left by hanging up while recording still opens its work order; a callback
taken on hold is kept; no ghost session is left behind."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
import redis
from sqlalchemy import select

from calls.keys import session_key
from calls.tombstones import Tombstones
from hotline.app import Hotline
from hotline.settings import Settings
from routing.agents import Agent
from routing.keys import EVENTS_STREAM
from store.models import Recording, WorkOrder
from tests.fakes.twilio_caller import TwilioCaller
from tests.fakes.twilio_media import MediaServer

SID = "RE00000000000000000000000000000022"
RECORDING_ORDERS = sorted(set(itertools.permutations(["action", "recording", "status", "status"])))
"""Every order of the three requests, with the status callback duplicated (Twilio's own retry)."""


@pytest.fixture
def settings(settings: Settings, media: MediaServer) -> Settings:
    return settings.model_copy(update={"twilio_api_base": media.base})


def call_events(hotline: Hotline, call_id: str) -> list[str]:
    client = redis.Redis.from_url(hotline.redis_url, decode_responses=True)
    return [f["type"] for _, f in client.xrange(EVENTS_STREAM) if f.get("call_id") == call_id
            and f["type"] in ("call_started", "call_ended")]


def no_ghost(hotline: Hotline, caller: TwilioCaller) -> None:
    assert hotline.redis.get(session_key(caller.call_sid)) is None
    assert hotline.sessions.in_ivr() == 0
    assert call_events(hotline, caller.call_sid) == ["call_started", "call_ended"]


@pytest.mark.parametrize("order", RECORDING_ORDERS, ids="-".join)
def test_complaint_left_by_hanging_up_while_recording_opens_its_work_order_in_any_order(
    order: tuple[str, ...], caller: TwilioCaller, hotline: Hotline, media: MediaServer,
) -> None:
    media.add(SID, caller.call_sid)
    caller.dial()
    caller.press("3")
    caller.press("2")  # fees: the <Record> of the complaint

    caller.hang_up_recording(SID, 25, media.recording_url(SID), order)

    with hotline.sql() as db:
        orders = list(db.scalars(select(WorkOrder)))
        recordings = list(db.scalars(select(Recording)))
    assert [(o.category, o.recording_ref) for o in orders] == [("fees", SID)]
    assert [(r.ref, r.work_order) for r in recordings] == [(SID, orders[0].number)]
    no_ghost(hotline, caller)


@pytest.mark.parametrize("verb", ["record", "enqueue"])
def test_a_hang_up_action_arriving_while_the_status_callback_is_mid_way_waits_for_it(
    verb: str, caller: TwilioCaller, hotline: Hotline, media: MediaServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twilio sends the hang-up's action and the status callback at about the same time, in no documented order:
    here the action reaches the hotline after the callback took the session and before it left its tombstone. The
    action must not start the menu over (a new session, a second call record, the complaint's recording lost)."""
    media.add(SID, caller.call_sid)
    caller.dial()
    caller.press("3" if verb == "record" else "0")
    if verb == "record":
        caller.press("2")  # fees: the <Record> of the complaint
    requests = (caller.recording_hang_up(SID, 25, media.recording_url(SID)) if verb == "record"
                else caller.holding_hang_up())

    looked = threading.Event()
    claim, bury_in = Tombstones.claim, Tombstones.bury_in

    def claim_seen(self: Tombstones, call_id: str) -> Any:
        found = claim(self, call_id)
        looked.set()
        return found

    def bury_after_the_action_looked(self: Tombstones, pipe: Any, session: Any) -> Any:
        assert looked.wait(10), "the action never looked for the finished call"
        return bury_in(self, pipe, session)

    # The real methods, only held back: the status callback leaves its tombstone once the action has looked for it.
    monkeypatch.setattr(Tombstones, "claim", claim_seen)
    monkeypatch.setattr(Tombstones, "bury_in", bury_after_the_action_looked)
    replies: list[Any] = []
    status = threading.Thread(target=lambda: replies.append(requests["status"]()))
    status.start()
    deadline = time.monotonic() + 10
    while hotline.redis.get(session_key(caller.call_sid)) is not None and time.monotonic() < deadline:
        time.sleep(0.005)  # the status callback has taken the session
    action = requests["action"]()
    status.join(10)

    assert action.status_code == 200 and b"<Hangup" in action.data  # nothing more for a caller who is gone
    assert [r.status_code for r in replies] == [204]
    if verb == "record":
        requests["recording"]()
        with hotline.sql() as db:
            orders = list(db.scalars(select(WorkOrder)))
        assert [(o.category, o.recording_ref) for o in orders] == [("fees", SID)]
    no_ghost(hotline, caller)


@pytest.mark.parametrize("order", [("action", "status"), ("status", "action"), ("status", "action", "action"),
                                   ("action", "status", "status")], ids="-".join)
def test_callback_taken_on_hold_survives_the_hang_up_requests_in_any_order(
    order: tuple[str, ...], caller: TwilioCaller, hotline: Hotline,
) -> None:
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5}, ["zh-CN"]))  # offline
    hotline.redis.hset(hotline.router.key("qconf:general"), "callback_after", "60")
    caller.dial()
    caller.press("0")
    wait_url = caller.verb("Enqueue").attrib["waitUrl"]
    caller.post(wait_url)
    hotline.router.scripts.run("tick", 500, now=time.time() + 61)  # the callback offer is due
    caller.post(wait_url)
    caller.post(caller.verb("Gather").attrib["action"], Digits="1")
    assert caller.verbs() == ["Say", "Hangup"]

    caller.hang_up_holding(order)

    view = hotline.router.call(caller.call_sid)
    assert view is not None and view.state == "callback"
    no_ghost(hotline, caller)


def test_a_late_action_long_after_the_end_is_not_a_new_call(caller: TwilioCaller, hotline: Hotline) -> None:
    caller.dial()
    caller.press("0")
    caller.hang_up_holding(["status", "action", "action"])
    assert caller.verbs() == ["Say", "Enqueue"]  # nothing new was served to the late requests
    no_ghost(hotline, caller)


def test_a_step_repeated_after_a_finished_call_ended_is_no_new_call(caller: TwilioCaller, hotline: Hotline) -> None:
    caller.dial()
    caller.press("1")
    caller.press("6222021234567894#")
    caller.press("123456")  # the balance, then the menu goes on
    step = caller.verb("Gather").attrib["action"]
    caller.press("#")  # say, a key that ends the call the menu's way
    assert caller.hang_up() == 204
    assert caller.post_raw(step, Digits="1").status_code == 200  # Twilio repeating a request after the end
    no_ghost(hotline, caller)


@pytest.mark.parametrize("order", [("action", "status"), ("status", "action")], ids="-".join)
def test_a_caller_who_talked_to_an_agent_is_routed_whichever_request_comes_first(
    order: tuple[str, ...], caller: TwilioCaller, hotline: Hotline,
) -> None:
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5}, ["zh-CN"]))
    hotline.router.set_agent_state("ann", "available")
    caller.dial()
    caller.press("0")
    caller.hold()
    hotline.router.answer(caller.call_sid, "ann")  # ann's leg dialled the queue: they talk
    caller.hang_up_holding(order, result="bridged")
    client = redis.Redis.from_url(hotline.redis_url, decode_responses=True)
    ended = [f for _, f in client.xrange(EVENTS_STREAM) if f["type"] == "call_ended"]
    assert [(e["call_id"], e["outcome"]) for e in ended] == [(caller.call_sid, "routed")]
    no_ghost(hotline, caller)
