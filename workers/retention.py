"""Retention: call records older than the configured age go, and their recordings with them; agent conversation
recordings go sooner, at their own age (``HOTLINE_CONVERSATION_RETENTION_DAYS``), their call record staying."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from recordings.store import RecordingStore
from store.models import CallRecord, Recording, WorkOrder

log = logging.getLogger(__name__)

BATCH = 1000
KEEP_FOR_OPEN_ORDERS = ("open", "assigned", "in_progress", "resolved", "reopened")
"""A recording still evidence for a complaint being worked is kept past its record."""


@dataclass
class Retention:
    sql: sessionmaker[Session]
    recordings: RecordingStore
    max_age: dt.timedelta
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    conversation_max_age: dt.timedelta | None = None
    """None: conversations go with their call record, as complaint messages do."""

    def purge(self) -> tuple[int, int]:
        """Delete expired records and their recordings, in batches; returns (records, recordings) removed."""
        cutoff = self.clock() - self.max_age
        records, recordings = 0, self.purge_conversations()
        while True:
            with self.sql.begin() as db:
                rows = list(db.execute(select(CallRecord.id, CallRecord.call_id)
                                       .where(CallRecord.started_at < cutoff).limit(BATCH)))
                if not rows:
                    break
                call_ids = [call_id for _, call_id in rows]
                kept_orders = select(WorkOrder.number).where(WorkOrder.status.in_(KEEP_FOR_OPEN_ORDERS))
                audio = list(db.execute(select(Recording.id, Recording.path).where(
                    Recording.call_id.in_(call_ids),
                    Recording.work_order.is_(None) | Recording.work_order.not_in(kept_orders))))
                db.execute(delete(CallRecord).where(CallRecord.id.in_([i for i, _ in rows])))
                if audio:
                    db.execute(delete(Recording).where(Recording.id.in_([i for i, _ in audio])))
            # Files after the commit: a failed commit leaves rows pointing at files that still exist.
            for _, path in audio:
                self.recordings.delete(path)
            records, recordings = records + len(rows), recordings + len(audio)
        if records:
            log.info("retention: purged %d call records and %d recordings older than %s", records, recordings, cutoff)
        return records, recordings

    def purge_conversations(self) -> int:
        """Delete conversation recordings older than their own age, but those of a complaint still worked."""
        if self.conversation_max_age is None:
            return 0
        cutoff, removed = self.clock() - self.conversation_max_age, 0
        while True:
            with self.sql.begin() as db:
                kept_orders = select(WorkOrder.number).where(WorkOrder.status.in_(KEEP_FOR_OPEN_ORDERS))
                audio = list(db.execute(select(Recording.id, Recording.path).where(
                    Recording.kind == "conversation", Recording.created_at < cutoff,
                    Recording.work_order.is_(None) | Recording.work_order.not_in(kept_orders)).limit(BATCH)))
                if audio:
                    db.execute(delete(Recording).where(Recording.id.in_([i for i, _ in audio])))
            for _, path in audio:
                self.recordings.delete(path)
            removed += len(audio)
            if len(audio) < BATCH:
                break
        if removed:
            log.info("retention: deleted %d conversation recordings older than %s", removed, cutoff)
        return removed
