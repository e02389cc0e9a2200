"""Which recording a reviewer plays for a call: the one place that decides it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Recording


def recording_of(db: Session, call_id: str) -> Recording | None:
    """The call's conversation recording when recordings have a ``kind`` (issue 19 section 1), else the call's
    newest recording of any kind (the complaint message is all a call had before)."""
    rows = list(db.scalars(select(Recording).where(Recording.call_id == call_id).order_by(Recording.id.desc())))
    conversations = [r for r in rows if getattr(r, "kind", None) == "conversation"]
    chosen = conversations or rows
    return chosen[0] if chosen else None
