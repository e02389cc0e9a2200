"""Schema migrations (Alembic, ``store/migrations``): data written at the first revision survives the upgrade,
the models and the head revision agree, a database the old ``create_all`` made is adopted, processes starting
at once migrate once, and PostgreSQL migrates the schema its search path names (version table included)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, MetaData, create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from store.db import connect, engine_for
from store.models import Base, PinFailures, Recording, ReturnVisit, User, VisitCallToken, WorkOrder
from store.schema import BASELINE, SchemaOutOfDate, differences, ensure_current, head, state, upgrade
from tests.conftest import free_port
from tests.fakes.private_postgres import PrivatePostgres

REPO = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
NEW_IN_0002 = {("return_visits", "ix_return_visits_finished_at"), ("visit_call_tokens", "ix_visit_call_tokens_created_at")}


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a schema of its own on the private PostgreSQL server (chosen by the
    URL's search path, as ``simulate`` and a shared server's operator do)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hotline.db'}"
        return
    server: PrivatePostgres = request.getfixturevalue("private_postgres")
    if not server.running():
        server.start()
    name = f"hotline_mig_{secrets.token_hex(4)}"
    admin = create_engine(server.url)
    with admin.begin() as db:
        db.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield make_url(server.url).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as db:
            db.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = engine_for(db_url)
    yield engine
    engine.dispose()


def indexes(engine: Engine) -> set[tuple[str, str]]:
    found = inspect(engine)
    return {(table, ix["name"]) for table in found.get_table_names() for ix in found.get_indexes(table) if ix["name"]}


def write_at_first_revision(engine: Engine) -> None:
    """A day's data, written through the tables as the first revision made them (reflected, not the models)."""
    meta = MetaData()
    meta.reflect(engine)
    t = meta.tables
    with engine.begin() as db:
        db.execute(t["users"].insert(), [{"id": 1, "name": "li.na", "role": "supervisor", "password_hash": "scrypt$x",
                                          "active": True, "failed_logins": 0, "session_epoch": 2, "created_at": NOW}])
        db.execute(t["work_orders"].insert(), [
            {"id": n, "number": f"C20261200{n}", "call_id": f"CA{n}", "category": "service",
             "caller_masked": "+86138****5678", "callback_number": "+8613812345678", "language": "zh",
             "channel": "twilio", "recording_ref": f"RE{n}", "status": "resolved", "priority": 5,
             "assignee": "li.na", "resolution": "已退款", "created_at": NOW, "updated_at": NOW} for n in (1, 2)])
        db.execute(t["recordings"].insert(), [{"id": 1, "ref": "RE1", "call_id": "CA1", "work_order": "C202612001",
                                               "path": "complaints/2026/12/01/RE1.wav", "duration_s": 12.5,
                                               "sha256": "ab" * 32, "size_bytes": 200044, "created_at": NOW}])
        db.execute(t["return_visits"].insert(), [{"id": 1, "work_order_id": 1, "number": "+8613812345678",
                                                  "number_key": "k1", "channel": "twilio", "language": "zh",
                                                  "status": "completed", "due_at": NOW, "attempts": 1, "rating": 1,
                                                  "created_at": NOW, "finished_at": NOW}])
        db.execute(t["visit_call_tokens"].insert(), [{"token_hash": "cd" * 32, "visit_id": 1, "attempt": 1,
                                                      "created_at": NOW}])
        db.execute(t["pin_failures"].insert(), [{"card_key": "ef" * 32, "card_masked": "6228********5671",
                                                 "failures": 3, "since": NOW, "last_channel": "asterisk"}])


