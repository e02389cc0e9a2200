"""Call sessions in Redis, keyed by call id with a TTL, so any process can serve any step."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.client import Pipeline

from calls.keys import IVR_CALLS, session_key
from ivr.session import Session
from routing.batch import Outcome, Reader, replies, run_alone
from routing.scripts import register_lua

_SAVE = Path(__file__).parent / "lua" / "save_session.lua"


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredCall:
    session: Session
    last_answer: str
    """What the channel answered to the last step (TwiML), replayed when a step repeats."""


class SessionStore:
    """One string per call: ``<seq>\\n<session JSON>\\n<last answer>`` (JSON holds no raw newline).
    One GET to load, one round trip to save (script + the set below), one to end.

    Calls in the menus (neither queued nor ended) are also kept in the sorted set ``IVR_CALLS``, scored
    by their last step, so counting them costs O(log n) at any scale; a call whose status callback never
    came drops out of the count once its session would have expired."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self._redis, self._ttl = client, ttl_s
        self._save = register_lua(client, _SAVE)

    def load(self, call_id: str) -> StoredCall | None:
        return _decode(self._redis.get(session_key(call_id)))

    def load_in(self, pipe: Pipeline, call_id: str) -> Reader[StoredCall | None]:
        """``load`` in a batch (``routing.batch``)."""
        pipe.get(session_key(call_id))
        return _first_decoded

    def save(self, session: Session, answer: str) -> bool:
        """Store the step; False when another process already stored this step or a later one
        (the same webhook served twice at once): the caller should answer what is stored."""
        key, args = session_key(session.call_id), (f"{session.seq}\n{session.to_json()}\n{answer}", session.seq,
                                                   self._ttl)
        # EVALSHA by hand: a Script in a pipeline costs one more round trip (SCRIPT EXISTS) per save. As a
        # command, not ``pipe.evalsha``: redis-py's cluster pipeline refuses that method, and sends the
        # command to the node of the session key (IVR_CALLS may live on another; the pipeline is not atomic).
        pipe = self._redis.pipeline(transaction=False)
        pipe.execute_command("EVALSHA", self._save.sha, 1, key, *args)  # type: ignore[no-untyped-call]
        # Only the same step served twice can race here, so both writers agree on where the call is.
        if session.ended or session.outcome == "queued":
            pipe.zrem(IVR_CALLS, session.call_id)
        else:
            pipe.zadd(IVR_CALLS, {session.call_id: time.time()})
        try:
            return bool(pipe.execute()[0])
        except redis.exceptions.NoScriptError:  # a restarted Redis forgot the script: load it and save again
            return bool(self._save(keys=[key], args=list(args)))

    def take(self, call_id: str) -> StoredCall | None:
        """Remove and return the session: of racing callers, exactly one gets it."""
        return run_alone(self._redis, self.take_in, call_id)

    def take_in(self, pipe: Pipeline, call_id: str) -> Reader[StoredCall | None]:
        """``take`` in a batch (``routing.batch``)."""
        pipe.getdel(session_key(call_id))
        pipe.zrem(IVR_CALLS, call_id)
        return _first_decoded

    def note_in_ivr(self, call_id: str, in_menus: bool) -> None:
        """For channels that keep the session themselves (FastAGI): the call is in the menus, or left them.
        Only the dashboard's count depends on it, so Redis being away costs the call nothing."""
        try:
            if in_menus:
                self._redis.zadd(IVR_CALLS, {call_id: time.time()})
            else:
                self._redis.zrem(IVR_CALLS, call_id)
        except redis.RedisError as exc:
            log.debug("calls-in-IVR count not updated for %s: %s", call_id, type(exc).__name__)

    def in_ivr(self, now: float | None = None) -> int:
        """Calls in the menus right now; entries older than the session TTL are dropped as they go."""
        oldest = (time.time() if now is None else now) - self._ttl
        pipe = self._redis.pipeline(transaction=False)
        pipe.zremrangebyscore(IVR_CALLS, "-inf", f"({oldest}")
        pipe.zcard(IVR_CALLS)
        return int(pipe.execute()[1])


def _first_decoded(outcome: Outcome) -> StoredCall | None:
    return _decode(replies(outcome)[0])


def _decode(raw: bytes | str | None) -> StoredCall | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    _seq, _, rest = text.partition("\n")
    session_json, _, answer = rest.partition("\n")
    return StoredCall(Session.from_json(session_json), answer)
