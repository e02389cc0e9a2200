"""Who may start a FastAGI call: the shared secret, the environment's deadline and the connection caps.

FastAGI has no authentication of its own, so the dialplan passes a shared secret as the first AGI argument
(``AGI(agi://host:4573/<script>,${HOTLINE_AGI_SECRET})``, which Asterisk sends as ``agi_arg_1``). Until a
connection has sent its whole environment with that secret it is *unauthenticated*: one greeter thread
reads all of those at once (a socket each, no thread), drops any that has not finished within the
environment timeout (in total, not per line), and hands the others to a thread of their own. The caps
(``Admission``) count every connection; an unauthenticated one gives up its place to a new one at a cap,
so a flood of idle connections never crowds out Asterisk, whose calls send their environment in
milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import logging
import queue
import re
import selectors
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from agi_scripts.agi import read_environment
from agi_scripts.exceptions import AgiError, AgiHangup, AgiProtocolError, AgiTimeout

log = logging.getLogger(__name__)

SECRET_ARG = "agi_arg_1"
"""Where the secret arrives: the first argument after the URL in the dialplan's ``AGI()``."""
MAX_ENV_BYTES = 64 * 1024
"""Asterisk's environment is about 1 KB; anything this long is not one."""
_BLANK_LINE = re.compile(rb"\n\r?\n")
_FIRST_BLANK = re.compile(rb"^\r?\n")


def secret_matches(env: dict[str, str], secret: str) -> bool:
    """Constant-time: the time taken says nothing about how much of a guess was right, nor (both sides hashed
    to one length first) how long the secret is."""
    given = hashlib.sha256(env.get(SECRET_ARG, "").encode("utf-8", "replace")).digest()
    return hmac.compare_digest(given, hashlib.sha256(secret.encode("utf-8")).digest())


