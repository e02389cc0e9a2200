"""A server process's full garbage collections, each of which holds every call and webhook of the process.

With a thousand live pages open a web worker's full collection took 56-138 ms (docs/performance.md). The servers
settle their heap once the app is built (``hotline.heap.settle_heap``): here a process opens 2,000 pages' worth
of long-lived objects while requests come and go, then serves requests alone, and must run far fewer full
collections than Python's defaults would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import gc, json, sys
from hotline.heap import settle_heap

if sys.argv[1] == "settled":
    settle_heap()
full = []
gc.callbacks.append(lambda phase, info: full.append(1) if phase == "stop" and info["generation"] == 2 else None)


def request():  # a webhook's garbage: short-lived, with a cycle (as a frame and its exception's traceback make)
    a = {}
    b = {"a": a}
    a["b"] = b


pages = []
for n in range(2000):  # pages opening, each keeping its objects for as long as it is open, among the requests
    pages.append([{"page": n, "row": [i, str(i)]} for i in range(100)])
    for _ in range(50):
        request()
for _ in range(300_000):  # then the requests alone
    request()
print(json.dumps({"full_collections": len(full), "pages": len(pages)}))
"""


def _full_collections(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["pages"] == 2000, result
    return int(result["full_collections"])


def test_a_settled_server_runs_few_full_collections_while_pages_open_and_requests_come() -> None:
    default, settled = _full_collections("default"), _full_collections("settled")
    assert default >= 3, default  # the scenario does make Python's defaults stop the process again and again
    assert settled <= 1, (settled, default)