def check_nothing_lost(url: str) -> None:
    sql = connect(url)  # as any process would open it: at head, nothing to wait for
    try:
        with sql() as db:
            user = db.scalar(select(User))
            orders = list(db.scalars(select(WorkOrder).order_by(WorkOrder.id)))
            recording = db.scalar(select(Recording))
            visit = db.scalar(select(ReturnVisit))
            token = db.scalar(select(VisitCallToken))
            pins = db.scalar(select(PinFailures))
    finally:
        sql.kw["bind"].dispose()
    assert (user.name, user.role, user.session_epoch) == ("li.na", "supervisor", 2)
    assert [(o.number, o.status, o.resolution, o.created_at.replace(tzinfo=dt.UTC) == NOW) for o in orders] == [
        ("C202612001", "resolved", "已退款", True), ("C202612002", "resolved", "已退款", True)]
    assert (recording.ref, recording.sha256, recording.size_bytes, recording.duration_s) == ("RE1", "ab" * 32, 200044, 12.5)
    assert (visit.rating, visit.work_order_id, token.visit_id, pins.failures) == (1, 1, 1, 3)


def test_data_written_at_the_first_revision_survives_the_upgrade_to_head(db_url: str, engine: Engine) -> None:
    assert head() != BASELINE, "the test must upgrade through at least one revision"
    assert upgrade(engine, BASELINE) == (None, BASELINE)
    assert not NEW_IN_0002 & indexes(engine)
    write_at_first_revision(engine)
    assert upgrade(engine) == (BASELINE, head())
    assert NEW_IN_0002 <= indexes(engine)
    assert state(engine).at_head
    check_nothing_lost(db_url)


def test_the_models_and_the_head_revision_agree(engine: Engine) -> None:
    upgrade(engine)
    assert differences(engine) == []
    # and the check sees a model the revisions do not make: a column added without its revision
    extra = Base.metadata.tables["work_orders"].to_metadata(MetaData())
    extra.append_column(sa.Column("escalated_to", sa.String(64), nullable=True))
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        found = compare_metadata(MigrationContext.configure(conn), extra.metadata)
    assert ("add_column", None, "work_orders", extra.c.escalated_to) in [tuple(d) for d in found
                                                                          if isinstance(d, tuple)]


def test_postgres_migrates_the_schema_of_its_search_path(private_postgres: PrivatePostgres) -> None:
    """The tables and ``alembic_version`` land in the schema the URL names, never in ``public``."""
    urls = []
    for _ in range(2):
        name = f"hotline_sp_{secrets.token_hex(4)}"
        with create_engine(private_postgres.url).begin() as db:
            db.execute(text(f'CREATE SCHEMA "{name}"'))
        urls.append((name, make_url(private_postgres.url).update_query_dict(
            {"options": f"-csearch_path={name}"}).render_as_string(hide_password=False)))
    admin = create_engine(private_postgres.url)

    def where() -> dict[str, int]:
        with admin.connect() as db:
            return dict(db.execute(text("SELECT table_schema, count(*) FROM information_schema.tables "
                                        "WHERE table_name IN ('alembic_version', 'work_orders') "
                                        "GROUP BY table_schema")).all())

    before = where()  # other tests of this session may have a hotline in public: it must not change
    try:
        for _name, url in urls:  # two hotlines sharing one database, each in its schema
            connect(url).kw["bind"].dispose()
        with admin.connect() as db:
            versions = {name: db.scalar(text(f'SELECT version_num FROM "{name}".alembic_version')) for name, _ in urls}
        assert where() == {**before, urls[0][0]: 2, urls[1][0]: 2}
        assert versions == {urls[0][0]: head(), urls[1][0]: head()}
    finally:
        with admin.begin() as db:
            for name, _ in urls:
                db.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def make_like_old_create_all(engine: Engine) -> None:
    """What a hotline from before issue 17 left: ``create_all`` of its tables, no ``alembic_version``, neither
    the PIN-failure nor the visit-token table, nor the indexes of revision 0002, nor the hours tables of 0003,
    nor the users' language (0004), nor the quality tables and the scorecards' index (0005), nor the recordings'
    kind, agent, leg and pauses (0006)."""
    newer = ("pin_failures", "visit_call_tokens", "opening_hours", "holidays", "evaluation_forms", "review_items",
             "evaluations")
    old = [t for name, t in Base.metadata.tables.items() if name not in newer]
    Base.metadata.create_all(engine, tables=old)
    with engine.begin() as db:
        db.execute(text("DROP INDEX ix_return_visits_finished_at"))
        db.execute(text("DROP INDEX ix_call_records_handled"))
        db.execute(text("ALTER TABLE users DROP COLUMN language"))
        db.execute(text("DROP INDEX ix_recordings_kind"))
        for column in ("kind", "agent_id", "leg", "pauses"):
            db.execute(text(f"ALTER TABLE recordings DROP COLUMN {column}"))
        db.execute(Base.metadata.tables["work_orders"].insert(), [{
            "number": "C20261130001", "call_id": "CA-old", "category": "fee", "caller_masked": "+86139****0000",
            "callback_number": "+8613900000000", "language": "zh", "channel": "asterisk", "recording_ref": "old",
            "status": "open", "priority": 5, "created_at": NOW, "updated_at": NOW}])


