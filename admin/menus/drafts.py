"""Menu drafts: the one unpublished text per menu that admins edit, and the diffs between versions."""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.models import MenuDraft


@dataclass(frozen=True)
class Draft:
    menu: str
    source: str
    base_version: int
    """The published version the draft started from."""
    updated_by: str
    updated_at: dt.datetime


class MenuDrafts:
    """One draft per menu in SQL, shared by every admin: the last save wins, and says who saved it."""

    def __init__(self, sql: sessionmaker[Session]) -> None:
        self.sql = sql

    def get(self, menu: str) -> Draft | None:
        with self.sql() as db:
            row = db.get(MenuDraft, menu)
            return _draft(row) if row else None

    def names(self) -> list[str]:
        with self.sql() as db:
            return list(db.scalars(select(MenuDraft.menu)))

    def save(self, menu: str, source: str, base_version: int, updated_by: str) -> Draft:
        with self.sql.begin() as db:
            row = db.get(MenuDraft, menu)
            if row is None:
                row = MenuDraft(menu=menu, source=source, base_version=base_version, updated_by=updated_by)
                db.add(row)
            else:
                row.source, row.base_version, row.updated_by = source, base_version, updated_by
                row.updated_at = dt.datetime.now(dt.UTC)
            db.flush()
            return _draft(row)

    def discard(self, menu: str) -> bool:
        """Drop the draft (after a publish, or when an admin gives it up); False when there was none."""
        with self.sql.begin() as db:
            row = db.get(MenuDraft, menu)
            if row is None:
                return False
            db.delete(row)
            return True


def unified_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    """What changed from ``old`` to ``new``, as ``diff -u`` prints it (empty when nothing did)."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=old_label, tofile=new_label)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _draft(row: MenuDraft) -> Draft:
    at = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=dt.UTC)
    return Draft(row.menu, row.source, row.base_version, row.updated_by, at)
