"""Which calls are reviewed: the sampling rules, and the review queue they fill, round-robin over the reviewers.

Only calls an agent answered count (``call_records.agent_id`` set, ``answered_at`` set), in the ISO week of their
start in ``HOTLINE_TIMEZONE``. A call is picked when any rule picks it; it gets one review item, with every reason:

- ``share``: per agent and week, the first ceil(n * P / 100) of the agent's n calls ranked by sha256(call id): the
  same calls on every run over the same calls (a re-run adds nothing), and no reviewer chooses them. The hourly
  run samples the week so far: an item once queued stays, so a week sampled while it fills can end with a call
  or two per agent above the share (the last run of the week picks the share of the whole week);
- ``reopened``: every call whose work order was reopened (a ``reopen`` in its trail);
- ``dissatisfied``: every call whose work order's return visit was rated 4 or 5 (the survey's scale is
  1 very satisfied .. 5 very dissatisfied: ``complaints.visit_calls.RATING_LABELS``);
- ``long``: every call whose talk time (``talk_s``) was longer than X seconds.

Reviewers are the active supervisors and ``qa`` users, by name; new items go to them in turn, continuing where the
last run stopped, skipping a reviewer whose own agent id is the call's agent (nobody reviews their own calls).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from quality.weeks import week_bounds, week_of
from store.models import CallRecord, ReturnVisit, ReviewItem, User, WorkOrder, WorkOrderChange

REVIEWER_ROLES = ("supervisor", "qa")


@dataclass(frozen=True)
class SamplingRules:
    share_percent: float = 5.0
    """P: the share of each agent's calls per week picked at random (0: none)."""
    long_call_s: float | None = 600.0
    """X: calls talked longer than this are all picked (None: the rule is off)."""
    reopened: bool = True
    dissatisfied: bool = True


@dataclass(frozen=True)
class Reviewer:
    name: str
    agent_id: str | None

    def owns(self, agent_id: str) -> bool:
        """The reviewer is this agent (a supervisor who also takes calls): their own calls are not theirs to
        score. An account's agent id, and its name (agents' accounts default to it)."""
        return agent_id in (self.agent_id, self.name)


@dataclass
class Pick:
    call_id: str
    agent_id: str
    queue: str
    started_at: dt.datetime | None
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunResult:
    week: str
    picked: int
    added: int
    by_reason: dict[str, int]


def share_rank(call_id: str) -> str:
    """The order the share rule picks an agent's calls in: fixed by the call id alone."""
    return hashlib.sha256(call_id.encode()).hexdigest()


def pick_calls(db: Session, lo: dt.datetime, hi: dt.datetime, rules: SamplingRules) -> dict[str, Pick]:
    """call id -> the call and the reasons the rules give, for the agents' calls started in [lo, hi)."""
    answered = (CallRecord.started_at >= lo, CallRecord.started_at < hi, CallRecord.agent_id != "",
                CallRecord.answered_at.is_not(None))
    calls = {row.call_id: row for row in db.execute(
        select(CallRecord.call_id, CallRecord.agent_id, CallRecord.queue, CallRecord.started_at,
               CallRecord.talk_s).where(*answered))}
    picks: dict[str, Pick] = {}

    def add(call_id: str, reason: str) -> None:
        row = calls[call_id]
        pick = picks.setdefault(call_id, Pick(call_id, row.agent_id, row.queue, row.started_at))
        pick.reasons.append(reason)

    if rules.share_percent > 0:
        per_agent: dict[str, list[str]] = defaultdict(list)
        for call_id, row in calls.items():
            per_agent[row.agent_id].append(call_id)
        for ids in per_agent.values():
            for call_id in sorted(ids, key=share_rank)[:math.ceil(len(ids) * rules.share_percent / 100)]:
                add(call_id, "share")
    if rules.reopened:
        reopened = select(WorkOrder.call_id).join(WorkOrderChange, WorkOrderChange.work_order_id == WorkOrder.id) \
            .where(WorkOrderChange.action == "reopen", WorkOrder.call_id.in_(select(CallRecord.call_id)
                                                                              .where(*answered)))
        for call_id in sorted(set(db.scalars(reopened))):
            add(call_id, "reopened")
    if rules.dissatisfied:
        unhappy = select(WorkOrder.call_id).join(ReturnVisit, ReturnVisit.work_order_id == WorkOrder.id) \
            .where(ReturnVisit.rating.in_((4, 5)), WorkOrder.call_id.in_(select(CallRecord.call_id)
                                                                          .where(*answered)))
        for call_id in sorted(set(db.scalars(unhappy))):
            add(call_id, "dissatisfied")
    if rules.long_call_s is not None:
        for call_id, row in calls.items():
            if row.talk_s is not None and row.talk_s > rules.long_call_s:
                add(call_id, "long")
    return picks


def reviewers(db: Session) -> list[Reviewer]:
    return [Reviewer(name, agent_id) for name, agent_id in db.execute(
        select(User.name, User.agent_id).where(User.role.in_(REVIEWER_ROLES), User.active.is_(True))
        .order_by(User.name))]


class Sampler:
    def __init__(self, sql: sessionmaker[Session], rules: SamplingRules, timezone: str) -> None:
        self.sql, self.rules, self.timezone = sql, rules, timezone

    def run(self, week: str | None = None, now: dt.datetime | None = None) -> RunResult:
        """Pick the calls of ``week`` (default: this week) and queue the ones not queued yet."""
        week = week or week_of(now or dt.datetime.now(dt.UTC), self.timezone)
        lo, hi = week_bounds(week, self.timezone)
        with self.sql() as db:
            picks = pick_calls(db, lo, hi, self.rules)
            queued = set(db.scalars(select(ReviewItem.call_id).where(ReviewItem.call_id.in_(list(picks)),
                                                                     ReviewItem.calibration.is_(False))))
            people = reviewers(db)
            new = sorted((p for p in picks.values() if p.call_id not in queued),
                         key=lambda p: (p.started_at or lo, p.call_id))
            added = 0
            if people:
                cursor = db.scalar(select(func.count()).select_from(ReviewItem)
                                   .where(ReviewItem.calibration.is_(False))) or 0
                for pick in new:
                    for step in range(len(people)):
                        reviewer = people[(cursor + step) % len(people)]
                        if not reviewer.owns(pick.agent_id):
                            break
                    else:
                        continue  # the only reviewers are this agent: left for when there is another
                    cursor += step + 1
                    db.add(ReviewItem(call_id=pick.call_id, agent_id=pick.agent_id, queue=pick.queue,
                                      call_started_at=pick.started_at, week=week, reasons=pick.reasons,
                                      reviewer=reviewer.name))
                    added += 1
                db.commit()
        by_reason: dict[str, int] = defaultdict(int)
        for pick in picks.values():
            for reason in pick.reasons:
                by_reason[reason] += 1
        return RunResult(week, len(picks), added, dict(by_reason))
