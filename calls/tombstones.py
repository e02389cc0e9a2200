"""What a finished call leaves behind for the requests that arrive after its end.

Twilio posts a ``<Record>`` or ``<Enqueue>`` action and the call's final status callback at about the same
time when the caller hangs up, in no documented order
(https://www.twilio.com/docs/voice/twiml/record#action, https://www.twilio.com/docs/voice/twiml/enqueue#action,
https://www.twilio.com/docs/voice/api/call-resource#statuscallback). The status callback ends the session;
its tombstone (menu version, node, variables) lets a late action still do its work, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.client import Pipeline

from calls.keys import tombstone_key
from ivr.session import Session
from routing.batch import Reader, checked

SERVED = "served"
TOMBSTONE_TTL_S = 900
"""Late requests come within seconds; a quarter of an hour covers Twilio's slowest retry of a connection."""


@dataclass(frozen=True)
class Finished:
    """A call whose status callback came: ``session`` is its last state, None once a late request used it."""

    session: Session | None


class Tombstones:
    def __init__(self, client: redis.Redis, ttl_s: int = TOMBSTONE_TTL_S) -> None:
        self._redis, self._ttl = client, ttl_s

    def bury(self, session: Session) -> None:
        self._redis.set(tombstone_key(session.call_id), session.to_json(), ex=self._ttl)

    def bury_in(self, pipe: Pipeline, session: Session) -> Reader[None]:
        """``bury`` in a batch (``routing.batch``)."""
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
