"""How the demo bank keeps card numbers, PINs and ID digits: never in clear.

- A card number is found by a keyed hash (HMAC-SHA256 under the installation's secret): lookups need a
  value they can search for, and without the secret the numbers cannot be enumerated from the table.
- A PIN and the ID digits are checked against one known row, so they get a slow KDF with a salt of their own
  (scrypt over an HMAC of the value under the same secret): two cards with one PIN store different hashes,
  and a copy of the database alone (no secret) gives no way to test a guess.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from store.cooperative import in_thread_if_gevent

SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 13, 8, 1
"""8 MiB per check. Measured on the 2-core test machine while other test suites loaded it (load 3-5):
``DemoBank.verify_pin`` 25 ms at best, 34 ms median, 37 ms p90 (2^14 took twice that). 10^6 PINs then cost
about 7 core-hours even to someone who holds the secret; without it, no guess can be tested at all."""
_SALT_BYTES, _HASH_BYTES = 16, 16
_STORED = re.compile(r"^s(\d{1,2})r(\d{1,2})p(\d{1,2})\$([A-Za-z0-9_-]{22})\$([A-Za-z0-9_-]{22})$")
_LEGACY_KEY = b"hotline-demo-bank"
"""The constant key of hotlines before per-installation secrets: used only to find and re-hash their rows."""


class CardHasher:
    """Hashes under one installation secret (``HOTLINE_CARD_SECRET``, else generated into the data folder)."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"hotline demo bank: card hashes v1", hashlib.sha256).digest()

    def number(self, card_number: str) -> str:
        """The searchable keyed hash of a card number (64 hex digits)."""
        return hmac.new(self._key, b"number:" + _typed(card_number), hashlib.sha256).hexdigest()

    def secret(self, value: str) -> str:
        """A new salted slow hash of a PIN or ID tail: ``s13r8p1$<salt>$<hash>`` (53 characters)."""
        salt = secrets.token_bytes(_SALT_BYTES)
        derived = self._derive(value, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
        return f"s{SCRYPT_LOG2_N}r{SCRYPT_R}p{SCRYPT_P}${_b64(salt)}${_b64(derived)}"

    def matches(self, value: str, stored: str) -> bool:
        """Whether ``value`` is what ``stored`` was made from (constant time); False for any other format."""
        found = _STORED.match(stored)
        if found is None:
            return False
        log2_n, r, p = (int(found.group(i)) for i in (1, 2, 3))
        if not (10 <= log2_n <= 20 and 1 <= r <= 16 and p == 1):
            return False  # not a hash this code wrote: no memory-hungry parameters from a tampered row
        derived = self._derive(value, base64.urlsafe_b64decode(found.group(4) + "=="), log2_n, r, p)
        return hmac.compare_digest(derived, base64.urlsafe_b64decode(found.group(5) + "=="))

    def _derive(self, value: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
        peppered = hmac.new(self._key, b"secret:" + _typed(value), hashlib.sha256).digest()
        # ~30 ms of CPU with the GIL released: in the FastAGI process (gevent) on a native thread, so the other
        # calls are served meanwhile (on the hub it would stall them all).
        return in_thread_if_gevent(hashlib.scrypt, peppered, salt=salt, n=2**log2_n, r=r, p=p,
                                   maxmem=64 * 1024 * 1024, dklen=_HASH_BYTES)


def legacy_digest(value: str) -> str:
    """The hash an older hotline stored (one constant key, no salt): only to find its rows and hash them again."""
    return hmac.new(_LEGACY_KEY, _typed(value), hashlib.sha256).hexdigest()


def _typed(value: str) -> bytes:
    return value.replace("X", "*").encode()  # an X in an ID is typed with the star key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
