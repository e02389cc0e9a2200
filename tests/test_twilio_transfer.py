"""Transfers of a Twilio call that the router follows (issue 18, "Transfer"): cold to a named agent or supervisor
(offered to them alone, same call id), and warm with the target reserved, made the call's agent on completion and
released on cancel; against Twilio's REST fake and the signed webhooks, as ``tests.test_twilio_conference``."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from sqlalchemy import select

from calls.control import ControlRefused, TransferTarget
from calls.conversations import Conversations
from hotline.app import Hotline
from reports.queries import build_report
from routing.keys import EVENTS_STREAM
from store.models import CallRecord
from tests import test_twilio_conference as conference
from tests.fakes.twilio_api import TwilioApi
from tests.fakes.twilio_caller import TwilioCaller
from tests.fakes.twilio_media import MediaServer
from tests.test_twilio_conference import connected, in_conference, leg_of, outcomes, staff, view
from tests.web import SessionClient, add_user
from workers.records import RecordWriter
from workers.twilio_control import TwilioCallControl

hotline, app, control = conference.hotline, conference.app, conference.control
"""The same fixtures: a hotline with Twilio's REST fake, its web app, its Twilio call control."""


def record_of(hotline: Hotline, call_id: str) -> tuple[CallRecord, list[dict[str, Any]]]:
    """The call's record once the events so far are written, and its ``agent_leg`` steps."""
    stream = [{_text(k): _text(v) for k, v in fields.items()} for _, fields in hotline.redis.xrange(EVENTS_STREAM)]
    RecordWriter(hotline.sql).write(stream)
    with hotline.sql() as db:
        (row,) = db.scalars(select(CallRecord).where(CallRecord.call_id == call_id)).all()
    return row, [step for step in row.ivr_path if step["node"] == "agent_leg"]


def hang_up(caller: TwilioCaller, agent: TwilioCaller) -> None:
    """The agent leaves the conference (it ends), then the caller's call ends."""
    agent.leave_conference()
    assert caller.leave_conference() is not None and caller.hang_up() == 204


def state(hotline: Hotline, agent: str) -> str:
    found = hotline.agents.get(agent)
    assert found is not None
    return found.state


