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
from urllib.parse import parse_qs, urlsplit

from agi_scripts.agi import HotlineAGI, quote
from agi_scripts.exceptions import AgiError, AgiHangup
from agi_scripts.gate import Admission, ThrottledLog, read_environment_within, secret_matches
from ivr.masking import redact

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
        self.secret = secret
        self.admission = admission or Admission(1000, 1000, 32)
        self.gate_log = ThrottledLog(log)
        """Connections dropped or refused before a call starts: a flood must not write a line each."""
        self._calls, self._calls_changed = 0, threading.Condition()
        threading.stack_size(THREAD_STACK_BYTES)  # a call needs little stack; keep memory per call low
        super().__init__(address, _CallHandler)

    @property
    def calls(self) -> int:
        """Calls being served now."""
        return self._calls

    def count_call(self, delta: int) -> None:
        with self._calls_changed:
            self._calls += delta
            self._calls_changed.notify_all()

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        """In the accepting thread: a connection beyond the caps is closed before it gets a thread."""
        if not self.admission.admit(request, client_address[0]):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

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


class _CallHandler(socketserver.BaseRequestHandler):
    server: FastAgiServer

    def handle(self) -> None:
        self.server.count_call(1)
        try:
            self._handle()
        finally:
            self.server.count_call(-1)
            self.server.admission.release(self.request, self.client_address[0])

    def _handle(self) -> None:
        sock: socket.socket = self.request
        peer = self.client_address[0]
        raw = sock.makefile("rb")
        try:
            env = read_environment_within(raw, sock, self.server.env_timeout_s)
        except AgiError as exc:  # no call yet: nothing to say to anyone
            self.server.gate_log.warning(f"dropped-{type(exc).__name__}", "FastAGI connection from %s dropped: %s",
                                         peer, exc)
            _close(raw)
            return
        if not secret_matches(env, self.server.secret):
            # Nothing runs and nothing is said: whoever this is learns only that the connection closed.
            self.server.gate_log.warning(
                "refused-secret", "FastAGI connection from %s refused: wrong or missing secret (script %r, call %s); "
                "the dialplan must pass HOTLINE_AGI_SECRET as AGI()'s first argument", peer,
                _script(env)[0][:60], env.get("agi_uniqueid", "?")[:64])
            _close(raw)
            return
        self.server.admission.authenticated(sock)
        rfile = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
        wfile = sock.makefile("w", encoding="utf-8", newline="\n")
        try:
            # The environment timeout also bounds instant replies: both are what Asterisk sends at once.
            agi = HotlineAGI(rfile, wfile, sock, reply_timeout_s=self.server.env_timeout_s, env=env)
            self._run(agi, wfile)
        finally:
            _close(rfile, wfile)

    def _run(self, agi: HotlineAGI, wfile: object) -> None:
        call_id = agi.env.get("agi_uniqueid", "?")
        try:
            script, query = _script(agi.env)
            handler = self.server.routes.find(script)
            if handler is None:
                log.error("call %s: no FastAGI script %r", call_id, script)
                agi.command("HANGUP")
                return
            handler(agi, script, query)
        except AgiHangup:
            pass
        except Exception as exc:
            # The channel's one error boundary: log, apologise, hang up; the thread lives on.
            log.error("call %s: %s", call_id, redact(repr(exc)), exc_info=not isinstance(exc, AgiError))
            _apologise(wfile)
            if not agi.call_recorded:
                self._note_failure(agi.env)

    def _note_failure(self, env: dict[str, str]) -> None:
        if self.server.on_failure is None:
            return
        try:
            self.server.on_failure(_script(env)[0], env)
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
