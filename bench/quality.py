"""The quality pages at 100 agents, 50,000 recorded calls and 5,000 evaluations: median load time.

    .venv/bin/python bench/quality.py [--agents 100] [--calls 50000] [--evaluations 5000] [--loads 15]
                                      [--database-url URL]

Own redis-server (no persistence) and SQLite in a temporary folder (or ``--database-url``, e.g. an emptied
PostgreSQL database, ANALYZEd after the set-up); ``prepare()``. Set-up, in bulk: ``--calls`` call records answered
by the agents over the last 28 days (Asia/Shanghai), each with a recording row (no audio file: the pages do not
read it); a work order and a rated return visit for one call in 10; ``--evaluations`` scored evaluations (the
example form) spread over 10 reviewers, and 100 open items in each reviewer's queue. Measured with a logged-in
Flask test client in this process (the server's work: query, scoring aggregates, template; no network), ``--loads``
times each:
  review queue      GET /admin/quality (a reviewer's 100 open items) and GET /api/quality/queue
  scorecards        GET /admin/quality/scorecards (per agent, 4 weeks, trend by week), ?group=queue, the CSV
  scoring page      GET /admin/quality/items/<id> (call, timeline, recording link, form)
Prints the median and p95 of each; the target is a median under 300 ms. Exits 0 whatever they are.
"""

# ruff: noqa: E402  (the sys.path fix below has to run before the project's imports)

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import argparse
import datetime as dt
import logging
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from typing import Any

from sqlalchemy import insert, select, text

from bench.harness import percentile, run_until_done
from hotline.app import Hotline, create_app, prepare
from hotline.settings import Settings
from quality.forms import EXAMPLE, load_text, parse_form
from quality.scoring import score
from store.models import CallRecord, Evaluation, Recording, ReturnVisit, ReviewItem, WorkOrder
from store.redis_server import scratch_redis
from tests.web import login

PASSWORD = "bench password 0123"
REVIEWERS = [f"qa{n:02d}" for n in range(10)]
QUEUES = ("general", "cards", "loans", "complaints", "vip")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--calls", type=int, default=50000)
    parser.add_argument("--evaluations", type=int, default=5000)
    parser.add_argument("--loads", type=int, default=15)
    parser.add_argument("--database-url", help="default: SQLite in the temporary folder")
    return run_until_done(run, parser.parse_args())


def run(args: argparse.Namespace, stack: ExitStack) -> None:
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hotline-bench-quality-")))
    redis_url, _ = stack.enter_context(scratch_redis(folder))
    settings = Settings(_env_file=None, redis_url=redis_url,  # type: ignore[call-arg]
                        database_url=args.database_url or f"sqlite:///{folder / 'hotline.db'}",
                        data_dir=folder / "data", public_url="http://127.0.0.1", ui_language="en-US")
    hotline = prepare(settings)
    t0 = time.perf_counter()
    item_id = populate(hotline, args.agents, args.calls, args.evaluations)
    if hotline.sql.kw["bind"].dialect.name == "postgresql":  # statistics, as autovacuum keeps them in a live database
        with hotline.sql.kw["bind"].connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    print(f"set-up {time.perf_counter() - t0:.1f} s: {args.agents} agents, {args.calls} recorded calls, "
          f"{args.evaluations} evaluations, {len(REVIEWERS)} reviewers x 100 open items "
          f"({hotline.sql.kw['bind'].dialect.name})")
    app = create_app(hotline=hotline)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    client = app.test_client()
    login(client, REVIEWERS[0], PASSWORD)
    pages = {
        "review queue page": "/admin/quality",
        "review queue API": "/api/quality/queue",
        "scorecards per agent": "/admin/quality/scorecards",
        "scorecards per queue": "/admin/quality/scorecards?group=queue&bucket=month",
        "scorecards CSV": "/api/quality/scorecards.csv",
        "scoring page": f"/admin/quality/items/{item_id}",
    }
    for name, path in pages.items():
        times: list[float] = []
        for _ in range(args.loads):
            start = time.perf_counter()
            reply = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert reply.status_code == 200, (path, reply.status_code)
        times.sort()
        print(f"{name:22s} median {statistics.median(times):7.1f} ms   p95 {percentile(times, 95):7.1f} ms"
              f"   ({len(reply.data) // 1024} KiB)")


