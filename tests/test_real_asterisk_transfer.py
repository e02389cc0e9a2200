"""Hang-up, hold, transfers from the console on a real Asterisk 22 (issue 18): the API as the agent uses it,
``AsteriskCallControl`` over the hotline's own AMI login, Local-channel callers and agents (tests/asterisk_pbx.py).

Skipped (with the reason) where no Asterisk is built; required with CI=true."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select

import tests.test_real_asterisk as rt
from hotline.app import Hotline, create_app
from hotline.settings import Settings
from reports.queries import build_report
from routing.keys import EVENTS_STREAM
from store.models import CallRecord
from tests.asterisk_pbx import Caller, RealAsterisk
from tests.asterisk_stack import AgiProcess
from tests.test_real_asterisk_recording import LOUD, QUIET, WINDOW_S, loudness
from tests.web import SessionClient, add_user
from workers.records import RecordWriter

# the same stack as tests/test_real_asterisk.py (one Asterisk and one hotline for this module)
rt_folder, rt_redis, rt_asterisk, rt_settings = rt.rt_folder, rt.rt_redis, rt.rt_asterisk, rt.rt_settings
rt_hotline, fastagi, pbx, floor = rt.rt_hotline, rt.fastagi, rt.pbx, rt.floor


def console(hotline: Hotline, agent_id: str) -> SessionClient:
    if hotline.accounts.get(agent_id) is None:
        add_user(hotline, agent_id, "agent", agent_id=agent_id)
    return SessionClient(create_app(hotline=hotline).test_client(), agent_id)


def connected(pbx: RealAsterisk, settings: Settings, agent_id: str) -> Caller:
    """A caller who pressed 0 and now talks to ``agent_id``."""
    call = pbx.call()
    call.wait_prompt("main")
    call.press("0")
    assert pbx.ami is not None
    pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter", uniqueid=call.ivr_id)
    answered(settings, call, agent_id)
    # The caller's phone sends audio from now on (18 s), as a real phone's RTP does: ChanSpy lets go of a
    # channel (hold music, warm transfer) when the next frame passes through it, and silent Local channels
    # pass none.
    call.speak()
    return call


def conversations(settings: Settings, call: Caller, legs: int, timeout_s: float = 20) -> list[Any]:
    """The call's conversation recordings, once ``legs`` of them are kept, in the order they began."""
    deadline = time.monotonic() + timeout_s
    while len(rows := rt.sql(settings, "SELECT agent_id, leg, duration_s FROM recordings WHERE kind = 'conversation'"
                             " AND call_id = :c ORDER BY path", c=call.ivr_id)) < legs:
        assert time.monotonic() < deadline, f"{len(rows)} conversation(s) of {call.ivr_id} kept, not {legs}"
        time.sleep(0.2)
    return rows


