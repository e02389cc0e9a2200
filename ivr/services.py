"""Caller-facing services the engine calls by name, behind small interfaces.

The engine knows only ``ServiceTable.call(name, args, call)``; the composition root builds the
table from a core-banking client, a complaint intake and the business-hours clock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from ivr.masking import mask_digits, redact

log = logging.getLogger(__name__)

KNOWN_SKILLS = frozenset({"inquiry", "loss", "complaint", "general", "survey"})
ALWAYS_OPEN_SKILLS = frozenset({"loss"})
"""A lost card is reported at any hour."""
COMPLAINT_CATEGORIES = ("service", "fees", "card_account", "other")


@dataclass(frozen=True)
class CallInfo:
    call_id: str
    caller: str
    channel: str
    language: str
    vars: Mapping[str, str] = field(default_factory=dict)
    """The session's variables when the service is called (what earlier services answered)."""


@dataclass(frozen=True)
class ServiceResult:
    result: str
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Account:
    balance: Decimal
    status: str


@dataclass(frozen=True)
class Card:
    token: str
    """The core system's handle for the card: safe to keep; the number itself is not."""
    status: str


class Staffing(Protocol):
    """Whether anyone could answer a queue now (the skill router knows)."""

    def staffed(self, skill: str, language: str) -> bool: ...

    def answering_queue(self, skill: str, language: str) -> str | None:
        """The skill's own queue when one of its agents is logged in, else the queue it overflows to when one
        of those is; None: nobody."""
        ...

    def offers_callback(self, skill: str) -> bool:
        """The queue's configuration offers waiting callers a callback."""
        ...


class OpeningClock(Protocol):
    """When the agents work: the settings' daily hours (``BusinessHours``) or the admin's calendar."""

    def is_open(self, now: dt.datetime | None = None) -> bool: ...


class CoreBanking(Protocol):
    """The bank's core system, as the IVR needs it."""

    def lookup_card(self, card_number: str) -> Card | None: ...
    def verify_pin(self, token: str, pin: str) -> bool: ...
    def account(self, token: str) -> Account:
        """Balance and card status, in one request to the core."""
        ...
    def freeze_card(self, token: str, id_last6: str) -> str | None:
        """Freeze the card; return the reference number, or None when the ID digits do not match."""
        ...


class PinLocked(Exception):
    """The core system refuses PIN checks for this card (it keeps a failure counter of its own)."""


@dataclass(frozen=True)
class PinCard:
    """A card as the PIN-failure counter knows it: a keyed hash and a mask, never the number."""

    key: str
    masked: str


class PinGuard(Protocol):
    """Counts wrong PINs per card across calls, channels and processes, and stops the checks at a limit
    (``calls.pin_locks``). Both channels reach it through ``bank.verify_pin``."""

    def card_key(self, card_number: str) -> str:
        """The keyed hash that names a card for the counter."""
        ...

    def check(self, card: PinCard, call: CallInfo, verify: Callable[[], bool]) -> str:
        """``ok``, ``wrong_pin`` or ``locked``; ``verify`` (the core's check) runs only while the card is not locked."""
        ...


class ComplaintIntake(Protocol):
    def open_work_order(self, call: CallInfo, category: str, recording_ref: str) -> str:
        """Open a work order for a recorded complaint; return its number."""
        ...


@dataclass(frozen=True)
class VisitFacts:
    """What a return-visit survey tells the customer about their complaint."""

    visit_id: int
    work_order: str
    category: str
    language: str


class ReturnVisitDesk(Protocol):
    """The return visits, as the survey menu needs them."""

    def facts(self, visit_id: int) -> VisitFacts | None: ...
    def rate(self, visit_id: int, rating: int) -> str: ...
    def opt_out(self, visit_id: int) -> None: ...


class BankUnavailable(Exception):
    """The core-banking system did not answer in time or answered nonsense."""


ServiceFn = Callable[[list[str], CallInfo], ServiceResult]

SERVICE_SIGNATURES: dict[str, tuple[str, ...]] = {
    "bank.lookup_card": ("card_number",),
    "bank.verify_pin": ("card_token", "pin"),
    "bank.freeze_card": ("card_token", "id_last6"),
    "complaint.open": ("category", "recording"),
    "clock.business_hours": (),
    "queue.availability": ("skill",),
    "visit.load": ("visit",),
    "visit.rate": ("visit", "rating"),
    "visit.opt_out": ("visit",),
}
"""Every service a menu may name, with the arguments it takes."""


@dataclass(frozen=True)
class BusinessHours:
    timezone: str = "Asia/Shanghai"
    opens: dt.time = dt.time(8, 0)
    closes: dt.time = dt.time(22, 0)

    def is_open(self, now: dt.datetime | None = None) -> bool:
        local = (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(self.timezone))
        return self.opens <= local.time() < self.closes


