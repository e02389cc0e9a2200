"""The SQL schema's revisions (Alembic, shipped in ``store/migrations``): upgrading a database, telling where
it stands, and what a process that does not migrate does with a database behind its code.

One place migrates: ``hotline up`` and ``hotline db upgrade`` (``upgrade``). Every other process (web workers,
FastAGI, router, RQ workers, one-off commands) calls ``ensure_current`` through ``store.db.connect``: an empty
database is brought to head at once (a new installation: nobody else uses it yet), a database behind the code
is waited for (the migrating process is at work) and then refused with what to run. Migrations run in one
transaction under a lock (PostgreSQL: an advisory lock; SQLite: its write lock), so processes starting at once
migrate one after the other and the later ones find nothing left to do.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import OperationalError

from store.models import Base

T = TypeVar("T")

log = logging.getLogger(__name__)
logging.getLogger("alembic").setLevel(logging.WARNING)  # its per-connection chatter; upgrades are logged here

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"
"""The first revision: the schema ``create_all`` made before migrations existed (adopted, see ``upgrade``)."""
LOCK_KEY = 0x686F746C696E65
"""PostgreSQL advisory lock held while migrating ("hotline" in hex): one migrator at a time per database."""
WAIT_S = 60.0
"""How long a process that does not migrate waits for a database behind its code before giving up."""


class SchemaOutOfDate(RuntimeError):
    """The database is behind this code (or was made before migrations) and this process does not migrate."""


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    """The revision in ``alembic_version``; None when there is none."""
    head: str
    has_tables: bool
    """Any of the hotline's tables exist (without ``current``: a database ``create_all`` made)."""

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def empty(self) -> bool:
        return self.current is None and not self.has_tables

    @property
    def known(self) -> bool:
        return self.current is None or self.current in _revisions()


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an alembic.ini: the scripts inside the package, and the connection to
    use (its search path decides the PostgreSQL schema, of the tables and of ``alembic_version`` alike)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache  # the scripts do not change while a process runs
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@functools.cache
def head() -> str:
    found = _scripts().get_current_head()
    assert found is not None, "store/migrations has no revision"
    return found


@functools.cache
def _revisions() -> frozenset[str]:
    return frozenset(r.revision for r in _scripts().walk_revisions())


def state(engine: Engine) -> SchemaState:
    with engine.connect() as conn:
        return schema_state(conn)


def schema_state(conn: Connection) -> SchemaState:
    """The revision of the database ``conn`` is connected to (its search path's schema)."""
    current = MigrationContext.configure(conn).get_current_revision()
    present = set(inspect(conn).get_table_names())
    return SchemaState(current, head(), bool(present & set(Base.metadata.tables)))


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Apply the pending revisions up to ``revision``; returns (revision before, revision after).

    A database ``create_all`` made before migrations existed has tables and no ``alembic_version``: the
    baseline revision creates only the tables it lacks (a hotline older than the newest tables), then it is
    upgraded like any other."""
    with _locked(engine) as conn:
        before = schema_state(conn)
        if before.has_tables and before.current is None:
            log.info("database made before migrations: adopting it at revision %s", BASELINE)
        if not before.known:
            raise SchemaOutOfDate(f"the database is at revision {before.current}, which this hotline does not know "
                                  f"(its newest is {before.head}): it was upgraded by a newer hotline")
        if before.empty and revision == "head":
            # A new database: the models are the head revision (``test_the_models_and_the_head_revision_agree``),
            # so create them and record head: one step instead of replaying every revision (about 1 s each start).
            Base.metadata.create_all(conn)
            MigrationContext.configure(conn).stamp(_scripts(), "head")
        else:
            command.upgrade(alembic_config(conn), revision)
        after = MigrationContext.configure(conn).get_current_revision()
    assert after is not None
    if after != before.current:
        log.info("database schema upgraded from revision %s to %s", before.current or "none", after)
    return before.current, after


def differences(engine: Engine) -> list[str]:
    """What Alembic's autogenerate finds between the database and the models (nothing, at head)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [str(diff) for diff in compare_metadata(context, Base.metadata)]


def ensure_current(engine: Engine, wait_s: float = WAIT_S) -> None:
    """What a process that does not migrate does at start (see the module's note)."""
    found = _while_sqlite_locked(lambda: state(engine), wait_s)
    if found.at_head:
        return
    if found.empty:
        # A new installation; processes starting together take the lock in turn.
        _while_sqlite_locked(lambda: upgrade(engine), wait_s)
        return
    if not found.known:
        # A newer hotline migrated it (a rolling upgrade): this one still runs; revisions only add.
        log.warning("database schema at revision %s, newer than this hotline's %s", found.current, found.head)
        return
    deadline = time.monotonic() + wait_s
    log.warning("database schema at revision %s, this hotline needs %s: waiting for `hotline db upgrade` "
                "(or `hotline up`)", found.current or "none (made before migrations)", found.head)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        found = state(engine)
        if found.at_head or not found.known:
            return
    raise SchemaOutOfDate(f"database schema at revision {found.current or 'none (made before migrations)'}, "
                          f"this hotline needs {found.head}: run `hotline db upgrade`")


def _while_sqlite_locked(action: Callable[[], T], wait_s: float) -> T:
    """``action()``, again while SQLite answers "database is locked" (its busy wait gives up at once when two
    connections would deadlock, as processes creating one new database together can), for at most ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return action()
        except OperationalError as exc:
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class _locked:
    """A connection in a transaction that holds the migration lock, committed on success."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __enter__(self) -> Connection:
        # SQLite: BEGIN IMMEDIATE (store.db's write-lock option) takes the write lock before anything is read.
        self.conn = self.engine.execution_options(sqlite_write_lock=True).connect()
        self.tx = self.conn.begin()
        if self.conn.dialect.name == "postgresql":
            # store.db caps every statement at HOTLINE_DB_TIMEOUT: an index built on a big table takes longer.
            # Waiting for another migrator is bounded; waiting for table locks keeps the connection's cap, so a
            # migration behind a long transaction fails (run it again) rather than stalls every call behind it.
            self.conn.execute(text("SET LOCAL statement_timeout = 0"))
            self.conn.execute(text(f"SET LOCAL lock_timeout = '{int(WAIT_S)}s'"))
            self.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            self.conn.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
        return self.conn

    def __exit__(self, kind: object, *_: object) -> None:
        try:
            if kind is None:
                self.tx.commit()
            else:
                self.tx.rollback()
        finally:
            self.conn.close()
