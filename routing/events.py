"""Call events on the hotline's Redis stream (``routing.keys.events_stream``); spooled to disk while Redis is away."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from redis.client import Pipeline

from routing.batch import Outcome, Reader
from routing.keys import EVENTS_MAXLEN, EVENTS_STREAM

log = logging.getLogger(__name__)


class EventLog:
    """Appends events to the stream. An event that cannot reach Redis is kept in a spool file and sent, in
    order, with the next event that can (or by the worker's clock, ``flush``): an outage delays records,
    never loses them.

    Every process of the machine shares the spool folder, so a file is never written where another process
    may claim it: each spooled event is written whole under a temporary name and renamed into place (a
    name that sorts by time), and a process claims a file by renaming it to ``.replay`` with its pid in the
    name. A failed replay renames the file back; one left by a process that died mid-replay is taken over.
    (Appending to one shared file lost events: a process appended to a file another had just claimed, read
    and deleted.)"""

    def __init__(self, client: redis.Redis, spool_dir: Path, stream: str = EVENTS_STREAM) -> None:
        self._redis, self.stream = client, stream
        self._spool_dir = spool_dir
        self._lock = threading.Lock()

    def emit(self, kind: str, **fields: Any) -> None:
        event = _event(kind, fields)
        if not self._spool_pending():
            # Nothing waits in the spool (the usual case): no order to keep, so no lock. The lock held every
            # emit of the process through its round trip: under gevent the calls' greenlets queued on it, one
            # XADD per turn of the hub (the call's first and last webhooks waited 450 ms at p50 under load).
            try:
                self._redis.xadd(self.stream, event, maxlen=EVENTS_MAXLEN, approximate=True)
                return
            except redis.RedisError as exc:
                self._spool_alone(kind, event, exc)
                return
        self._emit_in_order(kind, event)

    def emit_in(self, pipe: Pipeline, kind: str, **fields: Any) -> Reader[None]:
        """``emit`` in a batch (``routing.batch``): an event the batch could not send is spooled when read. While
        events wait in the spool, this one is sent after them, alone, when read (their order is kept)."""
        event = _event(kind, fields)
        if self._spool_pending():
            return lambda _outcome: self._emit_in_order(kind, event)
        pipe.xadd(self.stream, event, maxlen=EVENTS_MAXLEN, approximate=True)

        def read(outcome: Outcome) -> None:
            failure = outcome if isinstance(outcome, redis.RedisError) else outcome[0]
            if isinstance(failure, redis.RedisError):
                self._spool_alone(kind, event, failure)

        return read

    def _emit_in_order(self, kind: str, event: dict[Any, Any]) -> None:
        with self._lock:
            self._emit(kind, event)

    def _spool_alone(self, kind: str, event: dict[Any, Any], exc: redis.RedisError) -> None:
        with self._lock:
            self._spool(kind, event, exc)

    def flush(self) -> int:
        """Send what the machine's processes spooled; how many events went. Raises ``redis.RedisError``
        (the files stay) while Redis is away."""
        with self._lock:
            return self._flush_spool()

    def _emit(self, kind: str, event: dict[Any, Any]) -> None:
        try:
            self._flush_spool()
            self._redis.xadd(self.stream, event, maxlen=EVENTS_MAXLEN, approximate=True)
        except redis.RedisError as exc:
            self._spool(kind, event, exc)

    def _spool(self, kind: str, event: dict[Any, Any], exc: redis.RedisError) -> None:
        log.warning("event %s spooled to disk: redis unavailable (%s)", kind, type(exc).__name__)
        self._spool_file(event)

    def _spool_pending(self) -> bool:
        """Whether any process left events in the spool, or is writing or replaying some."""
        try:
            with os.scandir(self._spool_dir) as entries:
                return any(entry.name.endswith((SPOOLED, CLAIMED, PARTIAL)) for entry in entries)
        except FileNotFoundError:
            return False

    def _spool_file(self, event: dict[Any, Any]) -> None:
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        name = f"events-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        partial = self._spool_dir / f"{name}{PARTIAL}"  # not matched by the claimers' glob
        partial.write_text(json.dumps(event, ensure_ascii=False) + "\n", encoding="utf-8")
        partial.rename(self._spool_dir / f"{name}{SPOOLED}")

    def _flush_spool(self) -> int:
        if not self._spool_dir.exists():
            return 0
        sent = 0
        for spool in self._claimable():
            taken = self._spool_dir / f"{spool.name.split('.')[0]}.{os.getpid()}{CLAIMED}"
            try:
                spool.rename(taken)  # renaming claims the file: exactly one process replays it
            except FileNotFoundError:
                continue
            sent += self._replay(taken)
        return sent

    def _claimable(self) -> list[Path]:
        """Spooled files, and files claimed by a process that is gone (it died mid-replay), oldest first."""
        files = list(self._spool_dir.glob(f"events-*{SPOOLED}"))
        files += [f for f in self._spool_dir.glob(f"events-*{CLAIMED}") if not _alive(_claimer(f))]
        return sorted(files, key=lambda f: f.name)

    def _replay(self, taken: Path) -> int:
        try:
            events = [json.loads(line) for line in taken.read_text(encoding="utf-8").splitlines() if line]
        except ValueError:  # cut short by a full disk: kept for an operator, never blocking the events after it
            log.error("event spool file %s is unreadable; set aside as .corrupt", taken.name)
            taken.rename(taken.with_suffix(".corrupt"))
            return 0
        try:
            pipe = self._redis.pipeline(transaction=False)
            for event in events:
                pipe.xadd(self.stream, event, maxlen=EVENTS_MAXLEN, approximate=True)
            pipe.execute()
        except redis.RedisError:
            # Back under its own name, in its place in the order; some may have been sent (a duplicate
            # later is harmless: every consumer merges events idempotently).
            taken.rename(self._spool_dir / f"{taken.name.split('.')[0]}{SPOOLED}")
            raise
        taken.unlink()
        return len(events)


SPOOLED, CLAIMED, PARTIAL = ".jsonl", ".replay", ".partial"


def _claimer(claimed: Path) -> int:
    """The pid in ``events-<ns>-<pid>-<id>.<claimer pid>.replay``."""
    try:
        return int(claimed.name.split(".")[1])
    except (IndexError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _event(kind: str, fields: dict[str, Any]) -> dict[Any, Any]:
    return {"type": kind, "ts": f"{time.time():.3f}", **{k: _text(v) for k, v in fields.items()}}
