"""What callers gave while the database was away: complaints and recording rows, kept on the events
stream and written by the record writer once the database is back.

Work-order numbers. The caller must hear the number before hanging up, and it must stay the work
order's. A number from SQL is ``yymmdd`` + the row id (6 digits and more): it needs the database. A
pending number is ``yymmdd`` + ``0`` + a daily sequence of 6 digits from one Redis INCR shared by every
process. Its 7th digit is ``0``, which no SQL number has (an id below a million gives 12 digits, a
larger one starts with a non-zero digit): the two kinds never collide. Each day's sequence starts at
the time of day (seconds x 10), so a Redis that lost its data starts again above the numbers it gave.
A replayed step gets the number its call already has.

Keeping the complaint. It is one ``work_order_pending`` event on the events stream (everything the
row needs, deadlines included). The record writer reads it in its consumer group with the call
events: it is acknowledged only once the transaction inserting the work order committed, and the
insert is idempotent on the call id, so a database still away, a killed writer or a replayed batch
neither loses nor doubles a work order.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any, Protocol

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from calls.keys import pending_work_order_key, pending_work_order_seq_key
from complaints.recording_links import link_recording
from recordings.store import CONVERSATIONS, StoredAudio
from store.models import Recording, WorkOrder, WorkOrderChange

log = logging.getLogger(__name__)

WORK_ORDER_PENDING = "work_order_pending"
RECORDING_PENDING = "recording_pending"
PENDING_EVENTS = frozenset({WORK_ORDER_PENDING, RECORDING_PENDING})
KEEP_S = 2 * 86400
"""How long Redis remembers a day's sequence and each call's pending number."""
_TIMES = ("created_at", "first_contact_due", "resolve_due")


class Events(Protocol):
    def emit(self, kind: str, **fields: Any) -> None: ...


class PendingWrites:
    """Numbers and keeps what the database could not take (the web and FastAGI side)."""

    def __init__(self, client: redis.Redis, events: Events) -> None:
        self._redis, self._events = client, events

    def work_order(self, values: Mapping[str, Any]) -> str:
        """Keep a complaint's work order (``WorkOrder`` columns but the number); returns its number."""
        number = self.number_for(str(values["call_id"]), values["created_at"])
        fields = {k: (f"{v.timestamp():.3f}" if k in _TIMES else v) for k, v in values.items() if v is not None}
        self._events.emit(WORK_ORDER_PENDING, **fields, work_order=number)
        log.warning("call %s: database unavailable, complaint kept as pending work order %s",
                    values["call_id"], number)
        return number

    def recording(self, meta: StoredAudio) -> None:
        """Keep the row of a recording whose audio is stored already."""
        # ``kind`` (the store's folder) has no column, and would clash with the event's own kind.
        fields = {k: v for k, v in asdict(meta).items() if v is not None and k not in ("kind", "pauses")}
        if meta.kind == CONVERSATIONS:  # a conversation says so, with its pauses as JSON (events hold text)
            fields |= {"recording_kind": "conversation", "pauses": json.dumps(meta.pauses)}
        self._events.emit(RECORDING_PENDING, **fields)
        log.warning("recording %s of call %s: database unavailable, row kept for later", meta.ref, meta.call_id)

    def known(self, call_id: str) -> str | None:
        """The pending number this call was given, if any (None too when Redis cannot say)."""
        try:
            known = self._redis.get(pending_work_order_key(call_id))
        except redis.RedisError:
            return None
        return (known.decode() if isinstance(known, bytes) else str(known)) if known else None

    def number_for(self, call_id: str, now: dt.datetime) -> str:
        """The call's pending number: the one it already has, else the next of the day's sequence."""
        known = self.known(call_id)
        if known is not None:
            return known
        day = f"{now:%y%m%d}"
        seq_key = pending_work_order_seq_key(day)
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(seq_key, (now.hour * 3600 + now.minute * 60 + now.second) * 10, nx=True, ex=KEEP_S)
        pipe.incr(seq_key)
        number = f"{day}0{int(pipe.execute()[1]):06d}"
        self._redis.set(pending_work_order_key(call_id), number, ex=KEEP_S)
        return number


