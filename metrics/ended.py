"""The counts of processes that ended, folded into one archive file per metric type.

In multiprocess mode every process counts into files of its own (``counter_<pid>.db``, ``histogram_<pid>.db``)
and every scrape reads and sums all of them. The files of an ended process must stay in the sums (a counter
that went down would read as a reset and a false spike of ``rate()``), but left alone they pile up: every
restarted FastAGI process or worker, every recycled gunicorn worker adds its files to every scrape for ever
(prometheus_client's documented limit). So when a process ends, its values are added into
``<type>_archive.db`` and its files removed: a scrape reads the live processes' files and one archive per type.

Counter values and histogram bucket counts and sums are plain additions per key, so the fold adds the raw
values of the two files key by key (``accumulate=False`` in prometheus_client's terms) and never parses a key.
It writes the new archive under a name no scrape reads, then swaps it in, under an exclusive lock that every
scrape takes shared (``reading``): no scrape sees the ended process counted twice or not at all.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict

ARCHIVE = "archive"
FOLDED_TYPES = ("counter", "histogram", "summary")
"""The types whose values add up across processes (gauges are per process: ``mark_process_dead`` drops them)."""
_LOCK = ".scrape.lock"


@contextmanager
def reading(folder: str) -> Iterator[None]:
    """Held by a scrape while it reads the folder's files: no fold swaps files under it."""
    with _locked(folder, fcntl.LOCK_SH):
        yield


def fold_ended(folder: str, pid: int) -> int:
    """Add the files of the ended process ``pid`` into the archives and remove them; how many were folded."""
    root = Path(folder)
    folded = 0
    with _locked(folder, fcntl.LOCK_EX):
        for kind in FOLDED_TYPES:
            ended = root / f"{kind}_{pid}.db"
            if not ended.exists():
                continue
            archive = root / f"{kind}_{ARCHIVE}.db"
            totals: dict[str, float] = {}
            for source in (archive, ended):
                if source.exists():
                    for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(source)):  # type: ignore[no-untyped-call]
                        totals[key] = totals.get(key, 0.0) + value
            fresh = root / f".{kind}_{ARCHIVE}.db.new"  # not ``*.db``: no scrape reads it half written
            fresh.unlink(missing_ok=True)
            store = MmapedDict(str(fresh))  # type: ignore[no-untyped-call]
            try:
                for key, value in totals.items():
                    store.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
            finally:
                store.close()  # type: ignore[no-untyped-call]
            os.replace(fresh, archive)
            ended.unlink()
            folded += 1
    return folded


@contextmanager
def _locked(folder: str, mode: int) -> Iterator[None]:
    with open(os.path.join(folder, _LOCK), "a+b") as lock:
        fcntl.flock(lock, mode)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
