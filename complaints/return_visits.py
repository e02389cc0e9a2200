"""Return visits: after a complaint is resolved, call the customer back and ask how satisfied they are.

A visit is scheduled inside the calling window, dialled by an RQ job, retried after no answer, busy
or voicemail (with backoff, inside the window), and marked ``unreachable`` after the last retry.
No number is called more than ``max_calls`` times in ``period``, whatever visits the calls belong to,
and never one on the do-not-call list. Every step is idempotent on (visit, attempt): a job that runs
twice, or a status callback that arrives twice, changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import and_, delete, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from complaints.calling_window import CallingWindow
from complaints.visit_calls import RATING_LABELS, DialResult, VisitCall, VisitDialer
from complaints.work_orders import TRANSITIONS, WORKING, WorkOrderDesk
from ivr.masking import mask_phone, number_key
from ivr.services import VisitFacts
from store.db import UNAVAILABLE
from store.models import DoNotCall, ReturnVisit, VisitAttempt, VisitCallToken, WorkOrder

log = logging.getLogger(__name__)

RETRYABLE = frozenset({"no-answer", "busy", "voicemail", "failed"})
FINAL_VISIT_STATUSES = frozenset({"completed", "unreachable", "refused", "cancelled"})
DISSATISFIED = frozenset({4, 5})
TOKENS_KEPT = dt.timedelta(days=1)
"""A dial's one-time survey token is deleted by the sweep after this long (it stops working much sooner)."""

Enqueue = Callable[[dt.datetime, int, int], None]
"""``enqueue(when, visit_id, attempt)``: run the dial job then (RQ ``enqueue_at`` in production)."""


@dataclass(frozen=True)
class VisitPolicy:
    window: CallingWindow
    delay: dt.timedelta = dt.timedelta(hours=1)
    retries: int = 3
    backoff: tuple[dt.timedelta, ...] = (dt.timedelta(minutes=30), dt.timedelta(hours=2), dt.timedelta(days=1))
    max_calls: int = 7
    period: dt.timedelta = dt.timedelta(days=7)
    channel: str = "auto"
    stale_after: dt.timedelta = dt.timedelta(minutes=15)
    """A dial with no outcome after this long (a lost status callback) counts as failed."""

    def backoff_after(self, attempt: int) -> dt.timedelta:
        return self.backoff[min(attempt, len(self.backoff)) - 1] if self.backoff else dt.timedelta(0)


