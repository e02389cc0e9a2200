"""A day in the life of the hotline: ``hotline simulate`` and ``bench/day.py``.

Starts the whole hotline as a user does (``hotline up``: its own Redis, SQLite or ``--database-url``),
staffs it with simulated agents, and plays a compressed day of calls, half as Twilio (signed webhooks) and
half as Asterisk (FastAGI), while faults strike at set times. Then checks that nothing was lost or
doubled, that the reports agree with the event log, and that no card number or PIN was kept anywhere.
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
import urllib.error
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine

from simulate import checks
from simulate.asterisk import SimAsterisk
from simulate.clock import DayClock, Measurements
from simulate.database import describe, fill_with_an_earlier_day, own_schema
from simulate.judge import events_stream_of_the_day, judge, privacy
from simulate.metrics_log import MetricsLog
from simulate.phones import AgentPhones
from simulate.plan import ID_LAST6, CallPlan, DayPlan, make_plan
from simulate.report import report
from simulate.stack import Hotline, RssSampler, free_port, start_hotline
from simulate.twilio_cloud import TwilioCloud

FAULTS = (
    # (hour of the day, what): at the morning peak, around noon and at the afternoon peak
    (9.5, "redis_restart"), (10.5, "worker_sigkill"), (11.0, "web_restart"), (12.0, "agent_phone_dead"),
    (14.0, "agi_restart"), (15.0, "database_down"),
)


@dataclass
class CallResult:
    plan: CallPlan
    call_id: str
    started: bool
    queued: bool = False
    answered: bool = False
    abandoned: bool = False
    failed: bool = False
    recorded_complaint: bool = False
    late_s: float = 0.0


@dataclass
class DayRun:
    plan: DayPlan
    hotline: Hotline
    clock: DayClock
    cloud: TwilioCloud
    phones: AgentPhones
    measured: Measurements
    results: list[CallResult] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    id_epoch: int = field(default_factory=lambda: int(time.time()))
    """Asterisk's uniqueids are ``<epoch>.<sequence>``: from the real clock, so days never share one."""


# -- one call ------------------------------------------------------------------------------------


def play_call(run: DayRun, call: CallPlan) -> CallResult:
    late = max(0.0, run.clock.real(run.clock.now() - call.at_s))
    if call.channel == "twilio":
        result = _twilio_call(run, call)
    else:
        result = _asterisk_call(run, call)
    result.late_s = late
    with run.lock:
        run.results.append(result)
    return result


def _twilio_call(run: DayRun, call: CallPlan) -> CallResult:
    sid, outcome = run.cloud.call(list(call.keys), f"+86{call.caller}", call.hangup_after_steps, call.patience_s,
                                  call.talk_s)
    recorded = call.intent == "complaint" and (outcome.hung_up_recording or any(
        ("工单号" in s or "work order number" in s) for s in outcome.said))
    return CallResult(call, sid, outcome.started, outcome.queued, outcome.answered, outcome.abandoned,
                      outcome.failed, recorded_complaint=recorded)


def _asterisk_call(run: DayRun, call: CallPlan) -> CallResult:
    peer = SimAsterisk(list(call.keys), caller=call.caller, clock=run.clock, measured=run.measured,
                       phones=run.phones, talk_day_s=call.talk_s, hangup_after_steps=call.hangup_after_steps,
                       patience_s=run.clock.real(call.patience_s), timeout_s=30.0,
                       uniqueid=f"{run.id_epoch + call.index // 1000}.{call.index}", secret=run.hotline.agi_secret)
    try:
        result = peer.dial("127.0.0.1", run.hotline.agi_port)
    except OSError as exc:
        started = peer.commands_read > 0  # the hotline had the call when it broke off (a step past the timeout)
        run.measured.count("agi_broken_off" if started else "agi_refused")
        run.measured.problem(f"AGI call {peer.uniqueid}: {type(exc).__name__}: {exc}")
        return CallResult(call, peer.uniqueid, started=started, failed=True)
    queued = any(c.startswith("SET MUSIC on") for c in result.commands)
    cut = result.closed_by_server and not result.hung_up and not _ended_by_server(result.commands)
    # The work order number is spoken from a per-call file: a complaint counts once the caller spoke it.
    recorded = call.intent == "complaint" and not cut and any(c.startswith("RECORD FILE") for c in result.commands)
    if cut:
        run.measured.count("agi_cut")
    return CallResult(call, peer.uniqueid, started=bool(result.commands), queued=queued, answered=peer.answered,
                      abandoned=queued and not peer.answered and result.hung_up, failed=cut,
                      recorded_complaint=recorded)


