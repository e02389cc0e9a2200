"""``/api/records``: call records, newest first, each with the recordings of its call."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from admin.access import allow
from admin.api_models import RecordList, RecordQuery, RecordView
from admin.json_replies import json_error
from admin.openapi import ErrorBody, doc
from store.models import CallRecord, Recording

MAX_PAGE = 500
_HIDDEN = {"id", "caller_key"}


def create_records_api(sql: sessionmaker[Session]) -> Blueprint:
    api = Blueprint("records_api", __name__, url_prefix="/api/records")

    @api.get("")
    @allow("admin", "supervisor")
    @doc({200: RecordList, 400: ErrorBody}, query=RecordQuery, tags=("call records",))
    def list_records() -> Response | tuple[Response, int]:
        """Call records, newest first, each with the recordings of its call."""
        query = select(CallRecord).order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
        try:
            since, until = _time(request.args.get("since")), _time(request.args.get("until"))
        except ValueError as exc:
            return json_error(400, str(exc))
        if since:
            query = query.where(CallRecord.started_at >= since)
        if until:
            query = query.where(CallRecord.started_at < until)
        for column in ("channel", "intent", "outcome", "queue", "agent_id"):
            if request.args.get(column):
                query = query.where(getattr(CallRecord, column) == request.args[column])
        limit = max(1, min(MAX_PAGE, request.args.get("limit", 100, type=int) or 100))
        with sql() as db:
            rows = list(db.scalars(query.limit(limit)))
            return jsonify([_view(row, _recordings(db, [r.call_id for r in rows]).get(row.call_id, []))
                            for row in rows])

    @api.get("/<call_id>")
    @allow("admin", "supervisor")
    @doc({200: RecordView, 404: ErrorBody}, tags=("call records",))
    def show(call_id: str) -> Response | tuple[Response, int]:
        """One call's record with its recordings."""
        with sql() as db:
            row = db.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
            if row is None:
                return json_error(404, _("no record of call %(call_id)s (yet: records follow the call by a second)",
                                         call_id=call_id))
            return jsonify(_view(row, _recordings(db, [call_id]).get(call_id, [])))

    return api


def _recordings(db: Any, call_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    if call_ids:
        for rec in db.scalars(select(Recording).where(Recording.call_id.in_(call_ids)).order_by(Recording.id)):
            found.setdefault(rec.call_id, []).append(
                {"ref": rec.ref, "duration_s": rec.duration_s, "work_order": rec.work_order})
    return found


def _view(row: CallRecord, recordings: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in CallRecord.__table__.columns:
        if column.name in _HIDDEN:
            continue
        value = getattr(row, column.name)
        if isinstance(value, dt.datetime):
            value = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
        out[column.name] = value
    out["recordings"] = recordings
    return out


def _time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(_("not an ISO date or time: %(text)r", text=text[:40])) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
