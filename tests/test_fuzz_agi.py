"""Fuzzing the FastAGI server over real sockets: garbage result lines (random bytes, wrong codes, 510/520,
no newline, huge lines, invalid UTF-8), truncated environment blocks, abrupt disconnects. Every call ends
cleanly: the server closes it, nothing escapes the error boundary, the router and the dashboard's count
forget it, its events balance. After every batch a normal call still completes: the server serves on.

Seeds are fixed (``derandomize``) so CI sees the same examples every run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agi_scripts.server import FastAgiServer
from calls.keys import IVR_CALLS
from hotline import agi_app
from hotline.app import Hotline
from routing.agents import Agent
from routing.keys import EVENTS_STREAM
from softphone.agi_peer import AsteriskPeer, PeerCall, _Entries
from tests.conftest import serve_agi
from tests.test_agi_calls import CARD, PIN

ENV_TIMEOUT_S = 0.5
SCRIPTS = {
    "inquiry": ["1", CARD + "#", PIN, ""],
    "loss": ["2", CARD + "#", "000000", "0"],
    "complaint": ["3", "1", "record:2", "0"],
    "agent": ["0"],
    "english": ["9", "1", CARD + "#", PIN],
}
FUZZ = settings(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])


@dataclass
class Server:
    address: tuple[str, int]
    hotline: Hotline
    crashes: list[str] = field(default_factory=list)
    """Anything that got past the error boundary (socketserver's handle_error) or was logged with a traceback."""

    @functools.cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.hotline.redis_url, decode_responses=True)