def _ended_by_server(commands: list[str]) -> bool:
    return bool(commands) and commands[-1].startswith(("HANGUP", "EXEC Hangup"))


# -- the people around the calls -----------------------------------------------------------------


def staff(run: DayRun) -> None:
    for agent in run.plan.agents:
        run.hotline.api("PUT", f"/api/agents/{agent.id}", {
            "name": agent.name, "endpoint": agent.endpoint, "skills": agent.skills,
            "languages": list(agent.languages)})
        run.hotline.api("POST", f"/api/agents/{agent.id}/state", {"state": "available"})


def back_office(run: DayRun, seed: int) -> None:
    """Staff work the complaints: each work order is assigned and, some hours later, resolved (which
    schedules its return visit). Agents a missed call made not ready go available again."""
    rng = random.Random(seed)
    due: dict[str, float] = {}
    # Work orders go to a person who works them (an active supervisor), not to any text.
    with contextlib.suppress(Exception):  # 409 when a run already made them
        run.hotline.api("POST", "/api/users", {"name": "team-a", "role": "supervisor",
                                               "password": secrets.token_urlsafe(18)})

    def attempt(what: Callable[[], Any]) -> tuple[bool, Any]:
        """One request of the back office's, and its answer: a failure is counted and the round goes on with the
        next order (one stuck order stopped every later resolution of the day)."""
        try:
            return True, what()
        except Exception as exc:  # noqa: BLE001 - the back office carries on after a hiccup (DB down...)
            run.measured.count("back_office_errors")
            if "HTTP Error 5" not in str(exc) and "timed out" not in str(exc):
                run.measured.problem(f"back office: {type(exc).__name__}: {exc}")
            return False, None

    def assign(number: str) -> object:
        return run.hotline.api("POST", f"/api/complaints/{number}/assign", {"by": "backoffice", "to": "team-a"})

    def resolve(number: str) -> object:
        try:
            return run.hotline.api("POST", f"/api/complaints/{number}/resolve", {"by": "backoffice",
                                                                                  "note": "refund made"})
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise
            return None  # resolved already: an earlier try that timed out at the peak had gone through

    while not run.stop.wait(min(2.0, run.clock.real(600))):
        listed, orders = attempt(lambda: run.hotline.api("GET", "/api/complaints?status=open&limit=1000"))
        for order in orders if listed and isinstance(orders, list) else []:
            number = order["number"]
            if number not in due:
                due[number] = run.clock.now() + rng.uniform(*run.plan.resolve_after_s)  # even if the assign fails
                attempt(partial(assign, number))
        for number, at in list(due.items()):
            if at <= run.clock.now() and attempt(partial(resolve, number))[0]:
                del due[number]
        _, agents = attempt(lambda: run.hotline.api("GET", "/api/agents"))
        for agent in agents or []:
            if agent.get("state") == "not_ready":
                attempt(partial(run.hotline.api, "POST", f"/api/agents/{agent['id']}/state", {"state": "available"}))


def faults(run: DayRun, db_outage_s: float) -> None:
    actions: dict[str, Callable[[], str]] = {
        "redis_restart": lambda: _timed(run.hotline.restart_redis, run.measured, "redis_restart"),  # stop, start
        "worker_sigkill": lambda: f"pid {run.hotline.kill_one('worker', signal.SIGKILL)}",
        "web_restart": lambda: f"pid {run.hotline.kill_one('web', signal.SIGTERM)} (graceful)",
        "agi_restart": lambda: f"pid {run.hotline.kill_one('agi', signal.SIGTERM)}",
        "agent_phone_dead": lambda: _phone_dead(run),
        "database_down": lambda: _database_down(run, db_outage_s),
    }
    for hour, name in FAULTS:
        run.clock.sleep_until(hour * 3600)
        if run.stop.is_set():
            return
        began = run.clock.now()
        try:
            detail = actions[name]()
        except Exception as exc:  # noqa: BLE001
            detail = f"FAILED: {type(exc).__name__}: {exc}"
            run.measured.problem(f"fault {name}: {detail}")
        with run.lock:
            run.faults.append(f"{_hhmm(began)} {name}: {detail}")


def _timed(action: Callable[[], None], measured: Measurements, name: str) -> str:
    began = time.monotonic()
    action()
    ended = time.monotonic()
    measured.window(name, began, ended)
    return f"down {ended - began:.1f} s"


