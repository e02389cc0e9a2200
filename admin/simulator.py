"""TRY IT: a phone call through a draft menu on the real engine, with services that change nothing.

The simulated call lives in Redis under its own key with a TTL, not in the browser: it keeps the
exact text the call began on (like a real call keeps its menu version) without the page sending the
YAML at every key, and a page cannot hand the engine a forged session (say, another card's token).
Nothing real happens: no card frozen, no work order, no router queue, no event on the stream.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from calls.keys import simulation_key
from ivr import actions as act
from ivr import events as ev
from ivr.engine import Engine
from ivr.loader import parse_menu
from ivr.model import InputNode, Menu
from ivr.services import (
    ALWAYS_OPEN_SKILLS,
    SERVICE_SIGNATURES,
    BusinessHours,
    CallInfo,
    CoreBanking,
    ReturnVisitDesk,
    ServiceResult,
)
from ivr.session import Session

SIM_TTL_S = 1800
MAX_KEYS = 64
_KEYS = re.compile(r"[^0-9*#]")
_references = itertools.count(1)


class NoSimulation(LookupError):
    """The simulated call ended long ago (TTL), or belongs to someone else."""


class DryRunServices:
    """The service names of ``ServiceTable``: reads look at the demo bank, writes only say what they would do."""

    def __init__(self, bank: CoreBanking, hours: BusinessHours, visits: ReturnVisitDesk | None) -> None:
        self._bank, self._hours, self._visits = bank, hours, visits
        self.effects: list[str] = []
        self._table: dict[str, Callable[[list[str]], ServiceResult]] = {
            "bank.lookup_card": self._lookup_card,
            "bank.verify_pin": self._verify_pin,
            "bank.freeze_card": self._freeze_card,
            "complaint.open": self._open_complaint,
            "clock.business_hours": self._business_hours,
            # a draft is tried against the clock, not the live floor: queues count as staffed
            "queue.availability": lambda args: ServiceResult(
                "open" if args[0] in ALWAYS_OPEN_SKILLS or self._hours.is_open() else "closed"),
            "visit.load": self._load_visit,
            "visit.rate": lambda args: self._wrote(f"would save rating {args[1]} for visit {args[0]}", "saved"),
            "visit.opt_out": lambda args: self._wrote(f"would stop calling for visit {args[0]}", "done"),
        }
        assert self._table.keys() == SERVICE_SIGNATURES.keys()

    def call(self, name: str, args: list[str], call: CallInfo) -> ServiceResult:
        try:
            outcome = self._table[name](args)
        except Exception as exc:  # as the real table: the menu's error branch answers the caller
            outcome = ServiceResult("error")
            self.effects.append(f"{name}: failed ({type(exc).__name__})")
        self.effects.append(f"{name} -> {outcome.result}")
        return outcome

    def _lookup_card(self, args: list[str]) -> ServiceResult:
        card = self._bank.lookup_card(args[0])
        if card is None:
            return ServiceResult("not_found")
        return ServiceResult("found", {"card_token": card.token, "status": card.status})

    def _verify_pin(self, args: list[str]) -> ServiceResult:
        token, pin = args
        if not self._bank.verify_pin(token, pin):
            return ServiceResult("wrong_pin")
        account = self._bank.account(token)
        return ServiceResult("ok", {"balance": f"{account.balance:.2f}", "status": account.status})

    def _freeze_card(self, args: list[str]) -> ServiceResult:
        reference = _fake_reference()
        return self._wrote("would freeze the card; simulated: nothing frozen", "frozen", reference=reference)

    def _open_complaint(self, args: list[str]) -> ServiceResult:
        return self._wrote(f"would open a {args[0]} work order; simulated: none opened", "opened",
                           work_order=_fake_reference())

    def _business_hours(self, args: list[str]) -> ServiceResult:
        return ServiceResult("open" if self._hours.is_open() else "closed")

    def _load_visit(self, args: list[str]) -> ServiceResult:
        facts = self._visits.facts(int(args[0])) if self._visits and args[0].isdigit() else None
        if facts is None:
            return ServiceResult("not_found")
        return ServiceResult("found", {"work_order": facts.work_order, "category": facts.category})

    def _wrote(self, what: str, result: str, **outputs: str) -> ServiceResult:
        self.effects.append(what)
        return ServiceResult(result, outputs)


def _fake_reference() -> str:
    return f"SIM-{next(_references):04d}"


@dataclass
class SimCall:
    """A simulated call as the page shows it."""

    id: str
    menu: str
    session: Session
    said: list[dict[str, str]] = field(default_factory=list)
    waiting: dict[str, Any] = field(default_factory=lambda: {"kind": "ended"})
    effects: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        s = self.session
        return {"id": self.id, "menu": self.menu, "node": s.node,
                "language": s.language, "said": self.said, "waiting": self.waiting, "effects": self.effects,
                "path": s.path, "vars": s.vars, "ended": s.ended, "outcome": s.outcome}


class Simulator:
    def __init__(self, client: redis.Redis, services: Callable[[], DryRunServices], ttl_s: int = SIM_TTL_S) -> None:
        self._redis, self._services, self._ttl = client, services, ttl_s

    def start(self, menu: Menu, source: str, owner: str) -> SimCall:
        """Dial into ``menu`` (already checked valid; ``source`` is its text, kept for the next steps)."""
        sim_id = secrets.token_urlsafe(12)
        services = self._services()
        call = ev.CallStarted(f"SIM-{sim_id}", "simulator", menu.name, "simulator")
        session, actions = Engine(services).start(menu, call)
        sim = _describe(SimCall(sim_id, menu.name, session), menu, actions, services)
        self._save(sim, source, owner)
        return sim

    def step(self, sim_id: str, owner: str, event: ev.Event) -> SimCall:
        """One thing the simulated caller did."""
        raw = self._redis.get(simulation_key(sim_id))
        stored = json.loads(raw) if raw else None
        if stored is None or stored["owner"] != owner:
            raise NoSimulation(f"no simulated call {sim_id} (calls end {self._ttl // 60} minutes after the last key)")
        menu = parse_menu(stored["source"]).model_copy(update={"version": stored["version"]})
        services = self._services()
        session, actions = Engine(services).step(menu, Session.from_json(stored["session"]), event)
        sim = _describe(SimCall(sim_id, menu.name, session), menu, actions, services)
        self._save(sim, stored["source"], owner)
        return sim

    def _save(self, sim: SimCall, source: str, owner: str) -> None:
        value = {"owner": owner, "source": source, "version": sim.session.menu_version,
                 "session": sim.session.to_json()}
        self._redis.set(simulation_key(sim.id), json.dumps(value, ensure_ascii=False), ex=self._ttl)


def event_of(body: dict[str, Any]) -> ev.Event:
    """The caller's move from the page: keys, silence, a recording, leaving the queue, hanging up."""
    kind = body.get("event")
    if kind == "keys":
        digits = _KEYS.sub("", str(body.get("digits") or ""))[:MAX_KEYS]
        return ev.Digits(digits) if digits else ev.Timeout()
    if kind == "timeout":
        return ev.Timeout()
    if kind == "hangup":
        return ev.Hangup()
    if kind == "recording":
        return ev.RecordingSaved("SIM-RECORDING", float(body.get("seconds") or 0))
    if kind == "queue":
        return ev.QueueResult(str(body.get("result") or "timeout"))
    raise ValueError("event must be keys, timeout, hangup, recording or queue")


