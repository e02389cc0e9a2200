"""The end of a simulated day: what the checks say about it (nothing lost or doubled, the report agrees with
the event log, no card number, PIN or ID digits anywhere)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import create_engine

from simulate import checks
from simulate.plan import ID_LAST6, DayPlan

TIMEZONE = "Asia/Shanghai"
"""The simulated hotline's time zone (its default): the report covers its today."""

if TYPE_CHECKING:
    from simulate.day import DayRun


def judge(run: DayRun, stats: dict[str, float], ended_at: dt.datetime,
          out: Callable[[str], None]) -> tuple[checks.Verdict, dict[str, Any], list[str]]:
    """The end checks but the privacy one (which needs the hotline stopped); also what Redis holds of the
    callers' secrets, searched while it still runs."""
    verdict = checks.Verdict()
    engine = create_engine(run.hotline.check_url)
    results = run.results
    started = {r.call_id for r in results if r.started} | set(run.cloud.survey_calls)
    figures: dict[str, Any] = {"faults": run.faults, **stats}
    figures["calls"] = {
        "planned": len(run.plan.calls), "started": sum(r.started for r in results),
        "offered_to_agents": sum(r.queued for r in results), "answered_by_agents": sum(r.answered for r in results),
        "answered_twilio": sum(r.answered for r in results if r.plan.channel == "twilio"),
        "abandoned": sum(r.abandoned for r in results), "failed_or_cut": sum(r.failed for r in results),
        "survey_calls": len(run.cloud.survey_calls), "visits_dialled": run.cloud.visits_dialled,
        "late_starts": sum(r.late_s > 1 for r in results),
    }
    verdict.add("the simulator played every call", not run.measured.counts.get("simulator_errors"),
                f"{run.measured.counts.get('simulator_errors', 0)} calls broke off in the simulator itself")
    day_began = dt.datetime.fromtimestamp(run.id_epoch - 60, dt.UTC)
    figures["records"] = checks.check_records(engine, started, verdict, day_began)
    complaints = {r.call_id for r in results if r.recorded_complaint}
    figures["work_orders"] = checks.check_work_orders(engine, complaints, verdict)
    figures["visits"] = checks.check_visits(engine, ended_at, verdict)
    client = redis.Redis.from_url(run.hotline.redis_url)
    events = checks.stream_events(client, events_stream_of_the_day())
    sl_s = 20 / run.clock.scale if 20 / run.clock.scale > 0.05 else 0.05
    computed = checks.kpis_from_events(events, float(f"{sl_s:.3f}"))
    today = dt.datetime.now(ZoneInfo(TIMEZONE)).date()
    report_body = run.hotline.api("GET", f"/api/reports/summary?from={today - dt.timedelta(days=1)}&to={today}")
    reported = report_body["queue"] if isinstance(report_body, dict) else {}
    checks.check_kpis(reported, computed, verdict)
    figures["kpis"] = computed
    figures["events"] = len(events)
    secrets = _secrets(run.plan)
    pattern = checks.secret_patterns(secrets)
    hits = checks.find_in_redis(client, pattern)
    figures["pii_scanned"] = {"redis_keys": client.dbsize()}
    client.close()
    engine.dispose()
    return verdict, figures, hits


def events_stream_of_the_day() -> str:
    from routing.keys import events_stream

    return events_stream("hotline")


def _secrets(plan: DayPlan) -> set[str]:
    """Every full card number and PIN a simulated caller typed, and the ID digits."""
    found = {card for card, _ in plan.cards} | {pin for _, pin in plan.cards} | {ID_LAST6}
    for call in plan.calls:
        for entry in call.keys:
            digits = entry.rstrip("#")
            if digits.isdigit() and len(digits) in (6, 16, 17, 18, 19):
                found.add(digits)
    return found


def privacy(run: DayRun, verdict: checks.Verdict, log: str, redis_hits: list[str]) -> None:
    """Grep everything the hotline kept (log, Redis, every file under its data folder, every table) for the
    card numbers, PINs and ID digits the callers typed."""
    secrets = _secrets(run.plan)
    pattern = checks.secret_patterns(secrets)
    hits = [*redis_hits, *(f"hotline up's log: {h}" for h in _log_hits(log, pattern))]
    hits += checks.find_in_files(run.hotline.data_dir, pattern)
    engine = create_engine(run.hotline.check_url)
    hits += checks.find_in_database(engine, pattern)
    engine.dispose()
    verdict.add("no card number or PIN in logs, Redis, files or the database", not hits,
                f"{len(secrets)} secrets searched; {len(hits)} found" + (f": {hits[:3]}" if hits else ""))


def _log_hits(log: str, pattern: Any) -> list[str]:
    return [line[:200] for line in log.splitlines() if pattern.search(line.encode())]


# -- the report ------------------------------------------------------------------------------------
