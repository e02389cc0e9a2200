"""Call records: fold call events into one ``call_records`` row per call, idempotently.

Every merge rule is order-free and idempotent (earliest start, latest end, first answer, values set
only when given), so a duplicated event, a retried batch or events of one call split over batches
and workers all end in the same row. The outcome is derived from the merged row, never stored blindly.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from complaints.pending_writes import PENDING_EVENTS, write_pending
from store.db import write_locked
from store.models import CallRecord

log = logging.getLogger(__name__)

RECORD_EVENTS = frozenset({
    "call_started", "call_ended", "call_queued", "call_answered", "call_completed", "call_abandoned",
    "call_transferred",
})
LEG = "agent_leg"
"""A transferred call's legs are kept at the end of its ``ivr_path``: ``{"node": "agent_leg", "agent", "talk_s",
"at", and for a leg handed on "to_kind", "to", "mode"}``. One record, one call in the reports; its talk time
is the legs' sum."""
SELECT_CHUNK = 500
"""Call ids per ``IN (...)`` lookup: well under every database's parameter limit."""

_DIRECTIONS = {"inbound": "inbound", "outbound-api": "outbound", "outbound-dial": "outbound", "outbound": "outbound"}
_STRING_SIZES = {c.name: getattr(c.type, "length") for c in CallRecord.__table__.columns  # noqa: B009
                 if getattr(c.type, "length", None)}


def outcome_of(row: Mapping[str, Any]) -> str:
    """The call's outcome from what is known of it: '' while the call has not ended."""
    ivr = row.get("ivr_outcome") or ""
    if ivr == "survey_completed":
        return "survey_completed"
    if row.get("answered_at") is not None or ivr in ("routed", "transferred"):
        return "routed"
    if ivr == "self_served":
        return "self_served"
    if ivr in ("failed", "error") or row.get("end_status") == "failed":
        return "failed"
    if row.get("ended_at") is not None or row.get("_abandoned"):
        return "abandoned"
    return ""


def apply_event(row: dict[str, Any], kind: str, event: Mapping[str, str]) -> None:
    """Merge one event into ``row`` (a dict of ``CallRecord`` columns)."""
    at = _time(event.get("ts"))
    if kind == "call_started":
        _earliest(row, "started_at", at)
        _given(row, event, channel="channel", caller_masked="caller", caller_key="caller_key", called="called",
               language="language")
        if event.get("direction"):
            row["direction"] = _DIRECTIONS.get(event["direction"], "inbound")
        _number(row, "menu_version", event.get("menu_version"), int)
    elif kind == "call_ended":
        _latest(row, "ended_at", at)
        failed = row.get("end_status") == "failed"
        _given(row, event, channel="channel", intent="intent", language="language", end_status="status",
               ivr_outcome="outcome")
        if failed:  # the error boundary's end and the call's own may come in either order
            row["end_status"] = "failed"
        if event.get("verified"):
            row["verified"] = row.get("verified") or event["verified"] == "yes"
        path = _json_list(event.get("ivr_path"))
        legs = _legs(row)
        if path is not None and len(path) >= len(row.get("ivr_path") or []) - len(legs):
            row["ivr_path"] = [step for step in path if not _is_leg(step)] + legs
    elif kind == "call_queued":
        if _earliest(row, "queued_at", at) or not row.get("queue"):
            _given(row, event, queue="skill")
    elif kind == "call_answered":
        if _earliest(row, "answered_at", at):  # the first answer is the one the caller waited for
            _given(row, event, agent_id="agent", queue="skill")
            _number(row, "wait_s", event.get("wait_s"), float)
            _number(row, "predicted_wait_s", event.get("predicted_wait_s"), float)
    elif kind == "call_completed":
        talk = _parse(event.get("talk_s"), float)
        if talk is not None and talk > (row.get("talk_s") or 0):
            row["talk_s"] = talk
        _given(row, event, agent_id="agent")
        if _legs(row):  # the last leg of a transferred call
            _add_leg(row, event, {})
    elif kind == "call_transferred":
        _add_leg(row, event, {"to_kind": event.get("to_kind", ""), "to": event.get("to", ""),
                              "mode": event.get("mode", "")})
    elif kind == "call_abandoned":
        row["_abandoned"] = True
        _latest(row, "ended_at", at)


def _is_leg(step: Any) -> bool:
    return isinstance(step, dict) and step.get("node") == LEG


