"""The live dashboard (``/admin/dashboard``) at 1,000 agents and 5,000 waiting calls, in Chromium.

    .venv/bin/python bench/dashboard.py [--agents 1000] [--calls 5000] [--events 30] [--loads 10]
                                        [--screenshot FILE.png] [--help]

Own redis-server (no persistence) and SQLite store in a temporary folder; ``prepare()``; agents over the 5
skills x 2 languages (10 queues) in mixed states (busy, offered, wrap-up, not ready with a reason, offline:
none available, or they would take the waiting calls); ``--calls`` callers waiting; ``--records`` call
records of today in SQL. The app is served by werkzeug's threaded server in this process (tests/web.py
``live_server``); Debian's Chromium (headless, Playwright) logs in as a supervisor. Measured:
  first render  navigation start -> every figure and every agent's row of the first snapshot drawn (the page
                sets ``body.dataset.readyMs`` = ``performance.now()`` then), over ``--loads`` fresh loads;
  SSE update    one call enqueued by the router (wall clock before the call) -> the page's "Calls waiting"
                showing the new count (a MutationObserver notes ``Date.now()``), over ``--events`` events spaced
                150-350 ms apart so that each is its own batch;
  agent row     one agent's state set by the router (offline -> not ready with a reason, and back) -> that
                agent's row showing it, over ``--events`` changes;
  baselines     GET /api/live alone (the snapshot the stream sends, with its JSON) from a logged-in client,
                ``LiveBoard.snapshot()`` in-process, and the agents' read alone (``AgentRegistry.on_floor()``,
                with their calls, against ``AgentRegistry.all()``, without them).
Prints the figures; exits 0 whatever they are.
"""

# ruff: noqa: E402  (the sys.path fix below has to run before the project's imports)

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import argparse
import datetime as dt
import itertools
import logging
import random
import re
import statistics
import tempfile
import time
from contextlib import ExitStack
from typing import Any

import requests
from playwright.sync_api import sync_playwright

from admin.console.desk import NOT_READY_REASONS
from bench.harness import percentile, run_until_done
from hotline.app import Hotline, create_app, prepare
from hotline.settings import Settings
from ivr.services import KNOWN_SKILLS
from routing.agents import Agent
from routing.router import CallRequest
from store.models import CallRecord
from store.redis_server import scratch_redis
from tests.web import live_server

