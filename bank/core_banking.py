"""Core-banking clients: the embedded demo bank on SQL, and an HTTP client for a real core."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from sqlalchemy import CursorResult, Engine, Row, Select, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from ivr.services import Account, BankUnavailable, Card
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

_SALT = b"hotline-demo-bank"
_CARD_BY_NUMBER = select(DemoCard.token, DemoCard.status).where(DemoCard.number_hash == bindparam("number_hash"))
_PIN_OF = select(DemoCard.pin_hash).where(DemoCard.token == bindparam("token"))
_ACCOUNT_OF = select(DemoCard.balance, DemoCard.status).where(DemoCard.token == bindparam("token"))


def _digest(value: str) -> str:
    return hmac.new(_SALT, value.replace("X", "*").encode(), hashlib.sha256).hexdigest()


class DemoBank:
    """A tiny core system on the SQL store, so the whole menu works out of the box."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._engine: Engine = sessions.kw["bind"]

    def seed(self, cards: tuple[DemoCardSeed, ...] = DEMO_CARDS) -> None:
        """Add the demo cards that are not there yet."""
        with self._sessions.begin() as db:
            known = set(db.scalars(select(DemoCard.number_hash)))
            for card in cards:
                if _digest(card.number) not in known:
                    db.add(DemoCard(
                        token=secrets.token_hex(8), number_hash=_digest(card.number),
                        pin_hash=_digest(card.pin), id_last6_hash=_digest(card.id_last6),
                        last4=card.number[-4:], balance=card.balance, status=card.status,
                    ))

    # Reads sit on the caller's webhook path: plain connections and statements built once
    # (building a select() costs three times what running it does on SQLite).

    def lookup_card(self, card_number: str) -> Card | None:
        row = self._first(_CARD_BY_NUMBER, number_hash=_digest(card_number))
        return Card(row.token, row.status) if row else None

    def verify_pin(self, token: str, pin: str) -> bool:
        row = self._first(_PIN_OF, token=token)
        if row is None:
            raise LookupError("unknown card token")
        return hmac.compare_digest(row.pin_hash, _digest(pin))

    def account(self, token: str) -> Account:
        row = self._first(_ACCOUNT_OF, token=token)
        if row is None:
            raise LookupError("unknown card token")
        return Account(Decimal(row.balance), row.status)

    def freeze_card(self, token: str, id_last6: str) -> str | None:
        with self._sessions.begin() as db:
            row = db.get(DemoCard, token, with_for_update=True)
            if row is None or not hmac.compare_digest(row.id_last6_hash, _digest(id_last6)):
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
    POST {base}/cards/{token}/verify-pin {"pin"} -> 200 {"ok": bool}
    GET  {base}/cards/{token} -> 200 {"balance","status"}
    POST {base}/cards/{token}/freeze {"id_last6"} -> 200 {"reference"} | 403 (ID mismatch)
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
        (ok,) = _fields(self._call("POST", f"/cards/{token}/verify-pin", {"pin": pin}), "ok")
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


def _fields(reply: requests.Response, *names: str) -> list[object]:
    """The named fields of a JSON object answer; anything else is the core answering nonsense."""
    try:
        body = reply.json()
        return [body[name] for name in names]
    except (ValueError, KeyError, TypeError):
        method, path = reply.request.method, urlsplit(reply.request.url or "").path
        raise BankUnavailable(f"{method} {path}: HTTP {reply.status_code} without {', '.join(names)}") from None