def test_a_cold_transfer_to_a_named_agent_rings_that_agent_only_and_keeps_the_call(
    app: Any, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann")
    caller, ann = connected(app, hotline, twilio_api)
    staff(hotline, "bob")  # idle the longest: the queue would offer the call to bob
    staff(hotline, "cat")
    add_user(hotline, "ann", "agent")
    ann_console = SessionClient(app.test_client(), "ann")

    moved = ann_console("POST", f"/api/calls/{caller.call_sid}/transfer",
                        {"mode": "cold", "to": {"kind": "agent", "value": "cat"}})

    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert state(hotline, "ann") == "wrap_up"
    pinned = view(hotline, caller.call_sid)  # the same call, offered to cat alone
    assert (pinned.state, pinned.agent) == ("offered", "cat")
    caller.follow()  # out of the conference, back on hold
    assert caller.verb("Enqueue").text == f"hotline-{caller.call_sid}"
    ann.leave_conference()  # ann's Dial ends with the conference: nothing changes for the moved call
    caller.hold()
    cat, url = leg_of(caller, twilio_api, "cat")
    assert cat.answer_agent_leg(url, caller) == "bridged"
    assert view(hotline, caller.call_sid).agent == "cat" and state(hotline, "cat") == "busy"
    assert twilio_api.legs_to("client:bob") == [] and state(hotline, "bob") == "available"
    room = twilio_api.conference(f"hotline-{caller.call_sid}")
    assert room is not None and set(room.participants) == {caller.call_sid, cat.call_sid}

    hang_up(caller, cat)
    assert hotline.router.call(caller.call_sid) is None and outcomes(hotline, caller.call_sid) == ["routed"]
    row, legs = record_of(hotline, caller.call_sid)  # one call, each agent's leg in its record
    assert [(leg["agent"], leg.get("to_kind"), leg.get("to"), leg.get("mode")) for leg in legs] == [
        ("ann", "agent", "cat", "cold"), ("cat", None, None, None)]
    assert row.agent_id == "cat"


def test_a_cold_transfer_to_a_queue_keeps_one_call_with_each_agents_leg_in_its_record(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl,
) -> None:
    staff(hotline, "ann")
    caller, ann = connected(app, hotline, twilio_api)
    staff(hotline, "bob", {"inquiry": 5})

    control.transfer(view(hotline, caller.call_sid), TransferTarget("queue", "inquiry"), "cold")

    caller.follow()
    ann.leave_conference()
    caller.hold()
    bob, url = leg_of(caller, twilio_api, "bob")
    assert bob.answer_agent_leg(url, caller) == "bridged"
    hang_up(caller, bob)
    assert outcomes(hotline, caller.call_sid) == ["routed"]
    row, legs = record_of(hotline, caller.call_sid)
    assert [(leg["agent"], leg.get("to")) for leg in legs] == [("ann", "inquiry"), ("bob", None)]
    assert (row.agent_id, row.outcome) == ("bob", "routed")


def test_a_cold_transfer_to_an_agent_who_is_not_available_is_409_and_changes_nothing(
    app: Any, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann")
    staff(hotline, "bob")
    caller, _ = connected(app, hotline, twilio_api)
    hotline.router.set_agent_state("bob", "not_ready", "lunch")
    add_user(hotline, "ann", "agent")

    refused = SessionClient(app.test_client(), "ann")(
        "POST", f"/api/calls/{caller.call_sid}/transfer", {"mode": "cold", "to": {"kind": "agent", "value": "bob"}})

    assert refused.status_code == 409 and "bob" in refused.json["error"]
    assert view(hotline, caller.call_sid).agent == "ann" and state(hotline, "ann") == "busy"
    assert twilio_api.next_redirect(caller.call_sid) is None and twilio_api.legs_to("client:bob") == []


def test_a_completed_warm_transfer_makes_the_target_the_calls_agent_one_call_two_legs(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl,
) -> None:
    staff(hotline, "ann")
    staff(hotline, "bob")
    caller, ann, room = in_conference(app, hotline, twilio_api)

    control.transfer(view(hotline, caller.call_sid), TransferTarget("agent", "bob"), "warm")
    bob_agent = hotline.agents.get("bob")
    assert bob_agent is not None and (bob_agent.state, bob_agent.reason) == ("not_ready", f"consult {caller.call_sid}")
    (consult,) = [p for p in room.participants.values() if p.label == "consult"]

    control.complete_transfer(view(hotline, caller.call_sid))

    moved = view(hotline, caller.call_sid)  # still in the router, busy with bob
    assert (moved.state, moved.agent) == ("busy", "bob")
    assert moved.fields.get("agent_leg") == consult.call_sid and "consult_agent" not in moved.fields
    assert state(hotline, "bob") == "busy" and state(hotline, "ann") == "wrap_up"
    assert set(room.participants) == {caller.call_sid, consult.call_sid}
    ann.leave_conference()  # ann's Dial action and final status: the call stays bob's
    ann.hang_up()
    assert view(hotline, caller.call_sid).agent == "bob"
    twilio_api.leave(consult.call_sid)  # bob hangs up: the conference ends, so does the call
    assert caller.leave_conference() is not None and caller.hang_up() == 204
    assert hotline.router.call(caller.call_sid) is None and state(hotline, "bob") == "wrap_up"
    assert outcomes(hotline, caller.call_sid) == ["routed"]

    row, legs = record_of(hotline, caller.call_sid)
    assert [leg["agent"] for leg in legs] == ["ann", "bob"]
    assert (legs[0]["to_kind"], legs[0]["to"], legs[0]["mode"]) == ("agent", "bob", "warm")
    assert row.agent_id == "bob"
    today = dt.datetime.fromtimestamp(time.time(), dt.UTC).date()
    figures = build_report(hotline.sql, today, today, "UTC").queue
    assert (figures.inbound_calls, figures.answered) == (1, 1)


def test_a_completed_warm_transfer_records_the_target_s_talk_as_a_leg_of_its_own(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl, media: MediaServer,
) -> None:
    twilio_api.recordings = media._answer  # the Recording resources live on the same Twilio API
    staff(hotline, "ann")
    staff(hotline, "bob")
    caller, ann, room = in_conference(app, hotline, twilio_api)
    talks = Conversations(hotline.redis, hotline.router.key(""))
    assert talks.get(caller.call_sid, "ann") is not None  # the queue records "all": ann's leg is recorded
    control.transfer(view(hotline, caller.call_sid), TransferTarget("agent", "bob"), "warm")
    (consult,) = [p for p in room.participants.values() if p.label == "consult"]
    assert consult.call_sid not in media.running  # the consultation itself is not the customer's conversation

    control.complete_transfer(view(hotline, caller.call_sid))

    rec = media.running[consult.call_sid]  # bob's call, from the hand-over on, both parties apart
    assert media.created[rec]["RecordingChannels"] == "dual"
    assert "conversation=" + caller.call_sid in media.created[rec]["RecordingStatusCallback"]
    assert "agent=bob" in media.created[rec]["RecordingStatusCallback"]
    bob, still_ann = talks.get(caller.call_sid, "bob"), talks.get(caller.call_sid, "ann")
    assert bob is not None and bob.leg == consult.call_sid and still_ann is not None  # two legs, apart


def test_a_target_who_hangs_up_before_the_hand_over_is_released_at_once(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl,
) -> None:
    staff(hotline, "ann")
    staff(hotline, "bob")
    caller, ann, room = in_conference(app, hotline, twilio_api)
    control.transfer(view(hotline, caller.call_sid), TransferTarget("agent", "bob"), "warm")
    (consult,) = [p for p in room.participants.values() if p.label == "consult"]
    assert state(hotline, "bob") == "not_ready"

    twilio_api.leave(consult.call_sid)  # bob hangs up while ann explains: Twilio posts his participant-leave

    assert state(hotline, "bob") == "available"  # free for the next caller, not stuck reserved
    still = view(hotline, caller.call_sid)
    assert (still.state, still.agent) == ("busy", "ann") and "consult_agent" not in still.fields
    with pytest.raises(ControlRefused):  # nothing to hand over any more: ann takes her caller off hold
        control.complete_transfer(still)
    hang_up(caller, ann)


def test_a_cancelled_warm_transfer_releases_the_target_and_gives_the_call_back_to_the_first_agent(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl,
) -> None:
    staff(hotline, "ann")
    staff(hotline, "bob")
    caller, ann, room = in_conference(app, hotline, twilio_api)
    hotline.router.set_agent_state("bob", "not_ready", "lunch")
    with pytest.raises(ControlRefused, match="not available"):
        control.transfer(view(hotline, caller.call_sid), TransferTarget("agent", "bob"), "warm")
    assert len(room.participants) == 2 and not room.participants[caller.call_sid].hold
    hotline.router.set_agent_state("bob", "available")

    control.transfer(view(hotline, caller.call_sid), TransferTarget("agent", "bob"), "warm")
    control.cancel_transfer(view(hotline, caller.call_sid))

    back = view(hotline, caller.call_sid)
    assert (back.state, back.agent) == ("busy", "ann") and "consult_agent" not in back.fields
    assert state(hotline, "bob") == "available" and state(hotline, "ann") == "busy"
    assert set(room.participants) == {caller.call_sid, ann.call_sid} and not room.participants[caller.call_sid].hold


def test_a_cancelled_warm_transfer_rings_its_target_for_a_caller_waiting_meanwhile(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl,
) -> None:
    staff(hotline, "ann")
    staff(hotline, "bob")
    caller, ann, _ = in_conference(app, hotline, twilio_api)
    control.transfer(view(hotline, caller.call_sid), TransferTarget("agent", "bob"), "warm")
    later = conference.new_caller(app, twilio_api, number="+8613900001111")
    later.dial()
    later.press("0")
    later.hold()  # ann talks, bob is reserved for the consultation: nobody to ring
    assert view(hotline, later.call_sid).state == "waiting"
    rung = len(twilio_api.legs_to("client:bob"))

    control.cancel_transfer(view(hotline, caller.call_sid))

    assert view(hotline, later.call_sid).agent == "bob"  # offered to bob as he came free
    assert len(twilio_api.legs_to("client:bob")) == rung + 1  # and bob's phone rings for it at once
    bob, url = leg_of(later, twilio_api, "bob")
    assert bob.answer_agent_leg(url, later) == "bridged"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_the_console_view_keeps_the_hold_and_the_warm_transfer_for_a_page_reloaded(
    app: Any, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann")
    staff(hotline, "bob")
    caller, _ = connected(app, hotline, twilio_api)
    add_user(hotline, "ann", "agent")
    ann = SessionClient(app.test_client(), "ann")
    calls = f"/api/calls/{caller.call_sid}"

    def on_call() -> Any:
        return ann("GET", "/api/agent/console").json["on_call"]

    assert on_call() == {"on_hold": False, "transfer_to": ""}
    assert ann("POST", f"{calls}/hold", {"on": True}).status_code == 200
    assert on_call() == {"on_hold": True, "transfer_to": ""}
    assert ann("POST", f"{calls}/hold", {"on": False}).status_code == 200
    assert on_call() == {"on_hold": False, "transfer_to": ""}
    warm = {"mode": "warm", "to": {"kind": "agent", "value": "bob"}}
    assert ann("POST", f"{calls}/transfer", warm).status_code == 200
    assert on_call()["transfer_to"] == "bob"
    assert ann("POST", f"{calls}/transfer/cancel").status_code == 200
    assert on_call() == {"on_hold": False, "transfer_to": ""}
