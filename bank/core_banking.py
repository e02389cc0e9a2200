"""Core-banking clients: the embedded demo bank on SQL, and an HTTP client for a real core."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from sqlalchemy import CursorResult, Engine, Row, Select, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from bank.card_hashes import CardHasher, legacy_digest
from ivr.services import Account, BankUnavailable, Card, PinLocked
from store.models import CardFreeze, DemoCard


@dataclass(frozen=True)
class DemoCardSeed:
    number: str
    pin: str
    id_last6: str
    balance: Decimal
    status: str = "active"


DEMO_CARDS = (
    DemoCardSeed("6222021234567894", "123456", "12345X", Decimal("12345.67")),
    DemoCardSeed("6228480012345671", "654321", "888888", Decimal("88.00")),
    DemoCardSeed("622202123456789012", "111111", "000123", Decimal("0.00"), status="frozen"),
)
"""The demo cards the README lists (X in an ID is typed as *)."""

_CARD_BY_NUMBER = select(DemoCard.token, DemoCard.status).where(DemoCard.number_hash == bindparam("number_hash"))
_PIN_OF = select(DemoCard.pin_hash).where(DemoCard.token == bindparam("token"))
_ACCOUNT_OF = select(DemoCard.balance, DemoCard.status).where(DemoCard.token == bindparam("token"))


_SEEDED: dict[tuple[str, DemoCardSeed], tuple[str, str]] = {}
"""Salted hashes of demo cards this process made, by the card's keyed number hash (so per secret) and seed: a
process seeding several databases of one installation (tests, the simulator) pays the slow KDF once per card."""


def _seed_hashes(hashes: CardHasher, card: DemoCardSeed, number_hash: str) -> tuple[str, str]:
    key = (number_hash, card)
    if key not in _SEEDED:
        _SEEDED[key] = (hashes.secret(card.pin), hashes.secret(card.id_last6))
    return _SEEDED[key]


class DemoBank:
    """A tiny core system on the SQL store, so the whole menu works out of the box.

    It keeps no PIN-failure counter of its own: the hotline's (``calls.pin_locks``) stands in front of it.
    """

    def __init__(self, sessions: sessionmaker[Session], secret: str) -> None:
        self._sessions = sessions
        self._engine: Engine = sessions.kw["bind"]
        self._hashes = CardHasher(secret)

    def seed(self, cards: tuple[DemoCardSeed, ...] = DEMO_CARDS) -> None:
        """Add the demo cards that are not there yet; rows an older hotline hashed with its constant key are
        hashed again under this installation's secret (same token, balance and status)."""
        with self._engine.connect() as conn:
            known = set(conn.execute(select(DemoCard.number_hash)).scalars())
        missing = [(card, self._hashes.number(card.number)) for card in cards]
        missing = [(card, number_hash) for card, number_hash in missing if number_hash not in known]
        if not missing:
            return
        # The slow hashes before the transaction: no connection idles in one for seconds (PostgreSQL).
        secrets_of = {h: _seed_hashes(self._hashes, c, h) for c, h in missing}
        with self._sessions.begin() as db:
            rows = {row.number_hash: row for row in db.scalars(select(DemoCard))}
            for card, number_hash in missing:
                if number_hash in rows:
                    continue  # another process seeded it meanwhile
                row = rows.get(legacy_digest(card.number))
                if row is None:
                    row = DemoCard(token=secrets.token_hex(8), last4=card.number[-4:], balance=card.balance,
                                   status=card.status)
                    db.add(row)
                row.number_hash = number_hash
                row.pin_hash, row.id_last6_hash = secrets_of[number_hash]

    # Reads sit on the caller's webhook path: plain connections and statements built once
    # (building a select() costs three times what running it does on SQLite).

    def lookup_card(self, card_number: str) -> Card | None:
        row = self._first(_CARD_BY_NUMBER, number_hash=self._hashes.number(card_number))
        return Card(row.token, row.status) if row else None

    def verify_pin(self, token: str, pin: str) -> bool:
        row = self._first(_PIN_OF, token=token)
        if row is None:
            raise LookupError("unknown card token")
        return self._hashes.matches(pin, row.pin_hash)

    def account(self, token: str) -> Account:
        row = self._first(_ACCOUNT_OF, token=token)
        if row is None:
            raise LookupError("unknown card token")
        return Account(Decimal(row.balance), row.status)

    def freeze_card(self, token: str, id_last6: str) -> str | None:
        with self._sessions.begin() as db:
            row = db.get(DemoCard, token, with_for_update=True)
            if row is None or not self._hashes.matches(id_last6, row.id_last6_hash):
                return None
            if row.status == "frozen" and row.freeze_reference:
                return row.freeze_reference
            reference = time.strftime("%y%m%d") + f"{secrets.randbelow(10**6):06d}"
            # Compare-and-set: SQLite ignores FOR UPDATE, so two reports at once must not both win.
            # An UPDATE without RETURNING gives a CursorResult; Session.execute is typed Result (SQLAlchemy: cast).
            claimed = cast(CursorResult[Any], db.execute(
                update(DemoCard)
                .where(DemoCard.token == token, DemoCard.freeze_reference.is_(None))
                .values(status="frozen", freeze_reference=reference)
                .execution_options(synchronize_session=False)
            )).rowcount
            if not claimed:
                return db.scalar(select(DemoCard.freeze_reference).where(DemoCard.token == token))
            db.add(CardFreeze(token=token, reference=reference))
            return reference

    def _first(self, statement: Select[*tuple[Any, ...]], **params: str) -> Row[*tuple[Any, ...]] | None:
        with self._engine.connect() as conn:
            return conn.execute(statement, params).first()


