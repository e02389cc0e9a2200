"""Asterisk callers reach agents: hold, Dial with the answer gosub, no-answer, and a killed FastAGI process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from hotline.app import Hotline
from routing.agents import Agent
from routing.keys import EVENTS_STREAM
from routing.router import CallRequest
from softphone.agi_peer import AsteriskPeer
from tests.conftest import free_port


def staff(hotline: Hotline, *agents: tuple[str, str]) -> None:
    for agent_id, extension in agents:
        hotline.agents.put(Agent(agent_id, agent_id.title(), f"PJSIP/{extension}", {"general": 5}, ["zh-CN"]))
        hotline.router.set_agent_state(agent_id, "available")
        time.sleep(0.002)  # the first named has been idle longest


def stream(redis_url: str, kind: str) -> list[dict[str, str]]:
    rows = redis.Redis.from_url(redis_url, decode_responses=True).xrange(EVENTS_STREAM)
    return [fields for _, fields in rows if fields["type"] == kind]


def test_caller_pressing_0_is_put_through_to_the_agent(
    agi_server: tuple[str, int], hotline: Hotline, redis_url: str,
) -> None:
    staff(hotline, ("ann", "1001"), ("bob", "1002"))
    hotline.router.queues["general"] = hotline.router.queues["general"].model_copy(update={"record": "none"})
    peer = AsteriskPeer(["0"], patience_s=30, talk_s=0.2)
    call = peer.dial(*agi_server)
    dial = f'EXEC Dial "PJSIP/1001,20,U(hotline-agent-answer^{peer.uniqueid}^ann)"'
    assert call.commands[-5:] == ["SET MUSIC on default", "SET MUSIC off default", dial, "GET VARIABLE DIALSTATUS",
                                  "HANGUP"]
    assert len(call.agent_legs) == 1 and call.agent_legs[0].closed_by_server
    (answered,) = stream(redis_url, "call_answered")
    (completed,) = stream(redis_url, "call_completed")
    assert (answered["call_id"], answered["agent"], completed["agent"]) == (peer.uniqueid, "ann", "ann")
    assert float(completed["talk_s"]) >= 0.2
    assert hotline.agents.get("ann").state == "wrap_up"  # type: ignore[union-attr]
    (ended,) = stream(redis_url, "call_ended")
    assert (ended["outcome"], ended["intent"]) == ("routed", "agent")


def test_agent_not_answering_goes_not_ready_and_the_next_agent_is_dialled(
    agi_server: tuple[str, int], hotline: Hotline, redis_url: str,
) -> None:
    staff(hotline, ("ann", "1001"), ("bob", "1002"))
    peer = AsteriskPeer(["0"], patience_s=2.5, dial_status="NOANSWER")
    call = peer.dial(*agi_server)
    dials = [c for c in call.commands if c.startswith("EXEC Dial")]
    assert [d.split(",")[0] for d in dials] == ['EXEC Dial "PJSIP/1001', 'EXEC Dial "PJSIP/1002']
    assert [e["reason"] for e in stream(redis_url, "call_offer_failed")] == ["noanswer", "noanswer"]
    assert {a.id: a.state for a in hotline.agents.all()} == {"ann": "not_ready", "bob": "not_ready"}
    assert stream(redis_url, "call_abandoned")[0]["call_id"] == peer.uniqueid  # gave up waiting
    assert hotline.router.call(peer.uniqueid) is None


def test_agent_answering_after_the_offer_ended_is_hung_up_and_the_caller_goes_on(
    agi_server: tuple[str, int], hotline: Hotline,
) -> None:
    hotline.agents.put(Agent("ann", "Ann", "PJSIP/1001", {"general": 5}, ["zh-CN"]))
    late = AsteriskPeer([], caller="1001", script="agent-answered?call=gone&agent=ann").dial(*agi_server)
    assert late.commands == ["SET VARIABLE GOSUB_RESULT CONTINUE"]


def test_killed_fastagi_process_leaves_no_agent_stuck_beyond_the_lease(
    hotline: Hotline, redis_url: str, tmp_path: Path, prompts: Path,
) -> None:
    lease_s = 2.0
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": hotline.settings.sql_url,
           "HOTLINE_DATA_DIR": str(hotline.settings.data_dir), "HOTLINE_AGI_PORT": str(port),
           "HOTLINE_ROUTER_LEASE": str(lease_s), "HOTLINE_BUSINESS_OPENS": "00:00",
           "HOTLINE_BUSINESS_CLOSES": "23:59:59"}
    server = subprocess.Popen([sys.executable, "-m", "hotline.cli", "agi"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port)
        staff(hotline, ("ann", "1001"))
        talking = threading.Event()  # never set: the call stays connected until the process dies
        peer = AsteriskPeer(["0"], patience_s=30, dial_gate=talking, timeout_s=5)
        caller = threading.Thread(target=_call_ignoring_the_end, args=(peer, port), daemon=True)
        caller.start()
        _until(lambda: hotline.agents.get("ann").state == "busy", 10)  # type: ignore[union-attr]
        server.send_signal(signal.SIGKILL)
        server.wait(5)
        killed_at = time.monotonic()
        while hotline.agents.get("ann").state == "busy":  # type: ignore[union-attr]
            assert time.monotonic() - killed_at < lease_s + 2, "agent still busy long after the lease"
            hotline.router.tick()  # what the hotline's reconciler does every half second
            time.sleep(0.1)
        assert hotline.agents.get("ann").state in ("wrap_up", "available")  # type: ignore[union-attr]
        assert hotline.router.call(peer.uniqueid) is None
        assert stream(redis_url, "call_completed")[0]["reason"] == "lease_expired"
    finally:
        server.kill()
        server.wait(5)


def _call_ignoring_the_end(peer: AsteriskPeer, port: int) -> None:
    try:
        peer.dial("127.0.0.1", port)
    except OSError:
        pass  # the server died under it: that is the point


def _wait_for_port(port: int) -> None:
    import socket

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    _until(listening, 20)


def _until(condition, seconds: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize(("channel", "endpoint"), [
    ("PJSIP/1001-0000002a", "PJSIP/1001"),
    ("Local/1001@hotline-agents-0000001f;1", "Local/1001@hotline-agents"),
    ("Local/1001@hotline-agents-0000001f;2", "Local/1001@hotline-agents"),
    ("PJSIP/desk-ann", "PJSIP/desk-ann"),  # no sequence suffix: the name as it is
])
def test_agent_login_knows_the_phone_from_the_channel_name(channel: str, endpoint: str) -> None:
    from agi_scripts.agent_login import _endpoint
    assert _endpoint(channel) == endpoint


def test_a_call_in_the_menus_of_a_killed_fastagi_process_gets_its_record_closed(
    hotline: Hotline, redis_url: str, prompts: Path,
) -> None:
    """The process died mid-menu: nobody renews the call's lease, and the reconciler ends the call."""
    lease_s = 2.0
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": hotline.settings.sql_url,
           "HOTLINE_DATA_DIR": str(hotline.settings.data_dir), "HOTLINE_AGI_PORT": str(port),
           "HOTLINE_ROUTER_LEASE": str(lease_s)}
    server = subprocess.Popen([sys.executable, "-m", "hotline.cli", "agi"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    typing = threading.Event()
    try:
        _wait_for_port(port)
        # the caller walks into the card entry, then thinks: the call sits in Read when the process dies
        peer = AsteriskPeer(["1"], timeout_s=5, ask=lambda _wanted: (typing.set(), time.sleep(30), "")[2])
        threading.Thread(target=_call_ignoring_the_end, args=(peer, port), daemon=True).start()
        assert typing.wait(10)
        server.send_signal(signal.SIGKILL)
        server.wait(5)
        killed_at = time.monotonic()
        while not [e for e in stream(redis_url, "call_ended") if e["call_id"] == peer.uniqueid]:
            assert time.monotonic() - killed_at < lease_s + 2, "the dropped call was never ended"
            hotline.router.tick()
            time.sleep(0.1)
        (ended,) = [e for e in stream(redis_url, "call_ended") if e["call_id"] == peer.uniqueid]
        assert (ended["status"], ended["channel"]) == ("lost", "asterisk")
    finally:
        server.kill()
        server.wait(5)


def test_consult_ended_releases_the_target_only_from_the_consultation_s_own_channel(
    agi_server: tuple[str, int], hotline: Hotline,
) -> None:
    staff(hotline, ("ann", "1001"), ("bob", "1002"))
    (offer,) = hotline.router.enqueue(CallRequest("c-77", "general", "zh-CN", 5, "asterisk"))
    hotline.router.answer("c-77", offer.agent_id)
    # ann consults bob (as AsteriskCallControl reserves him)
    hotline.router.set_agent_state("bob", "not_ready", "consult c-77")
    hotline.router.redis.hset(hotline.router.key("call:c-77"), mapping={"consult_agent": "bob", "consult_kind": "agent"})
    AsteriskPeer([], caller="1003", uniqueid="1712345678.9", script="consult-ended?call=c-77").dial(*agi_server)
    assert hotline.agents.get("bob").state == "not_ready"  # type: ignore[union-attr]  # another channel: refused
    AsteriskPeer([], caller="1002", uniqueid="consult-c-77", script="consult-ended?call=c-77").dial(*agi_server)
    assert hotline.agents.get("bob").state == "available"  # type: ignore[union-attr]  # bob hung up: released
    view = hotline.router.call("c-77")
    assert view is not None and view.agent == "ann" and "consult_agent" not in view.fields
    assert view.fields.get("on_hold") == "1"  # the caller still hears the music: ann's console shows Resume
