"""Tables of the SQL store."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
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
    """A complaint, from the recorded message to its closure."""

    __tablename__ = "work_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    category: Mapped[str] = mapped_column(String(32))
    caller_masked: Mapped[str] = mapped_column(String(32))
    callback_number: Mapped[str] = mapped_column(String(32))
    """The number the return visit dials: a phone number, never a card number."""
    language: Mapped[str] = mapped_column(String(16))
    recording_ref: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


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