class _Tracebacks(logging.Handler):
    def __init__(self, crashes: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.crashes = crashes

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:  # the boundary logs AGI errors plainly; a traceback means an unexpected exception
            self.crashes.append(self.format(record))


@pytest.fixture
def server(hotline: Hotline, prompts: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    crashes: list[str] = []
    monkeypatch.setattr(FastAgiServer, "handle_error",
                        lambda self, request, address: crashes.append(f"handle_error from {address}"))
    # The hold loop polls every 50 ms instead of every second: the same loop, faster examples.
    real_hold_deps = agi_app.hold_deps
    monkeypatch.setattr(agi_app, "hold_deps", lambda h: dataclasses.replace(real_hold_deps(h), poll_s=0.05))
    handler = _Tracebacks(crashes)
    logging.getLogger().addHandler(handler)
    hotline.agents.put(Agent("ann", "Ann", "PJSIP/1001", {"general": 5}, ["zh-CN", "en-US"]))
    hotline.router.set_agent_state("ann", "available")
    try:
        with serve_agi(hotline, agi_env_timeout_s=ENV_TIMEOUT_S, agi_play_timeout_s=ENV_TIMEOUT_S) as address:
            yield Server(address, hotline, crashes)
    finally:
        logging.getLogger().removeHandler(handler)


# -- a scripted Asterisk that may also say bytes no Asterisk would -------------------------------------

CLOSE, RESET, SILENT = "close", "reset", "silent"
SILENCE_S = 1.0
"""A silent peer says nothing for this long, then hangs up: the server gives up sooner on instant
commands (its reply timeout, 0.5 s here); on a WAIT FOR DIGIT (its timeout + 10 s) the hang-up ends it."""
_ids = itertools.count(1)


@dataclass
class Fault:
    at: int
    """The command number (0-based) the fault answers."""
    does: bytes | str
    """Raw bytes sent instead of the reply (a newline or not), or CLOSE, RESET (RST), SILENT (see SILENCE_S)."""
    then_close: bool = False
    """Hang up right after sending the bytes (a half line, then nothing)."""


def converse(address: tuple[str, int], keys: list[str], environment: bytes, faults: dict[int, Fault],
             timeout_s: float = 15, patience_s: float = 0) -> PeerCall:
    """Send ``environment`` (whole or not), then answer commands as the scripted Asterisk does, except
    at the faults. Returns when the server closes the connection (``closed_by_server``) or we did."""
    peer, call = AsteriskPeer(keys, patience_s=patience_s), PeerCall()
    entries, hung_up = _Entries(list(keys)), False
    deadline = time.monotonic() + timeout_s
    with socket.create_connection(address, timeout=timeout_s) as sock:
        sock.sendall(environment)
        rfile = sock.makefile("rb")
        for index in itertools.count():
            try:
                line = rfile.readline()
            except TimeoutError:
                return call  # we were silent, and now hang up
            except ConnectionResetError:
                line = b""
            if not line:
                call.closed_by_server = True
                return call
            command = line.decode("utf-8", "replace").rstrip("\n")
            call.commands.append(command)
            assert time.monotonic() < deadline, f"the server kept the call going: {call.commands[-6:]}"
            fault = faults.get(index)
            # The caller's script moves on as if Asterisk had answered (a fault replaces only what is said).
            reply = dead_channel_reply(command) if hung_up or call.hung_up else (
                peer._answer(command, entries, call) + "\n").encode()  # noqa: SLF001 - reuse its answers
            if fault is not None and fault.does == SILENT:
                sock.settimeout(SILENCE_S)
                continue
            if fault is not None and fault.does in (CLOSE, RESET):
                if fault.does == RESET:  # linger 0: the kernel sends RST, not FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return call
            if fault is not None:  # Asterisk always announces a hang-up: a fault replaces only the reply after it
                said = fault.does if isinstance(fault.does, bytes) else fault.does.encode()
                reply = (b"HANGUP\n" if reply.startswith(b"HANGUP\n") else b"") + said
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(reply)
            if fault is not None and fault.then_close:
                return call
            hung_up = hung_up or command == "HANGUP"
    raise AssertionError("unreachable")


DEAD_CHANNEL_OK = ("NOOP", "GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "VERBOSE", "DATABASE")
"""Commands Asterisk still runs after the caller hung up (res_agi.c marks them ``dead``); others get 511."""


def dead_channel_reply(command: str) -> bytes:
    if command.startswith(DEAD_CHANNEL_OK):
        return b"200 result=0\n"
    return b"511 Command Not Permitted on a dead channel or intercept routine\n"


def environment(uniqueid: str, script: str = "hotline") -> bytes:
    return AsteriskPeer([], script=script, uniqueid=uniqueid).environment("127.0.0.1", 4573).encode()


def new_id() -> str:
    return f"1764999999.{next(_ids):06d}"  # one width: the environment block keeps its length


# -- what must hold after each call -----------------------------------------------------------------

def assert_forgotten(server: Server, uniqueid: str, timeout_s: float = 3) -> None:
    """The call is over everywhere: not in the router, not counted in the menus, its events balanced."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = [f["type"] for _, f in server.redis.xrange(EVENTS_STREAM) if f.get("call_id") == uniqueid]
        state = (server.hotline.router.call(uniqueid), server.redis.zscore(IVR_CALLS, uniqueid),
                 events.count("call_started"), events.count("call_ended"))
        nameless = [f for _, f in server.redis.xrange(EVENTS_STREAM) if f.get("call_id") == ""]
        assert not nameless, f"a call without agi_uniqueid was started: {nameless[:1]}"
        if state[:2] == (None, None) and state[2] == state[3] <= 1:
            break
        assert time.monotonic() < deadline, f"call {uniqueid} not cleaned up: {state}"
        time.sleep(0.05)
    assert not server.crashes, server.crashes


def assert_still_serves(server: Server) -> None:
    """A whole inquiry: greeted, card and PIN taken, balance told, goodbye; and its call record event."""
    peer = AsteriskPeer(SCRIPTS["inquiry"])
    call = peer.dial(*server.address)
    assert call.closed_by_server and call.commands[-2:] == ['STREAM FILE hotline/hotline/zh-CN/goodbye ""', "HANGUP"]
    ended = [f for _, f in server.redis.xrange(EVENTS_STREAM) if f["type"] == "call_ended"]
    assert [(e["outcome"], e["verified"]) for e in ended if e["call_id"] == peer.uniqueid] == [("self_served", "yes")]


def wait_for_call_threads(timeout_s: float = 10) -> None:
    """Every call's thread (socketserver's, one per connection) has finished: none is stuck on a peer."""
    deadline = time.monotonic() + timeout_s
    while calls := [t.name for t in threading.enumerate() if "process_request_thread" in t.name]:
        assert time.monotonic() < deadline, f"call threads still running: {calls}"
        time.sleep(0.05)


def test_a_caller_who_hangs_up_on_hold_is_let_go_though_noop_still_answers(server: Server) -> None:
    """Asterisk announces the hang-up with one HANGUP line and keeps answering NOOP (allowed on a dead
    channel): the caller must leave the queue then, not stay in it for the longest wait."""
    server.hotline.router.set_agent_state("ann", "not_ready")  # nobody to offer the call to: the caller holds
    uniqueid = new_id()
    call = converse(server.address, SCRIPTS["agent"], environment(uniqueid), {}, patience_s=1.5)
    # The NOOP answered "HANGUP" was the last command: no more polling a dead channel.
    assert call.closed_by_server and call.commands[-1] == "NOOP", call.commands[-5:]
    assert_forgotten(server, uniqueid, timeout_s=3)
    ended = [f for _, f in server.redis.xrange(EVENTS_STREAM) if f.get("call_id") == uniqueid and
             f["type"] == "call_ended"]
    assert [e["outcome"] for e in ended] == ["abandoned"]


# -- garbage result lines ---------------------------------------------------------------------------

def _no_newline(raw: bytes) -> bytes:
    return raw.replace(b"\n", b" ")


GARBAGE = st.one_of(
    st.binary(max_size=120).map(lambda raw: _no_newline(raw) + b"\n"),  # random bytes, invalid UTF-8 too
    st.from_regex(rb"\A[0-9]{3}[ -][ -~]{0,40}\n\Z"),  # any code
    st.sampled_from([
        b"510 Invalid or unknown command\n", b"511 Command Not Permitted on a dead channel\n",
        b"520 Invalid command syntax.  Proper usage not available.\n",
        b"520-Invalid command syntax.  Proper usage follows:\n",  # and no "520 End of proper usage."
        b"520-Usage: x\nmore\n520 End of proper usage.\n", b"200 result=\n", b"200 result=abc\n",
        b"200 result=1 (\n", b"200 result=1 endpos=x\n", b"200 result=99999999999999999999999\n",
        b"200 result=-1\n", b"200 result=49 (dtmf) endpos=-5\n", b"200 result=0\n200 result=1\n", b"HANGUP\n",
        b"HANGUP\nHANGUP\n200 result=0\n", b"\n", b"\r\n", b"200 result=0", b"200 result=\xff\xfe\n",
        b"200 result=\xe4\xbd\n", b"\xef\xbb\xbf200 result=0\n", b"200 result=0\x00\n", b"agi_uniqueid: 1\n\n",
    ]),
    st.integers(8_000, 200_000).map(lambda n: b"200 result=0 " + b"x" * n + b"\n"),  # a huge line
)
CUT = st.sampled_from([CLOSE, RESET])


def test_garbage_replies_end_each_call_cleanly_and_the_server_serves_on(server: Server) -> None:
    @settings(FUZZ, max_examples=80)
    @given(script=st.sampled_from(sorted(SCRIPTS)), faults=st.dictionaries(
        st.integers(0, 40), st.tuples(st.one_of(GARBAGE, GARBAGE, GARBAGE, CUT), st.booleans()), min_size=1,
        max_size=3))
    def one_call(script: str, faults: dict[int, tuple[bytes | str, bool]]) -> None:
        uniqueid = new_id()
        call = converse(server.address, SCRIPTS[script], environment(uniqueid),
                        {at: Fault(at, does, then_close) for at, (does, then_close) in faults.items()})
        assert call.closed_by_server or any(f[0] in (CLOSE, RESET) or f[1] for f in faults.values())
        assert_forgotten(server, uniqueid)

    one_call()
    wait_for_call_threads()
    assert_still_serves(server)


# -- truncated and malformed environment blocks -------------------------------------------------------

@st.composite
def broken_environments(draw: st.DrawFn) -> tuple[bytes, str, str]:
    """(bytes sent, the call's uniqueid, then: "close" the socket, or leave it "open")."""
    uniqueid = new_id()
    whole = environment(uniqueid, draw(st.sampled_from(["hotline", "survey?visit=1", "queue?priority=x",
                                                        "queue?skill=nowhere&priority=99999999999999999999",
                                                        "agent-login", "agent-answered", "nowhere", ""])))
    kind = draw(st.sampled_from(["cut", "cut then blank", "garbage inside", "too many lines", "huge line"]))
    if kind.startswith("cut"):
        line_ends = [i + 1 for i, byte in enumerate(whole[:-1]) if byte == ord("\n")]
        cut = draw(st.integers(0, len(whole) - 1) | st.sampled_from(line_ends))  # mid-line, or whole lines
        sent = whole[:cut] + (b"\n\n" if kind == "cut then blank" else b"")
    elif kind == "garbage inside":
        at = draw(st.integers(0, len(whole) - 2))
        sent = whole[:at] + draw(st.binary(min_size=1, max_size=40)) + whole[at:]
    elif kind == "too many lines":
        sent = whole[:-1] + b"".join(b"agi_arg_%d: x\n" % i for i in range(draw(st.integers(150, 400)))) + b"\n"
    else:
        sent = whole[:-1] + b"agi_arg_1: " + b"y" * draw(st.integers(8_000, 100_000)) + b"\n\n"
    return sent, uniqueid, draw(st.sampled_from(["close", "open", "open"]))


def test_truncated_or_malformed_environments_are_dropped_and_the_server_serves_on(server: Server) -> None:
    @settings(FUZZ, max_examples=60)
    @given(case=broken_environments())
    def one_connection(case: tuple[bytes, str, str]) -> None:
        sent, uniqueid, then = case
        with socket.create_connection(server.address, timeout=10) as sock:
            with contextlib.suppress(OSError):  # the server may have closed on us already
                sock.sendall(sent)
                if then == "close":
                    sock.shutdown(socket.SHUT_WR)
            # The server answers a call it could start (then the caller "hangs up"), or closes on us:
            # at the end of the bytes, at a bad line, or after the environment timeout.
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # a reset is a close too
                while sock.recv(65536):  # a TimeoutError here: the server kept the connection open
                    sock.sendall(b"HANGUP\n200 result=-1\n")
        assert_forgotten(server, uniqueid)

    one_connection()
    wait_for_call_threads()
    assert_still_serves(server)


# -- peers that go away or go silent mid-call ---------------------------------------------------------

def test_abrupt_disconnects_and_silences_end_each_call_and_the_server_serves_on(server: Server) -> None:
    @settings(FUZZ, max_examples=40)
    @given(script=st.sampled_from(sorted(SCRIPTS)), at=st.integers(0, 40),
           does=st.sampled_from([CLOSE, RESET, SILENT]))
    def one_call(script: str, at: int, does: str) -> None:
        uniqueid = new_id()
        converse(server.address, SCRIPTS[script], environment(uniqueid), {at: Fault(at, does)})
        assert_forgotten(server, uniqueid)

    one_call()
    wait_for_call_threads()
    assert_still_serves(server)


def test_many_broken_calls_at_once_leave_the_server_serving(server: Server) -> None:
    """Broken peers in parallel with good ones: the good ones are served while the others fail."""
    ids = [new_id() for _ in range(60)]
    faults = [{3: Fault(3, b"\xff\xfe\n")}, {5: Fault(5, RESET)}, {2: Fault(2, SILENT)},
              {3: Fault(3, b"520-Usage\n")}, {1: Fault(1, b"200 result=0 " + b"z" * 50_000 + b"\n")}]
    threads = [threading.Thread(target=converse, args=(server.address, SCRIPTS["inquiry"], environment(i),
                                                       faults[n % len(faults)])) for n, i in enumerate(ids)]
    for thread in threads:
        thread.start()
    assert_still_serves(server)
    for thread in threads:
        thread.join(30)
    for uniqueid in ids:
        assert_forgotten(server, uniqueid)
    wait_for_call_threads()
    assert_still_serves(server)
