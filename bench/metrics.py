"""``GET /metrics`` at 1,000 agents and 5,000 waiting calls: what one Prometheus scrape costs.

    .venv/bin/python bench/metrics.py [--agents 1000] [--calls 5000] [--processes 5] [--ended 7] [--scrapes 200]

Own redis-server (no persistence) and SQLite store in a temporary folder; ``prepare()``; agents over the 5
skills x 2 languages (10 queues) in mixed states and ``--calls`` callers waiting, set up as ``bench/dashboard.py``
does. Multiprocess mode as under ``hotline up``: ``PROMETHEUS_MULTIPROC_DIR`` is a fresh folder and
``--processes`` live processes and ``--ended`` ones (restarted or recycled: folded into the archive files as
``hotline up`` does, ``metrics.ended``) have counted into their own files there first, in turn as a gunicorn
worker (every Twilio webhook kind), a FastAGI process (every node kind) and a worker (calls of both channels by
outcome, queues, offers, waits). Measured over ``--scrapes`` scrapes:
  scrape      GET /metrics through the Flask app (bearer token checked, every process's files merged, the
              router's state read in one Lua call, the stream's lag, RQ's registries), in-process WSGI;
  parts       the same split: counters merged from the files / Redis state collected;
  baseline    GET /healthz through the same app (the request's own overhead), and one Redis PING.
Prints the figures (wall p50, p99, mean in ms; this process's CPU time per call, which Redis's part is not in)
and scrape/baseline ratios; exits 0 whatever they are.
"""

# ruff: noqa: E402  (the sys.path fix below has to run before the project's imports)

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]
# Multiprocess mode is chosen when prometheus_client is imported: name the folder before any project import.
_FOLDER = tempfile.mkdtemp(prefix="hotline-bench-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(_FOLDER) / "metrics")
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir()

import argparse
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack

from bench.dashboard import populate
from bench.harness import percentile, run_until_done
from hotline.app import create_app, prepare
from hotline.metrics_state import SharedState
from hotline.settings import Settings
from metrics import exposition, process_gone
from store.redis_server import scratch_redis

TOKEN = "bench-scrape-token-0123456789"
COUNTING = """
import random, sys, metrics
role = sys.argv[1]
if role == "web":  # a gunicorn worker: Twilio's webhooks, its error boundary
    for step in ("voice", "fallback", "status", "visit_status", "queue_wait", "queue_choice", "agent_connect",
                 "agent_done", "agent_status", "recording", "hold_music"):
        for _ in range(20):
            metrics.STEP_SECONDS.labels("twilio", step).observe(random.random() / 10)
    metrics.MENU_ERRORS.labels("twilio").inc()
elif role == "agi":  # a FastAGI process: engine steps by node type
    for step in ("menu", "input", "service", "queue", "say", "record", "transfer", "hangup", "start"):
        for _ in range(20):
            metrics.STEP_SECONDS.labels("asterisk", step).observe(random.random() / 10)
    metrics.MENU_ERRORS.labels("asterisk").inc()
else:  # a worker: the call events it wrote as records
    for channel in ("twilio", "asterisk"):
        metrics.CALLS_STARTED.labels(channel).inc(random.randint(1, 500))
        for outcome in ("routed", "self_served", "abandoned", "failed", "hangup"):
            metrics.CALLS_ENDED.labels(channel, outcome).inc(random.randint(1, 100))
    for skill in ("general", "inquiry", "loss", "complaint", "survey"):
        for language in ("zh-CN", "en-US"):
            metrics.CALLS_QUEUED.labels(skill, language).inc(random.randint(1, 100))
        metrics.OFFERS.labels(skill).inc(10)
        metrics.OFFERS_ANSWERED.labels(skill).inc(8)
        for _ in range(20):
            metrics.ANSWER_WAIT.labels(skill).observe(random.random() * 60)
    metrics.OFFERS_FAILED.labels("timeout").inc()
    metrics.CALLS_ABANDONED.labels("waiting").inc()
    metrics.RETURN_VISITS.labels("due").inc()
    metrics.RECORD_WRITER_RETRIES.labels("OperationalError").inc()
    metrics.REDIS_RETRIES.labels("ConnectionError").inc()
    metrics.DB_ERRORS.labels("connection").inc()
"""
ROLES = ("web", "agi", "worker")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=5,
                        help="live processes whose counters are merged (web, FastAGI, worker in turn; `hotline up` "
                        "runs 5 by default)")
    parser.add_argument("--ended", type=int, default=7,
                        help="processes that counted and ended (restarts, recycled workers): folded into the archive")
    parser.add_argument("--scrapes", type=int, default=200)
    return run_until_done(run, parser.parse_args())


