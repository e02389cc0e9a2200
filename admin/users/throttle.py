"""Growing waits after failed logins (NIST SP 800-63B 5.2.2), kept in Redis so every web process sees them.

No hard lock: an attacker who guesses at an account can slow it down, never shut its owner out.

- per account and address: after ``pair_free`` failures from one address, that address waits 1 s, 2 s, 4 s ...
  (up to ``max_wait_s``) before its next try at that account;
- per account: after ``account_free`` failures from anywhere, addresses the account never logged in from
  wait the same way; an address the owner logged in from within ``KNOWN_S`` is spared that wait, so a
  guesser elsewhere cannot keep the owner out;
- per address: after ``address_free`` failures at any accounts, that address waits (password spraying).

Tries made while an address must wait are refused unchecked and not counted. Counts are forgotten
``window_s`` after the last failure, or when an admin clears the account.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

KNOWN_S = 30 * 86400
"""How long an address the owner logged in from stays spared the account-wide wait."""


@dataclass(frozen=True)
class ThrottleRules:
    pair_free: int = 3
    account_free: int = 10
    address_free: int = 30
    base_s: float = 1.0
    max_wait_s: float = 900.0
    window_s: float = 86400.0


def delay(failures: int, free: int, rules: ThrottleRules) -> float:
    """How long to wait after the ``failures``-th failure: nothing for the first ``free - 1``, then doubling."""
    if failures < free:
        return 0.0
    return float(min(rules.max_wait_s, rules.base_s * 2 ** min(failures - free, 40)))


class LoginThrottle:
    def __init__(self, client: redis.Redis, prefix: str = "hotline", rules: ThrottleRules | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis, self.prefix, self.clock = client, f"{prefix}:login", clock
        self.rules = rules or ThrottleRules()

    def wait_s(self, name: str, address: str) -> float:
        """Seconds ``address`` must still wait before its next try at ``name`` (0: it may try now)."""
        account, addr, known = self._keys(name, address)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(account, "n", "last", f"n:{address}", f"last:{address}")
        pipe.hmget(addr, "n", "last")
        pipe.zscore(known, address)
        (n, last, pair_n, pair_last), (addr_n, addr_last), known_at = pipe.execute()
        now, rules = self.clock(), self.rules
        waits = [_left(pair_n, pair_last, rules.pair_free, rules, now),
                 _left(addr_n, addr_last, rules.address_free, rules, now)]
        if known_at is None or now - float(known_at) > KNOWN_S:
            waits.append(_left(n, last, rules.account_free, rules, now))
        return max(waits)

    def account_wait_s(self, name: str) -> float:
        """The account-wide wait new addresses face now (what an admin sees as "throttled")."""
        n, last = self.redis.hmget(self._keys(name, "")[0], "n", "last")
        return _left(n, last, self.rules.account_free, self.rules, self.clock())

    def failed(self, name: str, address: str, counted: bool = True) -> None:
        """A refused try; ``counted=False`` (refused unchecked while waiting) only keeps the counts alive, with
        the same round trip, so a refusal takes as long whichever reason it had."""
        account, addr, _ = self._keys(name, address)
        now, keep = f"{self.clock():.3f}", int(self.rules.window_s)
        pipe = self.redis.pipeline(transaction=False)
        if counted:
            pipe.hincrby(account, "n", 1)
            pipe.hincrby(account, f"n:{address}", 1)
            pipe.hset(account, mapping={"last": now, f"last:{address}": now})
            pipe.hincrby(addr, "n", 1)
            pipe.hset(addr, "last", now)
        pipe.expire(account, keep)
        pipe.expire(addr, keep)
        pipe.execute()

    def succeeded(self, name: str, address: str) -> None:
        """The owner is in: this address's own count starts over and it is spared the account-wide wait."""
        account, _, known = self._keys(name, address)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hdel(account, f"n:{address}", f"last:{address}")
        pipe.zadd(known, {address: self.clock()})
        pipe.expire(known, KNOWN_S)
        pipe.execute()

    def clear(self, name: str) -> None:
        """An admin lifts every wait on the account."""
        self.redis.delete(self._keys(name, "")[0])

    def _keys(self, name: str, address: str) -> tuple[str, str, str]:
        # Names and addresses come from anyone: hashed, so a key's size and shape never depend on them.
        who, where = (hashlib.sha256(text.encode()).hexdigest()[:32] for text in (name, address))
        return f"{self.prefix}:account:{who}", f"{self.prefix}:address:{where}", f"{self.prefix}:known:{who}"


def _left(failures: bytes | str | None, last: bytes | str | None, free: int, rules: ThrottleRules,
          now: float) -> float:
    if failures is None or last is None:
        return 0.0
    wait = delay(int(failures), free, rules)
    # No wait due is none at all: ``last`` is stored rounded, up to half a millisecond after ``now``.
    return max(0.0, float(last) + wait - now) if wait > 0 else 0.0
