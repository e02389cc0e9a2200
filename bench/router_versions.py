"""bench/router.py --before: another version's router scripts beside this tree's, and what Redis did for each."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent


def export_lua(ref: str, folder: Path) -> Path:
    """The router's Lua scripts as git has them at ``ref``, written to ``folder``."""
    repo = HERE.parent
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{ref}:routing/lua"], cwd=repo, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in names:
        text = subprocess.run(["git", "show", f"{ref}:routing/lua/{name}"], cwd=repo, check=True,
                              capture_output=True, text=True).stdout
        (folder / name).write_text(text)
    for newer in (HERE.parent / "routing" / "lua").glob("*.lua"):  # operations REF did not have: never run here,
        if not (folder / newer.name).exists():                   # but RouterScripts registers every one
            (folder / newer.name).write_text(newer.read_text())
    return folder


@dataclass
class ServerWork:
    """What Redis counted (INFO commandstats): commands the scripts ran (not the EVALSHAs themselves, nor the
    bench's own), and µs spent in EVALSHA (the scripts, the no-ops too)."""

    commands: int = 0
    evalsha_us: int = 0

    def __sub__(self, other: ServerWork) -> ServerWork:
        return ServerWork(self.commands - other.commands, self.evalsha_us - other.evalsha_us)

    def __add__(self, other: ServerWork) -> ServerWork:
        return ServerWork(self.commands + other.commands, self.evalsha_us + other.evalsha_us)


def server_work(client: redis.Redis) -> ServerWork:
    own = {"cmdstat_evalsha", "cmdstat_config|resetstat", "cmdstat_info", "cmdstat_script|load"}
    stats = client.info("commandstats")
    return ServerWork(sum(int(v["calls"]) for k, v in stats.items() if k not in own),
                      int(stats.get("cmdstat_evalsha", {}).get("usec", 0)))


@dataclass
class Figures:
    ratio: float
    assigning_ratio: float
    p50_ms: float
    p99_ms: float
    per_assignment: float
    commands: float
    us_per_assignment: float
    redis_us_per_assignment: float
    flat: float


def compare(before: Figures, after: Figures) -> None:
    print("\nbefore -> after (same run)")
    rows = [
        ("assignments/s over all router calls / ceiling", "ratio", "{:.2f}"),
        ("assignments/s over the assigning calls / ceiling", "assigning_ratio", "{:.2f}"),
        ("router calls per assignment", "per_assignment", "{:.2f}"),
        ("redis commands per assignment (in the scripts)", "commands", "{:.1f}"),
        ("µs of router calls per assignment (scenario)", "us_per_assignment", "{:,.0f}"),
        ("  of which in Redis (EVALSHA, with the no-ops)", "redis_us_per_assignment", "{:,.0f}"),
        ("assignment latency p50, ms", "p50_ms", "{:.2f}"),
        ("assignment latency p99, ms", "p99_ms", "{:.2f}"),
        ("backlog µs per assignment, max/min over the sizes", "flat", "{:.2f}"),
    ]
    for label, name, fmt in rows:
        print(f"  {label:<50} {fmt.format(getattr(before, name)):>8} -> {fmt.format(getattr(after, name)):>8}")


def take_turns(client: redis.Redis, runs: list[Iterator[None]]) -> list[ServerWork]:
    """Steps each run in turn until all are done; returns what Redis did for each run (INFO around every step:
    untimed)."""
    work, active = [ServerWork() for _ in runs], list(range(len(runs)))
    before = server_work(client)
    while active:
        for i in list(active):
            if next(runs[i], StopIteration) is StopIteration:
                active.remove(i)
            after = server_work(client)
            work[i], before = work[i] + (after - before), after
    return work