@dataclass
class ReturnVisits:
    sql: sessionmaker[Session]
    desk: WorkOrderDesk
    policy: VisitPolicy
    enqueue: Enqueue
    dialers: dict[str, VisitDialer] = field(default_factory=dict)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def __post_init__(self) -> None:
        self.desk.on_resolved = self._schedule_in

    # -- scheduling ---------------------------------------------------------------------------------

    def _schedule_in(self, db: Session, order: WorkOrder, now: dt.datetime) -> None:
        """Runs inside the transaction that resolves ``order``."""
        # Resolved again after a reopen: the visit still waiting for the first resolution is replaced.
        for earlier in db.scalars(select(ReturnVisit).where(
                ReturnVisit.work_order_id == order.id, ReturnVisit.status == "scheduled").with_for_update()):
            earlier.status, earlier.finished_at = "cancelled", now
        key = number_key(order.callback_number)
        visit = ReturnVisit(
            work_order_id=order.id, number=order.callback_number, number_key=key, language=order.language,
            channel=self._channel_for(order), due_at=self.policy.window.next_open(now + self.policy.delay),
            status="scheduled", attempts=0, created_at=now,
        )
        if not key or db.get(DoNotCall, key) is not None:
            visit.status, visit.finished_at = "cancelled", now
            db.add(visit)
            log.info("work order %s: no return visit, the number is on the do-not-call list", order.number)
            return
        db.add(visit)
        db.flush()
        due, visit_id = visit.due_at, visit.id
        # Enqueued only after the commit: the job must never look for a visit not yet written.
        event.listen(db, "after_commit", lambda _db: self.enqueue(due, visit_id, 1), once=True)

    def _channel_for(self, order: WorkOrder) -> str:
        wanted = self.policy.channel
        if wanted != "auto":
            return wanted
        return order.channel if order.channel in ("twilio", "asterisk") else next(iter(self.dialers), "twilio")

    # -- dialling (the RQ job) ---------------------------------------------------------------------

    def dial(self, visit_id: int, attempt: int) -> str:
        """Place ``attempt`` of ``visit_id`` if it is still due; returns what happened, for the job's result."""
        now = self.clock()
        with self.sql.begin() as db:
            visit = db.scalar(select(ReturnVisit).where(ReturnVisit.id == visit_id).with_for_update())
            if visit is None or visit.status != "scheduled" or visit.attempts >= attempt:
                return "skipped: not due (already dialled, finished or cancelled)"
            if db.get(DoNotCall, visit.number_key) is not None:
                visit.status, visit.finished_at = "refused", now
                return "skipped: the number is on the do-not-call list"
            if db.scalar(select(WorkOrder.status).where(WorkOrder.id == visit.work_order_id)) in WORKING:
                visit.status, visit.finished_at = "cancelled", now  # resolving it again schedules a new visit
                return "skipped: the work order is being worked on again"
            not_before = self._allowed_from(db, visit, now)
            if not_before > now:
                visit.due_at = not_before
                reason = f"deferred to {not_before.isoformat()}"
                call = None
            else:
                db.add(VisitAttempt(visit_id=visit.id, attempt=attempt, number_key=visit.number_key, placed_at=now))
                visit.attempts, visit.status = attempt, "dialing"
                token = secrets.token_urlsafe(24)
                db.add(VisitCallToken(token_hash=_token_hash(token), visit_id=visit.id, attempt=attempt,
                                      created_at=now))
                call = VisitCall(visit.id, attempt, visit.number, visit.language, token)
                channel = visit.channel
        if call is None:
            self.enqueue(not_before, visit_id, attempt)
            return reason
        dialer = self.dialers.get(channel)
        result = dialer.dial(call) if dialer else DialResult("failed", detail=f"no {channel} dialer configured")
        self._note_dial(visit_id, attempt, result)
        if result.disposition != "pending":
            self.finish_attempt(visit_id, attempt, result.disposition)
        return f"attempt {attempt}: {result.disposition} {result.detail}".rstrip()

    def _allowed_from(self, db: Session, visit: ReturnVisit, now: dt.datetime) -> dt.datetime:
        """The earliest time this number may be called: inside the window and under the frequency cap."""
        at = self.policy.window.next_open(now)
        since = now - self.policy.period
        recent = list(db.scalars(
            select(VisitAttempt.placed_at).where(VisitAttempt.number_key == visit.number_key,
                                                 VisitAttempt.placed_at > since).order_by(VisitAttempt.placed_at)))
        if len(recent) >= self.policy.max_calls:
            oldest = recent[len(recent) - self.policy.max_calls]
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.UTC)
            at = max(at, self.policy.window.next_open(oldest + self.policy.period + dt.timedelta(seconds=1)))
        return at

    def _note_dial(self, visit_id: int, attempt: int, result: DialResult) -> None:
        with self.sql.begin() as db:
            row = self._attempt(db, visit_id, attempt)
            if row is not None and result.provider_call_id:
                row.provider_call_id = result.provider_call_id[:64]
        if result.detail:
            log.info("return visit %d attempt %d: %s %s", visit_id, attempt, result.disposition, result.detail)

    # -- outcomes ------------------------------------------------------------------------------------

    def finish_attempt(self, visit_id: int, attempt: int, disposition: str) -> None:
        """How a dial ended (the dialer's answer or Twilio's status callback); idempotent."""
        now = self.clock()
        retry_at: dt.datetime | None = None
        with self.sql.begin() as db:
            row = self._attempt(db, visit_id, attempt)
            visit = db.scalar(select(ReturnVisit).where(ReturnVisit.id == visit_id).with_for_update())
            if row is None or visit is None or row.disposition != "dialing":
                return
            row.disposition, row.finished_at = disposition, now
            if visit.status in FINAL_VISIT_STATUSES or visit.attempts != attempt:
                return
            if disposition == "answered":
                visit.status = "in_call"
            elif disposition == "refused":
                visit.status, visit.finished_at = "refused", now
            elif attempt <= self.policy.retries:
                retry_at = self.policy.window.next_open(now + self.policy.backoff_after(attempt))
                visit.status, visit.due_at = "scheduled", retry_at
            else:
                visit.status, visit.finished_at = "unreachable", now
            order_number = self._order_number(db, visit)
            final = visit.status
        if retry_at is not None:
            self.enqueue(retry_at, visit_id, attempt + 1)
        if final == "unreachable":
            self.desk.note(order_number, "return visit", f"customer unreachable after {attempt} attempts")

    def start_survey(self, visit_id: int, attempt: int, token: str) -> bool:
        """Whether the survey of ``attempt`` may run on the call that just came in: only with the token of
        a dial the hotline placed for it within ``stale_after``, while that attempt is still the visit's
        current one, and only once (the token is used up here)."""
        now = self.clock()
        with self.sql.begin() as db:
            row = db.scalar(select(VisitCallToken).where(VisitCallToken.token_hash == _token_hash(token))
                            .with_for_update())
            if row is None or (row.visit_id, row.attempt) != (visit_id, attempt) or row.used_at is not None:
                return False
            created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
            if now - created > self.policy.stale_after:
                return False
            visit = db.get(ReturnVisit, visit_id)
            if visit is None or visit.attempts != attempt or visit.status not in ("dialing", "in_call"):
                return False
            row.used_at = now
        return True

    def call_ended(self, visit_id: int) -> None:
        """The survey call is over: a customer who hung up before rating was still reached."""
        now = self.clock()
        with self.sql.begin() as db:
            visit = db.scalar(select(ReturnVisit).where(ReturnVisit.id == visit_id).with_for_update())
            if visit is None or visit.status != "in_call":
                return
            visit.status, visit.finished_at = "completed", now
            order_number = self._order_number(db, visit)
        self.desk.note(order_number, "return visit", "customer reached, no rating given")

    def rate(self, visit_id: int, rating: int) -> str:
        """Store the customer's answer on the visit and the work order; 4 or 5 reopens the work order."""
        if rating not in RATING_LABELS:
            raise ValueError(f"rating must be 1-5, not {rating}")
        now = self.clock()
        with self.sql.begin() as db:
            visit = db.scalar(select(ReturnVisit).where(ReturnVisit.id == visit_id).with_for_update())
            if visit is None:
                raise LookupError(f"return visit {visit_id} does not exist")
            if visit.rating is not None:
                return "already rated"
            visit.rating, visit.status, visit.finished_at = rating, "completed", now
            order = db.get(WorkOrder, visit.work_order_id)
            assert order is not None
            order.rating = rating
            number, status = order.number, order.status
        action = "reopen" if rating in DISSATISFIED else "visit"
        if status in TRANSITIONS[action].sources:
            self.desk.act(number, action, "customer (survey)", rating=rating, note=RATING_LABELS[rating])
        else:  # already worked again or closed meanwhile: the answer is kept, the status is not the survey's
            self.desk.note(number, "customer (survey)", f"rating {rating} ({RATING_LABELS[rating]})")
        return "rated"

    def opt_out(self, visit_id: int) -> None:
        """The customer pressed the never-call-again key: on the do-not-call list, now and for every visit."""
        now = self.clock()
        with self.sql.begin() as db:
            visit = db.scalar(select(ReturnVisit).where(ReturnVisit.id == visit_id).with_for_update())
            if visit is None:
                raise LookupError(f"return visit {visit_id} does not exist")
            add_do_not_call(db, visit.number, "survey", now)
            row = self._attempt(db, visit_id, visit.attempts)
            if row is not None:
                row.disposition, row.finished_at = "refused", now
            visit.status, visit.finished_at = "refused", now
            order_number = self._order_number(db, visit)
        self.desk.note(order_number, "customer (survey)", "asked never to be called again: number on do-not-call list")

    def facts(self, visit_id: int) -> VisitFacts | None:
        with self.sql() as db:
            row = db.execute(select(ReturnVisit.id, WorkOrder.number, WorkOrder.category, ReturnVisit.language)
                             .join(WorkOrder, WorkOrder.id == ReturnVisit.work_order_id)
                             .where(ReturnVisit.id == visit_id)).first()
        return VisitFacts(*row) if row else None

    # -- the safety net (a scheduled job) -----------------------------------------------------------

    def sweep(self) -> int:
        """Re-enqueue visits whose job was lost (Redis restarted) and fail dials whose outcome never came."""
        now = self.clock()
        late = now - self.policy.stale_after
        with self.sql() as db:
            lost = list(db.execute(select(ReturnVisit.id, ReturnVisit.attempts).where(
                ReturnVisit.status == "scheduled", ReturnVisit.due_at < late)))
            stale = list(db.execute(select(VisitAttempt.visit_id, VisitAttempt.attempt).where(
                VisitAttempt.disposition == "dialing", VisitAttempt.placed_at < late)))
            # Answered long ago and still in the call: its end was missed (the database was away then).
            unended = list(db.scalars(select(ReturnVisit.id).join(VisitAttempt, and_(
                VisitAttempt.visit_id == ReturnVisit.id, VisitAttempt.attempt == ReturnVisit.attempts)).where(
                ReturnVisit.status == "in_call", VisitAttempt.finished_at < late)))
        with self.sql.begin() as db:  # used and expired one-time tokens are of no use to anyone
            db.execute(delete(VisitCallToken).where(VisitCallToken.created_at < now - TOKENS_KEPT))
        for visit_id, attempts in lost:
            self.enqueue(now, visit_id, attempts + 1)
        for visit_id, attempt in stale:
            log.warning("return visit %d attempt %d: no outcome after %s, counted as failed",
                        visit_id, attempt, self.policy.stale_after)
            self.finish_attempt(visit_id, attempt, "failed")
        for visit_id in unended:
            self.call_ended(visit_id)
        return len(lost) + len(stale) + len(unended)

    @staticmethod
    def _attempt(db: Session, visit_id: int, attempt: int) -> VisitAttempt | None:
        return db.scalar(select(VisitAttempt).where(VisitAttempt.visit_id == visit_id,
                                                    VisitAttempt.attempt == attempt).with_for_update())

    @staticmethod
    def _order_number(db: Session, visit: ReturnVisit) -> str:
        return db.scalar(select(WorkOrder.number).where(WorkOrder.id == visit.work_order_id)) or "?"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def add_do_not_call(db: Session, number: str, source: str, now: dt.datetime) -> bool:
    """Put ``number`` on the do-not-call list; False when it already was."""
    key = number_key(number)
    if not key or db.get(DoNotCall, key) is not None:
        return False
    try:
        with db.begin_nested():
            db.add(DoNotCall(number_key=key, number_masked=mask_phone(number), source=source, added_at=now))
    except IntegrityError:
        return False
    return True


