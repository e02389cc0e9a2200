"""A menu's life: draft, check, publish (with its diff, audit entry and prompt audio), roll back, history."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import redis
from flask_babel import gettext as _
from rq import Queue

from admin.audit import AuditLog
from admin.menus.check import Checked, check
from admin.menus.drafts import Draft, MenuDrafts, unified_diff
from calls.menus import MenuNotFound, MenuRepository, PublishedVersion
from ivr.loader import MenuError, Problem

log = logging.getLogger(__name__)

PROMPTS_JOB = "workers.jobs.render_menu_prompts"
MENU_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
"""``ivr.model.Menu.name``, within the 64 characters the SQL columns hold."""


class NothingToPublish(ValueError):
    """No text was given and no draft is saved."""


class StaleDraft(Exception):
    """A newer version went live after the draft began: publishing would silently undo it."""


@dataclass(frozen=True)
class Actor:
    name: str
    role: str


class MenuEditor:
    def __init__(self, menus: MenuRepository, drafts: MenuDrafts, audit: AuditLog, jobs: Queue) -> None:
        self.menus, self.drafts, self.audit, self.jobs = menus, drafts, audit, jobs

    def names(self) -> list[str]:
        """Every published menu, and menus that only have a draft so far."""
        return sorted(set(self.menus.names()) | set(self.drafts.names()))

    def summary(self, name: str) -> dict[str, Any]:
        live = self._live(name)
        draft = self.drafts.get(name)
        if live is None and draft is None:
            raise MenuNotFound(f"there is no menu {name!r}")
        return {"name": name, "live_version": live.version if live else None,
                "published_by": live.published_by if live else None,
                "published_at": live.published_at.isoformat() if live else None,
                "draft": _draft_view(draft, live.version if live else 0) if draft else None,
                "live_source": live.source if live else None}

    def check(self, name: str, source: str) -> Checked:
        """The engine's verdict, plus the one rule of the editor: the text names the menu it is saved as."""
        checked = check(source)
        if checked.menu is not None and checked.menu.name != name:
            line = _line_of_key(source, "name")
            wrong = Problem(None, f"name is '{checked.menu.name}', but this is the draft of menu '{name}'", line)
            return Checked(checked.menu, [wrong, *checked.problems])
        return checked

    def save_draft(self, name: str, source: str, base_version: int | None, who: Actor) -> dict[str, Any]:
        if not MENU_NAME.fullmatch(name):
            raise ValueError(_("a menu name is up to 64 lower-case letters, digits, - and _, starting with a letter"))
        live = self._live(name)
        base = base_version if base_version is not None else (live.version if live else 0)
        draft = self.drafts.save(name, source, base, who.name)
        self.audit.write(who.name, who.role, "menu_draft_saved", name, base_version=base, bytes=len(source.encode()))
        return _draft_view(draft, live.version if live else 0)

    def discard_draft(self, name: str, who: Actor) -> bool:
        dropped = self.drafts.discard(name)
        if dropped:
            self.audit.write(who.name, who.role, "menu_draft_discarded", name)
        return dropped

    def publish(self, name: str, who: Actor, source: str | None = None, base_version: int | None = None,
                overwrite: bool = False) -> dict[str, Any]:
        """Put a draft live as the next version; raises ``MenuError`` (with every problem), ``StaleDraft``."""
        draft = self.drafts.get(name)
        if source is None and draft is None:
            raise NothingToPublish(f"menu {name!r} has no draft to publish")
        text = source if source is not None else draft.source  # type: ignore[union-attr]
        live = self._live(name)
        base = base_version if base_version is not None else (draft.base_version if draft else None)
        if live and base is not None and base < live.version and not overwrite:
            raise StaleDraft(f"version {live.version} was published by {live.published_by} at "
                             f"{live.published_at:%Y-%m-%d %H:%M} UTC after this draft began from version {base}: "
                             "check what changed, then publish again to replace it")
        checked = self.check(name, text)
        if not checked.valid:
            raise MenuError(checked.problems)
        version = self.menus.publish(text, who.name).version
        if draft is not None and (source is None or source == draft.source):
            self.drafts.discard(name)
        return self._went_live(name, version, who, "menu_published")

    def rollback(self, name: str, version: int, who: Actor) -> dict[str, Any]:
        """Publish an older version's text again, as a new version."""
        old = self.menus.published(name, version)
        if version == self.menus.live_version(name):
            raise ValueError(_("version %(version)s of %(name)s is live already", version=version, name=name))
        new = self.menus.publish(old.source, who.name).version
        return self._went_live(name, new, who, "menu_rolled_back", restored=version)

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Newest first, each with its diff against the one before and the version it restored, if a rollback."""
        history = self.menus.history(name)
        if not history:
            raise MenuNotFound(f"menu {name!r} has never been published")
        live = self.menus.live_version(name)
        restored = self._rollbacks(name)
        views = [_version_view(v, history[i - 1] if i else None, live, restored.get(v.version))
                 for i, v in enumerate(history)]
        return views[::-1]

    def version(self, name: str, version: int) -> dict[str, Any]:
        shown = self.menus.published(name, version)
        before = self.menus.published(name, version - 1) if version > 1 else None
        view = _version_view(shown, before, self.menus.live_version(name), self._rollbacks(name).get(version))
        return {**view, "source": shown.source}

    def preview(self, name: str, source: str | None = None, version: int | None = None) -> dict[str, Any]:
        """What publishing ``source`` (or rolling back to ``version``) would change in the live menu: a line diff
        against the live text, for the editor's confirmation."""
        live = self._live(name)
        if version is not None:
            text, label = self.menus.published(name, version).source, f"{name} v{version}"
        elif source is not None:
            text, label = source, f"{name} draft"
        else:
            raise ValueError(_("give the text to publish or the version to roll back to"))
        old, old_label = (live.source, f"{name} v{live.version} (live)") if live else ("", "/dev/null")
        return {"live_version": live.version if live else None,
                "diff": unified_diff(old, text, old_label, label)}

    def _rollbacks(self, name: str) -> dict[int, int]:
        """Version -> the older version it put live again. Versions keep only their text; the audit names each
        rollback (``menu_rolled_back``, with ``version`` and ``restored``)."""
        found: dict[int, int] = {}
        for entry in self.audit.entries(action="menu_rolled_back", target=name, limit=1000):
            version, restored = entry["detail"].get("version"), entry["detail"].get("restored")
            if isinstance(version, int) and isinstance(restored, int):
                found.setdefault(version, restored)
        return found

    def _went_live(self, name: str, version: int, who: Actor, action: str, **detail: Any) -> dict[str, Any]:
        now = self.menus.published(name, version)
        before = self.menus.published(name, version - 1) if version > 1 else None
        view = _version_view(now, before, self.menus.live_version(name), detail.get("restored"))
        self.audit.write(who.name, who.role, action, name, version=version, diff=view["diff"], **detail)
        return {**view, "prompt_job": self._render_prompts(name, version)}

    def _render_prompts(self, name: str, version: int) -> str | None:
        try:
            job = self.jobs.enqueue(PROMPTS_JOB, name, version, job_id=f"prompts-{name}-{version}",
                                    result_ttl=86400, failure_ttl=7 * 86400)
        except redis.RedisError as exc:  # the menu is live; `hotline prompts` renders what is missing
            log.warning("prompt audio for %s version %d not queued (%s)", name, version, type(exc).__name__)
            return None
        return str(job.id)

    def _live(self, name: str) -> PublishedVersion | None:
        try:
            return self.menus.published(name, self.menus.live_version(name))
        except MenuNotFound:
            return None


def _draft_view(draft: Draft, live_version: int) -> dict[str, Any]:
    return {"source": draft.source, "base_version": draft.base_version, "updated_by": draft.updated_by,
            "updated_at": draft.updated_at.isoformat(), "stale": draft.base_version < live_version}


def _version_view(shown: PublishedVersion, before: PublishedVersion | None, live: int,
                  restored: int | None = None) -> dict[str, Any]:
    old, old_label = (before.source, f"{shown.menu} v{before.version}") if before else ("", "/dev/null")
    return {"menu": shown.menu, "version": shown.version, "published_by": shown.published_by,
            "published_at": shown.published_at.isoformat(), "live": shown.version == live, "restored_from": restored,
            "diff": unified_diff(old, shown.source, old_label, f"{shown.menu} v{shown.version}")}


def _line_of_key(source: str, key: str) -> int | None:
    for number, line in enumerate(source.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return number
    return None

