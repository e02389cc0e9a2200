"""``hotline db upgrade|current`` (schema revisions) and ``hotline backup`` / ``hotline restore``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hotline.settings import Settings

if TYPE_CHECKING:
    from store.backup import Sources


def upgrade_database(settings: Settings) -> None:
    """Bring the database to the newest revision (``hotline up`` and ``hotline db upgrade``): the one place
    that migrates; the other processes wait for it (``store.schema.ensure_current``)."""
    from store.db import UNAVAILABLE, engine_for
    from store.schema import SchemaOutOfDate, differences, upgrade

    where = settings.sql_url.split("@")[-1]
    engine = engine_for(settings.sql_url, settings.db_timeout_s)
    try:
        before, after = upgrade(engine)
        left = differences(engine)
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    except UNAVAILABLE as exc:
        # As before migrations: a hotline started during an outage still serves what needs no database.
        click.echo(f"database {where} unavailable, schema not upgraded (run `hotline db upgrade` when it "
                   f"answers): {str(exc).splitlines()[0][:200]}", err=True)
        return
    finally:
        engine.dispose()
    if before != after:
        click.echo(f"database {where}: upgraded from revision {before or 'none'} to {after}")
    else:
        click.echo(f"database {where}: at revision {after}, nothing to upgrade")
    for line in left:  # a database adopted from an old create_all may lack columns no revision adds
        click.echo(f"database differs from this hotline's tables: {line}", err=True)


def register(main: click.Group) -> None:
    """Adds ``db``, ``backup`` and ``restore`` to ``main``."""

    @main.group()
    def db() -> None:
        """The database's schema: see its revision, apply the pending ones."""

    @db.command("upgrade")
    def db_upgrade() -> None:
        """Apply the pending schema revisions (a database made before migrations is adopted first)."""
        upgrade_database(Settings())

    @db.command("current")
    def db_current() -> None:
        """Show the database's revision and the newest this hotline knows; exit 1 when they differ."""
        from store.db import engine_for
        from store.schema import state

        settings = Settings()
        engine = engine_for(settings.sql_url, settings.db_timeout_s)
        try:
            found = state(engine)
        finally:
            engine.dispose()
        current = found.current or ("none (made before migrations)" if found.has_tables else "none (empty)")
        click.echo(f"database {settings.sql_url.split('@')[-1]}: revision {current}, newest {found.head}"
                   + ("" if found.at_head else ": run `hotline db upgrade`"))
        sys.exit(0 if found.at_head else 1)

    @main.command()
    @click.argument("target", type=click.Path())
    def backup(target: str) -> None:
        """Back up the data folder into TARGET (a new .tar.gz, or a folder for a dated one) while the hotline
        runs: SQLite database, recordings, secrets, the hotline's own Redis. The file is 600: keep it safe."""
        from store.backup import BackupError, backup

        if target.endswith(os.sep) and not Path(target).is_dir():
            raise click.ClickException(f"{target} is not a folder: create it first")
        try:
            report = backup(Path(target), _sources(Settings()))
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"backup written to {report.archive}")
        for line in report.included:
            click.echo(f"  included: {line}")
        for line in report.left_out:
            click.echo(f"  NOT included: {line}", err=True)

    @main.command()
    @click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--force", is_flag=True, help="Replace the data already in the data folder (stop the hotline).")
    def restore(archive: Path, force: bool) -> None:
        """Restore a `hotline backup` ARCHIVE into the data folder (HOTLINE_DATA_DIR); every file is checked
        against the backup's SHA-256 first. Then `hotline up` (it upgrades an older database)."""
        from store.backup import BackupError, restore
        from store.redis_server import pid_alive, read_pid

        settings = Settings()
        running = read_pid(settings.data_dir / "hotline-up.pid")
        if pid_alive(running):
            raise click.ClickException(f"hotline up runs on {settings.data_dir} (pid {running}): stop it first")
        try:
            report = restore(archive, settings.data_dir, settings.sql_url, force=force)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"restored {archive} into {settings.data_dir}")
        for line in report.included:
            click.echo(f"  restored: {line}")
        for line in report.left_out:
            click.echo(f"  NOT in the backup: {line}", err=True)


def _sources(settings: Settings) -> Sources:
    from store.backup import Sources

    in_env = tuple(name for name, value in (("HOTLINE_SECRET_KEY", settings.secret_key),
                                            ("HOTLINE_CARD_SECRET", settings.card_secret),
                                            ("HOTLINE_AGI_SECRET", settings.agi_secret)) if value)
    return Sources(settings.data_dir, settings.sql_url, settings.redis_url, in_env)
