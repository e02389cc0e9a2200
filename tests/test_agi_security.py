"""FastAGI as an attacker who reaches its port sees it (issue 17): without the shared secret no script runs
and nothing changes; idle or trickling connections cannot hold the server; agents change state only from
their own phones."""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agi_scripts.server import FastAgiServer, Routes
from hotline.agi_app import agi_secret
from hotline.app import Hotline
from routing.agents import Agent
from softphone.agi_peer import AsteriskPeer
from tests.conftest import AGI_SECRET, serve_agi
from tests.test_agi_calls import CARD, PIN


def ann_available(hotline: Hotline) -> None:
    hotline.agents.put(Agent("ann", "Ann", "PJSIP/1001", {"general": 5}, ["zh-CN"]))
    hotline.router.set_agent_state("ann", "available")


def state(hotline: Hotline, agent_id: str) -> str:
    agent = hotline.agents.get(agent_id)
    assert agent is not None
    return agent.state


# -- the shared secret --------------------------------------------------------------------------------------

@pytest.mark.parametrize("secret", ["", "wrong-secret-0123456789", AGI_SECRET[:-1], AGI_SECRET + "x"])
def test_agent_logout_without_the_secret_is_refused_and_changes_nothing(
    agi_server: tuple[str, int], hotline: Hotline, secret: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """The attack: agent-login?action=logout with a spoofed agi_channel, from any local process."""
    ann_available(hotline)
    with caplog.at_level(logging.WARNING):
        call = AsteriskPeer([], script="agent-login?action=logout", channel="PJSIP/1001-0000002a",
                            secret=secret).dial(*agi_server)
    assert call.commands == [] and call.closed_by_server, "not one command: no script ran"
    assert state(hotline, "ann") == "available"
    assert "refused: wrong or missing secret (script 'agent-login'" in caplog.text


def test_agent_logs_out_with_the_secret_from_their_own_phone_only(
    agi_server: tuple[str, int], hotline: Hotline, caplog: pytest.LogCaptureFixture,
) -> None:
    ann_available(hotline)
    with caplog.at_level(logging.WARNING):
        other = AsteriskPeer([], script="agent-login?action=logout", channel="PJSIP/1002-0000002b").dial(*agi_server)
    assert other.commands == ["SET VARIABLE HOTLINE_AGENT_STATUS unknown"]
    assert state(hotline, "ann") == "available"
    own = AsteriskPeer([], script="agent-login?action=logout", channel="PJSIP/1001-0000002c").dial(*agi_server)
    assert own.commands == ["SET VARIABLE HOTLINE_AGENT_STATUS offline"]
    assert state(hotline, "ann") == "offline"


def test_a_caller_without_the_secret_hears_nothing_and_leaves_no_call(
    agi_server: tuple[str, int], hotline: Hotline,
) -> None:
    peer = AsteriskPeer(["1", CARD + "#", PIN, ""], secret="")
    call = peer.dial(*agi_server)
    assert call.commands == [] and call.played == []
    assert hotline.router.call(peer.uniqueid) is None
    # ... and with it, the same caller is served.
    assert "hotline/hotline/zh-CN/main" in AsteriskPeer(["1", CARD + "#", PIN, ""]).dial(*agi_server).played


def test_the_secret_is_generated_once_kept_private_and_reused(hotline: Hotline, tmp_path: Path) -> None:
    settings = hotline.settings.model_copy(update={"agi_secret": None, "data_dir": tmp_path / "fresh"})
    first, created = agi_secret(settings)
    again, created_again = agi_secret(settings)
    assert (first, created, created_again) == (again, True, False)
    assert len(first) >= 40 and first.replace("-", "").replace("_", "").isalnum()  # dialplan- and URL-safe
    path = tmp_path / "fresh" / "agi_secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert agi_secret(hotline.settings) == (AGI_SECRET, False), "HOTLINE_AGI_SECRET wins over the file"


def test_a_configured_secret_must_not_be_short(hotline: Hotline) -> None:
    from pydantic import ValidationError

    from hotline.settings import Settings

    with pytest.raises(ValidationError, match="HOTLINE_AGI_SECRET|agi_secret"):
        Settings(agi_secret="change-me")
    assert Settings(agi_secret="").agi_secret is None, "empty is unset: the generated one is used"


# -- idle and trickling connections ---------------------------------------------------------------------------

@pytest.fixture
def guarded(hotline: Hotline, prompts: Path) -> Iterator[tuple[str, int]]:
    """A server with small caps: 60 connections, 40 per address, 8 waiting for their environment."""
    with serve_agi(hotline, agi_max_connections=60, agi_max_per_peer=40, agi_max_unauthenticated=8,
                   agi_env_timeout_s=2.0) as address:
        yield address


def closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_1500_idle_connections_cannot_keep_a_caller_from_being_served(
    guarded: tuple[str, int], hotline: Hotline, caplog: pytest.LogCaptureFixture,
) -> None:
    flood: list[socket.socket] = []
    threads_before = threading.active_count()  # earlier tests of the session may have left threads running
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(1500):
                sock = socket.create_connection(guarded, timeout=5)
                sock.sendall(b"agi_network: yes\n")  # a start, and then nothing
                flood.append(sock)
            started = time.monotonic()
            peer = AsteriskPeer(["1", CARD + "#", PIN, ""])
            call = peer.dial(*guarded)  # while the flood is held
            served_in = time.monotonic() - started
            threads = threading.active_count() - threads_before
            time.sleep(0.3)
            held = [s for s in flood if not closed_by_server(s)]
        assert "hotline/hotline/zh-CN/main" in call.played and call.commands[-1] == "HANGUP"
        assert served_in < 2.0, "served at once, not after the flood's timeouts"
        assert len(held) <= 40, "the flood holds at most the per-address cap, the rest is dropped"
        assert threads < 20, "and no thread each: idle connections wait in one selector"
        assert "dropped: no environment with the secret yet" in caplog.text
        assert caplog.text.count("dropped: no environment") <= 20, "a flood is logged, without a line each"
    finally:
        for sock in flood:
            sock.close()


def test_idle_connections_at_a_cap_make_room_for_a_new_call(
    hotline: Hotline, prompts: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    with serve_agi(hotline, agi_max_connections=30, agi_max_per_peer=20, agi_max_unauthenticated=100,
                   agi_env_timeout_s=3.0) as address:
        flood: list[socket.socket] = []
        try:
            with caplog.at_level(logging.WARNING):
                flood = [socket.create_connection(address, timeout=5) for _ in range(50)]
                call = AsteriskPeer(["1", CARD + "#", PIN, ""]).dial(*address)
                time.sleep(0.3)
                held = [s for s in flood if not closed_by_server(s)]
            assert call.commands[-1] == "HANGUP", "served while the flood is held"
            assert len(held) <= 20 and held == flood[len(flood) - len(held):], "the newest idle ones, at most 20"
            assert "a new connection needs its place (HOTLINE_AGI_MAX_PER_PEER)" in caplog.text
        finally:
            for sock in flood:
                sock.close()


@pytest.mark.parametrize("caps, message", [
    ({"agi_max_connections": 3}, "refused: 3 connections open (HOTLINE_AGI_MAX_CONNECTIONS)"),
    ({"agi_max_per_peer": 3}, "refused: 3 connections from this address (HOTLINE_AGI_MAX_PER_PEER)"),
])
def test_calls_beyond_a_cap_are_refused_with_a_clear_log_line(
    hotline: Hotline, prompts: Path, caplog: pytest.LogCaptureFixture, caps: dict[str, int], message: str,
) -> None:
    with serve_agi(hotline, **caps) as address:
        holding = [threading.Thread(target=AsteriskPeer(["0"], patience_s=2).dial, args=address) for _ in range(3)]
        for thread in holding:
            thread.start()
        time.sleep(0.8)  # the three are on hold, authenticated
        with caplog.at_level(logging.WARNING):
            refused = AsteriskPeer(["1", CARD + "#", PIN, ""]).dial(*address)
        for thread in holding:
            thread.join(10)
        served = AsteriskPeer(["1", CARD + "#", PIN, ""]).dial(*address)
    assert refused.commands == [] and refused.closed_by_server
    assert message in caplog.text
    assert served.commands[-1] == "HANGUP", "served again once the others hung up"


def test_an_environment_trickled_byte_by_byte_is_cut_at_the_deadline(
    guarded: tuple[str, int], caplog: pytest.LogCaptureFixture,
) -> None:
    """The old timeout was per read: one byte every second kept a thread for 200 lines x 10 s."""
    environment = AsteriskPeer([]).environment(*guarded).encode()
    with caplog.at_level(logging.WARNING), socket.create_connection(guarded, timeout=5) as sock:
        started = time.monotonic()
        closed_after = None
        for byte in environment:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            if closed_by_server(sock):
                closed_after = time.monotonic() - started
                break
            sock.setblocking(True)
            time.sleep(0.25)
            if time.monotonic() - started > 6:
                break
    assert closed_after is not None and closed_after < 3.0, "dropped at the 2 s deadline"
    assert "environment not complete within 2 s" in caplog.text


def test_a_hangup_sent_right_behind_the_environment_is_not_lost() -> None:
    """The greeter may read past the environment: what it read is the call's first input, not dropped."""
    noticed: list[bool] = []

    def handler(agi: Any, script: str, query: object) -> None:
        agi.command("ANSWER")
        noticed.append(agi.hangup_noticed)

    server = FastAgiServer(("127.0.0.1", 0), Routes(fallback=lambda _: handler), secret=AGI_SECRET)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        address = ("127.0.0.1", server.server_address[1])
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(AsteriskPeer([]).environment(*address).encode() + b"HANGUP\n")
            rfile = sock.makefile("rb")
            assert rfile.readline() == b"ANSWER\n"
            sock.sendall(b"200 result=0\n")
            rfile.read()  # the call ends: the stream closes
    finally:
        server.shutdown()
        server.server_close()
    assert noticed == [True]


def test_a_peer_idle_between_commands_is_given_up_with_a_clear_log_line(
    agi_server: tuple[str, int], hotline: Hotline, caplog: pytest.LogCaptureFixture,
) -> None:
    """After the secret, a peer that stops answering is given up after the command's timeout (1 s here for
    instant commands and prompts), never held: the log says which command went unanswered and for how long."""
    peer = AsteriskPeer(["1", CARD + "#"], silent_at=3)  # stuck while "playing" the card prompt
    with caplog.at_level(logging.WARNING):
        started = time.monotonic()
        call = peer.dial(*agi_server)
    assert time.monotonic() - started < 5 and call.closed_by_server
    assert f"call {peer.uniqueid}: peer idle: no reply to " in caplog.text
    assert "within 1 s; ended as a hang-up" in caplog.text


def test_a_call_whose_environment_waits_unread_keeps_its_place_among_silent_connections() -> None:
    # A busy process may not read a real call's environment for a while: the cap on silent connections must
    # push out the one that sent nothing, not the call whose environment already sits in its buffer.
    from agi_scripts.gate import Admission

    admission = Admission(max_connections=100, max_per_peer=100, max_unauthenticated=2, evict_after_s=0.0)
    pairs = [socket.socketpair() for _ in range(4)]
    try:
        real, silent, newcomer, another = pairs
        real[1].sendall(b"agi_network: yes\nagi_arg_1: x\n\n")
        assert admission.admit(real[0], "127.0.0.1") and admission.admit(silent[0], "127.0.0.1")
        assert admission.admit(newcomer[0], "127.0.0.1")
        silent[1].settimeout(2)
        assert silent[1].recv(10) == b""  # the silent one was pushed out (its socket shut down)...
        assert admission.waiting == 2  # ...and the real call still holds its place beside the newcomer
        real[1].setblocking(False)
        with pytest.raises(BlockingIOError):  # not shut down: nothing to read, no end of stream
            real[1].recv(10)
        # With only calls holding environments, none is pushed out: the newcomer just waits with them.
        another[1].sendall(b"agi_network: yes\n\n")
        newcomer[1].sendall(b"agi_network: yes\n\n")
        assert admission.admit(another[0], "127.0.0.1") and admission.waiting == 3
    finally:
        for a, b in pairs:
            a.close()
            b.close()
