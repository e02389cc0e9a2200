"""Call sessions in Redis, keyed by call id with a TTL, so any process can serve any step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis

from ivr.session import Session
from routing.keys import session_key

_SAVE = (Path(__file__).parent / "lua" / "save_session.lua").read_text()


@dataclass(frozen=True)
class StoredCall:
    session: Session
    last_answer: str
    """What the channel answered to the last step (TwiML), replayed when a step repeats."""


class SessionStore:
    """One string per call: ``<seq>\\n<session JSON>\\n<last answer>`` (JSON holds no raw newline).
    One GET to load, one script call to save, one GETDEL to end."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self._redis, self._ttl = client, ttl_s
        self._save = client.register_script(_SAVE)

    def load(self, call_id: str) -> StoredCall | None:
        return _decode(self._redis.get(session_key(call_id)))

    def save(self, session: Session, answer: str) -> bool:
        """Store the step; False when another process already stored this step or a later one
        (the same webhook served twice at once): the caller should answer what is stored."""
        value = f"{session.seq}\n{session.to_json()}\n{answer}"
        return bool(self._save(keys=[session_key(session.call_id)], args=[value, session.seq, self._ttl]))

    def take(self, call_id: str) -> StoredCall | None:
        """Remove and return the session: of racing callers, exactly one gets it."""
        return _decode(self._redis.getdel(session_key(call_id)))


def _decode(raw: bytes | str | None) -> StoredCall | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    _seq, _, rest = text.partition("\n")
    session_json, _, answer = rest.partition("\n")
    return StoredCall(Session.from_json(session_json), answer)
