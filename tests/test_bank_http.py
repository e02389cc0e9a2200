"""HttpBank against a real HTTP core-banking server speaking the documented protocol, and a caller
whose balance comes from that server, or who reaches an agent when it is away."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import redis

from bank.core_banking import HttpBank
from hotline.app import create_app, prepare
from hotline.settings import Settings
from ivr.services import Account, BankUnavailable, PinLocked
from routing.keys import EVENTS_STREAM
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, free_port
from tests.fakes.http_server import LocalHttpServer, Reply, SeenRequest
from tests.fakes.twilio_caller import TwilioCaller
from webhooks.fallbacks import SORRY_TEXTS

BANK_TOKEN = "core-bank-token-5f2c"
CARD, PIN, ID_LAST6 = "4111111111111111", "975310", "40102X"
TOKEN = "tok-7f3a9c"
BALANCE = "4321.09"
OTHER_CARD = "6011000990139424"


@dataclass
class CoreCard:
    token: str
    number: str
    pin: str
    id_last6: str
    balance: float
    status: str = "active"
    reference: str | None = None


class CoreBank:
    """The bank's core system as HttpBank's docstring describes it, behind a bearer token."""

    def __init__(self) -> None:
        self.cards = {TOKEN: CoreCard(TOKEN, CARD, PIN, ID_LAST6, float(BALANCE))}
        self.failure: int | None = None
        self.nonsense: bytes | None = None
        self.slow = False
        self.locked: set[str] = set()
        """Tokens whose PIN checks the core itself refuses (its own failure counter)."""
        self.release = threading.Event()
        self.http = LocalHttpServer(self._answer).start()

    @property
    def url(self) -> str:
        return self.http.url

    def _answer(self, request: SeenRequest) -> Reply:
        if self.slow:
            self.release.wait(10)
        if request.headers.get("authorization") != f"Bearer {BANK_TOKEN}":
            return Reply.json(401, {"error": "unauthorized"})
        if self.failure:
            return Reply(self.failure, b"core system error")
        if self.nonsense is not None:
            return Reply(200, self.nonsense, {"Content-Type": "application/json"})
        return self._route(request)

    def _route(self, request: SeenRequest) -> Reply:
        body = request.json() or {}
        if (request.method, request.path) == ("POST", "/cards/lookup"):
            card = next((c for c in self.cards.values() if c.number == body.get("card_number")), None)
            return Reply.json(200, {"token": card.token, "status": card.status}) if card else Reply(404)
        match = re.fullmatch(r"/cards/(?P<token>[^/]+)(?P<rest>/[a-z-]+)?", request.path)
        card = self.cards.get(match["token"]) if match else None
        if match is None or card is None:
            return Reply(404)
        action = (request.method, match["rest"])
        if action == ("GET", None):
            return Reply.json(200, {"balance": card.balance, "status": card.status})
        if action == ("POST", "/verify-pin"):
            if card.token in self.locked:
                return Reply.json(200, {"ok": False, "locked": True})
            return Reply.json(200, {"ok": body.get("pin") == card.pin})
        if action == ("POST", "/freeze"):
            if body.get("id_last6") != card.id_last6:
                return Reply.json(403, {"error": "id mismatch"})
            card.status, card.reference = "frozen", card.reference or "250101000042"
            return Reply.json(200, {"reference": card.reference})
        return Reply(404)


@pytest.fixture
def core() -> Iterator[CoreBank]:
    server = CoreBank()
    yield server
    server.release.set()
    server.http.stop()


@pytest.fixture
def bank(core: CoreBank) -> HttpBank:
    return HttpBank(core.url, BANK_TOKEN, timeout_s=0.5)


# -- the protocol ----------------------------------------------------------------------------

def test_lookup_finds_the_card_and_sends_the_bearer_token(bank: HttpBank, core: CoreBank) -> None:
    card = bank.lookup_card(CARD)

    assert card is not None and (card.token, card.status) == (TOKEN, "active")
    [request] = core.http.requests
    assert (request.method, request.path) == ("POST", "/cards/lookup")
    assert request.json() == {"card_number": CARD}
    assert request.headers["authorization"] == f"Bearer {BANK_TOKEN}"


def test_lookup_of_an_unknown_card_is_none(bank: HttpBank) -> None:
    assert bank.lookup_card(OTHER_CARD) is None


def test_verify_pin(bank: HttpBank) -> None:
    assert bank.verify_pin(TOKEN, PIN) is True
    assert bank.verify_pin(TOKEN, "000000") is False


def test_a_core_that_locked_the_card_says_so_even_for_the_right_pin(bank: HttpBank, core: CoreBank) -> None:
    core.locked.add(TOKEN)
    for pin in (PIN, "000000"):
        with pytest.raises(PinLocked):
            bank.verify_pin(TOKEN, pin)


def test_balance_and_status(bank: HttpBank, core: CoreBank) -> None:
    assert bank.account(TOKEN) == Account(Decimal(BALANCE), "active")
    core.cards[TOKEN].status = "closed"
    assert bank.account(TOKEN).status == "closed"


def test_freeze_gives_the_reference_and_a_mismatch_gives_none(bank: HttpBank, core: CoreBank) -> None:
    assert bank.freeze_card(TOKEN, "999999") is None
    assert core.cards[TOKEN].status == "active"

    reference = bank.freeze_card(TOKEN, ID_LAST6)

    assert reference == "250101000042"
    assert bank.account(TOKEN).status == "frozen"


# -- failures: BankUnavailable, and never a secret in what it says ------------------------------

Operation = Callable[[HttpBank], object]
OPERATIONS: dict[str, Operation] = {
    "lookup": lambda b: b.lookup_card(CARD),
    "verify_pin": lambda b: b.verify_pin(TOKEN, PIN),
    "account": lambda b: b.account(TOKEN),
    "freeze": lambda b: b.freeze_card(TOKEN, ID_LAST6),
}


def failing_bank(how: str, core: CoreBank) -> HttpBank:
    if how == "wrong token":
        return HttpBank(core.url, "not-the-token", timeout_s=0.5)
    if how == "no token":
        return HttpBank(core.url, None, timeout_s=0.5)
    if how == "down":
        return HttpBank(f"http://127.0.0.1:{free_port()}", BANK_TOKEN, timeout_s=0.5)
    if how == "http 500":
        core.failure = 500
    elif how == "timeout":
        core.slow = True
    return HttpBank(core.url, BANK_TOKEN, timeout_s=0.2)


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("how", ["wrong token", "no token", "http 500", "timeout", "down"])
def test_failures_are_bank_unavailable_without_secrets(how: str, operation: str, core: CoreBank) -> None:
    bank = failing_bank(how, core)

    with pytest.raises(BankUnavailable) as raised:
        OPERATIONS[operation](bank)

    said = f"{raised.value} {raised.value!r}"
    for secret in (CARD, PIN, ID_LAST6):
        assert secret not in said


@pytest.mark.parametrize("nonsense", [b"<html>gateway</html>", b"{}"])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_nonsense_answers_are_bank_unavailable(nonsense: bytes, operation: str, core: CoreBank,
                                               bank: HttpBank) -> None:
    core.nonsense = nonsense

    with pytest.raises(BankUnavailable) as raised:
        OPERATIONS[operation](bank)

    for secret in (CARD, PIN, ID_LAST6):
        assert secret not in f"{raised.value} {raised.value!r}"


# -- a caller, served by create_app/prepare with the HTTP bank ----------------------------------

def dial_in(settings: Settings) -> TwilioCaller:
    app = create_app(hotline=prepare(settings))
    app.testing = True
    return TwilioCaller(app.test_client(), AUTH_TOKEN, PUBLIC_URL)


def with_bank(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"bank_url": url, "bank_token": BANK_TOKEN, "bank_timeout_s": 0.3})


def test_caller_hears_the_balance_the_core_bank_returned(settings: Settings, core: CoreBank) -> None:
    caller = dial_in(with_bank(settings, core.url))

    caller.dial()
    caller.press("1")
    caller.press(CARD + "#")
    caller.press(PIN)

    assert "您的余额为4321.09元，卡片状态：正常。" in caller.said()
    paths = [r.path for r in core.http.requests]
    assert paths[:2] == ["/cards/lookup", f"/cards/{TOKEN}/verify-pin"]
    assert all(r.headers["authorization"] == f"Bearer {BANK_TOKEN}" for r in core.http.requests)


def test_caller_with_a_wrong_pin_is_told_so(settings: Settings, core: CoreBank) -> None:
    caller = dial_in(with_bank(settings, core.url))

    caller.dial()
    caller.press("1")
    caller.press(CARD + "#")
    caller.press("000000")

    assert "卡号或密码不正确。" in caller.said()
    assert not any("您的余额为" in text for text in caller.transcript)


@pytest.mark.parametrize("how", ["down", "http 500", "timeout", "nonsense"])
def test_caller_reaches_an_agent_when_the_core_bank_fails(how: str, settings: Settings, core: CoreBank) -> None:
    url = f"http://127.0.0.1:{free_port()}" if how == "down" else core.url
    core.failure = 500 if how == "http 500" else None
    core.slow = how == "timeout"
    core.nonsense = b"<html>gateway</html>" if how == "nonsense" else None
    caller = dial_in(with_bank(settings, url))

    caller.dial()
    caller.press("1")
    caller.press(CARD + "#")

    assert caller.verbs()[-1] == "Enqueue"
    assert caller.queue() == "inquiry:zh-CN"
    assert "正在为您转接人工服务，请稍候。" in caller.said()
    assert not SORRY_TEXTS & set(caller.transcript)


def test_caller_reaches_an_agent_when_the_core_bank_stops_answering_mid_call(
    settings: Settings, core: CoreBank,
) -> None:
    caller = dial_in(with_bank(settings, core.url))
    caller.dial()
    caller.press("1")
    caller.press(CARD + "#")
    assert caller.verb("Gather").attrib["numDigits"] == "6"

    core.slow = True
    caller.press(PIN)

    assert caller.queue() == "inquiry:zh-CN"
    assert not any("您的余额为" in text for text in caller.transcript)
    assert not SORRY_TEXTS & set(caller.transcript)


def test_a_card_the_core_locked_is_honoured_the_caller_hears_it_and_reaches_an_agent(
    settings: Settings, core: CoreBank, redis_url: str,
) -> None:
    """The core owns a counter of its own: its "locked" wins, and the hotline does not count it as a guess."""
    core.locked.add(TOKEN)
    caller = dial_in(with_bank(settings, core.url))

    caller.dial()
    caller.press("1")
    caller.press(CARD + "#")
    caller.press(PIN)

    assert caller.said()[0] == "为保护您的资金安全，该卡的密码验证已被暂停。正在为您转接人工服务。"
    assert caller.queue() == "inquiry:zh-CN"
    assert not any("您的余额为" in text for text in caller.transcript)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    (event,) = [f for _, f in client.xrange(EVENTS_STREAM) if f["type"] == "pin_locked"]
    assert (event["by"], event["card"]) == ("bank", "4111********1111")

    core.locked.clear()  # the core unlocked it: nothing of the hotline's own holds the caller back
    again = dial_in(with_bank(settings, core.url))
    again.dial()
    again.press("1")
    again.press(CARD + "#")
    again.press(PIN)
    assert "您的余额为4321.09元，卡片状态：正常。" in again.said()
