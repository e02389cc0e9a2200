"""Under gevent, the transaction that holds SQLite's write lock never waits for gevent's shared thread pool.

SQLite has one write lock for the whole database, held from a transaction's first write to its commit. The day
run found single-statement transactions holding it for seconds: each statement and the commit waited in gevent's
pool behind PIN KDFs, long reads and other writers asleep in SQLite's busy handler, while every writer of every
process waited for them. Here the pool is filled with slow work, as a burst of PIN checks fills it, and a write
transaction must still commit before any of that work is done."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import gevent.monkey
gevent.monkey.patch_all()

import json, sys, time
import gevent
from sqlalchemy import text
from store.cooperative import off_hub
from store.db import connect

sql = connect("sqlite:///" + sys.argv[1])
with sql.begin() as db:  # the pooled connection is made (and its pragmas run) before the pool is busy
    db.execute(text("CREATE TABLE IF NOT EXISTS scratch (n INTEGER)"))

pool = gevent.get_hub().threadpool
busy_s = 3.0
slow = [gevent.spawn(off_hub, time.sleep, busy_s) for _ in range(pool.maxsize)]
gevent.sleep(0.2)  # every thread of the pool is taken now
began = time.monotonic()
with sql.begin() as db:
    db.execute(text("INSERT INTO scratch (n) VALUES (1)"))
    db.execute(text("UPDATE scratch SET n = n + 1"))
committed = time.monotonic() - began
pool_busy = sum(1 for g in slow if not g.dead)
gevent.joinall(slow)
with sql.begin() as db:
    rows = db.execute(text("SELECT n FROM scratch")).scalars().all()
print(json.dumps({"committed_s": committed, "pool_busy_at_commit": pool_busy, "pool_size": pool.maxsize,
                  "busy_s": busy_s, "rows": rows}))
"""


def test_a_write_transaction_commits_while_the_thread_pool_is_busy(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "hotline.db")], cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rows"] == [2], result  # both statements committed
    # Committed while every slow task still held its thread: the writer did not queue behind them.
    assert result["pool_busy_at_commit"] == result["pool_size"], result
    assert result["committed_s"] < result["busy_s"], result
