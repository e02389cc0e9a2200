"""The processes ``hotline up`` runs beside the web server, restarted when one dies.

A FastAGI server, router reconciler or RQ worker that crashes, runs out of memory or is killed
must not leave the hotline without Asterisk calls, routing or call records until someone notices:
it is started again at once, and with a growing pause (up to a minute) while it keeps dying.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

QUICK_DEATH_S = 10.0
"""A child that dies sooner than this after starting counts as crash-looping: its next start waits longer."""
MAX_PAUSE_S = 60.0


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    pause_s: float = 0.0
    restarts: int = 0
    due_at: float | None = None
    """When a dead child is to be started again."""
    env: Mapping[str, str] | None = None
    """The child's environment; None: this process's."""

    def start(self) -> None:
        self.proc = subprocess.Popen(list(self.argv), preexec_fn=_die_with_parent, env=self.env)  # noqa: PLW1509
        self.started_at, self.due_at = time.monotonic(), None


def _die_with_parent() -> None:
    """In the child: SIGTERM when ``hotline up`` dies, even by SIGKILL, so no FastAGI server, reconciler or
    worker outlives it and serves beside the next one (Linux ``PR_SET_PDEATHSIG``)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the pid file check of `hotline up` still applies
        pass


PR_SET_PDEATHSIG = 1


def _metrics_of_dead(pid: int) -> None:
    # Imported here: `hotline up` names the metrics folder before anything imports prometheus_client.
    from metrics import process_gone

    process_gone(pid)


@dataclass
class Supervisor:
    children: list[Child]
    poll_s: float = 0.2
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        for child in self.children:
            child.start()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def pids(self) -> dict[str, int]:
        return {c.name: c.proc.pid for c in self.children if c.proc is not None and c.proc.poll() is None}

    def stop(self, timeout_s: float = 10) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        running = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            proc.terminate()
        for proc in running:
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_s):
            now = time.monotonic()
            for child in self.children:
                self._check(child, now)

    def _check(self, child: Child, now: float) -> None:
        if child.proc is None or child.proc.poll() is None:
            return
        if child.due_at is None:
            lived = now - child.started_at
            child.pause_s = min(MAX_PAUSE_S, max(1.0, child.pause_s * 2)) if lived < QUICK_DEATH_S else 0.0
            child.due_at = now + child.pause_s
            # gunicorn's arbiter reaps every child of this process, ours too: the status is then lost (0).
            status = f" with status {child.proc.returncode}" if child.proc.returncode else ""
            _metrics_of_dead(child.proc.pid)
            log.warning("%s (pid %d) stopped%s after %.0f s: starting it again%s", child.name, child.proc.pid,
                        status, lived, f" in {child.pause_s:.0f} s" if child.pause_s else "")
        if now >= child.due_at and not self._stopping.is_set():
            child.restarts += 1
            child.start()
