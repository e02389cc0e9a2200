"""Balances read out on Asterisk: the cost of rendering a prompt per call in a gevent FastAGI process.

    .venv/bin/python bench/spawn.py [--held-mb 100,400] [--renders 40] [--at-once 4]

In a process patched by gevent as ``hotline agi`` is, holding --held-mb of touched memory (as a FastAGI process
holding calls does: about 40 KB a call, docs/performance.md), renders --renders distinct balance prompts
(espeak-ng per voice, then sox: ``recordings.prompts.render_wav``), --at-once at a time (the FastAGI process renders
at most 4 at once), two ways in the same run:

- baseline: gevent's ``subprocess`` (what ``subprocess.run`` is once patched), which forks the whole process;
- now: ``recordings.tools``: ``posix_spawn`` and a libev child watcher.

Meanwhile a greenlet asks the hub for 1 ms sleeps and records how late each comes back: what every other call on
the process waits while a render holds the hub. Prints per render the wall time and the process's CPU, and the
hub's lateness (p99, worst); exits 0 whatever they are.
"""

# ruff: noqa: E402  (gevent patches before anything else is imported)

from gevent import monkey

monkey.patch_all()

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gevent
from gevent.pool import Pool

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent)]

from recordings import tools
from recordings.prompts import render_wav

TICK_S = 0.001


def hub_lateness(stop: list[bool], late_ms: list[float]) -> None:
    while not stop:
        asked = time.perf_counter()
        gevent.sleep(TICK_S)
        late_ms.append((time.perf_counter() - asked - TICK_S) * 1000)


def run(label: str, renders: int, at_once: int, folder: Path, first: int) -> dict[str, float]:
    stop: list[bool] = []
    late_ms: list[float] = []
    watcher = gevent.spawn(hub_lateness, stop, late_ms)
    gevent.sleep(0.05)
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    Pool(at_once).map(lambda n: render_wav(f"您的余额是{n:,}.{n % 100:02d}元。", "zh-CN", folder / f"{label}{n}.wav"),
                      range(first, first + renders))
    wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0
    stop.append(True)
    watcher.join()
    late_ms.sort()
    return {"wall_ms": 1000 * wall / renders, "cpu_ms": 1000 * cpu / renders,
            "late_p99": late_ms[int(0.99 * (len(late_ms) - 1))], "late_max": late_ms[-1]}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--held-mb", default="100,400", help="memory the process holds, MB, comma-separated")
    p.add_argument("--renders", type=int, default=40, help="distinct balances rendered per way (default 40)")
    p.add_argument("--at-once", type=int, default=4, help="renders at a time (default 4, as hotline agi)")
    args = p.parse_args()
    forking: Callable[[], bool] = tools._forks_the_process
    print(f"rendering a balance prompt in a gevent process: {args.renders} distinct, {args.at_once} at a time; "
          "hub lateness = how late a 1 ms sleep of another greenlet comes back")
    print(f"{'held':>8} {'way':<38} {'wall/render':>12} {'CPU/render':>11} {'hub late p99':>13} {'worst':>9}")
    held: list[bytearray] = []
    with tempfile.TemporaryDirectory(prefix="hotline-spawn-") as tmp:
        first = 0
        for mb in (int(v) for v in args.held_mb.split(",")):
            held.clear()
            block = bytearray(mb * 2**20)
            block[::4096] = b"\1" * len(block[::4096])  # touched: resident, as calls' memory is
            held.append(block)
            figures = {}
            for label, way in (("fork", lambda: False), ("spawn", forking)):
                tools._forks_the_process = way
                run(label, 4, args.at_once, Path(tmp), first)  # warm-up: voices and sox in the page cache
                figures[label] = run(label, args.renders, args.at_once, Path(tmp), first + 4)
                first += args.renders + 4
            tools._forks_the_process = forking
            for label, name in (("fork", "baseline: gevent's subprocess (fork)"),
                                ("spawn", "now: posix_spawn + child watcher")):
                f = figures[label]
                print(f"{mb:>5} MB {name:<38} {f['wall_ms']:>9.1f} ms {f['cpu_ms']:>8.1f} ms "
                      f"{f['late_p99']:>10.1f} ms {f['late_max']:>6.1f} ms")
            base, now = figures["fork"], figures["spawn"]
            print(f"{'':>8} {'now / baseline':<38} {now['wall_ms'] / base['wall_ms']:>11.2f}x "
                  f"{now['cpu_ms'] / base['cpu_ms']:>10.2f}x {now['late_p99'] / base['late_p99']:>12.2f}x "
                  f"{now['late_max'] / base['late_max']:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
