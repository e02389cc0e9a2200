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

from routing.keys import EVENTS_MAXLEN, EVENTS_STREAM

log = logging.getLogger(__name__)


class EventLog:
    """Appends events to the stream. An event that cannot reach Redis is kept in a spool
    file and sent, in order, with the next event that can: an outage delays records, never loses them."""

    def __init__(self, client: redis.Redis, spool_dir: Path, stream: str = EVENTS_STREAM) -> None:
        self._redis, self.stream = client, stream
        self._spool_dir = spool_dir
        self._lock = threading.Lock()

    @property
    def _spool(self) -> Path:
        return self._spool_dir / f"events-{os.getpid()}.jsonl"

    def emit(self, kind: str, **fields: Any) -> None:
        event: dict[Any, Any] = {"type": kind, "ts": f"{time.time():.3f}", **{k: _text(v) for k, v in fields.items()}}
        with self._lock:
            self._emit(kind, event)

    def _emit(self, kind: str, event: dict[Any, Any]) -> None:
        try:
            self._flush_spool()
            self._redis.xadd(self.stream, event, maxlen=EVENTS_MAXLEN, approximate=True)
        except redis.RedisError as exc:
            log.warning("event %s spooled to disk: redis unavailable (%s)", kind, type(exc).__name__)
            self._spool_dir.mkdir(parents=True, exist_ok=True)
            with self._spool.open("a", encoding="utf-8") as out:
                out.write(json.dumps(event, ensure_ascii=False) + "\n")

    def _flush_spool(self) -> None:
        if not self._spool_dir.exists():
            return
        for spool in sorted(self._spool_dir.glob("events-*.jsonl")):
            # Renaming claims the file: one process replays it, new events go to a fresh file.
            taken = spool.with_suffix(f".{uuid.uuid4().hex}.replay")
            try:
                spool.rename(taken)
            except FileNotFoundError:
                continue
            self._replay(taken)

    def _replay(self, taken: Path) -> None:
        events = [json.loads(line) for line in taken.read_text(encoding="utf-8").splitlines() if line]
        try:
            pipe = self._redis.pipeline(transaction=False)
            for event in events:
                pipe.xadd(self.stream, event, maxlen=EVENTS_MAXLEN, approximate=True)
            pipe.execute()
        except redis.RedisError:
            with self._spool.open("a", encoding="utf-8") as out:
                out.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in events)
            taken.unlink()
            raise
        taken.unlink()


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
