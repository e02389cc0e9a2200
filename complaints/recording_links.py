"""The one writer of the link between a stored recording and its work order, whichever is written first:
the recording (Asterisk keeps it before the intake; Twilio's callback may come after) or the work order.
Both sides call in here; the recordings store notes the link in the audio's metadata file as well."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from recordings.store import CONVERSATIONS, StoredAudio
from store.db import UNAVAILABLE
from store.models import Recording, WorkOrder

if TYPE_CHECKING:
    from complaints.pending_writes import PendingWrites

log = logging.getLogger(__name__)


def link_recording(db: Session, recording_ref: str, work_order: str) -> str | None:
    """Inside the transaction that writes ``work_order``: link its recording if that is stored already;
    returns the recording's path then (None: it is not, and will be linked when it is)."""
    stored = db.scalar(select(Recording.path).where(Recording.ref == recording_ref))
    db.execute(update(Recording).where(Recording.ref == recording_ref).values(work_order=work_order))
    return stored


def recording_known(sql: sessionmaker[Session], ref: str) -> bool:
    try:
        with sql() as db:
            return db.scalar(select(Recording.id).where(Recording.ref == ref)) is not None
    except UNAVAILABLE:
        return False  # fetch it again: storing is idempotent, and its row waits for the database


def work_order_for(sql: sessionmaker[Session], recording_ref: str) -> str | None:
    try:
        with sql() as db:
            return db.scalar(select(WorkOrder.number).where(WorkOrder.recording_ref == recording_ref))
    except UNAVAILABLE:
        return None  # the row is linked when it is written


def work_order_of_call(sql: sessionmaker[Session], call_id: str) -> str | None:
    """The work order opened on ``call_id`` (a conversation recording is linked to it), if any."""
    try:
        with sql() as db:
            return db.scalar(select(WorkOrder.number).where(WorkOrder.call_id == call_id))
    except UNAVAILABLE:
        return None


def record_recording(sql: sessionmaker[Session], meta: StoredAudio, pending: PendingWrites | None = None) -> None:
    """The SQL row of a stored recording, linked to its work order when there is one; kept in ``pending``
    while the database is away (the caller's call goes on)."""
    try:
        with sql.begin() as db:
            db.add(Recording(
                ref=meta.ref, call_id=meta.call_id, work_order=meta.work_order, path=meta.path,
                duration_s=meta.duration_s, sha256=meta.sha256, size_bytes=meta.size_bytes,
                kind="conversation" if meta.kind == CONVERSATIONS else "complaint", agent_id=meta.agent_id,
                leg=meta.leg, pauses=[list(p) for p in meta.pauses],
            ))
    except UNAVAILABLE:
        if pending is None:
            raise
        pending.recording(meta)
    except IntegrityError:
        # The name is taken: the same audio stored again is nothing; other audio means call ids repeat
        # (two Asterisk servers without their own systemname): the caller's call goes on, the file is kept.
        with sql() as db:
            same = db.scalar(select(Recording.sha256).where(Recording.ref == meta.ref)) == meta.sha256
        if not same:
            log.error("recording %s of call %s not indexed: another recording has that name (kept at %s)",
                      meta.ref, meta.call_id, meta.path)
