"""Call sessions in Redis, keyed by call id with a TTL, so any process can serve any step."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ivr.session import Session
from routing.keys import session_key


@dataclass(frozen=True)
class StoredCall:
    session: Session
    last_answer: str
    """What the channel answered to the last step (TwiML), replayed when a step repeats."""


class SessionStore:
    """One string per call: the session JSON, a newline, the last answer. JSON never holds a raw
    newline, so the first one splits them; one GET, one SET and one GETDEL per call step."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self._redis, self._ttl = client, ttl_s

    def load(self, call_id: str) -> StoredCall | None:
        return _decode(self._redis.get(session_key(call_id)))

    def save(self, session: Session, answer: str) -> None:
        self._redis.set(session_key(session.call_id), f"{session.to_json()}\n{answer}", ex=self._ttl)

    def take(self, call_id: str) -> StoredCall | None:
        """Remove and return the session: of racing callers, exactly one gets it."""
        return _decode(self._redis.getdel(session_key(call_id)))


def _decode(raw: bytes | str | None) -> StoredCall | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    session_json, _, answer = text.partition("\n")
    return StoredCall(Session.from_json(session_json), answer)
