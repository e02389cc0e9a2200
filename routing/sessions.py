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
    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self._redis, self._ttl = client, ttl_s

    def load(self, call_id: str) -> StoredCall | None:
        raw, answer = self._redis.hmget(session_key(call_id), "s", "answer")
        if raw is None:
            return None
        text = answer.decode() if isinstance(answer, bytes) else (answer or "")
        return StoredCall(Session.from_json(raw), text)

    def save(self, session: Session, answer: str) -> None:
        key = session_key(session.call_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"s": session.to_json(), "answer": answer})
        pipe.expire(key, self._ttl)
        pipe.execute()

    def delete(self, call_id: str) -> bool:
        """Remove the session; True only for the one caller that actually removed it."""
        return bool(self._redis.delete(session_key(call_id)))
