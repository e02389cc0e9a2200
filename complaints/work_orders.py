"""Complaint work orders: intake, the lifecycle with its audit trail, deadlines and escalation.

``open -> assigned -> in_progress -> resolved -> visited -> closed``; a dissatisfied customer
(rating 4 or 5) sends it to ``reopened``, from where it is worked again. Every change is one row of
``work_order_changes`` (who, when, what) in the same transaction, and one event on the stream.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from complaints.deadlines import DEFAULT_DEADLINES, ComplaintDeadline
from complaints.pending_writes import PendingWrites
from complaints.recording_links import link_recording
from ivr.masking import mask_phone
from ivr.services import COMPLAINT_CATEGORIES, CallInfo
from store.db import UNAVAILABLE
from store.models import WorkOrder, WorkOrderChange

log = logging.getLogger(__name__)

WORKING = ("open", "assigned", "in_progress", "reopened")
"""Statuses in which the complaint still needs work (its deadlines run)."""
MAX_PRIORITY = 10


@dataclass(frozen=True)
class Transition:
    sources: tuple[str, ...]
    target: str


TRANSITIONS: dict[str, Transition] = {
    "assign": Transition(WORKING, "assigned"),
    "start": Transition(("assigned", "reopened"), "in_progress"),
    "resolve": Transition(WORKING, "resolved"),
    "visit": Transition(("resolved",), "visited"),
    "reopen": Transition(("resolved", "visited", "closed"), "reopened"),
    "close": Transition(("resolved", "visited"), "closed"),
}
STAFF_ACTIONS = frozenset({"assign", "start", "resolve"})
"""Actions that count as the first contact with the customer's complaint."""


class WorkOrderError(Exception):
    """Base of the errors a person can act on; the message says what to do."""


class NoSuchWorkOrder(WorkOrderError, LookupError):
    pass


class BadTransition(WorkOrderError):
    pass


class MissingField(WorkOrderError, ValueError):
    pass


class Events(Protocol):
    def emit(self, kind: str, **fields: Any) -> None: ...


class _NoEvents:
    def emit(self, kind: str, **fields: Any) -> None:
        pass


OnResolved = Callable[[Session, WorkOrder, dt.datetime], None]


