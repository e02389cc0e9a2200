"""One reader of the call-event stream per web process, for every open live page.

A page used to hold a blocking ``XREAD`` of its own: a Redis connection per open dashboard or console, every event
sent, parsed and filtered once per page. With a greenlet per page (gevent) a process keeps a thousand pages open,
so the process reads the stream once (``EventFanout``) and wakes only the pages an event is about: a console the
events of its agent, the dashboard events of the types it shows. Pages are woken at most every ``PACE_S``: events
that arrive meanwhile make one wake-up, so a page's snapshots (and their CPU, taken from the webhooks) stay a few per
second however busy the calls are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from admin.live.sse import HEARTBEAT_S, EventTail

log = logging.getLogger(__name__)

PACE_S = 0.2
"""The least time between two wake-ups of the pages: a burst of events becomes one snapshot per page."""
BATCH = 1000
"""Events read at most per ``XREAD``."""
EVENT_FANOUT = "event_fanout"
"""The app's ``extensions`` key of its ``EventFanout``."""


@dataclass(frozen=True)
class Interest:
    """What wakes a page: events about ``agent`` (the agent console), or events whose type starts with one of
    ``types`` (the dashboard)."""

    agent: str | None = None
    types: tuple[str, ...] = ()


class Subscription:
    """A page's place among the stream's readers, taken before its first snapshot: it misses nothing after."""

    def __init__(self, fanout: EventFanout, interest: Interest) -> None:
        self.fanout, self.interest = fanout, interest
        self.wake = threading.Event()  # patched by gevent: a waiting page is a parked greenlet
        self.read_at = 0.0
        self.ended = False

    def wait(self, block_s: float = HEARTBEAT_S, gap_s: float = 0.0) -> Iterator[float | None]:
        """After events of interest, when they were read (``time.monotonic()``: a snapshot begun since shows them);
        ``None`` when ``block_s`` passed without any (a heartbeat is due). At least ``gap_s`` between two wake-ups
        (counted from the call): events in between fold into the later one. Ends when the stream cannot be read
        (Redis away: the page reconnects by itself)."""
        last = time.monotonic()
        while True:
            woke = self.wake.wait(block_s)
            if woke and gap_s > 0:
                rest = last + gap_s - time.monotonic()
                if rest > 0:
                    time.sleep(rest)  # a parked greenlet; the pages of one batch wake together and share a snapshot
            if self.ended:
                return
            self.wake.clear()  # before the caller's snapshot: what happens after it wakes the page again
            if woke:
                last = time.monotonic()
            yield self.read_at if woke else None

    def close(self) -> None:
        self.fanout.leave(self)


class EventFanout:
    """Reads the events stream for all of this process's subscriptions, in a thread (a greenlet under gevent)
    that runs while any page is open and stops with the last one."""

    def __init__(self, tail: EventTail, pace_s: float = PACE_S) -> None:
        self.tail, self.pace_s = tail, pace_s
        self._lock = threading.Lock()
        self._subs: dict[Interest, set[Subscription]] = {}
        self._reading = False
        self._generation = 0  # a reader of an older one (the pages it served were ended) stops at its next turn
        self._readers = 0

    def subscribe(self, interest: Interest) -> Subscription:
        """A subscription woken by every event of ``interest`` from now on. Raises ``redis.RedisError`` when
        the stream cannot be read (the page's stream ends and it reconnects)."""
        sub = Subscription(self, interest)
        with self._lock:
            start = None if self._reading else self.tail.position()  # before the page's snapshot
            self._subs.setdefault(interest, set()).add(sub)
            if start is not None:
                self._reading = True
                self._readers += 1
                threading.Thread(target=self._read, args=(start, self._generation), name="event-fanout",
                                 daemon=True).start()
        return sub

    def leave(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.interest)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.interest]

    def pages(self) -> int:
        """Subscriptions open in this process."""
        with self._lock:
            return sum(map(len, self._subs.values()))

    def readers(self) -> int:
        """Readers of the stream running (one while pages are open; an ended one until its read returns)."""
        with self._lock:
            return self._readers

    def _read(self, start: str, generation: int) -> None:
        try:
            self._follow(start, generation)
        finally:
            with self._lock:
                self._readers -= 1

    def _follow(self, start: str, generation: int) -> None:
        last = start
        while True:
            with self._lock:  # the last page gone: stop (a new page starts another reader, from its own position)
                if generation != self._generation:
                    return
                if not self._subs:
                    self._reading = False
                    return
            try:
                last, events = self.tail.read(last, HEARTBEAT_S, BATCH)
            except redis.RedisError as exc:
                log.info("event streams closed: redis unavailable (%s)", type(exc).__name__)
                self._end_all(generation)
                return
            if events:
                self._wake(events)
                time.sleep(self.pace_s)  # what arrives meanwhile is read as one batch: one wake-up per page

    def _wake(self, events: list[dict[str, str]]) -> None:
        read_at = time.monotonic()
        agents = {e["agent"] for e in events if "agent" in e}
        types = {e.get("type", "") for e in events}
        with self._lock:
            woken = [sub for interest, subs in self._subs.items()
                     if (interest.agent in agents if interest.agent is not None
                         else any(t.startswith(interest.types) for t in types)) for sub in subs]
        for sub in woken:
            sub.read_at = read_at
            sub.wake.set()

    def close(self) -> None:
        """Ends every open page's stream now (a stopping worker: the pages reconnect to another); the reader stops at
        its next turn."""
        self._end_all()

    def _end_all(self, generation: int | None = None) -> None:
        with self._lock:
            if generation is not None and generation != self._generation:
                return  # a reader already replaced: its pages were ended then
            subs = [s for group in self._subs.values() for s in group]
            self._subs.clear()
            self._reading = False
            self._generation += 1
        for sub in subs:
            sub.ended = True
            sub.wake.set()


def snapshots(fanout: EventFanout, snapshot: Callable[[float], Any], interest: Interest,
              name: str = "snapshot", gap_s: float = 0.0) -> Iterator[tuple[str, Any] | None]:
    """A snapshot at once, then a fresh one after events of ``interest`` (a burst of events gives one snapshot,
    not one per event), at most one per ``gap_s``; ``None`` (a heartbeat) after ``HEARTBEAT_S`` without any.
    ``snapshot(not_before)``: any snapshot begun at or after ``not_before`` (``time.monotonic()``) will do, so the
    pages woken by one batch of events may share one."""
    sub = fanout.subscribe(interest)  # before the snapshot: an event landing while it is built shows in the next one
    try:
        yield name, snapshot(time.monotonic())
        for read_at in sub.wait(gap_s=gap_s):
            yield (name, snapshot(read_at)) if read_at is not None else None
    finally:
        sub.close()
