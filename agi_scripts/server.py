"""The FastAGI server: one thread per call, a route table by script name, one error boundary.

Threads, not asyncio: pyst2 is a blocking command/reply API, and a call spends its life waiting on
one socket; a thread per call with a small stack holds hundreds of calls in one process.
"""

from __future__ import annotations

import io
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agi_scripts.agi import HotlineAGI, quote
from agi_scripts.exceptions import AgiError, AgiHangup
from agi_scripts.gate import Admission, Greeter, ThrottledLog
from calls.log_context import about_call
from ivr.masking import redact
from metrics import MENU_ERRORS

log = logging.getLogger(__name__)

Handler = Callable[[HotlineAGI, str, dict[str, list[str]]], object]
"""``handler(agi, script_name, query)``: runs one call."""

ENV_TIMEOUT_S = 10
THREAD_STACK_BYTES = 512 * 1024
APOLOGY_SOUND = "hotline/apology"
APOLOGY_FILE = "apology.wav"
"""``APOLOGY_SOUND`` under the prompts folder (``hotline prompts build`` renders it)."""


class Routes:
    """The explicit table from FastAGI script names (``agi://host:port/<name>``) to handlers."""

    def __init__(self, fallback: Callable[[str], Handler | None] | None = None) -> None:
        self._table: dict[str, Handler] = {}
        self._fallback = fallback
        """Asked for names not in the table (e.g. any published menu)."""

    def register(self, name: str, handler: Handler) -> None:
        if name in self._table:
            raise ValueError(f"FastAGI script {name!r} is registered twice")
        self._table[name] = handler

    def find(self, name: str) -> Handler | None:
        handler = self._table.get(name)
        if handler is None and self._fallback is not None:
            handler = self._fallback(name)
        return handler


class FastAgiServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Several FastAGI processes may listen on one port (HOTLINE_AGI_PROCESSES): the kernel spreads new
    # calls over them, and one that restarts hands its share to the others instead of refusing calls.
    allow_reuse_port = True
    request_queue_size = 4096  # a burst of calls (the kernel caps it at net.core.somaxconn)

    def __init__(self, address: tuple[str, int], routes: Routes, env_timeout_s: float = ENV_TIMEOUT_S,
                 on_failure: Callable[[str, dict[str, str]], None] | None = None, *, secret: str,
                 admission: Admission | None = None) -> None:
        if not secret:
            raise ValueError("a FastAGI server needs its shared secret")
        self.routes, self.env_timeout_s, self.on_failure = routes, env_timeout_s, on_failure
        self.admission = admission or Admission(1000, 1000, 64, env_timeout_s / 4)
        self.gate_log = ThrottledLog(log)
        """Connections dropped or refused before a call starts: a flood must not write a line each."""
        self._calls, self._calls_changed = 0, threading.Condition()
        threading.stack_size(THREAD_STACK_BYTES)  # a call needs little stack; keep memory per call low
        super().__init__(address, socketserver.BaseRequestHandler)
        self.greeter = Greeter(secret, env_timeout_s, self._start_call, self._dropped, self.gate_log)

    @property
    def calls(self) -> int:
        """Connections open now: calls being served, and connections still sending their environment."""
        return self._calls

    def count_call(self, delta: int) -> None:
        with self._calls_changed:
            self._calls += delta
            self._calls_changed.notify_all()

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        """In the accepting thread: beyond the caps a connection is closed at once; otherwise the greeter
        reads its environment (no thread of its own until it has sent it, with the secret)."""
        if not self.admission.admit(request, client_address[0]):
            self.shutdown_request(request)
            return
        self.count_call(1)
        self.greeter.add(request, client_address[0])

    def server_close(self) -> None:
        self.greeter.stop()
        super().server_close()

    def _dropped(self, sock: socket.socket) -> None:
        self.admission.release(sock)
        self.count_call(-1)

    def _start_call(self, sock: socket.socket, peer: str, env: dict[str, str], rest: bytes) -> None:
        self.admission.authenticated(sock)
        threading.Thread(target=self._call_thread, args=(sock, peer, env, rest), daemon=True).start()

    def _call_thread(self, sock: socket.socket, peer: str, env: dict[str, str], rest: bytes) -> None:
        try:
            _serve_call(self, sock, env, rest)
        except Exception:  # noqa: BLE001 - socketserver's last resort, as for any request
            self.handle_error(sock, (peer, 0))
        finally:
            self.shutdown_request(sock)
            self._dropped(sock)

    def drain(self, timeout_s: float) -> int:
        """After ``shutdown()``: stop listening (new calls go to the other processes on the port, or wait
        for the restarted one), let the calls in progress finish for up to ``timeout_s``; return how many
        are still going (they end with this process)."""
        # Calls the kernel queued on this socket would be reset by closing it: take them first.
        self.socket.setblocking(False)
        while True:
            try:
                request, address = self.socket.accept()
            except OSError:
                break
            request.setblocking(True)
            self.process_request(request, address)
        self.socket.close()
        with self._calls_changed:
            self._calls_changed.wait_for(lambda: self._calls == 0, timeout=timeout_s)
            return self._calls


