"""A scripted Asterisk: dials the FastAGI server, sends the AGI environment, and answers every
command with Asterisk's exact result lines while a scripted caller presses keys.

Used by the tests and by admins to try a menu (``hotline call``).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

_ids = itertools.count(1)


def fresh_uniqueid() -> str:
    """Asterisk's ``<epoch>.<sequence>``, unique across processes too: calls one after another (each
    ``hotline call``) must not merge into one record or share a recording name."""
    return f"{int(time.time())}.{os.getpid() % 100000}{next(_ids):04d}"
RECORD_PREFIX = "record:"
"""An entry ``record:35`` speaks for 35 s into RECORD FILE, then presses the escape key."""


@dataclass
class PeerCall:
    """What happened on one call: every command the server sent and what the caller heard."""

    commands: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    closed_by_server: bool = False
    hung_up: bool = False
    held_since: float | None = None
    """When music on hold started."""
    agent_legs: list[PeerCall] = field(default_factory=list)
    """The ``agent-answered`` AGI calls the Dial ``U()`` gosub made on the agents' channels."""


@dataclass
class AsteriskPeer:
    keys: list[str]
    """One entry per thing the caller answers: ``"1"``, ``"6222...94#"``, ``""`` (silence), ``"record:30"``."""
    caller: str = "13812345678"
    language: str = "zh"
    script: str = "hotline"
    barge_in: bool = False
    """Press the next entry's first key during the prompt instead of after it."""
    hangup_at: int | None = None
    """Hang up when the server sends its command number ``hangup_at`` (0-based)."""
    silent_at: int | None = None
    """Stop answering at command number ``silent_at``, as a stuck Asterisk would (tests the server's timeouts)."""
    replies: dict[int, str] = field(default_factory=dict)
    """Raw lines to answer given commands with instead (garbage, 510, 520 ...)."""
    patience_s: float = 0.0
    """How long the caller stays on hold (music on) before hanging up; 0: at once."""
    dial_status: str = "ANSWER"
    """DIALSTATUS after ``EXEC Dial``: ANSWER, NOANSWER, BUSY, CHANUNAVAIL ..."""
    talk_s: float = 0.0
    """How long the agent and the caller talk once connected."""
    ring_gate: threading.Event | None = None
    """When set, ``EXEC Dial`` rings the agent until the event is set, then answers with ``dial_status``."""
    dial_gate: threading.Event | None = None
    """When set, ``EXEC Dial`` answers only once the event is set: the call stays connected till then."""
    uniqueid: str = field(default_factory=fresh_uniqueid)
    timeout_s: float = 10.0
    ask: Callable[[str], str] | None = None
    """Interactive caller: called with what the server waits for when the script has no entry left."""
    on_play: Callable[[str], None] | None = None
    """Told the name of every sound the server plays."""
    on_event: Callable[[str], None] | None = None
    """Told what happens besides prompts: on hold, ringing an agent, talking, hanging up."""
    variables: dict[str, str] = field(default_factory=dict)
    """The channel's variables as ``Read`` left them."""
    secret: str | None = None
    """The FastAGI shared secret, sent as the first AGI argument (``agi_arg_1``) as the dialplan's
    ``AGI(agi://...,${HOTLINE_AGI_SECRET})`` does; None: ``default_secret``."""
    channel: str = "PJSIP/trunk-00000001"
    """``agi_channel``: the caller's channel (an agent's phone: ``PJSIP/1001-0000002a``)."""
    default_secret: ClassVar[str] = ""
    """The secret of peers not given one (a test suite sets it once for all its calls)."""

    def dial(self, host: str, port: int) -> PeerCall:
        self._server = (host, port)
        with socket.create_connection((host, port), timeout=self.timeout_s) as sock:
            rfile = sock.makefile("r", encoding="utf-8", newline="\n")
            wfile = sock.makefile("w", encoding="utf-8", newline="\n")
            wfile.write(self.environment(host, port))
            wfile.flush()
            return self._converse(rfile, wfile)

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> PeerCall:
        """Run a plain AGI script as Asterisk does: environment and commands over its stdin/stdout,
        SIGHUP when the caller hangs up."""
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              encoding="utf-8", env=env) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(self.environment())
            proc.stdin.flush()
            try:
                return self._converse(proc.stdout, proc.stdin, hang_up=lambda: proc.send_signal(signal.SIGHUP))
            finally:
                proc.stdin.close()
                proc.wait(timeout=self.timeout_s)

    def environment(self, host: str | None = None, port: int | None = None) -> str:
        network = {"agi_network": "yes", "agi_network_script": self.script} if host else {}
        request = f"agi://{host}:{port}/{self.script}" if host else self.script
        env = {
            **network, "agi_request": request, "agi_channel": self.channel,
            "agi_language": self.language, "agi_type": "PJSIP", "agi_uniqueid": self.uniqueid,
            "agi_version": "20.5.0", "agi_callerid": self.caller, "agi_calleridname": "unknown",
            "agi_callingpres": "0", "agi_callingani2": "0", "agi_callington": "0", "agi_callingtns": "0",
            "agi_dnid": "95555", "agi_rdnis": "unknown", "agi_context": "hotline-inbound",
            "agi_extension": "95555", "agi_priority": "2", "agi_enhanced": "0.0", "agi_accountcode": "",
            "agi_threadid": "140000000000000",
        }
        secret = self.default_secret if self.secret is None else self.secret
        if host and secret:  # FastAGI only: plain AGI runs on the PBX itself and takes no secret
            env["agi_arg_1"] = secret
        return "".join(f"{k}: {v}\n" for k, v in env.items()) + "\n"

    def _converse(self, rfile: Any, wfile: Any, hang_up: Callable[[], None] | None = None) -> PeerCall:
        """Answer commands until the script closes; ``hang_up`` signals a hang-up (plain AGI)."""
        call, entry, hung_up = PeerCall(), _Entries(list(self.keys), self.ask), False
        for index in itertools.count():
            line = rfile.readline()
            if not line:
                call.closed_by_server = True
                return call
            command = line.rstrip("\n")
            call.commands.append(command)
            if index == self.silent_at:
                continue  # say nothing; the server must give up on its own
            if hung_up or call.hung_up:
                reply = "511 Command Not Permitted on a dead channel or intercept routine"
            elif index == self.hangup_at:
                hung_up, reply = True, "HANGUP\n200 result=-1 endpos=0"
                if hang_up is not None:
                    hang_up()
                    reply = "200 result=-1 endpos=0"
            elif index in self.replies:
                reply = self.replies[index]
            else:
                reply = self._answer(command, entry, call)
            try:
                wfile.write(reply + "\n")
                wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                call.closed_by_server = True  # the server said its last and hung up
                return call
            if command == "HANGUP" and not hung_up:
                hung_up = True
        raise AssertionError("unreachable")

    def _answer(self, command: str, entry: _Entries, call: PeerCall) -> str:
        words = command.split()
        verb = " ".join(words[:2]) if words[:1] in (["STREAM"], ["WAIT"], ["RECORD"], ["GET"], ["SET"]) else words[0]
        answer = _ANSWERS.get(verb)
        if answer is None:
            return "510 Invalid or unknown command"
        return answer(self, words, entry, call)

    def _stream_file(self, words: list[str], entry: _Entries, call: PeerCall) -> str:
        call.played.append(words[2])
        if self.on_play:
            self.on_play(words[2])
        entry.prompt_played()
        escape = words[3].strip('"') if len(words) > 3 else ""
        key = entry.peek()
        if self.barge_in and key and key in escape:
            entry.pop()
            return f"200 result={ord(key)} endpos=1600"
        return "200 result=0 endpos=16000"

    def _wait_for_digit(self, words: list[str], entry: _Entries, call: PeerCall) -> str:
        key = entry.pop()
        return f"200 result={ord(key)}" if key else "200 result=0"

    def _read(self, words: list[str], entry: _Entries, call: PeerCall) -> str:
        """``EXEC Read "VAR,file1&file2,max,t(#),1,"`` as app_read does it: plays the files, then collects
        keys up to ``max`` or a terminator (not stored); sets VAR and READSTATUS (OK or TIMEOUT)."""
        variable, files, max_digits, options, *_ = " ".join(words[2:]).strip('"').split(",") + ["", "", "", ""]
        for sound in filter(None, files.split("&")):
            self._stream_file(["STREAM", "FILE", sound], entry, call)
            if self.barge_in and entry.peek():
                break  # a key typed during a prompt stops the prompts (type-ahead)
        terminators = options[options.index("t(") + 2:options.index(")")] if "t(" in options else "#"
        digits, status = "", "TIMEOUT"
        while True:
            key = entry.pop()
            if not key:
                break
            if key in terminators:
                status = "OK"
                break
            digits += key
            if len(digits) >= int(max_digits or 255):
                status = "OK"
                break
        self.variables.update({variable: digits, "READSTATUS": status})
        return "200 result=0"

    def _get_full_variable(self, words: list[str], entry: _Entries, call: PeerCall) -> str:
        expression = " ".join(words[3:]).strip('"')
        return "200 result=1 ({})".format(re.sub(r"\$\{(\w+)\}", lambda m: self.variables.get(m[1], ""), expression))

    def _record_file(self, words: list[str], entry: _Entries, call: PeerCall) -> str:
        spoken = entry.take_recording()
        if not spoken:
            return "200 result=0 (timeout) endpos=0"
        _write_wav(Path(words[2] + "." + words[3]), spoken)
        return f"200 result={ord('#')} (dtmf) endpos={spoken * 8000}"

    def _get_variable(self, words: list[str], entry: _Entries, call: PeerCall) -> str:
        if words[2] == "DIALSTATUS":
            return f"200 result=1 ({self.dial_status})"
        return "200 result=0"

    def _on_hold(self, words: list[str], entry: _Entries, call: PeerCall) -> str:
        """SET MUSIC and NOOP while holding: the caller hangs up once out of patience."""
        if words[:3] == ["SET", "MUSIC", "on"] and call.held_since is None:
            call.held_since = time.monotonic()
            self._tell(f"on hold (music); hanging up after {self.patience_s:.0f} s")
        if call.held_since is not None and time.monotonic() - call.held_since >= self.patience_s:
            call.hung_up = True
            self._tell("hung up on hold")
            return "HANGUP\n200 result=-1"
        return "200 result=0"

    def _exec(self, words: list[str], entry: _Entries, call: PeerCall) -> str:
        if words[1] == "Read":
            return self._read(words, entry, call)
        if words[1] != "Dial":
            return "200 result=0"
        endpoint = words[2].strip('"').split(",")[0]
        self._tell(f"ringing the agent at {endpoint}")
        if self.ring_gate is not None:
            self.ring_gate.wait(self.timeout_s * 6)
        # Dial "PJSIP/1001,20,U(hotline-agent-answer^<call>^<agent>)": on pick-up Asterisk runs the
        # gosub on the agent's channel, which runs the agent-answered FastAGI script.
        gosub = re.search(r"U\(([^)]*)\)", " ".join(words[2:]))
        if self.dial_status == "ANSWER" and gosub and getattr(self, "_server", None):
            _, call_id, agent_id = gosub.group(1).split("^")
            agent = AsteriskPeer([], caller=endpoint, channel=f"{endpoint}-0000002a", secret=self.secret,
                                 script=f"agent-answered?call={call_id}&agent={agent_id}")
            call.agent_legs.append(agent.dial(*self._server))
        if self.dial_gate is not None:
            self.dial_gate.wait(self.timeout_s * 6)
        if self.dial_status == "ANSWER":
            self._tell(f"talking to the agent for {self.talk_s:.0f} s")
        time.sleep(self.talk_s)
        return "200 result=0"

    def _tell(self, what: str) -> None:
        if self.on_event is not None:
            self.on_event(what)