class OutcomesLater:
    """How return-visit calls ended, as Twilio's status callback reports them: written at once, or, while
    the database is away, by a job (``later``) that retries until it is back. Twilio posts a status
    callback once, whatever the reply, so an outcome dropped here would leave the visit to the sweep
    (counted failed, and the customer called again)."""

    def __init__(self, visits: ReturnVisits, later: Callable[[int, int, str], None]) -> None:
        self.visits, self._later = visits, later

    def finish_attempt(self, visit_id: int, attempt: int, disposition: str) -> None:
        try:
            self.visits.finish_attempt(visit_id, attempt, disposition)
        except UNAVAILABLE:
            log.warning("return visit %d attempt %d: %s kept for later, database unavailable",
                        visit_id, attempt, disposition)
            self._later(visit_id, attempt, disposition)

    def call_ended(self, visit_id: int) -> None:
        try:
            self.visits.call_ended(visit_id)
        except UNAVAILABLE:  # the sweep completes a visit left in its call
            log.warning("return visit %d: end not written, database unavailable", visit_id)


def apply_outcome(visits: ReturnVisits, visit_id: int, attempt: int, disposition: str) -> None:
    """The job ``OutcomesLater`` enqueues: the attempt's outcome, and the end of its survey when answered."""
    visits.finish_attempt(visit_id, attempt, disposition)
    if disposition == "answered":
        visits.call_ended(visit_id)