def _legs(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [step for step in row.get("ivr_path") or [] if _is_leg(step)]


def _add_leg(row: dict[str, Any], event: Mapping[str, str], more: dict[str, str]) -> None:
    """One agent's part of a transferred call; an event seen twice (a batch retried) adds nothing."""
    at = event.get("ts", "")
    if any(leg.get("at") == at and leg.get("agent") == event.get("agent") for leg in _legs(row)):
        return
    leg = {"node": LEG, "agent": event.get("agent", ""), "talk_s": _parse(event.get("talk_s"), float), "at": at,
           **{k: v for k, v in more.items() if v}}
    row["ivr_path"] = [*(row.get("ivr_path") or []), leg]


def fold(row: dict[str, Any], events: Iterable[Mapping[str, str]]) -> dict[str, Any]:
    """``row`` with ``events`` merged in and its outcome derived: the record as it will be written."""
    for event in sorted(events, key=lambda e: e.get("ts", "")):
        apply_event(row, event["type"], event)
    legs = _legs(row)
    if legs:
        row["talk_s"] = round(sum(leg.get("talk_s") or 0 for leg in legs), 3)
    row["outcome"] = outcome_of(row)
    row.pop("_abandoned", None)
    _clip(row)
    return row


def new_record(call_id: str, events: Iterable[Mapping[str, str]]) -> dict[str, Any]:
    """The full row a call's first events make (every column, defaults filled in)."""
    return _with_defaults(fold({"call_id": call_id}, events))


class RecordWriter:
    """Writes a batch of stream events as call records in one transaction."""

    def __init__(self, sql: sessionmaker[Session]) -> None:
        # Two writers may hold events of one call (one took over the other's): each merges under the lock.
        self._sql = write_locked(sql)

    def write(self, events: Iterable[Mapping[str, str]]) -> int:
        """Upsert the records the events touch, and write what was kept while the database was away
        (``workers.pending_writes``) in the same transaction; returns how many records were written."""
        by_call: dict[str, list[Mapping[str, str]]] = {}
        pending: list[Mapping[str, str]] = []
        for event in events:
            kind, call_id = event.get("type", ""), event.get("call_id", "")
            if kind in RECORD_EVENTS and call_id and len(call_id) <= 64:
                by_call.setdefault(call_id, []).append(event)
            elif kind in PENDING_EVENTS:
                pending.append(event)
        if not by_call and not pending:
            return 0
        with self._sql.begin() as db:
            if pending:
                write_pending(db, pending)
            existing = self._existing(db, list(by_call))
            inserts, updates = [], []
            for call_id, call_events in by_call.items():
                old = existing.get(call_id)
                row = fold(dict(old) if old else {"call_id": call_id}, call_events)
                if old is None:
                    inserts.append(_with_defaults(row))
                elif row != old:
                    updates.append(row)
            if inserts:
                db.execute(insert(CallRecord), inserts)
            if updates:
                db.execute(update(CallRecord), updates)
        return len(inserts) + len(updates)

    def _existing(self, db: Any, call_ids: list[str]) -> dict[str, dict[str, Any]]:
        columns = list(CallRecord.__table__.columns)
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(call_ids), SELECT_CHUNK):
            chunk = call_ids[i:i + SELECT_CHUNK]
            query = select(*columns).where(CallRecord.call_id.in_(chunk))
            if db.bind.dialect.name == "postgresql":
                query = query.with_for_update()  # two writers merging one call wait for each other
            for row in db.execute(query).mappings():
                found[row["call_id"]] = {k: _aware(v) for k, v in row.items()}
        return found


_DEFAULTS = {
    "channel": "", "direction": "inbound", "caller_masked": "", "caller_key": "", "called": "", "ivr_path": [],
    "intent": "", "verified": False, "queue": "", "agent_id": "", "outcome": "", "ivr_outcome": "", "end_status": "",
    "language": "",
}
_ALL_COLUMNS = [c.name for c in CallRecord.__table__.columns if c.name != "id"]


def _with_defaults(row: dict[str, Any]) -> dict[str, Any]:
    # executemany needs every row to carry the same keys.
    return {name: row.get(name, _DEFAULTS.get(name)) for name in _ALL_COLUMNS}


def _time(ts: str | None) -> dt.datetime | None:
    value = _parse(ts, float)
    return dt.datetime.fromtimestamp(value, dt.UTC) if value is not None else None


def _aware(value: Any) -> Any:
    # SQLite hands timezone-aware columns back naive (in UTC).
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _earliest(row: dict[str, Any], column: str, at: dt.datetime | None) -> bool:
    if at is not None and (row.get(column) is None or at < row[column]):
        row[column] = at
        return True
    return False


def _latest(row: dict[str, Any], column: str, at: dt.datetime | None) -> None:
    if at is not None and (row.get(column) is None or at > row[column]):
        row[column] = at


def _given(row: dict[str, Any], event: Mapping[str, str], **columns: str) -> None:
    for column, field in columns.items():
        value = event.get(field)
        if value:
            row[column] = value


def _number(row: dict[str, Any], column: str, text: str | None, kind: type) -> None:
    value = _parse(text, kind)
    if value is not None:
        row[column] = value


def _parse(text: str | None, kind: type) -> Any:
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        return None


def _json_list(text: str | None) -> list[Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def _clip(row: dict[str, Any]) -> None:
    # A value longer than its column would fail the whole batch on PostgreSQL, again on every retry.
    for column, size in _STRING_SIZES.items():
        value = row.get(column)
        if isinstance(value, str) and len(value) > size:
            row[column] = value[:size]
