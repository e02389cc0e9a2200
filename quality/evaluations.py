"""Evaluations: the reviewer's queue, scoring a call, calibration, and the agent's acknowledgement or dispute.

Who may do what is decided here, for the web and any other caller alike: a reviewer scores only items of their
own queue and never a call they took themselves; an agent sees and answers only evaluations of their own calls;
in a calibration nobody sees the others' answers before submitting their own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from quality.call_audio import recording_of
from quality.forms import FormBook
from quality.sampling import Reviewer
from quality.scoring import score
from quality.weeks import week_of
from store.models import CallRecord, Evaluation, ReviewItem, User, WorkOrder, utcnow

MAX_COMMENTS = 100
MAX_NOTE = 2000
WAITING = ("open", "disputed")
"""The statuses that keep an item in its reviewer's queue."""


class NotYours(LookupError):
    """Not found, or not this person's to see: the same answer for both (an id reveals nothing)."""


class OwnCall(PermissionError):
    """A reviewer asked to score a call they took themselves."""


class NotAllowed(ValueError):
    """The action does not fit the item's or evaluation's state; the message says why."""


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    agent_id: str | None


@dataclass(frozen=True)
class Comment:
    at_s: float
    text: str


class Evaluations:
    def __init__(self, sql: sessionmaker[Session], forms: FormBook, timezone: str) -> None:
        self.sql, self.forms, self.timezone = sql, forms, timezone

    # -- the reviewer's side ---------------------------------------------------------------------------------
    def queue(self, reviewer: str, limit: int = 200) -> list[dict[str, Any]]:
        """The reviewer's items to score (open) or to look at again (disputed), oldest call first."""
        with self.sql() as db:
            rows = db.scalars(select(ReviewItem).where(ReviewItem.reviewer == reviewer,
                                                       ReviewItem.status.in_(WAITING))
                              .order_by(ReviewItem.call_started_at, ReviewItem.id).limit(limit))
            return [_item_view(r) for r in rows]

    def may_hear(self, reviewer: str, call_id: str) -> bool:
        """Whether the call is in the reviewer's queue (open, scored or disputed): its recording is theirs to play."""
        with self.sql() as db:
            return db.scalar(select(ReviewItem.id).where(ReviewItem.reviewer == reviewer,
                                                         ReviewItem.call_id == call_id).limit(1)) is not None

    def item(self, item_id: int, who: Person) -> dict[str, Any]:
        """One item with its call (IVR path, times), recording, work order and evaluation: the scoring page."""
        with self.sql() as db:
            item = self._item(db, item_id, who)
            call = db.scalar(select(CallRecord).where(CallRecord.call_id == item.call_id))
            recording = recording_of(db, item.call_id)
            order = db.scalar(select(WorkOrder).where(WorkOrder.call_id == item.call_id))
            evaluation = db.scalar(select(Evaluation).where(Evaluation.item_id == item.id))
            return {"item": _item_view(item), "call": _call_view(call), "timeline": timeline(call),
                    "recording": recording.ref if recording else None,
                    "recording_duration_s": recording.duration_s if recording else None,
                    "work_order": order.number if order else None,
                    "evaluation": _evaluation_view(evaluation) if evaluation else None,
                    "own_call": _reviewer(who).owns(item.agent_id)}

    def submit(self, item_id: int, who: Person, form_name: str, answers: dict[str, Any],
               comments: list[Comment]) -> dict[str, Any]:
        """Score the item with the live version of ``form_name``; a disputed item's evaluation is scored again."""
        form = self.forms.live(form_name)
        result = score(form.form, answers)  # AnswersInvalid before anything is written
        if len(comments) > MAX_COMMENTS:
            raise NotAllowed(f"at most {MAX_COMMENTS} comments")
        with self.sql() as db:
            item = self._item(db, item_id, who)
            if item.reviewer != who.name:
                raise NotYours(f"review item {item_id}")
            if _reviewer(who).owns(item.agent_id):
                raise OwnCall(f"call {item.call_id} was taken by {item.agent_id}: a reviewer does not score "
                              "their own calls")
            if item.status not in WAITING:
                raise NotAllowed(f"review item {item_id} is already scored")
            evaluation = db.scalar(select(Evaluation).where(Evaluation.item_id == item.id))
            if evaluation is None:
                evaluation = Evaluation(item_id=item.id, call_id=item.call_id, agent_id=item.agent_id,
                                        queue=item.queue, call_started_at=item.call_started_at,
                                        reviewer=who.name, calibration=item.calibration)
                db.add(evaluation)
                evaluation.status = "submitted"
            else:
                evaluation.status = "rescored"
            evaluation.form, evaluation.form_version = form.name, form.version
            evaluation.answers = dict(answers)
            evaluation.comments = [{"at_s": round(c.at_s, 1), "text": c.text[:MAX_NOTE]}
                                   for c in sorted(comments, key=lambda c: c.at_s)]
            evaluation.total, evaluation.auto_failed = result.total, result.auto_failed
            evaluation.sections = dict(result.sections)
            evaluation.submitted_at = utcnow()
            item.status = "scored"
            db.commit()
            return _evaluation_view(evaluation)

    # -- calibration -----------------------------------------------------------------------------------------
    def start_calibration(self, call_id: str, reviewers: list[str]) -> list[int]:
        """Queue ``call_id`` to each of ``reviewers`` for a blind calibration; returns the new items' ids."""
        with self.sql() as db:
            call = db.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
            if call is None or not call.agent_id:
                raise NotAllowed(f"call {call_id} has no record of an agent answering it")
            people = {r.name: r for r in (Reviewer(n, a) for n, a in db.execute(
                select(User.name, User.agent_id).where(User.name.in_(reviewers), User.active.is_(True),
                                                       User.role.in_(("supervisor", "qa", "admin")))))}
            missing = [n for n in reviewers if n not in people]
            if missing:
                raise NotAllowed(f"not an active reviewer: {', '.join(missing)}")
            own = [n for n in reviewers if people[n].owns(call.agent_id)]
            if own:
                raise OwnCall(f"{', '.join(own)} took call {call_id}: a reviewer does not score their own calls")
            taken = set(db.scalars(select(ReviewItem.reviewer).where(ReviewItem.call_id == call_id)))
            if len(set(reviewers)) < 2:
                raise NotAllowed("a calibration needs at least two reviewers")
            items = [ReviewItem(call_id=call_id, agent_id=call.agent_id, queue=call.queue,
                                call_started_at=call.started_at,
                                week=week_of(call.started_at or utcnow(), self.timezone),
                                reasons=["calibration"], reviewer=name, calibration=True)
                     for name in dict.fromkeys(reviewers) if name not in taken]
            db.add_all(items)
            db.commit()
            return [i.id for i in items]

    def calibration(self, call_id: str, who: Person) -> dict[str, Any]:
        """Every reviewer's answers for the call side by side with the spread per question; only for an admin or
        a reviewer of the call who has submitted (before that: NotAllowed, nothing of the others shown)."""
        with self.sql() as db:
            items = list(db.scalars(select(ReviewItem).where(ReviewItem.call_id == call_id)
                                    .order_by(ReviewItem.reviewer)))
            mine = next((i for i in items if i.reviewer == who.name), None)
            if who.role != "admin" and mine is None:
                raise NotYours(f"calibration of call {call_id}")
            if who.role != "admin" and mine is not None and mine.status not in ("scored",):
                raise NotAllowed("the others' answers are shown once you have submitted yours")
            evaluations = list(db.scalars(select(Evaluation).where(Evaluation.call_id == call_id)
                                          .order_by(Evaluation.reviewer)))
        return {"call_id": call_id, "reviewers": [i.reviewer for i in items],
                "evaluations": [_evaluation_view(e) for e in evaluations], "spread": spread(evaluations)}

    # -- the agent's side ------------------------------------------------------------------------------------
    def of_agent(self, agent_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self.sql() as db:
            rows = db.scalars(select(Evaluation).where(Evaluation.agent_id == agent_id,
                                                       Evaluation.calibration.is_(False))
                              .order_by(Evaluation.submitted_at.desc()).limit(limit))
            return [_evaluation_view(r) for r in rows]

    def answer(self, evaluation_id: int, agent_id: str, action: str, note: str) -> dict[str, Any]:
        """The agent acknowledges (``acknowledge``) or disputes (``dispute``, a note required) their evaluation; a
        dispute puts the item back in the reviewer's queue."""
        if action not in ("acknowledge", "dispute"):
            raise NotAllowed(f"unknown action {action!r}")
        note = note.strip()[:MAX_NOTE]
        if action == "dispute" and not note:
            raise NotAllowed("a dispute needs a comment: what is wrong with the evaluation")
        with self.sql() as db:
            evaluation = db.get(Evaluation, evaluation_id)
            if evaluation is None or evaluation.agent_id != agent_id or evaluation.calibration:
                raise NotYours(f"evaluation {evaluation_id}")
            if evaluation.status not in ("submitted", "rescored"):
                raise NotAllowed(f"evaluation {evaluation_id} is already {evaluation.status}")
            evaluation.status = "acknowledged" if action == "acknowledge" else "disputed"
            evaluation.agent_note, evaluation.agent_at = note, utcnow()
            if action == "dispute":
                item = db.get(ReviewItem, evaluation.item_id)
                if item is not None:
                    item.status = "disputed"
            db.commit()
            return _evaluation_view(evaluation)

    def _item(self, db: Session, item_id: int, who: Person) -> ReviewItem:
        item = db.get(ReviewItem, item_id)
        if item is None or (item.reviewer != who.name and who.role != "admin"):
            raise NotYours(f"review item {item_id}")
        return item


def spread(evaluations: list[Evaluation]) -> dict[str, dict[str, Any]]:
    """Per question: each reviewer's answer, and the spread of their points (max - min, 0..1; N/A left out)."""
    out: dict[str, dict[str, Any]] = {}
    for e in evaluations:
        for qid, answer in e.answers.items():
            out.setdefault(qid, {"answers": {}, "spread": None})["answers"][e.reviewer] = answer
    for row in out.values():
        values = [_point(a) for a in row["answers"].values()]
        numbers = [v for v in values if v is not None]
        row["spread"] = round(max(numbers) - min(numbers), 2) if numbers else None
    return out


def _point(answer: Any) -> float | None:
    if answer == "yes":
        return 1.0
    if answer == "no":
        return 0.0
    if isinstance(answer, int) and not isinstance(answer, bool) and 1 <= answer <= 5:
        return (answer - 1) / 4
    if isinstance(answer, str) and answer.isdigit() and 1 <= int(answer) <= 5:
        return (int(answer) - 1) / 4
    return None


def timeline(call: CallRecord | None) -> list[dict[str, Any]]:
    """The call's moments on one line: started, each IVR step, queued, answered by the agent, ended; seconds from
    the answer (negative before it: what the caller went through before the recording starts)."""
    if call is None or call.started_at is None:
        return []
    origin = _utc(call.answered_at or call.started_at)
    moments: list[dict[str, Any]] = [{"kind": "started", "at": _utc(call.started_at), "detail": call.channel}]
    for step in call.ivr_path or []:
        detail = " ".join(f"{k}={v}" for k, v in step.items()) if isinstance(step, dict) else str(step)
        moments.append({"kind": "ivr", "at": None, "detail": detail})
    if call.queued_at:
        moments.append({"kind": "queued", "at": _utc(call.queued_at), "detail": call.queue})
    if call.answered_at:
        moments.append({"kind": "answered", "at": _utc(call.answered_at), "detail": call.agent_id})
    if call.ended_at:
        moments.append({"kind": "ended", "at": _utc(call.ended_at), "detail": call.end_status or call.outcome})
    for m in moments:
        at = m.pop("at")
        m["offset_s"] = round((at - origin).total_seconds(), 1) if at else None
        m["at"] = at
    return moments


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _reviewer(who: Person) -> Reviewer:
    return Reviewer(who.name, who.agent_id)


def _item_view(item: ReviewItem) -> dict[str, Any]:
    return {"id": item.id, "call_id": item.call_id, "agent_id": item.agent_id, "queue": item.queue,
            "call_started_at": _utc(item.call_started_at) if item.call_started_at else None, "week": item.week,
            "reasons": list(item.reasons or []), "reviewer": item.reviewer, "calibration": item.calibration,
            "status": item.status}


def _call_view(call: CallRecord | None) -> dict[str, Any] | None:
    if call is None:
        return None
    return {"call_id": call.call_id, "channel": call.channel, "caller": call.caller_masked, "queue": call.queue,
            "agent_id": call.agent_id, "talk_s": call.talk_s, "wait_s": call.wait_s, "intent": call.intent,
            "outcome": call.outcome, "language": call.language}


def _evaluation_view(e: Evaluation) -> dict[str, Any]:
    return {"id": e.id, "item_id": e.item_id, "call_id": e.call_id, "agent_id": e.agent_id, "queue": e.queue,
            "call_started_at": _utc(e.call_started_at) if e.call_started_at else None,
            "reviewer": e.reviewer, "calibration": e.calibration, "form": e.form, "form_version": e.form_version,
            "answers": dict(e.answers), "comments": list(e.comments or []), "total": e.total,
            "auto_failed": e.auto_failed, "sections": dict(e.sections or {}),
            "submitted_at": _utc(e.submitted_at) if e.submitted_at else None, "status": e.status,
            "agent_note": e.agent_note, "agent_at": _utc(e.agent_at) if e.agent_at else None}
