"""The audit log: every change made through the web or API (and every recording played), with who and when."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from store.models import AuditEntry

log = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, sql: sessionmaker[Session]) -> None:
        self.sql = sql

    def write(self, actor: str, role: str, action: str, target: str, **detail: Any) -> None:
        """One entry, committed at once: the action already happened, so its trace must not wait."""
        with self.sql.begin() as db:
            db.add(AuditEntry(actor=actor, role=role, action=action, target=str(target)[:128], detail=detail))
        log.info("audit: %s (%s) %s %s", actor, role, action, target)

    def failed_logins_since(self, name: str, since: dt.datetime | None) -> tuple[int, dict[str, Any] | None]:
        """How many logins as ``name`` were refused after ``since`` (all when None), and the newest of them."""
        query = select(AuditEntry).where(AuditEntry.action == "login_failed", AuditEntry.target == name[:128])
        if since is not None:
            query = query.where(AuditEntry.at > since)
        with self.sql() as db:
            count = db.scalar(select(func.count()).select_from(query.subquery())) or 0
            newest = db.scalars(query.order_by(AuditEntry.id.desc()).limit(1)).first()
            return count, _view(newest) if newest is not None else None

    def entries(self, action: str | None = None, actor: str | None = None, target: str | None = None,
                limit: int = 200) -> list[dict[str, Any]]:
        """Newest first."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 1000)))
        if action:
            query = query.where(AuditEntry.action == action)
        if actor:
            query = query.where(AuditEntry.actor == actor)
        if target:
            query = query.where(AuditEntry.target == target)
        with self.sql() as db:
            return [_view(entry) for entry in db.scalars(query)]


def _view(entry: AuditEntry) -> dict[str, Any]:
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=dt.UTC)
    return {"id": entry.id, "at": at.isoformat(), "actor": entry.actor, "role": entry.role,
            "action": entry.action, "target": entry.target, "detail": entry.detail or {}}