def populate(hotline: Hotline, agents: int, calls: int, evaluations: int) -> int:
    """Everything in bulk; returns an open item of the first reviewer (for the scoring page)."""
    rng = random.Random(19)
    for name in REVIEWERS:
        hotline.accounts.add(name, "qa", PASSWORD)
    hotline.forms.publish("standard", load_text(EXAMPLE), "bench")
    form = parse_form(load_text(EXAMPLE))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    agent_ids = [f"agent{n:03d}" for n in range(agents)]
    records: list[dict[str, Any]] = []
    recordings: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    for n in range(calls):
        at = now - dt.timedelta(seconds=rng.randrange(28 * 86400))
        talk = rng.uniform(30, 900)
        call_id = f"CA{n:08d}"
        records.append({"call_id": call_id, "channel": rng.choice(("twilio", "asterisk")), "started_at": at,
                        "queued_at": at + dt.timedelta(seconds=20), "answered_at": at + dt.timedelta(seconds=40),
                        "ended_at": at + dt.timedelta(seconds=40 + talk), "talk_s": talk, "outcome": "routed",
                        "agent_id": agent_ids[n % agents], "queue": QUEUES[n % len(QUEUES)],
                        "ivr_path": [{"node": "main", "input": "0"}, {"node": "to_agent"}]})
        recordings.append({"ref": f"RE{n:08d}", "call_id": call_id, "path": f"RE{n:08d}.wav", "duration_s": talk,
                           "sha256": "0" * 64, "size_bytes": int(talk * 16000), "created_at": at})
        if rng.random() < 0.1:
            orders.append({"number": f"W{n:08d}", "call_id": call_id, "category": "service", "caller_masked": "",
                           "callback_number": "", "language": "zh-CN", "recording_ref": "", "status": "closed",
                           "created_at": at, "updated_at": at})
    with hotline.sql() as db:
        for table, rows in ((CallRecord, records), (Recording, recordings), (WorkOrder, orders)):
            for start in range(0, len(rows), 5000):
                db.execute(insert(table), rows[start:start + 5000])
        order_ids = list(db.scalars(select(WorkOrder.id)))
        db.execute(insert(ReturnVisit), [{"work_order_id": i, "number": "", "number_key": "k", "channel": "twilio",
                                          "language": "zh-CN", "status": "completed", "due_at": now,
                                          "rating": rng.choice((1, 1, 2, 2, 3, 4, 5)), "finished_at": now}
                                         for i in order_ids])
        picked = rng.sample(records, evaluations + 100 * len(REVIEWERS))
        items = [{"call_id": r["call_id"], "agent_id": r["agent_id"], "queue": r["queue"],
                  "call_started_at": r["started_at"], "week": "2026-W01", "reasons": ["share"],
                  "reviewer": REVIEWERS[n % len(REVIEWERS)], "calibration": False,
                  "status": "scored" if n < evaluations else "open", "created_at": now}
                 for n, r in enumerate(picked)]
        db.execute(insert(ReviewItem), items)
        ids = {call_id: i for call_id, i in db.execute(select(ReviewItem.call_id, ReviewItem.id))}
        scored: list[dict[str, Any]] = []
        for n, r in enumerate(picked[:evaluations]):
            answers = {"greeting": rng.choice(("yes", "no")), "verified": rng.choice(("yes",) * 19 + ("no",)),
                       "courtesy": rng.randint(1, 5), "resolution": rng.choice(("yes", "no", "na"))}
            result = score(form, answers)
            scored.append({"item_id": ids[r["call_id"]], "call_id": r["call_id"], "agent_id": r["agent_id"],
                           "queue": r["queue"], "call_started_at": r["started_at"],
                           "reviewer": REVIEWERS[n % len(REVIEWERS)],
                           "calibration": False, "form": "standard", "form_version": 1, "answers": answers,
                           "comments": [], "total": result.total, "auto_failed": result.auto_failed,
                           "sections": result.sections, "submitted_at": now, "status": "submitted",
                           "agent_note": ""})
        db.execute(insert(Evaluation), scored)
        db.commit()
        first_open = next(i for i in items if i["status"] == "open" and i["reviewer"] == REVIEWERS[0])
        return ids[first_open["call_id"]]


if __name__ == "__main__":
    sys.exit(main())
