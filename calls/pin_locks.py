"""The PIN-failure counter of every card, across calls, channels and processes.

A check is reserved in Redis before the core system is asked (one Lua script: parallel guesses on many
FastAGI processes and web workers cannot pass the limit together), judged, then written through to the
SQL record (``calls.pin_records``). The N-th failure within the window locks the card's PIN checks: the
caller hears why and is put through to an agent, a ``pin_locked`` event goes on the stream, supervisors see
the lock on /admin/pin-locks and an admin may reset it. A right PIN clears the count.

Redis that lost the counter (restart, eviction) is filled again from the record on the card's next check.
Redis away: the record counts alone, under a row lock; Redis and the database both away: ``check`` raises,
and the menu's error branch takes the caller to an agent. Never an unlimited guess.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

import redis

from calls.keys import pin_key
from calls.pin_records import CardState, PinLockView, PinPolicy, PinRecords
from ivr.services import CallInfo, PinCard, PinLocked
from routing.events import EventLog
from routing.scripts import register_lua
from store.db import UNAVAILABLE

log = logging.getLogger(__name__)

_LUA = Path(__file__).parent / "lua"
_AWAY: tuple[type[Exception], ...] = (redis.RedisError, *UNAVAILABLE)
STALE_CHECK_S = 60.0
"""A check reserved this long ago without an outcome was abandoned (its process died mid-check): it no longer
holds one of the card's tries (a check takes at most the core's timeout)."""
FULL_WAIT_S, FULL_POLL_S = 10.0, 0.03
"""How long a check waits for the checks in flight that fill the card's window (inside Twilio's 15 s for a webhook;
tests/test_real_asterisk.py's 100 simultaneous callers of one card are all verified), and about how often it asks."""


