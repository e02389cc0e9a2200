"""What the agent console shows and does: the agent's state, the call offered or taken, the wrap-up.

The router forgets a call when it ends, so the console keeps the card of the agent's last call
(masked caller, intent, IVR path, open work orders) in one Redis hash per agent until its wrap-up is
submitted, with the draft of the form the agent is typing (a reload or a crashed browser loses nothing).
The wrap-up lasts until the agent submits it: the queue's wrap-up time is only a countdown, which the
agent may extend up to the router's cap, and the router offers nothing to an agent in wrap-up.

Accepting in the console is ``Router.accept``: the offer stops timing out while the agent's phone rings
on; the phone's pick-up answers the call as without a console. A phone that never picks up puts the call
back at its place in line, as any unanswered offer: the caller never loses it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import redis
from flask_babel import gettext as _
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from calls.connector import OfferConnector
from complaints.work_orders import WORKING
from ivr.masking import redact
from routing.agents import AgentRegistry
from routing.events import EventLog
from routing.exceptions import BadState, NotOffered, RouterError
from routing.router import CallView, Ended, Router
from store.models import CallDisposition, CallRecord, WorkOrder

DISPOSITIONS = ("resolved", "follow_up", "complaint_opened", "transferred", "wrong_number", "other")
NOT_READY_REASONS: tuple[str, ...] = ("break", "lunch", "meeting", "training", "coaching", "other")
CARD_TTL_S = 24 * 3600
DECLINED = "declined"
"""The disposition row a declined offer leaves (not one the agent picks)."""
NOT_SUBMITTED = "not_submitted"
"""The disposition row of a wrap-up never submitted, its draft notes kept, when the next call's card replaces it."""
EXTEND_MAX_S = 600


class OpenWorkOrder(BaseModel):
    number: str
    status: str
    category: str
    created_at: str | None


class CallCard(BaseModel):
    """One call as the agent sees it: never the caller's full number."""

    call_id: str
    channel: str
    caller: str
    verified: bool | None
    intent: str
    queue: str
    ivr_path: list[dict[str, Any]]
    waited_s: float
    work_orders: list[OpenWorkOrder]
    accepted: bool = False
    """Accepted on screen: the agent's phone is ringing for them to pick up."""


class OnCall(BaseModel):
    """Where the agent's connected call stands, for the call controls after a page reload."""

    on_hold: bool
    transfer_to: str
    """The agent or supervisor consulted in a warm transfer under way ('' when none)."""


class AgentStatus(BaseModel):
    id: str
    name: str
    state: str
    since: float | None
    reason: str
    wrap_until: float | None
    """The end of the wrap-up countdown: past it, the agent stays in wrap-up until they submit."""
    wrap_max_until: float | None
    """How far the agent may extend the countdown."""
    calls_today: int


class WrapDraft(BaseModel):
    """What the agent typed into the wrap-up form so far (notes masked like the submitted ones)."""

    code: str
    notes: str


class ConsoleView(BaseModel):
    agent: AgentStatus
    offer: CallCard | None
    call: CallCard | None
    wrap_up: CallCard | None
    """The last call, waiting for its disposition."""
    wrap_draft: WrapDraft | None = None
    on_call: OnCall | None = None
    """Hold and warm transfer of the connected call (with ``call``)."""
    dispositions: list[str]
    not_ready_reasons: list[str]
    now: float = 0
    """The server's clock (Unix seconds): the page counts down and up against it, not the browser's."""


class ConsoleRefused(Exception):
    """The agent cannot do that now; the message says why (answered 409)."""


class NoAgent(LookupError):
    """The user's agent id is not set up in the router."""


@dataclass(frozen=True)
class ConsoleDeps:
    """What the agent console works with, and nothing more."""

    agents: AgentRegistry
    router: Router
    connector: OfferConnector
    redis: redis.Redis
    sql: sessionmaker[Session]
    events: EventLog
    ring_timeout_s: float


