"""Reading the events stream (``hotline:{<name>}:events``) with a consumer group, acknowledged after the commit.

Why a consumer group rather than one RQ job per event: the stream already holds every event durably,
in order, with per-consumer pending lists. A writer killed mid-batch leaves its entries pending;
another writer takes them over with ``XAUTOCLAIM`` once they have been idle ``claim_idle_s``. A
database that is down means no acknowledgement, so the same entries are retried with backoff.
No event is copied into a job payload, and 10,000 events cost 20 round trips instead of 10,000 jobs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from metrics import RECORD_WRITER_RETRIES, error_kind

log = logging.getLogger(__name__)

RECORDS_GROUP = "records"

Entry = tuple[str, dict[str, str]]
Handler = Callable[[list[Mapping[str, str]]], object]


@dataclass(frozen=True)
class ConsumerConfig:
    stream: str
    group: str
    consumer: str
    batch: int = 1000
    block_ms: int = 1000
    claim_idle_s: float = 30.0
    max_backoff_s: float = 30.0


class StreamConsumer:
    """Feeds batches of events to ``handle``; acknowledges a batch only when ``handle`` returned."""

    def __init__(self, client: redis.Redis, config: ConsumerConfig, handle: Handler) -> None:
        self._redis, self.config, self._handle = client, config, handle
        self._last_claim = 0.0
        self._failures = 0

    def ensure_group(self) -> None:
        """Create the group at the stream's start: events written before any worker ran count too."""
        try:
            self._redis.xgroup_create(self.config.stream, self.config.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; every failure is logged and retried, never fatal."""
        while not stop.is_set():
            try:
                self.ensure_group()
                while not stop.is_set():
                    self.step()
                    self._failures = 0
            except Exception as exc:  # Redis or the database away: wait, then retry the same entries
                self._failures += 1
                RECORD_WRITER_RETRIES.labels(error_kind(exc)).inc()
                pause = min(self.config.max_backoff_s, 0.5 * 2 ** min(self._failures, 6))
                log.warning("record writer: %s; retrying in %.1f s", _describe(exc), pause)
                stop.wait(pause)

    def step(self) -> int:
        """One batch: entries left pending by this consumer, else taken over from a dead one, else new."""
        entries = self._read("0") or self._claim() or self._read(">", block=True)
        if not entries:
            return 0
        events: list[Mapping[str, str]] = [fields for _, fields in entries]
        self._handle(events)
        self._redis.xack(self.config.stream, self.config.group, *[entry_id for entry_id, _ in entries])
        return len(entries)

    def _read(self, start: str, block: bool = False) -> list[Entry]:
        c = self.config
        reply: Any = self._redis.xreadgroup(  # redis-py types the reply loosely
            c.group, c.consumer, {c.stream: start}, count=c.batch, block=c.block_ms if block else None,
        )
        if not reply:
            return []
        gone = [i for i, f in reply[0][1] if not f]
        if gone:  # trimmed off the stream while pending: nothing left to write
            self._redis.xack(c.stream, c.group, *gone)
        return [(_text(i), _decode(f)) for i, f in reply[0][1] if f]

    def _claim(self) -> list[Entry]:
        c = self.config
        now = time.monotonic()
        if now - self._last_claim < c.claim_idle_s / 4:
            return []
        self._last_claim = now
        reply: Any = self._redis.xautoclaim(
            c.stream, c.group, c.consumer, min_idle_time=int(c.claim_idle_s * 1000), start_id="0-0", count=c.batch,
        )
        claimed = reply[1]
        if claimed:
            log.info("record writer %s took over %d events left by a stopped writer", c.consumer, len(claimed))
            self._last_claim = 0.0  # there may be more: look again next step
        return [(_text(i), _decode(f)) for i, f in claimed if f]


def _decode(fields: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in fields.items()}


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _describe(exc: Exception) -> str:
    # Database errors carry the statement and its parameters: the class and first line are enough.
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first[:200]}"