def write_pending(db: Session, events: Iterable[Mapping[str, str]]) -> int:
    """Insert the kept work orders, then the kept recording rows (linked to their work order);
    rows already there are left alone. Returns how many rows were inserted."""
    orders = {e["call_id"]: e for e in events if e.get("type") == WORK_ORDER_PENDING and e.get("call_id")}
    recordings = {e["ref"]: e for e in events if e.get("type") == RECORDING_PENDING and e.get("ref")}
    written = sum(_safely(_open, db, event) for event in orders.values())
    return written + sum(_safely(_record, db, event) for event in recordings.values())


def _safely(write: Callable[[Session, Mapping[str, str]], bool], db: Session, event: Mapping[str, str]) -> bool:
    # A malformed event must not fail its batch on every retry: the call records behind it would wait forever.
    try:
        return write(db, event)
    except (KeyError, ValueError, TypeError, OverflowError) as exc:
        log.error("%s of call %s not written, malformed: %s", event.get("type"), event.get("call_id"), exc)
        return False


def _open(db: Session, event: Mapping[str, str]) -> bool:
    number, call_id = event["work_order"], event["call_id"]
    existing = db.execute(select(WorkOrder.number, WorkOrder.id).where(WorkOrder.call_id == call_id)).first()
    if existing is not None:
        if existing.number != number:  # the SQL insert had committed after all, unseen by the intake
            db.add(WorkOrderChange(work_order_id=existing.id, at=_time(event, "created_at"), actor="ivr",
                                   action="note", from_status=None, to_status=None,
                                   detail=f"the caller was told number {number} (database unavailable)"))
        return False
    if db.scalar(select(WorkOrder.call_id).where(WorkOrder.number == number)) is not None:
        log.error("pending work order %s of call %s: the number is taken by another call", number, call_id)
        return False
    created = _time(event, "created_at")
    order = WorkOrder(
        number=number, call_id=call_id, category=event.get("category", "other"),
        caller_masked=event.get("caller_masked", ""), callback_number=event.get("callback_number", ""),
        language=event.get("language", ""), channel=event.get("channel", ""),
        recording_ref=event.get("recording_ref", ""), status="open", priority=int(event.get("priority", 5)),
        created_at=created, updated_at=created, first_contact_due=_time(event, "first_contact_due"),
        resolve_due=_time(event, "resolve_due"),
    )
    db.add(order)
    db.flush()
    link_recording(db, order.recording_ref, number)
    db.add(WorkOrderChange(work_order_id=order.id, at=created, actor="ivr", action="open", from_status=None,
                           to_status="open", detail=f"category {order.category}; written after a database outage"))
    return True


def _record(db: Session, event: Mapping[str, str]) -> bool:
    ref = event["ref"]
    if db.scalar(select(Recording.id).where(Recording.ref == ref)) is not None:
        return False
    work_order = event.get("work_order") or db.scalar(select(WorkOrder.number).where(WorkOrder.recording_ref == ref))
    created = dt.datetime.fromisoformat(event["created_at"]) if event.get("created_at") else None
    db.add(Recording(ref=ref, call_id=event.get("call_id", ""), work_order=work_order, path=event.get("path", ""),
                     duration_s=float(event.get("duration_s") or 0), sha256=event.get("sha256", ""),
                     size_bytes=int(event.get("size_bytes") or 0),
                     kind=event.get("recording_kind") or "complaint", agent_id=event.get("agent_id"),
                     leg=event.get("leg"), pauses=json.loads(event.get("pauses") or "[]"),
                     **({"created_at": created} if created else {})))
    db.flush()
    return True


def _time(event: Mapping[str, str], name: str) -> dt.datetime | None:
    value = event.get(name)
    return dt.datetime.fromtimestamp(float(value), dt.UTC) if value else None
