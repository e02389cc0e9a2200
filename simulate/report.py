"""What a simulated day prints: its faults, call counts, latency per hour, memory, and the checks' verdicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulate import checks
from simulate.clock import percentile

if TYPE_CHECKING:
    from simulate.day import DayRun


def report(run: DayRun, verdict: checks.Verdict, figures: dict[str, Any], out: Callable[[str], None]) -> None:
    out("\nfaults:")
    for line in run.faults:
        out(f"  {line}")
    out("\ncalls: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in figures["calls"].items()))
    out("latency per hour of the day (ms):   webhook p50  p99  (n)     |  AGI step p50  p99  (n)")
    for hour in range(24):
        cells = []
        for kind in ("webhook", "agi"):
            values = sorted(run.measured.latency_ms.get((kind, hour), []))
            cells.append(f"{percentile(values, 50):7.1f} {percentile(values, 99):7.1f} ({len(values):5d})"
                         if values else f"{'-':>7} {'-':>7} ({0:5d})")
        out(f"  {hour:02d}:00  {cells[0]}   |  {cells[1]}")
    for kind in ("webhook", "agi"):
        values = sorted(v for (k, _), vs in run.measured.latency_ms.items() if k == kind for v in vs)
        figures[f"{kind}_ms"] = {"p50": percentile(values, 50), "p99": percentile(values, 99), "n": len(values)}
        out(f"  whole day {kind}: p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms, "
            f"{len(values)} steps")
    for kind in ("webhook", "agi"):
        held = run.measured.held_beyond("redis_restart", kind)
        if held:  # what the restart hour's p99 is made of: waiting for Redis, and how long after it was back
            figures[f"redis_restart_{kind}_after_ms"] = {"n": len(held), "p99": percentile(held, 99), "max": held[-1]}
            out(f"  {kind} requests waiting when Redis came back: {len(held)}, answered within "
                f"p99 {percentile(held, 99):.0f} ms, max {held[-1]:.0f} ms of its return")
    out("peak RSS (MB): " + ", ".join(f"{role} {mb:.0f}" for role, mb in figures["peak_rss_mb"].items()))
    out("counts: " + ", ".join(f"{k} {v}" for k, v in sorted(run.measured.counts.items())))
    for problem in run.measured.problems[:15]:
        out(f"  ! {problem}")
    out("\nchecks:")
    for check in verdict.checks:
        out(f"  [{'ok' if check.ok else 'FAILED'}] {check.name}: {check.detail}")
    out(f"\nday {'passed' if verdict.ok else 'FAILED'}")