def _phone_dead(run: DayRun) -> str:
    agent = run.plan.agents[0]
    run.phones.kill(agent.endpoint)
    return f"{agent.id}'s phone ({agent.endpoint}) stops answering for the rest of the day"


def _database_down(run: DayRun, seconds: float) -> str:
    with run.hotline.database_down():
        time.sleep(seconds)
    return f"unreachable {seconds:.0f} s"


def _hhmm(day_s: float) -> str:
    return f"{int(day_s // 3600):02d}:{int(day_s % 3600 // 60):02d}"


# -- the day ---------------------------------------------------------------------------------------


@dataclass
class Options:
    calls: int = 10_000
    agents: int = 50
    day_seconds: float = 1200.0
    seed: int = 1
    database_url: str | None = None
    db_outage_s: float = 30.0
    folder: Path | None = None
    earlier_day_calls: int = 0
    """Fill the database with an earlier day of this many calls first, as a database in service is."""
    threads: int = 600
    json_path: Path | None = None
    """Also write the figures to this file."""
    metrics_log: Path | None = None
    """Scrape ``/metrics`` every second during the day into this file (``simulate.metrics_log``)."""


def run_day(options: Options, out: Callable[[str], None] = print) -> tuple[checks.Verdict, dict[str, Any]]:
    """The day in a database of its own: PostgreSQL gets a new schema in the database named (kept when
    ``folder`` is given, for a look afterwards), SQLite a file in the day's folder; both filled with an
    earlier day first when ``earlier_day_calls`` is set."""
    folder = options.folder or Path(tempfile.mkdtemp(prefix="hotline-day-"))
    with contextlib.ExitStack() as stack:
        url = options.database_url
        if url:
            url = stack.enter_context(own_schema(url, keep=options.folder is not None))
            out(f"database: schema {url.rsplit('search_path%3D', 1)[-1]} of {url.split('@')[-1].split('?')[0]}")
        if options.earlier_day_calls:
            filled = fill_with_an_earlier_day(url or f"sqlite:///{folder / 'var' / 'hotline.db'}",
                                              options.earlier_day_calls, options.seed + 1)
            out(f"database filled with an earlier day: {describe(filled)}")
        return _play_day(options, folder, url, out)


def _play_day(options: Options, folder: Path, database_url: str | None,
              out: Callable[[str], None]) -> tuple[checks.Verdict, dict[str, Any]]:
    plan = make_plan(options.calls, options.agents, options.seed)
    measured = Measurements()
    phones = AgentPhones(options.seed)
    port = free_port()
    clock = DayClock(options.day_seconds)
    auth_token = f"{random.Random(options.seed).getrandbits(128):032x}"
    cloud = TwilioCloud(f"http://127.0.0.1:{port}", auth_token, clock, measured, phones, plan.survey_answer_rate,
                        options.seed)
    out(f"day: {options.calls} calls, {options.agents} agents, a day in {options.day_seconds:.0f} s "
        f"(x{clock.scale:.0f}), seed {options.seed}, in {folder}")
    hotline = start_hotline(folder, clock.scale, port, auth_token, cloud.api_base, database_url)
    sampler = RssSampler(hotline)
    scraper = MetricsLog(hotline.web_url, hotline.api_token, options.metrics_log) if options.metrics_log else None
    try:
        _seed_cards(hotline, plan)
        run = DayRun(plan, hotline, clock, cloud, phones, measured)
        staff(run)
        out(f"hotline up: web {hotline.web_url}, FastAGI :{hotline.agi_port}, {hotline.sql_url.split('@')[-1]}")
        sampler.start()
        if scraper is not None:
            scraper.start()
        clock.start = time.monotonic()
        helpers = [threading.Thread(target=back_office, args=(run, options.seed), daemon=True),
                   threading.Thread(target=faults, args=(run, options.db_outage_s), daemon=True)]
        for helper in helpers:
            helper.start()
        with ThreadPoolExecutor(options.threads, thread_name_prefix="caller") as pool:
            for call in plan.calls:
                clock.sleep_until(call.at_s)
                pool.submit(_safely, run, call)
        ended_at = dt.datetime.now(dt.UTC)
        out(f"all {len(plan.calls)} calls ended {time.monotonic() - clock.start - options.day_seconds:+.0f} s "
            "after the day; draining")
        stats = _settle(run, ended_at)
        run.stop.set()
        cloud.closed = True  # what the hotline dials from now on is not part of the day
        # the visits dialled while they were waited for are calls of the day too: written before it is judged
        time.sleep(2)
        with redis.Redis.from_url(hotline.redis_url, decode_responses=True) as client:
            _records_caught_up(client, time.monotonic() + 180)
        verdict, figures, redis_hits = judge(run, stats, ended_at, out)
    finally:
        sampler.stop()
        if scraper is not None:
            scraper.stop()
            out(f"/metrics scraped {scraper.scrapes} times ({scraper.failures} failed, slowest "
                f"{scraper.slowest_s * 1000:.0f} ms) into {options.metrics_log}")
        log = hotline.stop()
        cloud.close()
    figures["peak_rss_mb"] = {role: kb / 1024 for role, kb in sorted(sampler.peaks_kb.items())}
    privacy(run, verdict, log, redis_hits)
    report(run, verdict, figures, out)
    return verdict, figures