class _Entries:
    """The caller's script: keys are given entry by entry; a prompt starts the next entry."""

    def __init__(self, keys: list[str], ask: Callable[[str], str] | None = None) -> None:
        self._keys, self._index, self._pos, self._ask = keys, -1, 0, ask

    def prompt_played(self) -> None:
        if self._index < 0 or self._pos >= len(self._current()):
            self._index, self._pos = min(self._index + 1, len(self._keys)), 0

    def peek(self) -> str:
        current = self._current()
        return current[self._pos] if self._pos < len(current) and not current.startswith(RECORD_PREFIX) else ""

    def pop(self) -> str:
        if self._index < 0:
            self.prompt_played()
        self._ask_if_needed("keys")
        key = self.peek()
        self._pos += len(key)
        return key

    def take_recording(self) -> int:
        if self._index < 0 or self._pos >= len(self._current()):
            self.prompt_played()
        self._ask_if_needed("seconds to speak")
        current = self._current()
        if current.isdigit():
            current = RECORD_PREFIX + current
        self._pos = len(current)
        return int(current.removeprefix(RECORD_PREFIX)) if current.startswith(RECORD_PREFIX) else 0

    def _ask_if_needed(self, wanted: str) -> None:
        if self._ask is not None and self._index >= len(self._keys) and self._pos == 0:
            self._keys.append(self._ask(wanted))

    def _current(self) -> str:
        return self._keys[self._index] if 0 <= self._index < len(self._keys) else ""


def _write_wav(path: Path, seconds: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(seconds * 8000 * 2))


_ANSWERS: dict[str, Callable[[AsteriskPeer, list[str], _Entries, PeerCall], str]] = {
    "STREAM FILE": AsteriskPeer._stream_file,
    "WAIT FOR": AsteriskPeer._wait_for_digit,
    "RECORD FILE": AsteriskPeer._record_file,
    "GET VARIABLE": AsteriskPeer._get_variable,
    "GET FULL": AsteriskPeer._get_full_variable,
    "SET VARIABLE": lambda peer, words, entry, call: "200 result=1",
    "SET MUSIC": AsteriskPeer._on_hold,
    "NOOP": AsteriskPeer._on_hold,
    "EXEC": AsteriskPeer._exec,
    "ANSWER": lambda peer, words, entry, call: "200 result=0",
    "HANGUP": lambda peer, words, entry, call: "200 result=1",
}