class ServiceTable:
    """The explicit route table from service names to functions; failures become ``error``."""

    def __init__(
        self, bank: CoreBanking, complaints: ComplaintIntake, hours: OpeningClock,
        visits: ReturnVisitDesk | None = None, staffing: Staffing | None = None, pins: PinGuard | None = None,
        callback_channels: frozenset[str] = frozenset({"twilio"}),
    ) -> None:
        self._bank, self._complaints, self._hours, self._visits = bank, complaints, hours, visits
        self._staffing = staffing
        self._pins = pins
        self._callback_channels = callback_channels
        self._table: dict[str, ServiceFn] = {
            "bank.lookup_card": self._lookup_card,
            "bank.verify_pin": self._verify_pin,
            "bank.freeze_card": self._freeze_card,
            "complaint.open": self._open_complaint,
            "clock.business_hours": self._business_hours,
            "queue.availability": self._queue_availability,
            "visit.load": self._load_visit,
            "visit.rate": self._rate_visit,
            "visit.opt_out": self._opt_out,
        }
        assert self._table.keys() == SERVICE_SIGNATURES.keys()

    def call(self, name: str, args: list[str], call: CallInfo) -> ServiceResult:
        """Run service ``name``; any failure is logged (masked) and answered as ``error``."""
        try:
            return self._table[name](args, call)
        except Exception as exc:  # the menu's error branch is the caller-facing answer
            log.warning("service %s failed on call %s: %s", name, call.call_id, redact(repr(exc)))
            return ServiceResult("error")

    def _lookup_card(self, args: list[str], call: CallInfo) -> ServiceResult:
        number = args[0]
        card = self._bank.lookup_card(number)
        if card is None:
            return ServiceResult("not_found")
        found = {"card_token": card.token, "status": card.status}
        if self._pins is not None:  # the PIN check that follows counts its failures against this card
            found |= {"card_key": self._pins.card_key(number), "card_masked": mask_digits(number)}
        return ServiceResult("found", found)

    def _verify_pin(self, args: list[str], call: CallInfo) -> ServiceResult:
        token, pin = args

        def verify() -> bool:
            return self._bank.verify_pin(token, pin)

        if self._pins is not None:
            # A session from before the counter (no card_key yet) is counted by the core's token instead.
            card = PinCard(call.vars.get("card_key") or self._pins.card_key(f"token:{token}"),
                           call.vars.get("card_masked", ""))
            result = self._pins.check(card, call, verify)
        else:
            try:
                result = "ok" if verify() else "wrong_pin"
            except PinLocked:
                result = "locked"
        if result != "ok":
            return ServiceResult(result)
        account = self._bank.account(token)
        return ServiceResult("ok", {"balance": f"{account.balance:.2f}", "status": account.status})

    def _freeze_card(self, args: list[str], call: CallInfo) -> ServiceResult:
        reference = self._bank.freeze_card(*args)
        if reference is None:
            return ServiceResult("id_mismatch")
        return ServiceResult("frozen", {"reference": reference})

    def _open_complaint(self, args: list[str], call: CallInfo) -> ServiceResult:
        category, recording = args
        number = self._complaints.open_work_order(call, category, recording)
        return ServiceResult("opened", {"work_order": number})

    def _business_hours(self, args: list[str], call: CallInfo) -> ServiceResult:
        return ServiceResult("open" if self._hours.is_open() else "closed")

    def _queue_availability(self, args: list[str], call: CallInfo) -> ServiceResult:
        """Lost cards are taken day and night; other queues only in opening hours (not on holidays). With nobody
        of the skill logged in (for the caller's language) the caller is answered at once, never held in
        silence: ``overflow`` to the queue it overflows to when one of those agents is in (``queue`` says which),
        else ``callback`` when the queue offers callbacks and the channel can call back, else ``unstaffed``."""
        skill = args[0]
        if skill not in ALWAYS_OPEN_SKILLS and not self._hours.is_open():
            return ServiceResult("closed")
        if self._staffing is None:
            return ServiceResult("open", {"queue": skill})
        answering = self._staffing.answering_queue(skill, call.language)
        if answering == skill:
            return ServiceResult("open", {"queue": skill})
        if answering is not None:
            return ServiceResult("overflow", {"queue": answering})
        if self._staffing.offers_callback(skill) and call.channel in self._callback_channels:
            return ServiceResult("callback", {"queue": skill})
        return ServiceResult("unstaffed")

    def _visit_desk(self) -> ReturnVisitDesk:
        if self._visits is None:
            raise RuntimeError("return visits are not configured in this process")
        return self._visits

    def _load_visit(self, args: list[str], call: CallInfo) -> ServiceResult:
        facts = self._visit_desk().facts(int(args[0])) if args[0].isdigit() else None
        if facts is None:
            return ServiceResult("not_found")
        return ServiceResult("found", {"work_order": facts.work_order, "category": facts.category})

    def _rate_visit(self, args: list[str], call: CallInfo) -> ServiceResult:
        visit, rating = args
        self._visit_desk().rate(int(visit), int(rating))
        return ServiceResult("saved")

    def _opt_out(self, args: list[str], call: CallInfo) -> ServiceResult:
        self._visit_desk().opt_out(int(args[0]))
        return ServiceResult("done")
