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
from flask_babel import gettext as _

from calls.keys import simulation_key
from ivr import actions as act
from ivr import events as ev
from ivr.engine import Engine
from ivr.loader import parse_menu
from ivr.model import InputNode, Menu
from ivr.services import (
    Account,
    CallInfo,
    Card,
    CoreBanking,
    OpeningClock,
    ReturnVisitDesk,
    ServiceResult,
    ServiceTable,
    VisitFacts,
)
from ivr.session import Session

SIM_TTL_S = 1800
MAX_KEYS = 64
_KEYS = re.compile(r"[^0-9*#]")
_references = itertools.count(1)


class NoSimulation(LookupError):
    """The simulated call ended long ago (TTL), or belongs to someone else."""


class DryRunServices:
    """The real ``ServiceTable`` with dry-run parts swapped in: reads look at the bank and the return visits,
    writes (a freeze, a work order, a rating) only say what they would do. Queues count as staffed: a draft is
    tried against the clock, not the live floor."""

    def __init__(self, bank: CoreBanking, hours: OpeningClock, visits: ReturnVisitDesk | None) -> None:
        self.effects: list[str] = []
        self._table = ServiceTable(_DryBank(bank, self.effects), _DryIntake(self.effects), hours,
                                   _DryVisits(visits, self.effects) if visits is not None else None)

    def call(self, name: str, args: list[str], call: CallInfo) -> ServiceResult:
        outcome = self._table.call(name, args, call)
        self.effects.append(_("service %(service)s answered “%(result)s”", service=name, result=outcome.result))
        return outcome


class _DryBank:
    """Looks cards up and checks PINs on the real bank; freezes nothing."""

    def __init__(self, bank: CoreBanking, effects: list[str]) -> None:
        self._bank, self._effects = bank, effects

    def lookup_card(self, card_number: str) -> Card | None:
        return self._bank.lookup_card(card_number)

    def verify_pin(self, token: str, pin: str) -> bool:
        return self._bank.verify_pin(token, pin)

    def account(self, token: str) -> Account:
        return self._bank.account(token)

    def freeze_card(self, token: str, id_last6: str) -> str | None:
        self._effects.append("would freeze the card; simulated: nothing frozen")
        return _fake_reference()


class _DryIntake:
    def __init__(self, effects: list[str]) -> None:
        self._effects = effects

    def open_work_order(self, call: CallInfo, category: str, recording_ref: str) -> str:
        self._effects.append(_("would open a %(category)s work order; simulated: none opened", category=category))
        return _fake_reference()


class _DryVisits:
    """Reads a return visit's facts; stores no rating and no opt-out."""

    def __init__(self, visits: ReturnVisitDesk, effects: list[str]) -> None:
        self._visits, self._effects = visits, effects

    def facts(self, visit_id: int) -> VisitFacts | None:
        return self._visits.facts(visit_id)

    def rate(self, visit_id: int, rating: int) -> str:
        self._effects.append(_("would save rating %(rating)s for visit %(visit)s", rating=rating, visit=visit_id))
        return "saved"

    def opt_out(self, visit_id: int) -> None:
        self._effects.append(_("would stop calling for visit %(visit)s", visit=visit_id))


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
            raise NoSimulation(_("no simulated call %(sim)s (calls end %(minutes)s minutes after the last key)",
                                   sim=sim_id, minutes=self._ttl // 60))
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
    raise ValueError(_("event must be keys, timeout, hangup, recording or queue"))


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
    sim.effects.append(_("would record up to %(s)s s (ends on %(key)s)", s=action.max_seconds,
                          key=action.finish_on_key or _("silence")))
    sim.waiting = {"kind": "record", "max_seconds": action.max_seconds}


def _enqueue(sim: SimCall, menu: Menu, action: act.Enqueue) -> None:
    sim.effects.append(_("would queue the call for %(skills)s (%(language)s, priority %(priority)s); simulated: no "
                         "agent is offered it", skills=", ".join(action.skills), language=action.language,
                         priority=action.priority))
    sim.waiting = {"kind": "queue", "skills": list(action.skills)}


def _transfer(sim: SimCall, menu: Menu, action: act.Transfer) -> None:
    sim.effects.append(_("would transfer the call to %(target)s", target=action.target))
    sim.waiting = {"kind": "transfer", "target": action.target}


def _hangup(sim: SimCall, menu: Menu, action: act.Hangup) -> None:
    sim.effects.append("hangs up")
    sim.waiting = {"kind": "ended"}


_ACTIONS: dict[type, Callable[[SimCall, Menu, Any], None]] = {
    act.Say: _say, act.Gather: _gather, act.Record: _record, act.Enqueue: _enqueue,
    act.Transfer: _transfer, act.Hangup: _hangup,
}
