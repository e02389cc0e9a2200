"""Under gevent, the transaction that holds SQLite's write lock never waits for a thread, nor for the hub.

SQLite has one write lock for the whole database, held from a transaction's first write to its commit, and every
writer of every process waits for it. The day run found it held for seconds twice over:
- each statement and the commit waited in gevent's pool behind PIN KDFs, long reads and other writers asleep in
  SQLite's busy handler (session 7): here the pool is filled with slow work, as a burst of PIN checks fills it, and
  a write transaction must still commit before any of that work is done;
- a write that met another process's lock waited for it in a native thread, and that thread then held the lock
  until the hub came back to its greenlet, one turn of a saturated hub (session 10): here the hub is kept busy
  while the lock frees, and another process's writer must not wait for the hub to come back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _run(script: str, *args: str) -> dict[str, Any]:
    """The last line ``script`` printed, a JSON object; the script runs in a process of its own (gevent patched)."""
    out = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_write_transaction_commits_while_the_thread_pool_is_busy(tmp_path: Path) -> None:
    result = _run(SCRIPT, str(tmp_path / "hotline.db"))
    assert result["rows"] == [2], result  # both statements committed
    # Committed while every slow task still held its thread: the writer did not queue behind them.
    assert result["pool_busy_at_commit"] == result["pool_size"], result
    assert result["committed_s"] < result["busy_s"], result


LOCKER = r"""
import sqlite3, sys, time
t0 = float(sys.argv[2])
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
time.sleep(max(0.0, t0 - time.time()))
conn.execute("BEGIN EXCLUSIVE")
time.sleep(max(0.0, t0 + 0.4 - time.time()))
conn.execute("ROLLBACK")
"""

OTHER_WRITER = r"""
import sqlite3, sys, time
t0 = float(sys.argv[2])
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
time.sleep(max(0.0, t0 + 0.8 - time.time()))
asked = time.time()
conn.execute("BEGIN IMMEDIATE")
waited = time.time() - asked
conn.execute("INSERT INTO scratch VALUES ('other process')")
conn.execute("COMMIT")
print(waited)
"""

BUSY_HUB = r"""
import gevent.monkey
gevent.monkey.patch_all()

import json, subprocess, sys, time
import gevent
from sqlalchemy import text
from store.db import connect

path, locker_script, other_script = sys.argv[1], sys.argv[2], sys.argv[3]
sql = connect("sqlite:///" + path)
with sql.begin() as db:
    db.execute(text("CREATE TABLE IF NOT EXISTS scratch (who TEXT)"))

# Another process holds SQLite's write lock from t0 to t0 + 0.4 s; a third one writes at t0 + 0.8 s.
t0 = time.time() + 1.0
locker = subprocess.Popen([sys.executable, "-c", locker_script, path, str(t0)])
other = subprocess.Popen([sys.executable, "-c", other_script, path, str(t0)], stdout=subprocess.PIPE, text=True)
gevent.sleep(t0 + 0.1 - time.time())


def write():
    with sql.begin() as db:  # meets the locker's lock: waits for it
        db.execute(text("INSERT INTO scratch VALUES ('this process')"))


writer = gevent.spawn(write)
gevent.sleep(0.1)
while time.time() < t0 + 2.0:  # the hub busy (a thousand calls' work) from before the lock frees to well after
    pass
busy_until = time.time() - t0
writer.get()
other_waited = float(other.communicate()[0])
locker.wait()
with sql.begin() as db:
    rows = sorted(db.execute(text("SELECT who FROM scratch")).scalars().all())
print(json.dumps({"other_waited_s": other_waited, "busy_until_s": busy_until, "rows": rows}))
"""


def test_a_busy_hub_does_not_keep_sqlite_locked_for_the_other_processes(tmp_path: Path) -> None:
    result = _run(BUSY_HUB, str(tmp_path / "hotline.db"), LOCKER, OTHER_WRITER)
    assert result["rows"] == ["other process", "this process"], result  # both written, neither lost
    assert result["busy_until_s"] >= 2.0, result  # the hub was busy from before the lock freed to after
    # The other process got the lock when it asked at 0.8 s: this process's waiting write did not take the lock
    # freed at 0.4 s and keep it until its hub came back at 2.0 s (the other process then waited 1.2 s).
    assert result["other_waited_s"] < 0.4, result
