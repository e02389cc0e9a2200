"""``hotline status``: the readiness checks of ``/readyz`` and one line per process ``hotline up`` runs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import click

from hotline.cli_router import print_table
from hotline.health import Readiness, ready
from hotline.heartbeat import read_beats
from hotline.settings import Settings


def register(main: click.Group, process_names: Callable[[Settings], list[str]]) -> None:
    """Adds ``hotline status`` to ``main``."""

    @main.command()
    def status() -> None:
        """Is the hotline ready (Redis, database, call records, menu) and is each of its processes alive?
        Exit status 1 when not."""
        settings = Settings()
        checks = _readiness(settings).checks()
        print_table(("CHECK", "READY", "DETAIL"), [
            (c.name, "yes" if c.ok else "NO", c.reason or " ".join(f"{k}={v}" for k, v in c.detail.items()))
            for c in checks])
        click.echo()
        now = time.time()
        beats = read_beats(settings.data_dir, process_names(settings), now)
        print_table(("PROCESS", "PID", "ALIVE", "HEARTBEAT"), [
            (b.name, b.pid or "-", "yes" if b.alive else "NO", b.describe(now)) for b in beats])
        all_well = ready(checks) and all(b.alive for b in beats)
        click.echo(f"\nhotline {'ready' if all_well else 'NOT ready'}")
        sys.exit(0 if all_well else 1)


def _readiness(settings: Settings) -> Readiness:
    """The checks ``/readyz`` runs, from this process: the web server may be the thing that is down.
    The hotline's own redis-server is found, never started, and no retries hide a Redis that is away."""
    from calls.menus import MenuRepository
    from routing.keys import events_stream
    from store.db import connect
    from store.redis_clients import RedisClients
    from store.redis_server import running_local_redis

    url = settings.redis_url or running_local_redis(settings.data_dir)
    probe = RedisClients(url, settings.rq_redis_url, settings.redis_timeout_s).blocking(
        settings.redis_timeout_s) if url else None
    sql = connect(settings.sql_url, settings.db_timeout_s)
    return Readiness(probe, sql, MenuRepository(sql, probe) if probe is not None else None, settings.menu_name,
                     events_stream(settings.hotline_name), settings.db_timeout_s, settings.ready_records_lag_s)