def answered(settings: Settings, call: Caller, agent_id: str, timeout_s: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while not (found := [e for e in rt.events(settings, "call_answered", call.ivr_id) if e["agent"] == agent_id]):
        assert time.monotonic() < deadline, f"{agent_id} did not answer {call.ivr_id}"
        time.sleep(0.1)
    return found[0]


def record_of(hotline: Hotline, settings: Settings, call_id: str) -> CallRecord:
    """The call's record, folded from its events as the worker would."""
    stream = redis.Redis.from_url(settings.redis_url or "", decode_responses=True).xrange(EVENTS_STREAM)
    RecordWriter(hotline.sql).write([f for _, f in stream if f.get("call_id") == call_id])
    with hotline.sql() as db:
        row = db.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
        assert row is not None
        return row


def ok(reply: Any) -> None:
    assert reply.status_code == 200, reply.get_data(as_text=True)


def test_cold_transfer_to_a_queue_reaches_the_next_agent_one_call_two_legs(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    rt.staff(floor, "ann", "Local/talk30@test-agents")
    rt.staff(floor, "bob", "Local/talk3@test-agents", skill="loss")
    call = connected(pbx, rt_settings, "ann")
    ok(console(floor, "ann")("POST", f"/api/calls/{call.ivr_id}/transfer",
                             {"mode": "cold", "to": {"kind": "queue", "value": "loss"}}))
    answered(rt_settings, call, "bob")  # the same caller, the same call id, dialled to bob by the hold loop
    assert rt.ended(rt_settings, call, timeout_s=30)["outcome"] == "routed"
    row = record_of(floor, rt_settings, call.ivr_id)
    legs = [step for step in row.ivr_path if step["node"] == "agent_leg"]
    assert [(leg["agent"], leg.get("to")) for leg in legs] == [("ann", "loss"), ("bob", None)]
    assert row.agent_id == "bob" and row.talk_s is not None and row.talk_s >= 2.5
    day = row.started_at.date() if row.started_at else dt.date.today()
    figures = build_report(floor.sql, day, day, "UTC").queue
    assert figures.queued == figures.answered == 1
    entry = floor.audit.entries(action="call_transfer", target=call.ivr_id)[0]
    assert (entry["actor"], entry["detail"]["to"], entry["detail"]["mode"]) == ("ann", "loss", "cold")
    # one conversation per leg, both under the call (the queues record "all")
    kept = conversations(rt_settings, call, 2)
    assert [(r.agent_id, r.leg.split("-")[0]) for r in kept] == [("ann", "Local/talk30@test"), ("bob", "Local/talk3@test")]
    assert kept[0].duration_s > 0 and kept[1].duration_s > 2.5, kept  # ann until she handed it on; bob's 3 s


def test_hold_plays_music_to_the_caller_resume_and_hang_up_from_the_console(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    rt.staff(floor, "cy", "Local/talk30@test-agents")
    call = connected(pbx, rt_settings, "cy")
    cy = console(floor, "cy")
    assert pbx.ami is not None
    mark = len(pbx.ami.events)
    ok(cy("POST", f"/api/calls/{call.ivr_id}/hold", {"on": True}))
    music = pbx.ami.wait_for(lambda e: e.get("event") == "MusicOnHoldStart", uniqueid=f"hold-{call.ivr_id}-music")
    assert music["class"] == "default"
    spy = pbx.ami.wait_for(lambda e: e.get("event") == "ChanSpyStart", after=mark)
    assert spy["spyeeuniqueid"] == call.ivr_id  # the music is whispered to the caller
    ok(cy("POST", f"/api/calls/{call.ivr_id}/hold", {"on": True}))  # a second click changes nothing
    time.sleep(0.5)
    assert len([e for e in pbx.ami.events[mark:] if e.get("event") == "ChanSpyStart"]) == 1
    ok(cy("POST", f"/api/calls/{call.ivr_id}/hold", {"on": False}))
    pbx.ami.wait_for(lambda e: e.get("event") == "Hangup", uniqueid=f"hold-{call.ivr_id}")
    view = floor.router.call(call.ivr_id)
    assert view is not None and view.state == "busy" and view.agent == "cy"  # still talking to cy
    ok(cy("POST", f"/api/calls/{call.ivr_id}/hangup"))
    call.wait_end(timeout_s=10)
    assert rt.ended(rt_settings, call)["outcome"] == "routed"
    rt._state(floor, "cy", "available")


def test_warm_transfer_completed_joins_the_caller_and_the_target_each_leg_recorded(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    rt.staff(floor, "dee", "Local/talk30@test-agents")
    rt.staff(floor, "eve", "Local/voice12@test-agents")  # eve talks all along (a steady tone), hangs up after 12 s
    call = connected(pbx, rt_settings, "dee")  # the caller's first words to dee: 3 s
    dee = console(floor, "dee")
    assert pbx.ami is not None
    mark = len(pbx.ami.events)
    ok(dee("POST", f"/api/calls/{call.ivr_id}/transfer", {"mode": "warm", "to": {"kind": "agent", "value": "eve"}}))
    consult = pbx.ami.wait_for(lambda e: e.get("event") == "ChanSpyStart"
                               and e.get("spyeruniqueid") == f"consult-{call.ivr_id}", after=mark)
    assert consult["spyeechannel"].startswith("Local/talk30@test-agents")  # eve talks with dee
    rt._state(floor, "eve", "not_ready")  # reserved while they talk
    call.wait_spoken()  # the caller has finished speaking to dee
    mark = len(pbx.ami.events)
    ok(dee("POST", f"/api/calls/{call.ivr_id}/transfer/complete"))
    joined = pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter" and e.get("uniqueid") == call.ivr_id,
                              after=mark)
    pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter" and e.get("bridgeuniqueid") == joined["bridgeuniqueid"]
                     and e.get("channel", "").startswith("Local/voice12@test-agents"), after=mark)  # caller + eve
    view = floor.router.call(call.ivr_id)
    assert view is not None and view.state == "busy" and view.agent == "eve"
    rt._state(floor, "dee", "wrap_up", timeout_s=5)
    eve = console(floor, "eve")
    time.sleep(0.5)
    ok(eve("POST", f"/api/calls/{call.ivr_id}/recording", {"paused": True}))  # a sensitive moment in eve's part
    paused = time.monotonic()
    time.sleep(1.0)
    ok(eve("POST", f"/api/calls/{call.ivr_id}/recording", {"paused": False}))
    pause_s = time.monotonic() - paused
    time.sleep(0.5)
    call.speak()  # the caller talks to eve for 3 s
    left = pbx.ami.wait_for(lambda e: e.get("event") == "BridgeLeave" and e.get("uniqueid") == call.ivr_id
                            and e.get("bridgeuniqueid") == joined["bridgeuniqueid"], timeout_s=20, after=mark)
    completed = rt._event(rt_settings, "call_completed", call.ivr_id)  # eve's phone hangs up
    assert completed["agent"] == "eve"
    assert rt.ended(rt_settings, call, timeout_s=20)["outcome"] == "routed"
    # One conversation per leg: dee's on dee's channel, eve's from the hand-over on the caller's channel
    kept_dee, kept_eve = conversations(rt_settings, call, 2)
    assert (kept_dee.agent_id, kept_eve.agent_id) == ("dee", "eve") and kept_dee.duration_s > 0.2
    (row,) = rt.sql(rt_settings, "SELECT path, pauses FROM recordings WHERE kind = 'conversation' AND call_id = :c"
                    " AND agent_id = 'eve'", c=call.ivr_id)
    audio = (rt_settings.recordings_dir / row.path).read_bytes()
    bridged_s = float(left["timestamp"]) - float(joined["timestamp"])
    assert abs(kept_eve.duration_s - bridged_s) <= 0.5, (kept_eve.duration_s, bridged_s)  # hand-over to hang-up
    caller_side, agent_side = loudness(audio)  # caller left, agent right, as on every conversation
    # eve's voice all along but for the pause: one silent gap of its length, where the stored offsets say
    quiet = [i for i, v in enumerate(agent_side[:-2]) if v < QUIET]
    assert quiet and len(quiet) == quiet[-1] - quiet[0] + 1, agent_side
    assert min(v for i, v in enumerate(agent_side[2:-2], 2) if i not in quiet) > LOUD, agent_side
    (start, end), = json.loads(row.pauses)  # from the mute asked to the unmute done: the whole gap, a little more
    assert abs((end - start) - pause_s) < 0.3 and pause_s - 0.5 <= len(quiet) * WINDOW_S <= end - start + 0.2
    assert start - 0.2 <= quiet[0] * WINDOW_S and (quiet[-1] + 1) * WINDOW_S <= end + 0.2, (quiet, start, end)
    assert [e["actor"] for e in floor.audit.entries(target=call.ivr_id) if e["action"] == "recording_paused"] == ["eve"]
    speaking = [i for i, v in enumerate(caller_side) if v > LOUD]
    assert speaking and 2.5 <= len(speaking) * WINDOW_S <= 3.3, caller_side  # the caller's 3 s, on the left
    assert max(caller_side[:5]) < QUIET, caller_side[:12]  # before they spoke to eve: nothing on the left
    assert max(caller_side[speaking[-1] + 3:]) < QUIET, caller_side  # nor after


def test_warm_transfer_cancelled_gives_the_caller_back_to_the_agent(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    rt.staff(floor, "fay", "Local/talk30@test-agents")
    rt.staff(floor, "gus", "Local/talk30@test-agents")
    call = connected(pbx, rt_settings, "fay")
    fay = console(floor, "fay")
    assert pbx.ami is not None
    mark = len(pbx.ami.events)
    ok(fay("POST", f"/api/calls/{call.ivr_id}/transfer", {"mode": "warm", "to": {"kind": "agent", "value": "gus"}}))
    pbx.ami.wait_for(lambda e: e.get("event") == "ChanSpyStart"
                     and e.get("spyeruniqueid") == f"consult-{call.ivr_id}", after=mark)
    ok(fay("POST", f"/api/calls/{call.ivr_id}/transfer/cancel"))
    pbx.ami.wait_for(lambda e: e.get("event") == "Hangup", uniqueid=f"consult-{call.ivr_id}")
    pbx.ami.wait_for(lambda e: e.get("event") == "Hangup", uniqueid=f"hold-{call.ivr_id}")
    view = floor.router.call(call.ivr_id)
    assert view is not None and view.state == "busy" and view.agent == "fay"
    rt._state(floor, "gus", "available")
    ok(fay("POST", f"/api/calls/{call.ivr_id}/hangup"))
    assert rt.ended(rt_settings, call, timeout_s=20)["outcome"] == "routed"


def test_a_target_who_hangs_up_during_the_consultation_is_released_and_the_caller_shown_on_hold(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    rt.staff(floor, "max", "Local/talk30@test-agents")
    rt.staff(floor, "ned", "Local/talk2@test-agents")  # picks up, says a word, hangs up after 2 s
    call = connected(pbx, rt_settings, "max")
    mx = console(floor, "max")
    assert pbx.ami is not None
    mark = len(pbx.ami.events)
    ok(mx("POST", f"/api/calls/{call.ivr_id}/transfer", {"mode": "warm", "to": {"kind": "agent", "value": "ned"}}))
    pbx.ami.wait_for(lambda e: e.get("event") == "ChanSpyStart"
                     and e.get("spyeruniqueid") == f"consult-{call.ivr_id}", after=mark)
    rt._state(floor, "ned", "available", timeout_s=10)  # released by his hang-up, not left reserved
    view = floor.router.call(call.ivr_id)
    assert view is not None and view.agent == "max" and "consult_agent" not in view.fields
    on_call = mx("GET", "/api/agent/console").json["on_call"]
    assert on_call == {"on_hold": True, "transfer_to": ""}  # the console offers Resume, not Complete
    assert mx("POST", f"/api/calls/{call.ivr_id}/transfer/complete").status_code == 409
    ok(mx("POST", f"/api/calls/{call.ivr_id}/hold", {"on": False}))  # the caller back with max
    pbx.ami.wait_for(lambda e: e.get("event") == "Hangup", uniqueid=f"hold-{call.ivr_id}")
    ok(mx("POST", f"/api/calls/{call.ivr_id}/hangup"))
    assert rt.ended(rt_settings, call, timeout_s=20)["outcome"] == "routed"


def test_another_agent_cannot_touch_the_call(pbx: RealAsterisk, rt_settings: Settings, floor: Hotline) -> None:
    rt.staff(floor, "hal", "Local/talk8@test-agents")
    rt.staff(floor, "ivy", "Local/talk8@test-agents", state="not_ready")
    call = connected(pbx, rt_settings, "hal")
    ivy = console(floor, "ivy")
    assert ivy("POST", f"/api/calls/{call.ivr_id}/hangup").status_code == 403
    assert pbx.ami is not None
    assert not [e for e in pbx.ami.by_uniqueid.get(call.ivr_id, []) if e.get("event") == "Hangup"]
    rt.ended(rt_settings, call, timeout_s=30)


def test_cold_transfer_to_a_named_agent_refused_while_busy_then_rings_only_them(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    rt.staff(floor, "jon", "Local/talk30@test-agents")
    rt.staff(floor, "kim", "Local/talk3@test-agents", state="not_ready")
    rt.staff(floor, "lee", "Local/talk3@test-agents")  # free, but the call is for kim
    call = connected(pbx, rt_settings, "jon")
    jon = console(floor, "jon")
    to_kim = {"mode": "cold", "to": {"kind": "agent", "value": "kim"}}
    refused = jon("POST", f"/api/calls/{call.ivr_id}/transfer", to_kim)
    assert refused.status_code == 409 and "kim" in refused.json["error"]  # at once, the caller still with jon
    view = floor.router.call(call.ivr_id)
    assert view is not None and view.agent == "jon"
    floor.router.set_agent_state("kim", "available")
    ok(jon("POST", f"/api/calls/{call.ivr_id}/transfer", to_kim))
    answered(rt_settings, call, "kim")
    assert not [e for e in rt.events(rt_settings, "call_offered", call.ivr_id) if e["agent"] == "lee"]
    assert rt.ended(rt_settings, call, timeout_s=30)["outcome"] == "routed"


def test_a_caller_transferred_after_a_long_talk_waits_again_the_whole_longest_wait(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline, fastagi: AgiProcess, rt_folder: Path,
) -> None:
    """HOTLINE_HOLD_MAX_WAIT counts from the transfer: the talk before it is no wait."""
    fastagi.stop()
    short = AgiProcess(rt_settings, rt_folder / "agi-short.log", HOTLINE_HOLD_MAX_WAIT="6")
    short.start()
    try:
        rt.staff(floor, "max", "Local/talk30@test-agents")
        call = connected(pbx, rt_settings, "max")
        time.sleep(7)  # talked longer than the longest wait
        rt.staff(floor, "ned", "Local/talk3@test-agents", skill="loss", state="not_ready")
        ok(console(floor, "max")("POST", f"/api/calls/{call.ivr_id}/transfer",
                                 {"mode": "cold", "to": {"kind": "queue", "value": "loss"}}))
        time.sleep(2)  # waiting again, nobody free yet
        floor.router.set_agent_state("ned", "available")
        answered(rt_settings, call, "ned")
        assert rt.ended(rt_settings, call, timeout_s=30)["outcome"] == "routed"
    finally:
        short.stop()
        fastagi.start()
