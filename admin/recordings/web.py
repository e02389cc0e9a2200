"""Recordings behind short-lived signed links: never a static file, only to the person the link was issued to.

``POST /api/recordings/<ref>/link`` gives an admin or supervisor a link signed with the app's secret
(a salt of its own) that binds the recording and the person (a ``qa`` reviewer: only for a call in their review
queue, ``may_hear``); ``GET /recordings/play/<token>`` checks the
signature, its age and who is asking, checks the file against the sha256 it was stored with (a replaced file is
refused, logged and audited), writes one ``recording_played`` audit entry per link and person on the link's first
request of any kind, and only then streams the audio (Range requests answered 206).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_file
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from admin.access import allow, current
from admin.audit import AuditLog
from admin.json_replies import json_error
from admin.openapi import ErrorBody, doc
from recordings.store import ChecksumMismatch, open_checked
from store.models import AuditEntry, Recording

log = logging.getLogger(__name__)

SALT = "hotline.recording-link"
PLAY_PREFIX = "/recordings/play/"
TAMPERED = ("录音文件与保存时的校验值不符，不予播放（文件可能被替换），已记录在审计日志中。"
            "This recording does not match the checksum it was stored with, so it is not played "
            "(the file may have been replaced); the refusal is in the audit log.")


class RecordingLink(BaseModel):
    """A link to play one recording, valid for the person who asked until ``expires_at``."""

    url: str
    expires_at: str
    ref: str
    work_order: str | None
    kind: str = "complaint"
    """``complaint`` (the caller's message) or ``conversation`` (caller left, agent right on Asterisk)."""
    call_id: str = ""
    agent_id: str | None = None
    pauses: list[list[float]] = []
    """Where the agent paused a conversation's recording: ``[from_s, to_s]`` of silence, for the player's gaps."""


class LinkRefused(Exception):
    """The link cannot be played; the message says why."""


def create_recordings_web(sql: sessionmaker[Session], audit: AuditLog, recordings_dir: Path,
                          lifetime_s: int, may_hear: Callable[[str, str], bool] | None = None) -> Blueprint:
    """``may_hear(reviewer, call_id)``: whether a ``qa`` reviewer has the call in their review queue (without it,
    ``qa`` reviewers play nothing)."""
    bp = Blueprint("recordings_web", __name__)

    def refused_to(who: Any, row: Recording) -> bool:
        return who.role == "qa" and not (may_hear is not None and may_hear(who.name, row.call_id))

    @bp.post("/api/recordings/<ref>/link")
    @allow("admin", "supervisor", "qa")
    @doc({200: RecordingLink, 400: ErrorBody, 403: ErrorBody, 404: ErrorBody}, tags=("recordings",))
    def link(ref: str) -> Response | tuple[Response, int]:
        row = _recording(sql, ref)
        if row is None:
            return json_error(404, _("recording %(ref)s does not exist", ref=ref))
        who = current()
        if refused_to(who, row):
            return json_error(403, _("call %(call_id)s is not in your review queue", call_id=row.call_id))
        url = signed_link(ref, who.name)
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime_s)
        return jsonify(RecordingLink(url=url, expires_at=expires.isoformat(timespec="seconds"),
                                     ref=ref, work_order=row.work_order, kind=row.kind, call_id=row.call_id,
                                     agent_id=row.agent_id, pauses=row.pauses or []).model_dump())

    @bp.get(PLAY_PREFIX + "<token>")
    @allow("admin", "supervisor", "qa")
    def play(token: str) -> Response:
        try:
            ref = _check(token, lifetime_s)
        except LinkRefused as exc:
            return _refused(403, str(exc))
        row = _recording(sql, ref)
        path = _file(recordings_dir, row.path) if row else None
        if row is None or path is None:
            return _refused(404, f"recording {ref} is no longer kept")
        who = current()
        if refused_to(who, row):  # a link issued before the item left the reviewer's queue
            return _refused(403, _("call %(call_id)s is not in your review queue", call_id=row.call_id))
        try:
            audio = open_checked(path, ref, row.sha256)
        except ChecksumMismatch:
            log.error("recording %s (%s) does not match the checksum it was stored with: not played to %s",
                      ref, row.path, who.name)
            audit.write(who.name, who.role, "recording_refused", ref, reason="checksum mismatch",
                        work_order=row.work_order, call_id=row.call_id)
            return _refused(409, TAMPERED)
        try:
            # Before a byte is sent, whatever the Range header says (or how it is spelt): once per link and person.
            _audit_first_play(sql, audit, token, ref, row, lifetime_s)
            return _stream(audio, path, row.sha256)
        except BaseException:
            audio.close()
            raise

    return bp


def signed_link(ref: str, user: str) -> str:
    """The address that plays recording ``ref`` to ``user`` only (in a request of this app): valid for the
    link lifetime given to ``create_recordings_web``."""
    return PLAY_PREFIX + _signer().dumps({"ref": ref, "user": user})


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


def _audit_first_play(sql: sessionmaker[Session], audit: AuditLog, token: str, ref: str, row: Recording,
                      lifetime_s: int) -> None:
    """One ``recording_played`` entry for the first request made with a link, whatever it asked for: an auditor
    sees every person who heard any part of a recording, and a player's seeking does not flood the log."""
    who = current()
    link = hashlib.sha256(token.encode()).hexdigest()[:32]
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=lifetime_s + 60)  # a link is refused once older
    with sql() as db:
        earlier = db.scalars(select(AuditEntry.detail).where(
            AuditEntry.action == "recording_played", AuditEntry.actor == who.name,
            AuditEntry.target == ref, AuditEntry.at >= since))
        if any((detail or {}).get("link") == link for detail in earlier):
            return
    asked = request.range  # werkzeug's parse: None when absent or not a byte range it can serve
    audit.write(who.name, who.role, "recording_played", ref, work_order=row.work_order, call_id=row.call_id,
                link=link, range=asked.to_header() if asked else None)


def _stream(audio: BinaryIO, path: Path, sha256: str) -> Response:
    """The open, checked file as send_file would answer it for a path: 200, 206 for a range, 304, 416."""
    size = os.fstat(audio.fileno()).st_size
    response = send_file(audio, download_name=path.name, etag=sha256, max_age=0,
                         last_modified=os.fstat(audio.fileno()).st_mtime, conditional=False)
    response.content_length = size
    response.make_conditional(request.environ, accept_ranges=True, complete_length=size)  # changes it in place
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _refused(status: int, message: str) -> Response:
    return Response(render_template("error.html", status=status, message=message), status=status)
