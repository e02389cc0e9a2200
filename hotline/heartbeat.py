"""Heartbeats of the processes ``hotline up`` runs: how ``hotline status`` sees FastAGI and RQ workers,
which have no HTTP to ask.

Each process rewrites ``<data dir>/heartbeats/<name>.json`` (pid, role, started, last beat) every
``BEAT_S``. A file in the data folder, not a Redis key: ``hotline status`` must still tell which
processes live while Redis is the thing that is down. A process whose pid is gone, or whose beat is
older than ``STALE_S`` (stopped, or stuck holding the GIL), is not alive.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from store.redis_server import pid_alive

BEAT_S = 1.0
STALE_S = 5.0
FOLDER = "heartbeats"


@dataclass(frozen=True)
class Beat:
    name: str
    pid: int | None
    started: float | None
    last_beat: float | None
    alive: bool

    def describe(self, now: float) -> str:
        if self.last_beat is None:
            return "no heartbeat"
        age = f"last beat {now - self.last_beat:.0f} s ago"
        if self.alive:
            return age
        return f"process gone, {age}" if not pid_alive(self.pid) else f"stuck: {age}"


def start_heartbeat(data_dir: Path, name: str, every_s: float = BEAT_S) -> threading.Event:
    """Beat for this process as ``name`` until the returned event is set (or the process ends)."""
    folder = data_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stop, started = threading.Event(), time.time()

    def beat() -> None:
        while True:
            _write(folder / f"{name}.json", {"name": name, "role": name.split("-")[0], "pid": os.getpid(),
                                             "started": started, "beat": time.time()})
            if stop.wait(every_s):
                return

    threading.Thread(target=beat, name="heartbeat", daemon=True).start()
    return stop


def read_beats(data_dir: Path, names: list[str], now: float | None = None) -> list[Beat]:
    """One line per process that should run, alive or not."""
    now = time.time() if now is None else now
    return [_read(data_dir / FOLDER / f"{name}.json", name, now) for name in names]


def _read(path: Path, name: str, now: float) -> Beat:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return Beat(name, None, None, None, False)
    pid, beat = int(data["pid"]), float(data["beat"])
    return Beat(name, pid, float(data["started"]), beat, pid_alive(pid) and now - beat < STALE_S)


def _write(path: Path, data: dict[str, object]) -> None:
    try:
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(data))
        os.replace(partial, path)  # a reader never sees half a file
    except OSError:  # a full disk must not take the process down; status then shows the beat as old
        pass
