"""Recordings behind short-lived signed links: never a static file, only to the person the link was issued to.

``POST /api/recordings/<ref>/link`` gives an admin or supervisor a link signed with the app's secret
(a salt of its own) that binds the recording and the person; ``GET /recordings/play/<token>`` checks the
signature, its age and who is asking, then streams the audio (Range requests answered 206).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_file
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from admin.access import allow, current
from admin.audit import AuditLog
from admin.json_replies import json_error
from admin.openapi import ErrorBody, doc
from store.models import Recording

SALT = "hotline.recording-link"
PLAY_PREFIX = "/recordings/play/"


class RecordingLink(BaseModel):
    """A link to play one recording, valid for the person who asked until ``expires_at``."""

    url: str
    expires_at: str
    ref: str
    work_order: str | None


class LinkRefused(Exception):
    """The link cannot be played; the message says why."""


def create_recordings_web(sql: sessionmaker[Session], audit: AuditLog, recordings_dir: Path,
                          lifetime_s: int) -> Blueprint:
    bp = Blueprint("recordings_web", __name__)

    @bp.post("/api/recordings/<ref>/link")
    @allow("admin", "supervisor")
    @doc({200: RecordingLink, 400: ErrorBody, 404: ErrorBody}, tags=("recordings",))
    def link(ref: str) -> Response | tuple[Response, int]:
        row = _recording(sql, ref)
        if row is None:
            return json_error(404, f"recording {ref} does not exist")
        who = current()
        token = _signer().dumps({"ref": ref, "user": who.name})
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime_s)
        return jsonify(RecordingLink(url=PLAY_PREFIX + token, expires_at=expires.isoformat(timespec="seconds"),
                                     ref=ref, work_order=row.work_order).model_dump())

    @bp.get(PLAY_PREFIX + "<token>")
    @allow("admin", "supervisor")
    def play(token: str) -> Response:
        try:
            ref = _check(token, lifetime_s)
        except LinkRefused as exc:
            return _refused(403, str(exc))
        row = _recording(sql, ref)
        path = _file(recordings_dir, row.path) if row else None
        if row is None or path is None:
            return _refused(404, f"recording {ref} is no longer kept")
        if _from_the_start(request.headers.get("Range")):  # one entry per play, not per chunk the player fetches
            who = current()
            audit.write(who.name, who.role, "recording_played", ref, work_order=row.work_order,
                                call_id=row.call_id)
        response = send_file(path, conditional=True, max_age=0)
        response.headers["Cache-Control"] = "private, no-store"
        return response

    return bp


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)  # type: ignore[arg-type]


def _check(token: str, lifetime_s: int) -> str:
    """The recording ref a valid link of the current user names; raises LinkRefused."""
    try:
        claim: Any = _signer().loads(token, max_age=lifetime_s)
    except SignatureExpired:
        raise LinkRefused(f"this recording link has expired (links last {lifetime_s} s): "
                          "open the work order again for a new one") from None
    except BadSignature:
        raise LinkRefused("this recording link is not valid (altered or from another installation)") from None
    if not isinstance(claim, dict) or claim.get("user") != current().name:
        raise LinkRefused("this recording link was issued to someone else: ask for your own")
    return str(claim["ref"])


def _recording(sql: sessionmaker[Session], ref: str) -> Recording | None:
    with sql() as db:
        return db.scalar(select(Recording).where(Recording.ref == ref))


def _file(root: Path, relative: str) -> Path | None:
    path = (root / relative).resolve()
    if root.resolve() not in path.parents or not path.is_file():
        return None
    return path


def _from_the_start(range_header: str | None) -> bool:
    return not range_header or range_header.replace(" ", "").startswith("bytes=0-")


def _refused(status: int, message: str) -> Response:
    return Response(render_template("error.html", status=status, message=message), status=status)