def _describe(sim: SimCall, menu: Menu, actions: list[act.Action], services: DryRunServices) -> SimCall:
    sim.effects = list(services.effects)
    sim.waiting = {"kind": "ended"} if sim.session.ended else {"kind": "none"}
    for action in actions:
        _ACTIONS[type(action)](sim, menu, action)
    return sim


def _say(sim: SimCall, menu: Menu, action: act.Say) -> None:
    sim.said.append({"text": action.text, "language": action.language, "prompt_id": action.prompt_id})


def _gather(sim: SimCall, menu: Menu, action: act.Gather) -> None:
    for say in action.prompt:
        _say(sim, menu, say)
    node = menu.nodes.get(sim.session.node)
    sim.waiting = {"kind": "keys", "max_digits": action.max_digits, "min_digits": action.min_digits,
                   "finish_on_key": action.finish_on_key, "timeout_s": action.timeout_s,
                   "sensitive": isinstance(node, InputNode) and node.sensitive}


def _record(sim: SimCall, menu: Menu, action: act.Record) -> None:
    for say in action.prompt:
        _say(sim, menu, say)
    sim.effects.append(f"would record up to {action.max_seconds} s (ends on {action.finish_on_key or 'silence'})")
    sim.waiting = {"kind": "record", "max_seconds": action.max_seconds}


def _enqueue(sim: SimCall, menu: Menu, action: act.Enqueue) -> None:
    sim.effects.append(f"would queue the call for {', '.join(action.skills)} ({action.language}, priority "
                       f"{action.priority}); simulated: no agent is offered it")
    sim.waiting = {"kind": "queue", "skills": list(action.skills)}


def _transfer(sim: SimCall, menu: Menu, action: act.Transfer) -> None:
    sim.effects.append(f"would transfer the call to {action.target}")
    sim.waiting = {"kind": "transfer", "target": action.target}


def _hangup(sim: SimCall, menu: Menu, action: act.Hangup) -> None:
    sim.effects.append("hangs up")
    sim.waiting = {"kind": "ended"}


_ACTIONS: dict[type, Callable[[SimCall, Menu, Any], None]] = {
    act.Say: _say, act.Gather: _gather, act.Record: _record, act.Enqueue: _enqueue,
    act.Transfer: _transfer, act.Hangup: _hangup,
}
