"""Call records: how fast ``hotline worker`` processes turn a burst of call-ended events into SQL rows.

    .venv/bin/python bench/records.py [--events 10000] [--workers 2] [--database-url URL] [--rounds 3]

Own redis-server (no persistence) and a fresh SQLite file (or ``--database-url``, emptied first). The
workers are real ``python -m hotline.cli worker`` processes, started and idle before the clock starts.
Then all events go to the stream in one pipeline; the time runs until every record is in the database
(polled every 10 ms with ``count(*)``). Ceiling, in the same run: a raw SQLAlchemy Core bulk insert of
the same rows (one ``executemany`` in one transaction, the rows built before the clock starts) into an
empty table of the same schema. Each round uses fresh call ids; the best round of each is reported.
"""

# ruff: noqa: E402  (the sys.path fix below has to run before the project's imports)

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import argparse
import os
import subprocess
import tempfile
import time
from contextlib import ExitStack

import redis
import sqlalchemy
from sqlalchemy import func, insert, select

from bench.harness import run_until_done, stop, wait_until
from routing.keys import EVENTS_STREAM
from store.db import connect
from store.models import Base, CallRecord
from store.redis_server import scratch_redis
from tests.fakes.call_events import T0, call_ended
from workers.records import new_record
from workers.stream import RECORDS_GROUP

REPO = HERE.parent


def run(args: argparse.Namespace, stack: ExitStack) -> None:
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-records-")))
    redis_url, _ = stack.enter_context(scratch_redis(folder))
    url = args.database_url or f"sqlite:///{folder / 'records.db'}"
    if args.database_url:
        _empty(url)
    sql = connect(url)
    client = redis.Redis.from_url(redis_url)
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": url, "HOTLINE_DATA_DIR": str(folder / "data")}
    workers = []
    for _ in range(args.workers):
        proc = subprocess.Popen([sys.executable, "-m", "hotline.cli", "worker"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(stop, proc)
        workers.append(proc)
    for proc in workers:
        wait_until(lambda: _consumers(client) >= len(workers), proc, "the workers", 60)

    print(f"{args.events:,} call-ended events, {args.workers} worker processes, {sql.kw['bind'].dialect.name}")
    best_workers, best_raw = float("inf"), float("inf")
    for round_no in range(args.rounds):
        events = [call_ended(f"r{round_no}-{i:06d}", at=T0 + i) for i in range(args.events)]
        before = _count(sql)
        started = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(EVENTS_STREAM, event)
        pipe.execute()
        while _count(sql) < before + args.events:
            for proc in workers:
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited with status {proc.returncode}")
            time.sleep(0.01)
        took = time.perf_counter() - started
        raw = _raw_insert(folder, args.database_url, events, round_no)
        best_workers, best_raw = min(best_workers, took), min(best_raw, raw)
        print(f"  round {round_no + 1}: workers {took:6.2f} s ({args.events / took:8,.0f} records/s)   "
              f"raw bulk insert {raw:6.3f} s ({args.events / raw:9,.0f} rows/s)")
    rate, ceiling = args.events / best_workers, args.events / best_raw
    print(f"all {args.events:,} in the database after {best_workers:.2f} s (target < 30 s): "
          f"{rate:,.0f} records/s; raw insert {ceiling:,.0f} rows/s; ratio {rate / ceiling:.2f} (target >= 0.3)")
    pending = client.xpending(EVENTS_STREAM, RECORDS_GROUP)["pending"]
    print(f"stream entries left unacknowledged: {pending}")
    sql.kw["bind"].dispose()


def _raw_insert(folder: Path, database_url: str | None, events: list[dict[str, str]], round_no: int) -> float:
    """The same rows as the writer makes, inserted in one executemany into an empty table."""
    url = database_url or f"sqlite:///{folder / f'raw-{round_no}.db'}"
    engine = sqlalchemy.create_engine(url)
    table = CallRecord.__table__.to_metadata(sqlalchemy.MetaData(), name=f"raw_call_records_{round_no}")
    table.metadata.drop_all(engine)
    table.metadata.create_all(engine)
    rows = [new_record(e["call_id"], [e]) for e in events]  # exactly the rows the workers write
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(table), rows)
    took = time.perf_counter() - started
    table.metadata.drop_all(engine)
    engine.dispose()
    return took


def _count(sql: sqlalchemy.orm.sessionmaker) -> int:
    with sql() as db:
        return int(db.scalar(select(func.count()).select_from(CallRecord)) or 0)


def _consumers(client: redis.Redis) -> int:
    try:
        groups = client.xinfo_groups(EVENTS_STREAM)
    except redis.ResponseError:
        return 0
    return sum(int(g["consumers"]) for g in groups if g["name"] in (RECORDS_GROUP, RECORDS_GROUP.encode()))


def _empty(url: str) -> None:
    engine = sqlalchemy.create_engine(url)
    Base.metadata.drop_all(engine)
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="SQLAlchemy URL (emptied first); default a fresh SQLite file")
    return run_until_done(run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