def run(args: argparse.Namespace, stack: ExitStack) -> None:
    folder = Path(_FOLDER)
    stack.callback(shutil.rmtree, folder, True)
    redis_url, _ = stack.enter_context(scratch_redis(folder))
    settings = Settings(_env_file=None, redis_url=redis_url, database_url=f"sqlite:///{folder / 'hotline.db'}",  # type: ignore[call-arg]
                        data_dir=folder / "data", public_url="http://127.0.0.1", metrics_token=TOKEN)
    hotline = prepare(settings)
    t0 = time.perf_counter()
    states = populate(hotline, args.agents, args.calls)
    for n in range(args.processes + args.ended):
        child = subprocess.Popen([sys.executable, "-c", COUNTING, ROLES[n % 3]], cwd=HERE.parent, env=os.environ)
        assert child.wait() == 0
        if n >= args.processes:
            process_gone(child.pid)
    files = len(list(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db")))
    print(f"set-up {time.perf_counter() - t0:.1f} s: {args.agents} agents {states}, {args.calls} waiting, "
          f"{files} metric files of {args.processes} live processes and {args.ended} ended ones")
    client = create_app(hotline=hotline).test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    reply = client.get("/metrics", headers=auth)
    assert reply.status_code == 200, reply.status_code
    text = reply.get_data(as_text=True)
    waiting = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("hotline_queue_waiting_calls{"))
    print(f"exposition: {len(text.encode()) / 1024:.0f} KiB, {sum(1 for x in text.splitlines() if x[:1] != '#')} "
          f"samples, {waiting:.0f} waiting calls in it")
    state = SharedState(hotline)
    figures = {
        "GET /metrics": _timed(lambda: client.get("/metrics", headers=auth).close(), args.scrapes),
        "  counters merged from files": _timed(exposition, args.scrapes),
        "  Redis state collected": _timed(lambda: list(state.collect()), args.scrapes),
        "baseline GET /healthz": _timed(lambda: client.get("/healthz").close(), args.scrapes),
        "baseline Redis PING": _timed(hotline.redis.ping, args.scrapes),
    }
    for (name, samples), cpu in zip(figures.items(), _CPU, strict=True):
        print(f"{name:30s} p50 {percentile(samples, 50):7.2f} ms  p99 {percentile(samples, 99):7.2f} ms  "
              f"mean {statistics.fmean(samples):7.2f} ms  cpu {cpu:6.2f} ms")
    scrape = statistics.median(figures["GET /metrics"])
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"scrape / GET /healthz: {scrape / statistics.median(figures['baseline GET /healthz']):.1f}x, "
          f"scrape / PING: {scrape / statistics.median(figures['baseline Redis PING']):.0f}x; "
          f"budget 10 ms per scrape: {'met' if percentile(figures['GET /metrics'], 99) < 10 else 'NOT met'} (p99)")


def _timed(action: Callable[[], object], times: int) -> list[float]:
    action()  # warm: scripts loaded, connections open
    samples, cpu = [], time.process_time()
    for _ in range(times):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    _CPU.append((time.process_time() - cpu) / times * 1000)
    return sorted(samples)


_CPU: list[float] = []
"""This process's CPU time per call of each figure (a loaded machine stretches wall time, not this as much)."""


if __name__ == "__main__":
    sys.exit(main())