class WorkOrderDesk:
    """The one place work orders change: the IVR's intake, the CLI, the API and the jobs call it."""

    def __init__(
        self, sql: sessionmaker[Session], events: Events | None = None,
        deadlines: dict[str, ComplaintDeadline] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC), pending: PendingWrites | None = None,
    ) -> None:
        self._sql, self._events, self._clock = sql, events or _NoEvents(), clock
        self.deadlines = {**DEFAULT_DEADLINES, **(deadlines or {})}
        self.on_resolved: OnResolved | None = None
        """Set by the return-visit scheduler: runs inside the resolving transaction."""
        self.pending = pending
        """Keeps complaints taken while the database is away; None: the intake fails then."""
        self.on_recording_linked: Callable[[str, str], None] | None = None
        """``(recording path, work order)`` once the complaint's stored audio is linked to its work order:
        the recordings store notes it in the audio's metadata file too."""

    # -- intake (the IVR's ``complaint.open`` service) -----------------------------------------

    def open_work_order(self, call: CallInfo, category: str, recording_ref: str) -> str:
        """One work order per call: a replayed step gets the number already given. With the database
        away, the complaint is kept (``pending``) and its number given all the same."""
        if category not in COMPLAINT_CATEGORIES:
            category = "other"
        now, rule = self._clock(), self.deadlines.get(category, DEFAULT_DEADLINES["other"])
        values = {
            "call_id": call.call_id, "category": category, "caller_masked": mask_phone(call.caller),
            "callback_number": call.caller, "language": call.language, "channel": call.channel,
            "recording_ref": recording_ref, "priority": rule.priority, "created_at": now,
            "first_contact_due": now + dt.timedelta(hours=rule.first_contact_h),
            "resolve_due": now + dt.timedelta(hours=rule.resolve_h),
        }
        kept = self.pending.known(call.call_id) if self.pending is not None else None
        if kept is not None:  # the call's complaint is already waiting for the database: one work order per call
            return kept
        try:
            return self._open(call, values)
        except UNAVAILABLE:
            if self.pending is None:
                raise
            return self.pending.work_order(values)

    def _open(self, call: CallInfo, values: dict[str, Any]) -> str:
        now, category, recording_ref = values["created_at"], values["category"], values["recording_ref"]
        try:
            with self._sql.begin() as db:
                order = WorkOrder(number="", status="open", **values)
                db.add(order)
                db.flush()
                order.number = f"{now:%y%m%d}{order.id:06d}"
                # The audio is stored before the intake (Asterisk), or Twilio's callback came first: link it now.
                stored = link_recording(db, recording_ref, order.number)
                _audit(db, order, now, "ivr", "open", None, "open", f"category {category}")
                number = order.number
        except IntegrityError:
            with self._sql() as db:
                found = db.scalar(select(WorkOrder.number).where(WorkOrder.call_id == call.call_id))
            if found is None:
                raise
            return found
        self._events.emit("work_order_opened", work_order=number, category=category, call_id=call.call_id)
        if stored and self.on_recording_linked is not None:
            try:
                self.on_recording_linked(stored, number)
            except OSError as exc:  # the database holds the link; the metadata file is a convenience copy
                log.warning("work order %s: could not note it beside its recording: %s", number, exc)
        return number

    # -- the lifecycle ---------------------------------------------------------------------------

    def act(self, number: str, action: str, actor: str, note: str = "", assignee: str | None = None,
            rating: int | None = None) -> dict[str, Any]:
        """Apply ``action`` (a key of ``TRANSITIONS``); raises ``BadTransition`` when the status forbids it."""
        rule = TRANSITIONS.get(action)
        if rule is None:
            raise BadTransition(f"unknown action {action!r}: one of {', '.join(TRANSITIONS)}")
        if action == "assign" and not assignee:
            raise MissingField("assign needs the assignee (who takes the work order)")
        now = self._clock()
        with self._sql.begin() as db:
            order = self._locked(db, number)
            if order.status not in rule.sources:
                raise BadTransition(
                    f"work order {number} is {order.status}: cannot {action} (allowed from {', '.join(rule.sources)})")
            if action == "resolve" and not note.strip():
                raise MissingField("resolve needs a note: what was done for the caller")
            before = order.status
            order.status = rule.target
            order.updated_at = now
            if action in STAFF_ACTIONS and order.first_contact_at is None:
                order.first_contact_at = now
            if action == "assign":
                order.assignee = assignee
            if action == "resolve":
                order.resolved_at, order.resolution = now, note or order.resolution
            if action == "close":
                order.closed_at = now
            if rating is not None:
                order.rating = rating
            detail = "; ".join(x for x in (f"assignee {assignee}" if action == "assign" else "", f"rating {rating}"
                                           if rating is not None else "", note) if x)
            _audit(db, order, now, actor, action, before, order.status, detail)
            if action == "resolve" and self.on_resolved is not None:
                self.on_resolved(db, order, now)
            view = _view(order)
        self._events.emit(f"work_order_{action}", work_order=number, status=view["status"], actor=actor)
        return view

    def note(self, number: str, actor: str, text: str) -> None:
        """An audit-only entry (a visit attempt, a remark): the status stays."""
        now = self._clock()
        with self._sql.begin() as db:
            order = self._locked(db, number)
            _audit(db, order, now, actor, "note", order.status, order.status, text)

    def flag_overdue(self) -> list[str]:
        """Escalate work orders past a deadline, once per deadline: priority up, ``work_order_overdue`` event."""
        now = self._clock()
        flagged: list[tuple[str, str]] = []
        with self._sql.begin() as db:
            late_contact = select(WorkOrder).where(
                WorkOrder.status.in_(WORKING), WorkOrder.first_contact_at.is_(None),
                WorkOrder.first_contact_due < now, WorkOrder.overdue.is_(None))
            late_resolution = select(WorkOrder).where(
                WorkOrder.status.in_(WORKING), WorkOrder.resolve_due < now,
                (WorkOrder.overdue.is_(None)) | (WorkOrder.overdue != "resolution"))
            # First contact before resolution: a job that was down while both passed escalates twice.
            for deadline, query in (("first_contact", late_contact), ("resolution", late_resolution)):
                for order in db.scalars(query.with_for_update()):
                    if order.overdue == deadline:
                        continue
                    order.overdue = deadline
                    order.priority = min(MAX_PRIORITY, order.priority + 1)
                    order.updated_at = now
                    _audit(db, order, now, "scheduler", "escalate", order.status, order.status,
                           f"{deadline.replace('_', ' ')} deadline passed; priority {order.priority}")
                    flagged.append((order.number, deadline))
        for number, deadline in flagged:
            self._events.emit("work_order_overdue", work_order=number, deadline=deadline)
            log.warning("work order %s is overdue (%s): escalated", number, deadline)
        return [number for number, _ in flagged]

    # -- reading -----------------------------------------------------------------------------------

    def list(self, status: str | None = None, category: str | None = None, overdue: bool | None = None,
             limit: int = 200) -> list[dict[str, Any]]:
        query = select(WorkOrder).order_by(WorkOrder.priority.desc(), WorkOrder.created_at).limit(limit)
        if status:
            query = query.where(WorkOrder.status == status)
        if category:
            query = query.where(WorkOrder.category == category)
        if overdue is not None:
            query = query.where(WorkOrder.overdue.is_not(None) if overdue else WorkOrder.overdue.is_(None))
        with self._sql() as db:
            return [_view(order) for order in db.scalars(query)]

    def show(self, number: str) -> dict[str, Any]:
        """The work order with its audit trail, oldest change first."""
        with self._sql() as db:
            order = db.scalar(select(WorkOrder).where(WorkOrder.number == number))
            if order is None:
                raise NoSuchWorkOrder(f"work order {number} does not exist")
            changes = db.scalars(select(WorkOrderChange).where(WorkOrderChange.work_order_id == order.id)
                                 .order_by(WorkOrderChange.id))
            return {**_view(order), "changes": [{
                "at": _iso(c.at), "actor": c.actor, "action": c.action, "from": c.from_status, "to": c.to_status,
                "detail": c.detail,
            } for c in changes]}

    def _locked(self, db: Session, number: str) -> WorkOrder:
        order = db.scalar(select(WorkOrder).where(WorkOrder.number == number).with_for_update())
        if order is None:
            raise NoSuchWorkOrder(f"work order {number} does not exist")
        return order


def _audit(db: Session, order: WorkOrder, at: dt.datetime, actor: str, action: str, before: str | None,
           after: str | None, detail: str) -> None:
    db.add(WorkOrderChange(work_order_id=order.id, at=at, actor=actor[:64], action=action, from_status=before,
                           to_status=after, detail=detail))


def _view(order: WorkOrder) -> dict[str, Any]:
    """A work order as the API and CLI show it: the caller's number masked."""
    return {
        "number": order.number, "status": order.status, "category": order.category, "priority": order.priority,
        "caller": order.caller_masked, "language": order.language, "channel": order.channel,
        "assignee": order.assignee, "resolution": order.resolution, "rating": order.rating,
        "overdue": order.overdue, "call_id": order.call_id, "recording_ref": order.recording_ref,
        "created_at": _iso(order.created_at), "first_contact_due": _iso(order.first_contact_due),
        "first_contact_at": _iso(order.first_contact_at), "resolve_due": _iso(order.resolve_due),
        "resolved_at": _iso(order.resolved_at), "closed_at": _iso(order.closed_at),
    }


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
