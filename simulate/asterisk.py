"""Asterisk, as far as the hotline can tell: FastAGI calls from the scripted peer of ``hotline.agi_peer``,
with the agents' phones behind ``EXEC Dial`` and every step's latency measured."""

from __future__ import annotations

import socket
import time
from typing import Any

from simulate.clock import DayClock, Measurements
from simulate.phones import AgentPhones
from softphone.agi_peer import AsteriskPeer, PeerCall

HOLD_COMMANDS = ("NOOP", "SET MUSIC", "EXEC")
"""Replies after which the server waits on purpose (hold polling, a ringing or talking agent)."""


class SimAsterisk(AsteriskPeer):
    """One caller on the Asterisk side; hangs up after ``hangup_after_steps`` prompts when set."""

    def __init__(self, *args: Any, clock: DayClock, measured: Measurements, phones: AgentPhones,
                 talk_day_s: float = 0.0, hangup_after_steps: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock, self.measured, self.phones = clock, measured, phones
        self.talk_day_s, self.hangup_after_steps = talk_day_s, hangup_after_steps
        self.waits = 0
        self.answered = False
        self.commands_read = 0
        """Commands the server sent: one or more, and the hotline has the call (even if it then broke off)."""

    def dial(self, host: str, port: int) -> PeerCall:
        self._server = (host, port)
        with socket.create_connection((host, port), timeout=self.timeout_s) as sock:
            rfile = _TimedReader(sock.makefile("r", encoding="utf-8", newline="\n"), self)
            wfile = _TimedWriter(sock.makefile("w", encoding="utf-8", newline="\n"), rfile)
            wfile.write(self.environment(host, port))
            wfile.flush()
            return self._converse(rfile, wfile)

    def _answer(self, command: str, entry: Any, call: PeerCall) -> str:
        if command.startswith("EXEC Read") and self.hangup_after_steps is not None:
            if self.waits >= self.hangup_after_steps:
                call.hung_up = True
                return "HANGUP\n200 result=-1"
            self.waits += 1
        if command.startswith("EXEC Dial"):  # the base class dispatches to its own _exec
            return self._exec(command.split(), entry, call)
        return super()._answer(command, entry, call)

    def _exec(self, words: list[str], entry: Any, call: PeerCall) -> str:
        if words[1] != "Dial":
            return super()._exec(words, entry, call)
        target = words[2].strip('"').split(",")
        self.clock.sleep(self.phones.ring_s())
        if self.phones.dead(target[0]):
            time.sleep(float(target[1]) if len(target) > 1 and target[1] else 20)
            self.dial_status = "NOANSWER"
            return "200 result=0"
        self.dial_status, self.talk_s, self.answered = "ANSWER", self.clock.real(self.talk_day_s), True
        return super()._exec(words, entry, call)


class _TimedReader:
    """Reads the server's commands; the time from our last reply to its next command is its step latency."""

    def __init__(self, inner: Any, peer: SimAsterisk) -> None:
        self.inner, self.peer = inner, peer
        self.sent_at: float | None = None
        self.last = ""

    def readline(self) -> str:
        line = self.inner.readline()
        if line:
            self.peer.commands_read += 1
        # A step: the server's answer to what the caller did (not the next key of the same input, read
        # by the command after Read, nor the pauses it makes on purpose while the caller is on hold or talking).
        if (self.sent_at is not None and line and not self.last.startswith(HOLD_COMMANDS)
                and not line.startswith("GET FULL VARIABLE")):
            self.peer.measured.latency("agi", self.peer.clock.hour(), time.monotonic() - self.sent_at)
        self.sent_at, self.last = None, line
        return str(line)


class _TimedWriter:
    def __init__(self, inner: Any, reader: _TimedReader) -> None:
        self.inner, self.reader = inner, reader

    def write(self, text: str) -> int:
        return int(self.inner.write(text))

    def flush(self) -> None:
        self.inner.flush()
        self.reader.sent_at = time.monotonic()
