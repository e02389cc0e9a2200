"""Menu versions: publish (validated), find the live one, load any version a call began on."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.client import Pipeline
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from calls.keys import live_menu_key, menu_source_key
from ivr.loader import parse_menu
from ivr.model import Menu
from ivr.validate import validate_menu
from routing.batch import Outcome, Reader
from routing.scripts import register_lua
from store.db import UNAVAILABLE
from store.models import MenuVersion

log = logging.getLogger(__name__)

_RAISE_LIVE = Path(__file__).parent / "lua" / "raise_live_menu.lua"

MAX_VERSION = 2**31 - 1
"""The column is a 32-bit integer on PostgreSQL: a larger number names no version, it is not an error."""
DEFAULT_MENU_FILE = Path(__file__).resolve().parent.parent / "ivr" / "menus" / "hotline.yaml"
SURVEY_MENU_FILE = DEFAULT_MENU_FILE.with_name("survey.yaml")


class MenuNotFound(LookupError):
    """No published version of this menu exists."""


@dataclass(frozen=True)
class PublishedVersion:
    """One published version of a menu, as the version history shows it."""

    menu: str
    version: int
    source: str
    published_by: str
    published_at: dt.datetime


class MenuRepository:
    """Published menus live in SQL; Redis holds the live version number so every process
    sees a publish on its next call without a restart. Parsed versions are cached per process."""

    def __init__(self, sessions: sessionmaker[Session], client: redis.Redis) -> None:
        self._sessions, self._redis = sessions, client
        self._parsed: dict[tuple[str, int], Menu] = {}
        self._seen_live: dict[str, int] = {}
        self._raise_live = register_lua(client, _RAISE_LIVE)

    def publish(self, source: str, published_by: str) -> Menu:
        """Validate ``source`` and store it as the next version; raises ``MenuError`` if invalid."""
        menu = parse_menu(source)
        validate_menu(menu)
        with self._sessions.begin() as db:
            latest = db.scalar(select(func.max(MenuVersion.version)).where(MenuVersion.menu == menu.name))
            version = (latest or 0) + 1
            db.add(MenuVersion(menu=menu.name, version=version, source=source, published_by=published_by))
        self._keep_copy(menu.name, version, source)
        self._raise_live(keys=[live_menu_key(menu.name)], args=[version])
        log.info("menu %s version %d published by %s", menu.name, version, published_by)
        return menu.model_copy(update={"version": version})

    def ensure_published(self, name: str, path: Path = DEFAULT_MENU_FILE) -> Menu:
        """The live menu, publishing ``path`` as version 1 when none exists yet."""
        try:
            return self.live(name)
        except MenuNotFound:
            return self.publish(path.read_text(encoding="utf-8"), published_by="hotline (default menu)")

    def names(self) -> list[str]:
        """Every menu ever published."""
        with self._sessions() as db:
            return list(db.scalars(select(MenuVersion.menu).distinct().order_by(MenuVersion.menu)))

    def spoken_languages(self) -> list[str]:
        """Every language some published menu speaks (its live version), in the menus' own order."""
        spoken: dict[str, None] = {}
        for name in self.names():
            try:
                spoken.update(dict.fromkeys(self.live(name).languages))
            except MenuNotFound:
                continue
        return list(spoken)

    def live(self, name: str) -> Menu:
        """The version new calls start on."""
        return self.version(name, self.live_version(name))

    def live_in(self, pipe: Pipeline, name: str) -> Reader[Menu]:
        """``live`` in a batch (``routing.batch``)."""
        pipe.get(live_menu_key(name))

        def read(outcome: Outcome) -> Menu:
            reply = outcome if isinstance(outcome, redis.RedisError) else outcome[0]
            raw = None if isinstance(reply, Exception) else reply
            return self.version(name, self._live_version_of(name, raw))

        return read

    def live_version(self, name: str) -> int:
        """The version number new calls start on: Redis's number, else the SQL store's latest, put back
        into Redis; while both are away, the last one this process saw."""
        try:
            raw = self._redis.get(live_menu_key(name))
        except redis.RedisError:
            raw = None  # Redis away: the SQL store still knows the latest version.
        return self._live_version_of(name, raw)

    def _live_version_of(self, name: str, raw: bytes | str | None) -> int:
        """``raw``: what Redis holds for the live version, None when it is missing or Redis is away."""
        if raw:
            version = self._seen_live[name] = int(raw)
            return version
        try:
            version = self._latest_version(name)
        except UNAVAILABLE:
            known = max((v for v in (self._seen_live.get(name), self._newest_copy(name)) if v), default=None)
            if known is None:
                raise
            log.warning("menu %s: live version %d assumed, database unavailable", name, known)
            return known
        # Redis lost the number (restarted without persistence, or new beside a database that has menus):
        # without it every call would ask SQL, and every call would fail while the database is away.
        try:
            self._raise_live(keys=[live_menu_key(name)], args=[version])
        except redis.RedisError as exc:
            log.info("menu %s: live version not put back into Redis: %s", name, type(exc).__name__)
        self._seen_live[name] = version
        return version

    def history(self, name: str) -> list[PublishedVersion]:
        """Every published version of ``name``, oldest first."""
        query = select(MenuVersion).where(MenuVersion.menu == name).order_by(MenuVersion.version)
        with self._sessions() as db:
            return [_published(row) for row in db.scalars(query)]

    def published(self, name: str, version: int) -> PublishedVersion:
        """One published version with its source and who published it."""
        if not 1 <= version <= MAX_VERSION:
            raise MenuNotFound(f"menu {name!r} has no version {version}")
        with self._sessions() as db:
            row = db.scalar(select(MenuVersion).where(MenuVersion.menu == name, MenuVersion.version == version))
            if row is None:
                raise MenuNotFound(f"menu {name!r} has no version {version}")
            return _published(row)

    def version(self, name: str, version: int) -> Menu:
        """A published version, for a call that began on it."""
        key = (name, version)
        menu = self._parsed.get(key)
        if menu is None:
            source = self._source(name, version)
            if source is None:
                raise MenuNotFound(f"menu {name!r} has no version {version}")
            menu = parse_menu(source).model_copy(update={"version": version})
            self._parsed[key] = menu
        return menu

    def _source(self, name: str, version: int) -> str | None:
        """From SQL, copied to Redis on the way; from that copy while the database is away, so a process
        (re)started during an outage still answers calls."""
        try:
            with self._sessions() as db:
                source = db.scalar(select(MenuVersion.source).where(
                    MenuVersion.menu == name, MenuVersion.version == version))
        except UNAVAILABLE:
            copy = self._copy(name, version)
            if copy is None:
                raise
            log.warning("menu %s version %d read from its Redis copy: database unavailable", name, version)
            return copy
        if source is not None:
            self._keep_copy(name, version, source)
        return source

    def _copy(self, name: str, version: int) -> str | None:
        try:
            raw = self._redis.get(menu_source_key(name, version))
        except redis.RedisError:
            return None
        return raw.decode() if isinstance(raw, bytes) else raw

    def _newest_copy(self, name: str) -> int | None:
        """The highest version copied to Redis: a process started while the database is away, after Redis
        lost the live number, still starts calls on the newest menu it can read."""
        try:
            keys = list(self._redis.scan_iter(match=menu_source_key(name, 0)[:-1] + "*", count=1000))
        except redis.RedisError:
            return None
        versions = [int(k.rsplit(b":" if isinstance(k, bytes) else ":", 1)[1]) for k in keys]
        return max(versions, default=None)

    def _keep_copy(self, name: str, version: int, source: str) -> None:
        # Published versions never change: a copy needs no expiry, and an old one is never wrong.
        try:
            self._redis.set(menu_source_key(name, version), source)
        except redis.RedisError as exc:
            log.info("menu %s version %d not copied to Redis: %s", name, version, type(exc).__name__)

    def _latest_version(self, name: str) -> int:
        with self._sessions() as db:
            version = db.scalar(select(func.max(MenuVersion.version)).where(MenuVersion.menu == name))
        if version is None:
            raise MenuNotFound(f"menu {name!r} has never been published")
        return int(version)


def _published(row: MenuVersion) -> PublishedVersion:
    at = row.published_at if row.published_at.tzinfo else row.published_at.replace(tzinfo=dt.UTC)
    return PublishedVersion(row.menu, row.version, row.source, row.published_by, at)
