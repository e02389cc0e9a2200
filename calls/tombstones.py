"""What a finished call leaves behind for the requests that arrive after its end.

Twilio posts a ``<Record>`` or ``<Enqueue>`` action and the call's final status callback at about the same
time when the caller hangs up, in no documented order
(https://www.twilio.com/docs/voice/twiml/record#action, https://www.twilio.com/docs/voice/twiml/enqueue#action,
https://www.twilio.com/docs/voice/api/call-resource#statuscallback). The status callback ends the session;
its tombstone (menu version, node, variables) lets a late action still do its work, once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from redis.client import Pipeline

from calls.keys import ending_key, tombstone_key
from ivr.session import Session
from routing.batch import Outcome, Reader, checked

SERVED = "served"
TOMBSTONE_TTL_S = 900
"""Late requests come within seconds; a quarter of an hour covers Twilio's slowest retry of a connection."""
ENDING_TTL_S = 60
"""A status callback leaves the tombstone within a few round trips of taking the session: seconds at a busy peak."""
BURIAL_WAIT_S, BURIAL_POLL_S = 5.0, 0.05
"""How long a step that finds a call being ended waits for its tombstone (no caller waits for its answer, and
Twilio waits 15 s), and how often it looks."""


@dataclass(frozen=True)
class Finished:
    """A call whose status callback came: ``session`` is its last state, None once a late request used it."""

    session: Session | None


class Tombstones:
    def __init__(self, client: redis.Redis, ttl_s: int = TOMBSTONE_TTL_S) -> None:
        self._redis, self._ttl = client, ttl_s

    def ending_in(self, pipe: Pipeline, call_id: str) -> Reader[None]:
        """Queued by the status callback before it takes the session: a request that then finds neither the session
        nor the tombstone knows the call is being ended, and waits for the tombstone (``claim_when_buried``)."""
        pipe.set(ending_key(call_id), "1", ex=ENDING_TTL_S)
        return _a_hint


    def bury_in(self, pipe: Pipeline, session: Session) -> Reader[None]:
        """Leave the finished call's last session for the requests that come after its end, in a batch
        (``routing.batch``)."""
        pipe.set(tombstone_key(session.call_id), session.to_json(), ex=self._ttl)
        return checked

    def claim(self, call_id: str) -> Finished | None:
        """The finished call, if it is one; its session goes to exactly one caller of this (duplicates get
        None), and the tombstone stays, marked served, so a duplicate is still known as late."""
        raw = self._redis.set(tombstone_key(call_id), SERVED, keepttl=True, xx=True, get=True)
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return Finished(None if text == SERVED else Session.from_json(text))

    def claim_when_buried(self, call_id: str) -> Finished | None:
        """``claim``; for a call whose status callback is between taking the session and leaving the tombstone,
        once it is left. Twilio sends a hang-up's Record or Enqueue action and the status callback at about the
        same time, in no documented order: the action must not start the menu over (a second call record, a
        session left behind, a complaint's recording lost)."""
        finished = self.claim(call_id)
        if finished is not None or not self._redis.exists(ending_key(call_id)):
            return finished
        deadline = time.monotonic() + BURIAL_WAIT_S
        while finished is None and time.monotonic() < deadline:
            time.sleep(BURIAL_POLL_S)
            finished = self.claim(call_id)
        return finished


def _a_hint(_outcome: Outcome) -> None:
    """The marker only spares a late request from starting the menu over: the call ends whether it was set or not
    (a Redis that refuses writes when full still lets the session be taken and the call's record written)."""
