"""The agent console with an Asterisk caller: accept while the PJSIP phone rings, then the pick-up or not."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from hotline.app import Hotline
from routing.agents import Agent
from softphone.agi_peer import AsteriskPeer, PeerCall
from tests.web import SessionClient, add_user


def agents(app: Any, hotline: Hotline, *names: str) -> dict[str, SessionClient]:
    consoles = {}
    for number, name in enumerate(names, start=1):
        hotline.agents.put(Agent(name, name.title(), f"PJSIP/100{number}", {"general": 5}, ["zh-CN"]))
        add_user(hotline, name, "agent")
        consoles[name] = SessionClient(app.test_client(), name)
        assert consoles[name]("POST", "/api/agent/state", {"state": "available"}).status_code == 200
        time.sleep(0.002)  # the first named has waited longest
    return consoles


def until(check: Callable[[], Any], seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return found


def call_in_thread(peer: AsteriskPeer, server: tuple[str, int]) -> tuple[threading.Thread, list[PeerCall]]:
    done: list[PeerCall] = []
    thread = threading.Thread(target=lambda: done.append(peer.dial(*server)), daemon=True)
    thread.start()
    return thread, done


def test_accepted_while_the_phone_rings_then_picked_up_talks_and_wraps_up(
    agi_server: tuple[str, int], hotline: Hotline, app: Any,
) -> None:
    ann = agents(app, hotline, "ann")["ann"]
    ring = threading.Event()
    peer = AsteriskPeer(["0"], patience_s=30, talk_s=0.2, ring_gate=ring)
    thread, done = call_in_thread(peer, agi_server)
    offer = until(lambda: ann("GET", "/api/agent/console").json["offer"])
    assert (offer["call_id"], offer["channel"], offer["caller"]) == (peer.uniqueid, "asterisk", "138****5678")
    accepted = ann("POST", f"/api/agent/calls/{peer.uniqueid}/accept").json
    assert accepted["offer"]["accepted"] is True and accepted["agent"]["state"] == "offered"
    ring.set()  # ann's PJSIP phone picks up: the Dial's gosub answers the call
    thread.join(15)
    (call,) = done
    # connected, not told "gone" (no GOSUB_RESULT=CONTINUE: the answer script sends no command at all)
    assert len(call.agent_legs) == 1 and call.agent_legs[0].commands == []
    view = until(lambda: (v := ann("GET", "/api/agent/console").json)["wrap_up"] and v)
    assert view["agent"]["state"] == "wrap_up" and view["wrap_up"]["call_id"] == peer.uniqueid
    done_view = ann("POST", "/api/agent/wrap-up", {"call_id": peer.uniqueid, "code": "resolved"}).json
    assert done_view["agent"]["state"] == "available"


def test_accepted_but_the_phone_never_picks_up_the_next_agent_is_dialled(
    agi_server: tuple[str, int], hotline: Hotline, app: Any,
) -> None:
    consoles = agents(app, hotline, "ann", "bob")
    ring = threading.Event()
    peer = AsteriskPeer(["0"], patience_s=3, dial_status="NOANSWER", ring_gate=ring)
    thread, done = call_in_thread(peer, agi_server)
    until(lambda: consoles["ann"]("GET", "/api/agent/console").json["offer"])
    assert consoles["ann"]("POST", f"/api/agent/calls/{peer.uniqueid}/accept").status_code == 200
    ring.set()  # no pick-up on either phone
    thread.join(20)
    (call,) = done
    dials = [c.split(",")[0] for c in call.commands if c.startswith("EXEC Dial")]
    assert dials == ['EXEC Dial "PJSIP/1001', 'EXEC Dial "PJSIP/1002']  # the caller kept the call: bob rang next
    assert hotline.agents.get("ann").state == "not_ready"  # type: ignore[union-attr]
