"""Tables of the SQL store."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class MenuVersion(Base):
    """Every published version of a menu; the highest one is live."""

    __tablename__ = "menu_versions"
    __table_args__ = (UniqueConstraint("menu", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    menu: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    published_by: Mapped[str] = mapped_column(String(128))
    published_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkOrder(Base):
    """A complaint, from the recorded message to its closure (see ``workers.work_orders``)."""

    __tablename__ = "work_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    caller_masked: Mapped[str] = mapped_column(String(32))
    callback_number: Mapped[str] = mapped_column(String(32))
    """The number the return visit dials: a phone number, never a card number."""
    language: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16), default="")
    """The channel the complaint came in on; the return visit goes out on the same one."""
    recording_ref: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The customer's last answer to the satisfaction question: 1 very satisfied .. 5 very dissatisfied."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    first_contact_due: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolve_due: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    first_contact_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When someone first acted on it (assigned, worked or resolved): the 'replied' of the reports."""
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    overdue: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """Which deadline passed (``first_contact`` or ``resolution``); set by the escalation job."""
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class WorkOrderChange(Base):
    """The audit trail of a work order: every change, who made it and when."""

    __tablename__ = "work_order_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class CallRecord(Base):
    """One row per call, folded from the call events by ``workers.records``."""

    __tablename__ = "call_records"
    __table_args__ = (Index("ix_call_records_handled", "started_at", "agent_id", "queue", "answered_at", "talk_s",
                            "call_id"),)
    """Revision 0005: the scorecards' calls handled, AHT and CSAT per agent or queue read this index alone."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="")
    direction: Mapped[str] = mapped_column(String(16), default="inbound")
    caller_masked: Mapped[str] = mapped_column(String(32), default="")
    caller_key: Mapped[str] = mapped_column(String(16), default="", index=True)
    """A keyed hash of the caller's number: finds repeat callers without keeping the number."""
    called: Mapped[str] = mapped_column(String(32), default="")
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    queued_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ivr_path: Mapped[list[Any]] = mapped_column(JSON, default=list)
    intent: Mapped[str] = mapped_column(String(16), default="")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    queue: Mapped[str] = mapped_column(String(32), default="")
    wait_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    predicted_wait_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    agent_id: Mapped[str] = mapped_column(String(64), default="")
    talk_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome: Mapped[str] = mapped_column(String(24), default="")
    """self_served, routed, abandoned, failed, survey_completed (``workers.records.outcome_of``)."""
    ivr_outcome: Mapped[str] = mapped_column(String(24), default="")
    """What the channel's ``call_ended`` said (self_served, queued, hangup, failed, ...); input to ``outcome``."""
    end_status: Mapped[str] = mapped_column(String(24), default="")
    language: Mapped[str] = mapped_column(String(16), default="")
    menu_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ReturnVisit(Base):
    """The satisfaction call-back after a work order is resolved (see ``workers.return_visits``)."""

    __tablename__ = "return_visits"
    __table_args__ = (Index("ix_return_visits_number_key", "number_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    number_key: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="scheduled", index=True)
    """scheduled, dialing, in_call, completed, unreachable, refused (do-not-call), cancelled."""
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    """Indexed (revision 0002): the reports count the visits finished in a period."""


class VisitAttempt(Base):
    """One dial of a return visit, with how it ended."""

    __tablename__ = "visit_attempts"
    __table_args__ = (UniqueConstraint("visit_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("return_visits.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    number_key: Mapped[str] = mapped_column(String(16), index=True)
    placed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    provider_call_id: Mapped[str] = mapped_column(String(64), default="")
    disposition: Mapped[str] = mapped_column(String(16), default="dialing")
    """dialing, answered, no-answer, busy, voicemail, refused, failed."""
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class VisitCallToken(Base):
    """The one-time token of a return-visit dial (issue 17): its survey runs only with it, once, while the
    hotline is dialling that attempt. Kept as a SHA-256 hash: the database never holds a usable token."""

    __tablename__ = "visit_call_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("return_visits.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    """Indexed (revision 0002): the sweep deletes the tokens past their age every few minutes."""
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DoNotCall(Base):
    """Numbers that must never get a return-visit call, kept as keyed hashes."""

    __tablename__ = "do_not_call"

    number_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    number_masked: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Recording(Base):
    """An audio file kept under ``recordings/``, with what it belongs to."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(128), unique=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    work_order: Mapped[str | None] = mapped_column(String(32), nullable=True)
    path: Mapped[str] = mapped_column(String(512))
    duration_s: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16), default="complaint", server_default="complaint", index=True)
    """``complaint`` (the caller's message) or ``conversation`` (caller and agent, stereo; revision 0006)."""
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    leg: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Conversations: the agent's channel (Asterisk) or call sid (Twilio); a transferred call has one per leg."""
    pauses: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True, default=list)
    """Conversations: ``[[from_s, to_s], ...]`` where the agent paused recording (silence in the file)."""


class DemoCard(Base):
    """The embedded demo bank: card and PIN kept only as salted hashes."""

    __tablename__ = "demo_cards"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    number_hash: Mapped[str] = mapped_column(String(64), unique=True)
    pin_hash: Mapped[str] = mapped_column(String(64))
    id_last6_hash: Mapped[str] = mapped_column(String(64))
    last4: Mapped[str] = mapped_column(String(4))
    balance: Mapped[float] = mapped_column(Numeric(14, 2))
    status: Mapped[str] = mapped_column(String(16), default="active")
    freeze_reference: Mapped[str | None] = mapped_column(String(32), nullable=True)


class CardFreeze(Base):
    """Each freeze the demo bank performed, for the audit of loss reports."""

    __tablename__ = "demo_card_freezes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(ForeignKey("demo_cards.token"))
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    frozen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """A person who logs in to the admin or agent pages (see ``admin.accounts``)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    """admin, supervisor, agent or qa (a quality reviewer: ``quality``)."""
    password_hash: Mapped[str] = mapped_column(String(256))
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """For role agent: the router's agent this person works as."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    """Raised on password change or deactivation: every older session cookie stops working."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    """The pages' language the person chose (zh-CN or en-US); None: the installation's default."""


class AuditEntry(Base):
    """Who changed or looked at what, and when: menu publishes, agent edits, work-order actions, playbacks."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(48), index=True)
    target: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class MenuDraft(Base):
    """The draft an admin is editing, one per menu, until it is published."""

    __tablename__ = "menu_drafts"

    menu: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    base_version: Mapped[int] = mapped_column(Integer)
    """The published version the draft started from (a publish in between is shown as a conflict)."""
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CallDisposition(Base):
    """An agent's wrap-up of a call: disposition code and notes."""

    __tablename__ = "call_dispositions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(32))
    notes: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgentProfile(Base):
    """A deactivated agent's profile, kept out of the router so reactivating restores it (``admin.agent_roster``)."""

    __tablename__ = "agent_profiles"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    endpoint: Mapped[str] = mapped_column(String(128))
    skills: Mapped[dict[str, int]] = mapped_column(JSON)
    """Skill -> level 1-10, as the agent had them."""
    languages: Mapped[list[str]] = mapped_column(JSON)
    deactivated_by: Mapped[str] = mapped_column(String(64))
    deactivated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PinFailures(Base):
    """Wrong PINs per card across calls, channels and processes: the record behind the Redis counter
    (``calls.pin_locks``). Keyed by a keyed hash of the card number, never the number."""

    __tablename__ = "pin_failures"

    card_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    card_masked: Mapped[str] = mapped_column(String(32))
    """``6228********5671``: what the supervisors' page shows."""
    failures: Mapped[int] = mapped_column(Integer, default=0)
    since: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    """The first failure of the current window."""
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_channel: Mapped[str] = mapped_column(String(16), default="")
    locked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """None while locked: until an admin resets it (``HOTLINE_PIN_LOCK=0``)."""


class OpeningHours(Base):
    """The agents' hours of one weekday (0 Monday .. 6 Sunday) in ``HOTLINE_TIMEZONE``; no times: closed that day.
    No rows at all: the settings' ``HOTLINE_BUSINESS_OPENS``/``CLOSES`` every day (a new installation)."""

    __tablename__ = "opening_hours"

    weekday: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    opens: Mapped[dt.time | None] = mapped_column(Time, nullable=True)
    closes: Mapped[dt.time | None] = mapped_column(Time, nullable=True)


class Holiday(Base):
    """A local date on which the agents are closed and no return visit is called (one calendar for both)."""

    __tablename__ = "holidays"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")


class EvaluationForm(Base):
    """Every published version of a quality evaluation form (``quality.forms``); the highest one is live.
    An evaluation names the version it was scored with, so a later publish never changes an old score."""

    __tablename__ = "evaluation_forms"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    """Sections, questions, weights, automatic-fail flags: validated by ``quality.forms.parse_form``."""
    published_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReviewItem(Base):
    """A call in a reviewer's queue: picked by a sampling rule (``quality.sampling``) or for calibration."""

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("call_id", "reviewer"), Index("ix_review_items_reviewer_status",
                                                                     "reviewer", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    queue: Mapped[str] = mapped_column(String(32), default="")
    call_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    week: Mapped[str] = mapped_column(String(8), index=True)
    """The ISO week of the call in ``HOTLINE_TIMEZONE``: ``2026-W49``."""
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Why it was picked: share, reopened, dissatisfied, long, calibration."""
    reviewer: Mapped[str] = mapped_column(String(64))
    calibration: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")
    """open (to score), scored, disputed (the agent disputed the evaluation: back in the queue)."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Evaluation(Base):
    """A reviewer's scored form for one call; the agent acknowledges or disputes it."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_agent_call", "agent_id", "call_started_at"),
                      Index("ix_evaluations_call_started", "call_started_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"), unique=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32), default="")
    call_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reviewer: Mapped[str] = mapped_column(String(64), index=True)
    calibration: Mapped[bool] = mapped_column(Boolean, default=False)
    form: Mapped[str] = mapped_column(String(64))
    form_version: Mapped[int] = mapped_column(Integer)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    comments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """[{"at_s": seconds into the recording, "text": ...}]"""
    total: Mapped[float | None] = mapped_column(Float, nullable=True)
    """0-100 by ``quality.scoring``; None when every question was N/A."""
    auto_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    sections: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Section id -> score 0-100 (None: all N/A)."""
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    """submitted, acknowledged, disputed (the reviewer's queue has it again), rescored (after a dispute)."""
    agent_note: Mapped[str] = mapped_column(Text, default="")
    agent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