CHROMIUM = "/usr/bin/chromium"
LANGUAGES = ("zh-CN", "en-US")
PASSWORD = "bench password 0123"
SKILLS = sorted(KNOWN_SKILLS - {"survey"}) + ["survey"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--records", type=int, default=20000, help="call records of today in SQL")
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--screenshot", type=Path, help="save the page (full length) here at the end")
    return run_until_done(run, parser.parse_args())


def run(args: argparse.Namespace, stack: ExitStack) -> None:
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hotline-bench-dash-")))
    redis_url, _ = stack.enter_context(scratch_redis(folder))
    settings = Settings(_env_file=None, redis_url=redis_url, database_url=f"sqlite:///{folder / 'hotline.db'}",  # type: ignore[call-arg]
                        data_dir=folder / "data", public_url="http://127.0.0.1",
                        # each fresh load's stream is let go only at its next write (a heartbeat, 15 s on)
                        live_streams_per_person=64)
    hotline = prepare(settings)
    t0 = time.perf_counter()
    states = populate(hotline, args.agents, args.calls)
    add_records(hotline, args.records)
    print(f"set-up {time.perf_counter() - t0:.1f} s: {args.agents} agents {states}, "
          f"{args.calls} waiting, {args.records} records today")
    hotline.accounts.add("boss", "supervisor", PASSWORD)
    app = create_app(hotline=hotline)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    url = stack.enter_context(live_server(app))
    baseline(hotline, app, url)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        # the page's CSP forbids eval: Playwright's wait_for_function needs it, the page's own scripts do not
        page = browser.new_context(bypass_csp=True).new_page()
        login(page, url)
        first_render(page, url, args.loads)
        sse_updates(page, hotline, args.events)
        agent_updates(page, hotline, args.events)
        burst(page, hotline, 500)
        if args.screenshot:
            page.set_viewport_size({"width": 1400, "height": 900})
            page.screenshot(path=str(args.screenshot))
            print(f"screenshot: {args.screenshot}")
        browser.close()


# -- set-up ---------------------------------------------------------------------------------------

def populate(hotline: Hotline, agents: int, calls: int) -> dict[str, int]:
    """Agents in every state but available, and ``calls`` callers left waiting."""
    rng = random.Random(7)
    router, ids = hotline.router, itertools.count(1)
    plan = [rng.choices(("busy", "offered", "wrap_up", "not_ready", "offline"), (35, 10, 10, 30, 15))[0]
            for _ in range(agents)]
    working = sum(state in ("busy", "offered", "wrap_up") for state in plan)
    queues = [(s, lang) for s in SKILLS for lang in LANGUAGES]
    for n in range(calls + working):  # callers for the working agents first, oldest first
        skill, language = queues[n % len(queues)]
        router.enqueue(CallRequest(f"call{next(ids)}", skill, language, rng.randint(0, 5), "twilio",
                                   caller="138****0000", enqueued_at=time.time() - rng.uniform(0, 600)))
    for n, state in enumerate(plan):
        skill, language = queues[n % len(queues)]
        agent_id = f"agent{n:04d}"
        hotline.agents.put(Agent(id=agent_id, name=f"Agent {n}", endpoint=f"PJSIP/{1000 + n}",
                                 skills={skill: rng.randint(1, 10)}, languages=[language]))
        if state == "offline":
            continue
        reason = rng.choice(NOT_READY_REASONS) if state == "not_ready" else ""
        offers = router.set_agent_state(agent_id, "not_ready" if state == "not_ready" else "available", reason)
        for offer in offers:
            if state in ("busy", "wrap_up"):
                router.answer(offer.call_id, offer.agent_id)
            if state == "wrap_up":
                router.end_call(offer.call_id, "completed")
    counted: dict[str, int] = {}
    for agent in hotline.agents.all():
        counted[agent.state] = counted.get(agent.state, 0) + 1
    return dict(sorted(counted.items()))


def add_records(hotline: Hotline, count: int) -> None:
    rng = random.Random(11)
    now = dt.datetime.now(dt.UTC)
    rows = []
    for n in range(count):
        started = now - dt.timedelta(seconds=rng.uniform(0, 6 * 3600))
        wait = rng.uniform(0, 90) if rng.random() < 0.8 else None
        rows.append({"call_id": f"rec{n}", "channel": "twilio", "started_at": started, "queue": "general:zh-CN",
                     "wait_s": wait, "answered_at": started + dt.timedelta(seconds=wait) if wait is not None else None,
                     "outcome": "routed" if wait is not None else "abandoned"})
    with hotline.sql.begin() as db:
        db.execute(CallRecord.__table__.insert(), rows)


# -- measuring ------------------------------------------------------------------------------------

def baseline(hotline: Hotline, app: Any, url: str) -> None:
    http = requests.Session()
    token = re.search(r'name="csrf-token" content="([^"]+)"', http.get(f"{url}/login").text)
    assert token is not None
    http.post(f"{url}/login", data={"name": "boss", "password": PASSWORD, "csrf_token": token.group(1)})
    took, size = [], 0
    for _ in range(30):
        t0 = time.perf_counter()
        reply = http.get(f"{url}/api/live")
        took.append((time.perf_counter() - t0) * 1000)
        size = len(reply.content)
    show("baseline GET /api/live", sorted(took), f"; body {size / 1024:.1f} KiB")
    from admin.live.board import LiveBoard

    board = LiveBoard(hotline.router, hotline.agents, hotline.sessions, hotline.sql, hotline.settings.timezone,
                      hotline.settings.service_level_s)
    took = []
    for _ in range(30):
        t0 = time.perf_counter()
        board.snapshot()
        took.append((time.perf_counter() - t0) * 1000)
    show("baseline LiveBoard.snapshot() in-process", sorted(took), " (today's SQL figures cached 5 s)")
    for name, read in (("AgentRegistry.on_floor() (then their calls: a pipeline more)", hotline.agents.on_floor),
                       ("AgentRegistry.all() (agents only, SMEMBERS + one pipeline)", hotline.agents.all)):
        took = []
        for _ in range(30):
            t0 = time.perf_counter()
            read()
            took.append((time.perf_counter() - t0) * 1000)
        show(f"baseline {name}", sorted(took))


def login(page: Any, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#name", "boss")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{url}/admin/dashboard")


def first_render(page: Any, url: str, loads: int) -> None:
    took, draws, parses = [], [], []
    for _ in range(loads):
        page.goto(f"{url}/admin/dashboard")
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        took.append(float(page.evaluate("Number(document.body.dataset.readyMs)")))
        draws.append(float(page.evaluate("Number(document.body.dataset.drawMs || 0)")))
        parses.append(float(page.evaluate("Number(document.body.dataset.parseMs || 0)")))
    rows = page.evaluate("document.querySelectorAll('#queues tbody tr').length")
    agent_rows = page.evaluate("document.querySelectorAll('#agent-rows tbody tr').length")
    nodes = page.evaluate("document.getElementsByTagName('*').length")
    waiting = page.inner_text("#waiting")
    show(f"first render (navigation start -> figures and agent rows drawn), {loads} loads", sorted(took),
         f"; {waiting} waiting shown in {rows} queue rows, {agent_rows} agent rows, {nodes} DOM elements")
    show("  of which the first snapshot's JSON.parse", sorted(parses))
    show("  of which its draw (script only, before layout)", sorted(draws))


WATCH = """(expected) => {
  window.seenAt = 0;
  const target = document.getElementById("waiting");
  const observer = new MutationObserver(() => {
    if (target.textContent === expected) { window.seenAt = Date.now(); observer.disconnect(); }
  });
  observer.observe(target, { childList: true, characterData: true, subtree: true });
}"""


def sse_updates(page: Any, hotline: Hotline, events: int) -> None:
    rng, took = random.Random(3), []
    for n in range(events):
        waiting = int(page.inner_text("#waiting"))
        page.evaluate(WATCH, str(waiting + 1))
        time.sleep(rng.uniform(0.15, 0.35))
        sent = time.time() * 1000
        hotline.router.enqueue(CallRequest(f"late{n}", "general", "zh-CN", 0, "twilio", caller="138****0000"))
        page.wait_for_function("window.seenAt > 0", timeout=10_000)
        took.append(float(page.evaluate("window.seenAt")) - sent)
    show(f"SSE update (enqueue -> new count on screen), {events} events", sorted(took))


WATCH_ROW = """([agent, expected]) => {
  window.rowSeenAt = 0;
  const target = document.querySelector(`#agent-rows tr[data-agent="${agent}"] td.state`);
  const observer = new MutationObserver(() => {
    if (target.textContent === expected) { window.rowSeenAt = Date.now(); observer.disconnect(); }
  });
  observer.observe(target, { childList: true, characterData: true, subtree: true });
}"""


def agent_updates(page: Any, hotline: Hotline, events: int) -> None:
    """Offline agents set not ready (with a reason) and back: the router's change -> the agent's row."""
    rng, took = random.Random(5), []
    offline = [a.id for a in hotline.agents.all() if a.state == "offline"]
    for n in range(events):
        agent_id = offline[n // 2 % len(offline)]
        state, shown = ("not_ready", "not ready") if n % 2 == 0 else ("offline", "offline")
        page.evaluate(WATCH_ROW, [agent_id, shown])
        time.sleep(rng.uniform(0.15, 0.35))
        sent = time.time() * 1000
        hotline.router.set_agent_state(agent_id, state, rng.choice(NOT_READY_REASONS) if state == "not_ready" else "")
        page.wait_for_function("window.rowSeenAt > 0", timeout=10_000)
        took.append(float(page.evaluate("window.rowSeenAt")) - sent)
    show(f"SSE update (agent's state set -> their row on screen), {events} changes", sorted(took))


COUNT_DRAWS = """() => {
  window.draws = 0;
  new MutationObserver(() => { window.draws += 1; })
    .observe(document.body, { attributes: true, attributeFilter: ["data-snapshot-at"] });
}"""


def burst(page: Any, hotline: Hotline, calls: int) -> None:
    """Back-to-back enqueues: how many snapshots the page draws, and when the last count shows."""
    expected = int(page.inner_text("#waiting")) + calls
    page.evaluate(COUNT_DRAWS)
    page.evaluate(WATCH, str(expected))
    t0 = time.time() * 1000
    for n in range(calls):
        hotline.router.enqueue(CallRequest(f"burst{n}", "loss", "en-US", 0, "twilio", caller="138****0000"))
    sent = time.time() * 1000
    page.wait_for_function("window.seenAt > 0", timeout=30_000)
    print(f"burst: {calls} enqueues in {sent - t0:.0f} ms -> {page.evaluate('window.draws')} snapshots drawn, "
          f"final count on screen {float(page.evaluate('window.seenAt')) - sent:.0f} ms after the last one")


def show(what: str, values: list[float], note: str = "") -> None:
    print(f"{what}: median {statistics.median(values):.1f} ms, p95 {percentile(values, 95):.1f} ms, "
          f"max {values[-1]:.1f} ms{note}")


if __name__ == "__main__":
    sys.exit(main())