def test_hotline_db_upgrade_adopts_a_database_the_old_create_all_made(db_url: str, engine: Engine,
                                                                     tmp_path: Path) -> None:
    make_like_old_create_all(engine)
    found = state(engine)
    assert (found.current, found.has_tables) == (None, True)
    env = {**os.environ, "DATABASE_URL": db_url, "HOTLINE_DATA_DIR": str(tmp_path / "var")}
    env.pop("REDIS_URL", None)
    current = subprocess.run([sys.executable, "-m", "hotline.cli", "db", "current"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
    assert current.returncode == 1 and "made before migrations" in current.stdout, current
    done = subprocess.run([sys.executable, "-m", "hotline.cli", "db", "upgrade"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"upgraded from revision none to {head()}" in done.stdout
    assert "differs" not in done.stderr, done.stderr
    assert state(engine).at_head and differences(engine) == []
    assert {"pin_failures", "visit_call_tokens"} <= set(inspect(engine).get_table_names())
    with engine.connect() as db:
        assert db.scalar(text("SELECT number FROM work_orders")) == "C20261130001"
    again = subprocess.run([sys.executable, "-m", "hotline.cli", "db", "current"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and f"revision {head()}, newest {head()}" in again.stdout, again


def test_a_process_that_does_not_migrate_waits_for_the_one_that_does(engine: Engine) -> None:
    """A web worker started on a database behind its code waits for ``hotline db upgrade``, then serves;
    alone, it gives up with what to run."""
    upgrade(engine, BASELINE)
    with pytest.raises(SchemaOutOfDate, match="run `hotline db upgrade`"):
        ensure_current(engine, wait_s=0.6)
    waited: list[BaseException | None] = []

    def web_worker() -> None:
        try:
            ensure_current(engine, wait_s=30)
            waited.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            waited.append(exc)

    thread = threading.Thread(target=web_worker)
    thread.start()
    upgrade(engine)
    thread.join(30)
    assert waited == [None]


def test_processes_starting_at_once_on_an_empty_database_migrate_it_once(db_url: str, engine: Engine) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def process() -> None:
        sql = None
        try:
            start.wait()
            sql = connect(db_url, timeout_s=20)
            with sql() as db:
                db.scalar(select(WorkOrder.id))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            if sql is not None:
                sql.kw["bind"].dispose()

    threads = [threading.Thread(target=process) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with engine.connect() as db:
        assert db.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    assert state(engine).at_head and differences(engine) == []


def test_hotline_up_upgrades_the_database_before_its_processes_start(tmp_path: Path) -> None:
    """An installation from before migrations, started by the new release's `hotline up`."""
    from tests.test_backup import _env, wait_up

    var = tmp_path / "var"
    var.mkdir(mode=0o700)
    old = engine_for(f"sqlite:///{var / 'hotline.db'}")
    make_like_old_create_all(old)
    env = _env(var, free_port(), free_port())
    up = subprocess.Popen([str(Path(sys.executable).with_name("hotline")), "up"], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_up(up, env["HOTLINE_WEB_PORT"])
        assert state(old).at_head and differences(old) == []
    finally:
        if up.returncode is None:
            up.send_signal(signal.SIGTERM)
        output = up.communicate(timeout=30)[0].decode() if up.returncode is None else ""
        old.dispose()
    assert f"upgraded from revision none to {head()}" in output
    assert "waiting for `hotline db upgrade`" not in output  # no process found it behind: up migrated first