class HttpBank:
    """A real core system over HTTP+JSON with a bearer token and short timeouts.

    POST {base}/cards/lookup {"card_number"} -> 200 {"token","status"} | 404
    POST {base}/cards/{token}/verify-pin {"pin"} -> 200 {"ok": bool, "locked": bool (optional)}
    GET  {base}/cards/{token} -> 200 {"balance","status"}
    POST {base}/cards/{token}/freeze {"id_last6"} -> 200 {"reference"} | 403 (ID mismatch)

    Who counts wrong PINs: the hotline always does (``calls.pin_locks``: per card, across calls, channels
    and processes), before the core is asked. A core that keeps its own counter answers
    ``{"ok": false, "locked": true}`` once it refuses PIN checks for the card; the hotline then tells the
    caller the card is locked and puts them through to an agent, without counting a failure of its own.
    """

    def __init__(self, base_url: str, token: str | None, timeout_s: float = 3.0) -> None:
        self._base = base_url.rstrip("/")
        self._http = requests.Session()
        if token:
            self._http.headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout_s

    def lookup_card(self, card_number: str) -> Card | None:
        reply = self._call("POST", "/cards/lookup", {"card_number": card_number}, ok=(200, 404))
        if reply.status_code == 404:
            return None
        token, status = _fields(reply, "token", "status")
        return Card(str(token), str(status))

    def verify_pin(self, token: str, pin: str) -> bool:
        """Raises ``PinLocked`` when the core refuses PIN checks for this card (its own counter)."""
        reply = self._call("POST", f"/cards/{token}/verify-pin", {"pin": pin})
        (ok,) = _fields(reply, "ok")
        if ok is not True and _optional(reply, "locked") is True:
            raise PinLocked("the core system locked PIN checks for this card")
        return ok is True  # a stray "false" string must not let a caller in

    def account(self, token: str) -> Account:
        balance, status = _fields(self._call("GET", f"/cards/{token}"), "balance", "status")
        try:
            return Account(Decimal(str(balance)), str(status))
        except ArithmeticError:
            raise BankUnavailable(f"GET /cards/{token}: balance is not a number") from None

    def freeze_card(self, token: str, id_last6: str) -> str | None:
        reply = self._call("POST", f"/cards/{token}/freeze", {"id_last6": id_last6}, ok=(200, 403))
        if reply.status_code == 403:
            return None
        (reference,) = _fields(reply, "reference")
        return str(reference)

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, ok: tuple[int, ...] = (200,)
    ) -> requests.Response:
        try:
            reply = self._http.request(method, self._base + path, json=body, timeout=self._timeout)
        except requests.RequestException as exc:
            # Say what failed without the request body (it holds the card number or PIN).
            raise BankUnavailable(f"{method} {path}: {type(exc).__name__}") from None
        if reply.status_code not in ok:
            raise BankUnavailable(f"{method} {path}: HTTP {reply.status_code}")
        return reply


def _optional(reply: requests.Response, name: str) -> object:
    body = reply.json()  # already parsed once by _fields: it is a JSON object
    return body.get(name) if isinstance(body, dict) else None


def _fields(reply: requests.Response, *names: str) -> list[object]:
    """The named fields of a JSON object answer; anything else is the core answering nonsense."""
    try:
        body = reply.json()
        return [body[name] for name in names]
    except (ValueError, KeyError, TypeError):
        method, path = reply.request.method, urlsplit(reply.request.url or "").path
        raise BankUnavailable(f"{method} {path}: HTTP {reply.status_code} without {', '.join(names)}") from None