def parse_environment(block: bytes) -> dict[str, str]:
    """The environment block (its blank line included), checked as ``read_environment`` checks it."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise AgiProtocolError("AGI environment is not UTF-8") from None
    return read_environment(io.StringIO(text))


def end_of_block(buffer: bytes | bytearray, searched: int = 0) -> int | None:
    """Where the environment block in ``buffer`` ends (after its blank line), or None if it has not yet;
    ``searched``: how much was searched before (a block trickled in byte by byte is searched once)."""
    found = (_FIRST_BLANK.match(buffer) if searched == 0 else None) or _BLANK_LINE.search(buffer, max(0, searched - 2))
    return found.end() if found else None


OnCall = Callable[[socket.socket, str, dict[str, str], bytes], None]


@dataclass
class _Waiting:
    sock: socket.socket
    peer: str
    deadline: float
    received: bytearray = field(default_factory=bytearray)


class Greeter:
    """One thread that reads the environments of all new connections at once (non-blocking, one selector):
    a connection gets a thread of its own only once it has sent a whole environment with the secret, so
    idle ones cost a socket, not a thread. ``on_call(sock, peer, env, rest)`` starts the call (``rest``:
    bytes that came after the environment); ``on_drop(sock)`` is told of every connection it closed."""

    def __init__(self, secret: str, timeout_s: float, on_call: OnCall, on_drop: Callable[[socket.socket], None],
                 gate_log: ThrottledLog) -> None:
        self.secret, self.timeout_s, self.log = secret, timeout_s, gate_log
        self.on_call, self.on_drop = on_call, on_drop
        self._selector = selectors.DefaultSelector()
        self._new: queue.SimpleQueue[tuple[socket.socket, str]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="fastagi-greeter", daemon=True)
        self._thread.start()

    def add(self, sock: socket.socket, peer: str) -> None:
        """From the accepting thread."""
        self._new.put((sock, peer))
        self._wake()

    def stop(self) -> None:
        self._stopped = True
        self._wake()
        self._thread.join(5)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _loop(self) -> None:
        waiting: dict[int, _Waiting] = {}
        while not self._stopped:
            now = time.monotonic()
            timeout = max(0.0, min((w.deadline for w in waiting.values()), default=now + 1.0) - now)
            for key, _ in self._selector.select(timeout):
                if key.fileobj is self._wake_r:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                    continue
                try:
                    self._read(waiting, key.data)
                except Exception:  # noqa: BLE001 - one bad connection (or no thread left) must not stop the greeter
                    log.exception("FastAGI connection from %s dropped: could not start its call", key.data.peer)
                    self._drop(waiting, key.data, None)
            while True:
                try:
                    sock, peer = self._new.get_nowait()
                except queue.Empty:
                    break
                entry = _Waiting(sock, peer, time.monotonic() + self.timeout_s)
                try:
                    sock.setblocking(False)
                    self._selector.register(sock, selectors.EVENT_READ, entry)
                except (OSError, ValueError):  # closed or pushed out already
                    self._drop(waiting, entry, None)
                    continue
                waiting[id(sock)] = entry
            now = time.monotonic()
            for entry in [w for w in waiting.values() if w.deadline <= now]:
                self._drop(waiting, entry, AgiTimeout(f"environment not complete within {self.timeout_s:g} s"))
        for entry in list(waiting.values()):
            self._drop(waiting, entry, None)

    def _read(self, waiting: dict[int, _Waiting], entry: _Waiting) -> None:
        try:
            chunk = entry.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(waiting, entry, AgiHangup(f"connection lost: {type(exc).__name__}"))
            return
        if not chunk:
            self._drop(waiting, entry, AgiHangup("connection closed before the environment ended"))
            return
        searched = len(entry.received)
        entry.received += chunk
        end = end_of_block(entry.received, searched)
        if end is None:
            if len(entry.received) > MAX_ENV_BYTES:
                self._drop(waiting, entry, AgiProtocolError("AGI environment too long"))
            return
        try:
            env = parse_environment(bytes(entry.received[:end]))
        except AgiError as exc:
            self._drop(waiting, entry, exc)
            return
        if not secret_matches(env, self.secret):
            # Nothing runs and nothing is said: whoever this is learns only that the connection closed.
            self.log.warning("refused-secret", "FastAGI connection from %s refused: wrong or missing secret "
                             "(script %r, call %s); the dialplan must pass HOTLINE_AGI_SECRET as AGI()'s first "
                             "argument", entry.peer, script_name(env)[:60], env.get("agi_uniqueid", "?")[:64])
            self._drop(waiting, entry, None)
            return
        self._forget(waiting, entry)
        entry.sock.setblocking(True)
        self.on_call(entry.sock, entry.peer, env, bytes(entry.received[end:]))

    def _forget(self, waiting: dict[int, _Waiting], entry: _Waiting) -> None:
        waiting.pop(id(entry.sock), None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(entry.sock)

    def _drop(self, waiting: dict[int, _Waiting], entry: _Waiting, why: AgiError | None) -> None:
        self._forget(waiting, entry)
        if why is not None:
            self.log.warning(f"dropped-{type(why).__name__}", "FastAGI connection from %s dropped: %s", entry.peer, why)
        with contextlib.suppress(OSError):
            entry.sock.close()
        self.on_drop(entry.sock)


def script_name(env: dict[str, str]) -> str:
    """``agi_network_script`` without its query (the query may hold a visit's token)."""
    return env.get("agi_network_script", "").split("?", 1)[0].strip("/")


class Admission:
    """Counts a process's FastAGI connections. Called from the accepting thread (``admit``) and the calls'
    threads. A connection that has not yet authenticated holds its place only until someone needs it:
    - more than ``max_unauthenticated`` wait: a new one pushes out the oldest that has waited
      ``evict_after_s`` (a real call never waits that long; a burst of real calls is not pushed out);
    - a cap (``max_connections``, ``max_per_peer``) is reached: a new one pushes out the oldest waiting one
      (of that address, for its cap), whatever its age; with none waiting, the new one is refused."""

    def __init__(self, max_connections: int, max_per_peer: int, max_unauthenticated: int,
                 evict_after_s: float = 2.5) -> None:
        self.max_connections, self.max_per_peer = max_connections, max_per_peer
        self.max_unauthenticated, self.evict_after_s = max_unauthenticated, evict_after_s
        self._lock = threading.Lock()
        self._counted: dict[int, str] = {}
        """Connections counted against the caps: id(socket) -> address."""
        self._per_peer: dict[str, int] = {}
        self._waiting: OrderedDict[int, tuple[socket.socket, str, float]] = OrderedDict()
        """Unauthenticated connections, oldest first: (socket, address, accepted at)."""
        self._log = ThrottledLog(log)

    @property
    def open(self) -> int:
        return len(self._counted)

    @property
    def waiting(self) -> int:
        """Connections that have not yet sent a whole environment with the secret."""
        return len(self._waiting)

    def admit(self, sock: socket.socket, peer: str) -> bool:
        now = time.monotonic()
        pushed_out: list[tuple[socket.socket | None, str, str]] = []
        refusal: tuple[str, str, int] | None = None
        with self._lock:
            if len(self._waiting) >= self.max_unauthenticated:
                idle = self._oldest_idle(now)
                if idle is not None:
                    pushed_out.append((*self._drop(idle), "HOTLINE_AGI_MAX_UNAUTHENTICATED"))
            if len(self._counted) >= self.max_connections:
                victim = next(iter(self._waiting), None)
                if victim is None:
                    refusal = ("refused-total", "%d connections open (HOTLINE_AGI_MAX_CONNECTIONS)", len(self._counted))
                else:
                    pushed_out.append((*self._drop(victim), "HOTLINE_AGI_MAX_CONNECTIONS"))
            if refusal is None and self._per_peer.get(peer, 0) >= self.max_per_peer:
                victim = next((key for key, waiting in self._waiting.items() if waiting[1] == peer), None)
                if victim is None:
                    refusal = (f"refused-peer-{peer}", "%d connections from this address (HOTLINE_AGI_MAX_PER_PEER)",
                               self._per_peer[peer])
                else:
                    pushed_out.append((*self._drop(victim), "HOTLINE_AGI_MAX_PER_PEER"))
            if refusal is None:
                self._counted[id(sock)] = peer
                self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
                self._waiting[id(sock)] = (sock, peer, now)
        for old, address, why in pushed_out:
            self._log.warning(f"pushed-out-{why}", "FastAGI connection from %s dropped: no environment with the "
                              "secret yet, and a new connection needs its place (%s)", address, why)
            try:
                if old is not None:
                    old.shutdown(socket.SHUT_RDWR)  # its thread reads the end of the stream and leaves
            except OSError:
                pass  # it had just finished
        if refusal is not None:
            kind, why, count = refusal
            self._log.warning(kind, "FastAGI connection from %s refused: " + why, peer, count)
            return False
        return True

    def _oldest_idle(self, now: float) -> int | None:
        """Under the lock: the oldest connection that has waited ``evict_after_s`` and has nothing unread. One
        whose environment sits in its buffer is a real call the greeter has not reached yet (a busy process):
        it keeps its place."""
        for key, (sock, _, accepted) in self._waiting.items():
            if now - accepted < self.evict_after_s:
                return None  # oldest first: the rest are younger
            try:
                pending = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return key
            except OSError:
                return key  # broken: its place is free to take
            if not pending:
                return key  # closed by the peer
        return None

    def authenticated(self, sock: socket.socket) -> None:
        with self._lock:
            self._waiting.pop(id(sock), None)

    def release(self, sock: socket.socket) -> None:
        with self._lock:
            if id(sock) in self._counted:  # not pushed out (that released it already)
                self._drop(id(sock))

    def _drop(self, key: int) -> tuple[socket.socket | None, str]:
        """Under the lock: stop counting a connection; returns its socket (when still waiting) and address."""
        waiting = self._waiting.pop(key, None)
        peer = self._counted.pop(key)
        left = self._per_peer.get(peer, 1) - 1
        if left:
            self._per_peer[peer] = left
        else:
            self._per_peer.pop(peer, None)
        return (waiting[0] if waiting else None), peer


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