def _safely(run: DayRun, call: CallPlan) -> None:
    try:
        play_call(run, call)
    except Exception as exc:  # noqa: BLE001 - a bug of the simulator: counted, and the day fails
        run.measured.count("simulator_errors")
        run.measured.problem(f"call {call.index}: {type(exc).__name__}: {exc}")


def _seed_cards(hotline: Hotline, plan: DayPlan) -> None:
    from bank.core_banking import DemoBank, DemoCardSeed
    from store.db import connect
    from store.secret_files import installation_secret

    sql = connect(hotline.sql_url)
    # The hotline's own card secret (generated into its data folder): its processes must find these cards.
    bank = DemoBank(sql, installation_secret(hotline.data_dir, "card_secret"))
    bank.seed(tuple(DemoCardSeed(card, pin, ID_LAST6, Decimal(f"{1000 + i}.{i % 100:02d}"))
                    for i, (card, pin) in enumerate(plan.cards)))
    sql.kw["bind"].dispose()


def _settle(run: DayRun, ended_at: dt.datetime, limit_s: float = 180.0) -> dict[str, float]:
    """Wait until the record writers have caught up: their consumer group has read the whole events stream
    and acknowledged every event (the work of the last calls, of the faults' retries, of spooled events)."""

    client = redis.Redis.from_url(run.hotline.redis_url, decode_responses=True)
    began = time.monotonic()
    time.sleep(2)  # spooled events and the last status callbacks reach the stream
    _records_caught_up(client, began + limit_s)
    caught_up = round(time.monotonic() - began, 1)
    # A visit whose job was lost (enqueued while Redis restarted) is taken up by the sweep (every 60 s).
    engine = create_engine(run.hotline.check_url)
    limit = time.monotonic() + run.clock.real(900) + 130
    while time.monotonic() < limit and checks.visits_not_attempted(engine, ended_at):
        time.sleep(2)
    engine.dispose()
    client.close()
    return {"records_caught_up_after_s": caught_up, "visits_caught_up_after_s": round(time.monotonic() - began, 1)}


def _records_caught_up(client: redis.Redis, deadline: float) -> None:
    from workers.stream import RECORDS_GROUP

    while time.monotonic() < deadline:
        groups = {g["name"]: g for g in client.xinfo_groups(events_stream_of_the_day())}
        group = groups.get(RECORDS_GROUP)
        if group and group.get("lag") == 0 and group.get("pending") == 0:
            return
        time.sleep(0.5)


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--day-seconds", type=float, default=1200.0, help="real seconds the day is played in")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="PostgreSQL (behind a proxy the outage cuts); default SQLite")
    parser.add_argument("--db-outage-s", type=float, default=30.0)
    parser.add_argument("--folder", type=Path, help="keep the hotline's files (and the PostgreSQL schema) here "
                        "(default: a temp folder, the schema dropped)")
    parser.add_argument("--earlier-day-calls", type=int, default=0, metavar="N",
                        help="fill the database with an earlier day of N calls first, as one in service is")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--metrics-log", type=Path, metavar="FILE",
                        help="scrape /metrics every second during the day and keep the watched lines in FILE")
    args = parser.parse_args(argv)
    return Options(args.calls, args.agents, args.day_seconds, args.seed, args.database_url, args.db_outage_s,
                   args.folder, args.earlier_day_calls, json_path=args.json, metrics_log=args.metrics_log)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    verdict, figures = run_day(options)
    if options.json_path:
        options.json_path.write_text(json.dumps(figures, indent=1, default=str))
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())