class Console:
    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps

    def view(self, agent_id: str) -> ConsoleView:
        agent = self.deps.agents.get(agent_id)
        if agent is None:
            raise NoAgent(_("agent %(agent_id)s is not set up in the router: ask an admin to add it",
                            agent_id=agent_id))
        # stamped before anything is read: the page drops a view older than the one it shows (a POST's answer
        # may arrive after the stream's newer event)
        now = self.deps.router.clock()
        self.deps.router.mark_console_agent(agent_id)  # their wrap-ups now wait for this page's form
        kept = self._kept(agent_id)
        card = _card(kept)
        live = None
        if agent.call and agent.state in ("offered", "busy"):
            if card is None or card.call_id != agent.call:
                view = self.deps.router.call(agent.call)
                card = self._remember(agent_id, view) if view else None
            elif agent.state == "busy" and kept.get("answered") != "1":
                self._key_set(agent_id, answered="1")
            live = card
        waiting = card is not None and card is not live and (kept.get("answered") == "1" or agent.state == "wrap_up")
        draft = None
        if waiting and card is not None and kept.get("draft_call") == card.call_id:
            draft = WrapDraft(code=kept.get("draft_code", ""), notes=kept.get("draft_notes", ""))
        wrapping = agent.state == "wrap_up"
        return ConsoleView(
            agent=AgentStatus(id=agent.id, name=agent.name, state=agent.state, since=agent.since,
                              # the router's reason first: a supervisor may have set it from the dashboard
                              reason=(agent.reason or kept.get("reason", "")) if agent.state == "not_ready" else "",
                              wrap_until=agent.wrap_until if wrapping else None,
                              wrap_max_until=(agent.since or 0) + self.deps.router.wrapup_max_s if wrapping else None,
                              calls_today=agent.calls_today),
            offer=live if agent.state == "offered" else None, call=live if agent.state == "busy" else None,
            wrap_up=card if waiting else None, wrap_draft=draft, dispositions=list(DISPOSITIONS),
            on_call=self._on_call(agent_id, agent.call) if agent.state == "busy" and agent.call else None,
            not_ready_reasons=list(NOT_READY_REASONS), now=now,
        )

    def _on_call(self, agent_id: str, call_id: str) -> OnCall | None:
        view = self.deps.router.call(call_id)
        if view is None or view.agent != agent_id:
            return None
        return OnCall(on_hold=view.fields.get("on_hold") == "1", transfer_to=view.fields.get("consult_agent", ""))

    def set_state(self, agent_id: str, state: str, reason: str) -> None:
        """available / not_ready (with a reason) / offline (logged out)."""
        if state == "not_ready" and not reason:
            raise ValueError(_("not ready needs a reason: one of %(not_ready_reasons)s",
                               not_ready_reasons=", ".join(NOT_READY_REASONS)))
        h = self.deps
        if state == "available" and (pending := self.view(agent_id).wrap_up) is not None:
            # taking calls again would let the next call's card replace this one, notes unsent
            raise ConsoleRefused(_("submit the wrap-up of call %(call_id)s first", call_id=pending.call_id))
        h.connector.connect(h.router.set_agent_state(agent_id, state, reason or "console"))
        self._key_set(agent_id, reason=reason if state == "not_ready" else "")

    def accept(self, agent_id: str, call_id: str) -> None:
        router = self.deps.router
        try:
            router.accept(call_id, agent_id, self.deps.ring_timeout_s)
        except NotOffered:
            raise ConsoleRefused(_("call %(call_id)s is not offered to you (any more)", call_id=call_id)) from None
        view = router.call(call_id)
        if view is not None:
            self._remember(agent_id, view)

    def decline(self, agent_id: str, call_id: str) -> None:
        """The call goes back to its place in line and to the next agent; this agent is not ready."""
        h = self.deps
        view = h.router.call(call_id)
        if view is None or view.state != "offered" or view.agent != agent_id:
            raise ConsoleRefused(_("call %(call_id)s is not offered to you (any more)", call_id=call_id))
        offers = h.router.reject(call_id, agent_id, "declined")
        h.connector.cancel(Ended([], agent_id, view.fields.get("agent_leg") or None))
        h.connector.connect(offers)
        with h.sql.begin() as db:  # the call's record says who let it go, as a wrap-up would
            db.add(CallDisposition(call_id=call_id, agent_id=agent_id, code=DECLINED, notes=""))
        h.events.emit("call_disposition", call_id=call_id, agent=agent_id, code=DECLINED)
        h.redis.hdel(self._key(agent_id), "card", "call_id", "answered")
        self._key_set(agent_id, reason="declined a call")

    def save_draft(self, agent_id: str, call_id: str, code: str, notes: str) -> None:
        """Keep what the agent typed into the wrap-up form of ``call_id`` (masked, as the submitted notes)."""
        card = self.view(agent_id).wrap_up
        if card is None or card.call_id != call_id:
            raise ConsoleRefused(_("call %(call_id)s is not waiting for your wrap-up", call_id=call_id))
        self._key_set(agent_id, draft_call=call_id, draft_code=code if code in DISPOSITIONS else "",
                      draft_notes=redact(notes)[:4000])

    def extend_wrap_up(self, agent_id: str, seconds: float) -> float:
        """More time on the wrap-up countdown (the router caps it); returns its new end."""
        if not 0 < seconds <= EXTEND_MAX_S:
            raise ValueError(_("extend by 1 to %(most)s seconds", most=EXTEND_MAX_S))
        try:
            return self.deps.router.extend_wrap_up(agent_id, seconds)
        except BadState:
            raise ConsoleRefused(_("you are not in wrap-up")) from None

    def wrap_up(self, agent_id: str, call_id: str, code: str, notes: str) -> bool:
        """Store the disposition of the agent's last call; ends the wrap-up. True if the agent is available."""
        if code not in DISPOSITIONS:
            raise ValueError(_("disposition %(code)r: one of %(dispositions)s",
                               code=code, dispositions=", ".join(DISPOSITIONS)))
        card = self.view(agent_id).wrap_up
        if card is None or card.call_id != call_id:
            raise ConsoleRefused(_("call %(call_id)s is not waiting for your wrap-up", call_id=call_id))
        h = self.deps
        with h.sql.begin() as db:
            db.add(CallDisposition(call_id=call_id, agent_id=agent_id, code=code, notes=redact(notes)[:4000]))
        h.events.emit("call_disposition", call_id=call_id, agent=agent_id, code=code)
        h.redis.hdel(self._key(agent_id), "card", "call_id", "answered", *_DRAFT)
        agent = h.agents.get(agent_id)
        if agent is not None and agent.state == "wrap_up":
            try:
                h.connector.connect(h.router.set_agent_state(agent_id, "available", "wrap-up done"))
            except RouterError:
                return False
        return True

    def orders_on_line(self, agent_id: str) -> frozenset[str]:
        """The numbers of the work orders of the caller offered or connected to this agent now, or of the
        call they are wrapping up (the orders its card shows): the screen pop's links, which the agent may
        open read-only (any other order stays closed to them)."""
        agent = self.deps.agents.get(agent_id)
        if agent is None:
            return frozenset()
        if not agent.call or agent.state not in ("offered", "busy"):
            wrapping = self.view(agent_id).wrap_up
            return frozenset(o.number for o in wrapping.work_orders) if wrapping else frozenset()
        view = self.deps.router.call(agent.call)
        caller_key = view.fields.get("caller_key", "") if view is not None and view.agent == agent_id else ""
        if not caller_key:
            return frozenset()
        calls = select(CallRecord.call_id).where(CallRecord.caller_key == caller_key)
        with self.deps.sql() as db:
            return frozenset(db.scalars(select(WorkOrder.number).where(WorkOrder.call_id.in_(calls))))

    # -- the kept card ------------------------------------------------------------------------------

    def _key(self, agent_id: str) -> str:
        return self.deps.router.key(f"console:{agent_id}")

    def _kept(self, agent_id: str) -> dict[str, str]:
        raw = self.deps.redis.hgetall(self._key(agent_id))
        return {_text(k): _text(v) for k, v in raw.items()}

    def _key_set(self, agent_id: str, **fields: str) -> None:
        pipe = self.deps.redis.pipeline(transaction=False)
        # redis types the mapping as Mapping[<every key type>, ...]: no dict[str, str] fits (Mapping keys are invariant)
        pipe.hset(self._key(agent_id), mapping=fields)  # type: ignore[arg-type]
        pipe.expire(self._key(agent_id), CARD_TTL_S)
        pipe.execute()

    def _remember(self, agent_id: str, view: CallView) -> CallCard:
        kept = self._kept(agent_id)
        if kept.get("answered") == "1" and kept.get("call_id") not in (None, "", view.call_id):
            self._keep_unsubmitted(agent_id, kept)
        card = CallCard(
            call_id=view.call_id, channel=view.fields.get("channel", ""), caller=view.fields.get("caller", ""),
            verified={"yes": True, "no": False}.get(view.fields.get("verified", "")),
            intent=view.fields.get("intent", ""), queue=view.queue, ivr_path=_path(view.fields.get("ivr_path")),
            waited_s=view.waited_s, work_orders=self._open_orders(view.fields.get("caller_key", "")),
            accepted=bool(view.fields.get("accepted_at")),
        )
        self._key_set(agent_id, call_id=view.call_id, card=card.model_dump_json(),
                      answered="1" if view.state == "busy" else "0")
        return card

    def _keep_unsubmitted(self, agent_id: str, kept: dict[str, str]) -> None:
        """A new call replaces a card whose wrap-up was never submitted (the agent was made available by a
        supervisor or the release setting): its draft becomes a disposition row, not lost."""
        call_id = kept["call_id"]
        notes = kept.get("draft_notes", "") if kept.get("draft_call") == call_id else ""
        with self.deps.sql.begin() as db:
            db.add(CallDisposition(call_id=call_id, agent_id=agent_id, code=NOT_SUBMITTED, notes=notes))
        self.deps.redis.hdel(self._key(agent_id), *_DRAFT)

    def _open_orders(self, caller_key: str) -> list[OpenWorkOrder]:
        if not caller_key:
            return []
        calls = select(CallRecord.call_id).where(CallRecord.caller_key == caller_key)
        query = (select(WorkOrder).where(WorkOrder.call_id.in_(calls), WorkOrder.status.in_(WORKING))
                 .order_by(WorkOrder.created_at.desc()).limit(5))
        with self.deps.sql() as db:
            return [OpenWorkOrder(number=o.number, status=o.status, category=o.category,
                                  created_at=_iso(o.created_at)) for o in db.scalars(query)]


_DRAFT = ("draft_call", "draft_code", "draft_notes")


def _card(kept: dict[str, str]) -> CallCard | None:
    return CallCard.model_validate_json(kept["card"]) if kept.get("card") else None


def _path(text: str | None) -> list[dict[str, Any]]:
    try:
        steps = json.loads(text or "[]")
    except ValueError:
        return []
    return [step for step in steps if isinstance(step, dict)] if isinstance(steps, list) else []


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
