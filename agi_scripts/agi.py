"""pyst2's ``AGI`` made safe for FastAGI on Python 3.11: the one place that talks AGI text.

pyst2 0.5.1 defects wrapped here (see shared/PROTOCOLS.md):
- its constructor installs a SIGHUP handler, which raises outside the main thread: not called;
- it logs every command and the environment (card digits too) to stderr: a null stream instead;
- ``get_result`` raises ValueError on ``HANGUP`` or EOF, loops forever on a one-line 520 and does
  not know 511: replaced, returning an exact ``AgiReply``;
- ``_quote`` does not escape ``"`` or ``\\``: ``quote()`` here does.
We use only ``execute`` (send a command, read its reply); what results mean is in ``commands.py``.
"""

from __future__ import annotations

import io
import re
import socket
from dataclasses import dataclass
from typing import IO

from asterisk.agi import AGI, AGIHangup

from agi_scripts.exceptions import (
    AgiDeadChannel,
    AgiHangup,
    AgiInvalidCommand,
    AgiProtocolError,
    AgiTimeout,
    AgiUsageError,
)

MAX_ENV_LINES = 200
MAX_LINE = 8192
MAX_CALL_ID = 64
"""Longest ``agi_uniqueid`` taken (Asterisk's are ~20 characters): it names the call's Redis keys and records."""
REPLY_TIMEOUT_S = 10.0
"""How long a command that Asterisk answers at once (NOOP, SET MUSIC, GET VARIABLE, HANGUP ...) may go
unanswered: a silent peer, or a 520 usage block that never ends, must not hold the call's thread forever."""
_REPLY = re.compile(
    r"^200 result=(?P<result>\S*)(?: \((?P<data>[^)]*)\))?(?: endpos=(?P<endpos>-?\d{1,18})(?!\d))?")
"""An endpos longer than any recording (18 digits) is left out rather than overflowing what uses it."""


@dataclass(frozen=True)
class AgiReply:
    """``200 result=<result> [(<data>)] [endpos=<n>]``, parsed."""

    result: str
    data: str = ""
    endpos: int | None = None


class HotlineAGI(AGI):  # type: ignore[misc]
    def __init__(self, rfile: IO[str], wfile: IO[str], sock: socket.socket | None = None,
                 reply_timeout_s: float = REPLY_TIMEOUT_S, env: dict[str, str] | None = None) -> None:
        # Deliberately not calling AGI.__init__ (SIGHUP handler, stderr logging): see module doc.
        self.stdin, self.stdout, self.stderr = rfile, wfile, io.StringIO()
        self._sock, self._reply_timeout_s = sock, reply_timeout_s
        self._got_sighup = False
        self.hangup_noticed = False
        self.call_recorded = False
        """The call's end is in the events: the server's error boundary records only calls that are not."""
        self.env = env if env is not None else read_environment(rfile)
        """The environment: read here, or already read (and checked) by the FastAGI server."""

    def command(self, command: str, *args: str | int, timeout_s: float | None = None) -> AgiReply:
        """Send one command and return its reply; raise by what Asterisk answered.
        ``timeout_s``: how long it may take (playing, waiting for keys, a dialled call); None: an instant one."""
        limit = timeout_s if timeout_s is not None else self._reply_timeout_s
        if self._sock is not None:
            self._sock.settimeout(limit)
        try:
            return self.execute(command, *args)  # type: ignore[no-any-return]
        except (TimeoutError, AgiTimeout):  # the socket's timeout, or the reply's line reader's
            raise AgiTimeout(f"peer idle: no reply to {command} within {limit:g} s") from None
        except (BrokenPipeError, ConnectionResetError, AGIHangup) as exc:
            # pyst2 raises its own AGIHangup after SIGHUP (plain AGI) or on a broken pipe.
            raise AgiHangup(f"hung up: {type(exc).__name__}") from None

    def note_sighup(self, *_: object) -> None:
        """Plain AGI: Asterisk signals a hang-up with SIGHUP; pyst2 raises on the next command."""
        self._got_sighup = True

    def send_command(self, command: str, *args: object) -> None:
        line = " ".join([command, *(str(a) for a in args)]).strip()
        self.stdout.write(line + "\n")
        self.stdout.flush()

    def get_result(self, stdin: object = None) -> AgiReply:
        while True:
            line = _read_line(self.stdin)
            if line == "HANGUP":
                # Asterisk announces the hang-up, then still answers the command in flight.
                self.hangup_noticed = True
                continue
            return _parse_reply(line, self.stdin)


def quote(value: object) -> str:
    """An AGI argument in double quotes, with ``"`` and ``\\`` escaped (pyst2's ``_quote`` does neither)."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{text}"'


def read_environment(rfile: IO[str]) -> dict[str, str]:
    """The ``agi_*: value`` block up to the empty line."""
    env: dict[str, str] = {}
    for _ in range(MAX_ENV_LINES):
        line = _read_line(rfile)
        if line == "":
            if not env:
                raise AgiProtocolError("empty AGI environment")
            if not 0 < len(env.get("agi_uniqueid", "")) <= MAX_CALL_ID:
                # Every call needs its own id: calls without one would share one session, record, queue place.
                raise AgiProtocolError("AGI environment without a usable agi_uniqueid")
            return env
        key, sep, value = line.partition(":")
        if not sep or not key.startswith("agi_"):
            raise AgiProtocolError(f"not an AGI environment line: {line[:60]!r}")
        env[key.strip()] = value.strip()
    raise AgiProtocolError("AGI environment too long")


def _read_line(rfile: IO[str]) -> str:
    try:
        raw = rfile.readline(MAX_LINE)
    except TimeoutError:
        raise AgiTimeout("peer went silent") from None
    except (ConnectionResetError, UnicodeDecodeError) as exc:
        raise AgiHangup(f"connection lost: {type(exc).__name__}") from None
    if raw == "":
        raise AgiHangup("connection closed")
    return raw.rstrip("\r\n")


def _parse_reply(line: str, rfile: IO[str]) -> AgiReply:
    code = line[:3]
    if code == "200":
        match = _REPLY.match(line)
        if match is None:
            raise AgiProtocolError(f"unreadable reply: {line[:80]!r}")
        endpos = match["endpos"]
        return AgiReply(match["result"], match["data"] or "", int(endpos) if endpos else None)
    if code == "511":
        raise AgiDeadChannel(line)
    if code == "510":
        raise AgiInvalidCommand(line)
    if line.startswith("520-"):
        usage = [line]
        while not usage[-1].startswith("520 "):
            usage.append(_read_line(rfile))
            if len(usage) > 100:
                raise AgiProtocolError("520 usage without end")
        raise AgiUsageError("\n".join(usage))
    if code == "520":
        raise AgiUsageError(line)
    raise AgiProtocolError(f"unexpected reply: {line[:80]!r}")
