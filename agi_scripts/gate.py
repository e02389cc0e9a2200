"""Who may start a FastAGI call: the connection caps, the environment's deadline and the shared secret.

FastAGI has no authentication of its own, so the dialplan passes a shared secret as the first AGI argument
(``AGI(agi://host:4573/<script>,${HOTLINE_AGI_SECRET})``, which Asterisk sends as ``agi_arg_1``). Until a
connection has sent its whole environment with that secret it is *unauthenticated*: it must do so within
the environment timeout (in total, not per line), and only a few may wait at once; the oldest is dropped
for a new one, so a flood of idle connections never crowds out Asterisk, whose calls send their
environment in milliseconds.
"""

from __future__ import annotations

import hmac
import io
import logging
import re
import socket
import threading
import time
from collections import OrderedDict

from agi_scripts.agi import read_environment
from agi_scripts.exceptions import AgiHangup, AgiProtocolError, AgiTimeout

log = logging.getLogger(__name__)

SECRET_ARG = "agi_arg_1"
"""Where the secret arrives: the first argument after the URL in the dialplan's ``AGI()``."""
MAX_ENV_BYTES = 64 * 1024
"""Asterisk's environment is about 1 KB; anything this long is not one."""
_BLANK_LINE = re.compile(rb"\n\r?\n")
_FIRST_BLANK = re.compile(rb"^\r?\n")


def secret_matches(env: dict[str, str], secret: str) -> bool:
    """Constant-time: the time taken says nothing about how much of a guess was right."""
    given = env.get(SECRET_ARG, "")
    return hmac.compare_digest(given.encode("utf-8", "replace"), secret.encode("utf-8"))


def read_environment_within(raw: io.BufferedReader, sock: socket.socket, timeout_s: float) -> dict[str, str]:
    """The ``agi_*`` block up to its blank line, which must all arrive within ``timeout_s``: a peer that
    trickles a byte now and then is dropped at the deadline. Reads nothing past the blank line (a
    ``HANGUP`` Asterisk sends right after stays in ``raw`` for the call)."""
    deadline = time.monotonic() + timeout_s
    block = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AgiTimeout(f"environment not complete within {timeout_s:g} s")
        sock.settimeout(remaining)
        try:
            ahead = raw.peek(1)  # what is buffered, or one read from the socket
        except TimeoutError:
            raise AgiTimeout(f"environment not complete within {timeout_s:g} s") from None
        except OSError as exc:
            raise AgiHangup(f"connection lost: {type(exc).__name__}") from None
        if not ahead:
            raise AgiHangup("connection closed before the environment ended")
        end = _end_of_block(block, ahead)
        block += raw.read(end if end is not None else len(ahead))
        if end is not None:
            break
        if len(block) > MAX_ENV_BYTES:
            raise AgiProtocolError("AGI environment too long")
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise AgiProtocolError("AGI environment is not UTF-8") from None
    return read_environment(io.StringIO(text))


def _end_of_block(block: bytearray, ahead: bytes) -> int | None:
    """How many bytes of ``ahead`` complete the block (its blank line included), or None."""
    if not block:
        found = _FIRST_BLANK.search(ahead) or _BLANK_LINE.search(ahead)
        return found.end() if found else None
    tail = bytes(block[-2:])
    found = _BLANK_LINE.search(tail + ahead)
    return found.end() - len(tail) if found and found.end() > len(tail) else None


class Admission:
    """Counts a process's FastAGI connections: refuses beyond the caps, drops the oldest unauthenticated
    one when too many wait. Called from the accepting thread (``admit``) and the calls' threads."""

    def __init__(self, max_connections: int, max_per_peer: int, max_unauthenticated: int) -> None:
        self.max_connections, self.max_per_peer = max_connections, max_per_peer
        self.max_unauthenticated = max_unauthenticated
        self._lock = threading.Lock()
        self._open = 0
        self._per_peer: dict[str, int] = {}
        self._waiting: OrderedDict[int, tuple[socket.socket, str]] = OrderedDict()
        self._log = ThrottledLog(log)

    @property
    def open(self) -> int:
        return self._open

    @property
    def waiting(self) -> int:
        """Connections that have not yet sent a whole environment with the secret."""
        return len(self._waiting)

    def admit(self, sock: socket.socket, peer: str) -> bool:
        with self._lock:
            if self._open >= self.max_connections:
                self._log.warning("refused-total", "FastAGI connection from %s refused: %d connections open "
                                  "(HOTLINE_AGI_MAX_CONNECTIONS)", peer, self._open)
                return False
            if self._per_peer.get(peer, 0) >= self.max_per_peer:
                self._log.warning(f"refused-peer-{peer}", "FastAGI connection from %s refused: %d connections "
                                  "from this address (HOTLINE_AGI_MAX_PER_PEER)", peer, self._per_peer[peer])
                return False
            self._open += 1
            self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
            evicted = None
            if len(self._waiting) >= self.max_unauthenticated:
                _, evicted = self._waiting.popitem(last=False)
            self._waiting[id(sock)] = (sock, peer)
        if evicted is not None:
            self._log.warning("evicted", "FastAGI connection from %s dropped: no environment with the secret "
                              "yet, and %d newer connections wait (HOTLINE_AGI_MAX_UNAUTHENTICATED)",
                              evicted[1], self.max_unauthenticated)
            try:
                evicted[0].shutdown(socket.SHUT_RDWR)  # its thread reads the end of the stream and leaves
            except OSError:
                pass  # it had just finished
        return True

    def authenticated(self, sock: socket.socket) -> None:
        with self._lock:
            self._waiting.pop(id(sock), None)

    def release(self, sock: socket.socket, peer: str) -> None:
        with self._lock:
            self._waiting.pop(id(sock), None)
            self._open -= 1
            left = self._per_peer.get(peer, 1) - 1
            if left:
                self._per_peer[peer] = left
            else:
                self._per_peer.pop(peer, None)


class ThrottledLog:
    """At most ``burst`` warnings of a kind every ``every_s``, then one that says how many were held back:
    a flood of refused connections shows in the log without filling it."""

    def __init__(self, logger: logging.Logger, every_s: float = 5.0, burst: int = 10) -> None:
        self._logger, self._every_s, self._burst = logger, every_s, burst
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int, int]] = {}
        """kind -> (window start, lines logged in it, lines held back)."""

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            start, logged, held = self._windows.get(kind, (now, 0, 0))
            if now - start >= self._every_s:
                start, logged = now, 0
            elif logged >= self._burst:
                self._windows[kind] = (start, logged, held + 1)
                return
            self._windows[kind] = (start, logged + 1, 0)
            if len(self._windows) > 1000:  # per-address kinds: keep the table small under a spoofed-source flood
                self._windows = {kind: self._windows[kind]}
        suffix = f" (and {held} more like it held back)" if held else ""
        self._logger.warning(message + suffix, *args)