class PinLocks:
    """``ivr.services.PinGuard`` on Redis and the SQL store."""

    def __init__(self, client: redis.Redis, records: PinRecords, events: EventLog, secret: str, policy: PinPolicy,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis, self.records, self._events, self.policy, self._clock = client, records, events, policy, clock
        self._key = hmac.new(secret.encode(), b"hotline pin failures: card keys v1", hashlib.sha256).digest()
        self._attempt = register_lua(client, _LUA / "pin_attempt.lua")
        self._release = register_lua(client, _LUA / "pin_release.lua")
        self._failed = register_lua(client, _LUA / "pin_failed.lua")

    def card_key(self, card_number: str) -> str:
        return hmac.new(self._key, card_number.encode(), hashlib.sha256).hexdigest()

    def check(self, card: PinCard, call: CallInfo, verify: Callable[[], bool]) -> str:
        # Full: the last checks the window allows are being judged right now. A wrong one locks the card,
        # a right one clears the count: wait a moment for them (many callers of one card at once are served).
        deadline = time.monotonic() + FULL_WAIT_S
        first = True
        while True:
            now = self._now()
            try:
                answer = self._reserve(card, now, with_record=first)
                first = False
            except redis.RedisError as exc:
                log.warning("PIN check on call %s counted in the database only: redis unavailable (%s)",
                            call.call_id, type(exc).__name__)
                return self._check_in_sql(card, call, verify, deadline)
            if answer[0] == "try":
                return self._judge(card, call, verify, int(answer[1]), in_redis=True)
            if answer[0] == "locked" or int(answer[2]) >= self.policy.max_failures or time.monotonic() > deadline:
                return "locked"
            time.sleep(FULL_POLL_S * random.uniform(0.5, 1.5))  # spreads the askers out

    def reset(self, card_key: str) -> PinLockView | None:
        """An admin's reset: the card's checks start afresh. Redis first: if it is away nothing changes
        (raises ``redis.RedisError``), and a lock never lingers there after the record forgot it."""
        found = self.records.find(card_key, self._now())
        self._redis.delete(pin_key(card_key))
        self.records.forget(card_key)
        return found

    def listing(self) -> list[PinLockView]:
        return self.records.listing(self._now())

    # -- one check -------------------------------------------------------------------------

    def _reserve(self, card: PinCard, now: dt.datetime, with_record: bool = True) -> list[str]:
        """Reserve a check in Redis. ``with_record`` (a check's first ask): the card's SQL record goes with it, and
        Redis uses it when it has no counter for the card, as for most first checks (a counter lives from a
        failure to a right PIN): one round trip instead of a "load" answer and a second one. The asks of a
        check polling a full card send none, and read the record only if Redis answers "load" (its data lost,
        or a lock that just ended)."""
        base = [f"{now.timestamp():.3f}", str(self.policy.window_s), str(self.policy.max_failures),
                str(STALE_CHECK_S)]
        keys = [pin_key(card.key)]
        answer = _texts(self._attempt(keys=keys, args=[*base, *(self._record(card, now) if with_record else [""])]))
        if answer[0] != "load":
            return answer
        return _texts(self._attempt(keys=keys, args=[*base, *self._record(card, now)]))

    def _record(self, card: PinCard, now: dt.datetime) -> list[str]:
        """The card's SQL record as ``pin_attempt.lua`` takes it (ARGV[5..8])."""
        state = self._recorded(card, now)
        until = "" if not state.locked else str(state.locked_until.timestamp()) if state.locked_until else "0"
        since = state.locked_at if state.locked_at else state.since
        return ["1", str(state.failures), f"{since.timestamp():.3f}", until]

    def _recorded(self, card: PinCard, now: dt.datetime) -> CardState:
        try:
            return self.records.state(card.key, now)
        except UNAVAILABLE:
            log.warning("PIN counter: database unavailable: if redis has no count for this card, it counts from zero")
            return CardState(0, now)

    def _judge(self, card: PinCard, call: CallInfo, verify: Callable[[], bool], n: int, in_redis: bool) -> str:
        try:
            ok = verify()
        except PinLocked:
            self._give_back(card, in_redis)
            self._emit(card, call, n - 1, "bank")
            return "locked"
        except Exception:
            self._give_back(card, in_redis)  # nothing was judged: the caller's error branch takes over
            raise
        if ok:
            self._forget(card, n, in_redis)
            return "ok"
        failures, reached = self._count_failure(card, call, n) if in_redis else (n, n >= self.policy.max_failures)
        if reached:
            self._lock(card, call, failures, self._now())
            return "locked"
        return "wrong_pin"

    def _check_in_sql(self, card: PinCard, call: CallInfo, verify: Callable[[], bool], deadline: float) -> str:
        while True:
            now = self._now()
            state, counted = self.records.count(card, call.channel, now, reserve=True)  # database away: raises
            if counted:
                return self._judge(card, call, verify, state.failures, in_redis=False)
            if state.locked or time.monotonic() > deadline:
                return "locked"
            time.sleep(FULL_POLL_S * random.uniform(0.5, 1.5))  # full: checks in flight, or the lock not written

    # -- writing the outcome -------------------------------------------------------------------

    def _count_failure(self, card: PinCard, call: CallInfo, n: int) -> tuple[int, bool]:
        """Written to the record, then to Redis (never below the record: failures counted while Redis was
        away still count); exactly one failure is the one that reaches the limit."""
        try:
            recorded = self.records.count(card, call.channel, self._now(), reserve=False)[0].failures
        except UNAVAILABLE:
            log.warning("PIN failure on call %s not recorded: database unavailable (redis counts it)", call.call_id)
            recorded = 0
        try:
            failures, reached = self._failed(keys=[pin_key(card.key)], args=[recorded, self.policy.max_failures])
        except redis.RedisError as exc:  # gone since the check was reserved: the record decides
            log.warning("PIN failure on call %s counted in the database only (%s)", call.call_id, type(exc).__name__)
            return recorded, recorded >= self.policy.max_failures
        if int(failures) == 0:  # the counter is gone: the record decides (it is filled again on the next check)
            return recorded, recorded >= self.policy.max_failures
        return int(failures), bool(int(reached))

    def _lock(self, card: PinCard, call: CallInfo, failures: int, now: dt.datetime) -> None:
        until: dt.datetime | None = None
        try:
            until = self.records.lock(card, failures, now)
        except UNAVAILABLE:
            until = now + dt.timedelta(seconds=self.policy.lock_s) if self.policy.lock_s else None
            log.warning("PIN lock on call %s not recorded: database unavailable (redis holds it)", call.call_id)
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                key = pin_key(card.key)
                pipe.delete(key)
                pipe.hset(key, mapping={"locked_at": f"{now.timestamp():.3f}",
                                        "locked_until": f"{until.timestamp():.3f}" if until else "0"})
                if until:
                    pipe.pexpireat(key, until)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("PIN lock on call %s kept in the database only: redis unavailable (%s)",
                        call.call_id, type(exc).__name__)
        log.warning("PIN checks of card %s locked after %d failures (call %s on %s)",
                    card.masked or "?", failures, call.call_id, call.channel)
        self._emit(card, call, failures, "hotline", until)

    def _forget(self, card: PinCard, n: int, in_redis: bool) -> None:
        try:
            if in_redis:
                self._redis.delete(pin_key(card.key))
            if n > 1 or not in_redis:
                self.records.forget(card.key)
        except _AWAY as exc:
            log.warning("PIN count of a card not cleared after a right PIN: %s", type(exc).__name__)

    def _give_back(self, card: PinCard, in_redis: bool) -> None:
        try:
            if in_redis:
                self._release(keys=[pin_key(card.key)])
            else:
                self.records.give_back(card.key)
        except _AWAY as exc:
            log.warning("unjudged PIN check not given back: %s", type(exc).__name__)

    def _emit(self, card: PinCard, call: CallInfo, failures: int, by: str, until: dt.datetime | None = None) -> None:
        self._events.emit("pin_locked", call_id=call.call_id, channel=call.channel, card=card.masked,
                          failures=str(failures), by=by, locked_until=until.isoformat() if until else "")

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)


def _texts(answer: list[object]) -> list[str]:
    return [a.decode() if isinstance(a, bytes) else str(a) for a in answer]