class _Prefixed(io.RawIOBase):
    """The socket's stream, after the bytes the greeter read past the environment (a ``HANGUP`` said at once)."""

    def __init__(self, sock: socket.socket, rest: bytes) -> None:
        self._sock, self._rest = sock, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._rest:
            size = min(len(buffer), len(self._rest))
            buffer[:size], self._rest = self._rest[:size], self._rest[size:]
            return size
        return self._sock.recv_into(buffer)


LINE_BUFFER_BYTES = 1024
"""Each way's buffer per call: an AGI command or reply is one short line (the default 8 KB per buffer was a
third of what a held call costs; a longer line still goes through, in more than one read)."""


def _serve_call(server: FastAgiServer, sock: socket.socket, env: dict[str, str], rest: bytes) -> None:
    reader = io.BufferedReader(_Prefixed(sock, rest), buffer_size=LINE_BUFFER_BYTES)
    rfile = io.TextIOWrapper(reader, encoding="utf-8", newline="\n")
    wfile = sock.makefile("w", buffering=LINE_BUFFER_BYTES, encoding="utf-8", newline="\n")
    try:
        # The environment timeout also bounds instant replies: both are what Asterisk sends at once.
        agi = HotlineAGI(rfile, wfile, sock, reply_timeout_s=server.env_timeout_s, env=env)
        _run(server, agi, wfile)
    finally:
        _close(rfile, wfile)


def _run(server: FastAgiServer, agi: HotlineAGI, wfile: object) -> None:
    call_id = agi.env.get("agi_uniqueid", "?")
    with about_call(call_id, "asterisk", _script(agi.env)[0]):
        _run_call(server, agi, wfile, call_id)


def _run_call(server: FastAgiServer, agi: HotlineAGI, wfile: object, call_id: str) -> None:
    try:
        script, query = _script(agi.env)
        handler = server.routes.find(script)
        if handler is None:
            log.error("call %s: no FastAGI script %r", call_id, script)
            agi.command("HANGUP")
            return
        handler(agi, script, query)
    except AgiHangup:
        pass
    except Exception as exc:
        # The channel's one error boundary: log, apologise, hang up; the thread lives on.
        MENU_ERRORS.labels("asterisk").inc()
        log.error("call %s: %s", call_id, redact(repr(exc)), exc_info=not isinstance(exc, AgiError))
        _apologise(wfile)
        if not agi.call_recorded:
            _note_failure(server, agi.env)


def _note_failure(server: FastAgiServer, env: dict[str, str]) -> None:
    if server.on_failure is None:
        return
    try:
        server.on_failure(_script(env)[0], env)
    except Exception as exc:  # noqa: BLE001 - the boundary itself must never fail
        log.error("call %s: failure not recorded: %s", env.get("agi_uniqueid", "?"), redact(repr(exc)))


def _close(*streams: object) -> None:
    for stream in streams:
        try:
            stream.close()  # type: ignore[attr-defined]
        except OSError:
            pass


def _script(env: dict[str, str]) -> tuple[str, dict[str, list[str]]]:
    """``agi_network_script`` is the path after ``host:port/``, query included."""
    target = env.get("agi_network_script") or urlsplit(env.get("agi_request", "")).path
    parts = urlsplit(target)
    return parts.path.strip("/"), parse_qs(parts.query)


def _apologise(wfile: object) -> None:
    try:
        for line in (f"STREAM FILE {APOLOGY_SOUND} {quote('')}", "HANGUP"):
            wfile.write(line + "\n")  # type: ignore[attr-defined]
        wfile.flush()  # type: ignore[attr-defined]
    except OSError:
        pass
