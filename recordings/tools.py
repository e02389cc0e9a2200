"""Running espeak-ng and sox for a prompt: as ``subprocess.run`` would, but never forking a gevent process.

Under gevent (``hotline agi``) ``subprocess`` is gevent's, which starts a program with ``fork()``: the whole
process's page tables are copied while the hub waits, about 25 ms of every call's time at 400 MB held (bench/spawn.py),
three times per balance read out (two voices, then sox). Here a gevent process starts the program with
``posix_spawn`` (glibc: ``clone(CLONE_VM | CLONE_VFORK)``, nothing copied) and waits for it with one of libev's
child watchers, as gevent's own ``subprocess`` does, so the other calls run meanwhile. Anywhere else the standard
library's ``subprocess`` already starts programs with ``vfork`` and is used as it is."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Finished:
    returncode: int
    stderr: bytes


def run_tool(command: list[str], stdin: bytes | None, timeout_s: float) -> Finished:
    """Run ``command`` with ``stdin`` (None: nothing to read), its output dropped and its errors kept; raises
    ``subprocess.TimeoutExpired`` after killing a program that ran past ``timeout_s``, ``FileNotFoundError``
    when it is not on PATH."""
    if _forks_the_process():
        return _spawned(command, stdin, timeout_s)
    done = subprocess.run(command, input=stdin if stdin is not None else b"", capture_output=True, timeout=timeout_s,
                          check=False)
    return Finished(done.returncode, done.stderr)


def _forks_the_process() -> bool:
    """Whether ``subprocess`` is gevent's here, and the program can be waited for on this thread's loop (libev's
    child watchers live on the default loop only, the main thread's)."""
    if subprocess.Popen.__module__ != "gevent.subprocess":
        return False
    import gevent

    return bool(gevent.get_hub().loop.default)


def _spawned(command: list[str], stdin: bytes | None, timeout_s: float) -> Finished:
    import gevent

    with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as errors:
        given.write(stdin or b"")
        given.flush()
        given.seek(0)
        hub = gevent.get_hub()
        # Before the spawn: a child that ends before libev handles SIGCHLD must still be reaped by it.
        hub.loop.install_sigchld()
        pid = os.posix_spawnp(command[0], command, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, given.fileno(), 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, errors.fileno(), 2),
        ])
        # Started before this greenlet yields: libev handles SIGCHLD in the loop, so the exit is not missed.
        with hub.loop.child(pid, False) as exited:
            timer = gevent.Timeout(timeout_s)
            try:
                with timer:
                    hub.wait(exited)
            except BaseException as exc:  # its time is up, or the call's greenlet is being stopped: so is it
                os.kill(pid, signal.SIGKILL)
                if exc is not timer:
                    raise  # libev reaps it once it is gone
                hub.wait(exited)
                raise subprocess.TimeoutExpired(command, timeout_s) from None
            status = exited.rstatus
        errors.seek(0)
        return Finished(os.waitstatus_to_exitcode(status), errors.read())
