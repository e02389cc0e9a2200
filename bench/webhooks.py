"""Twilio webhooks against a real gunicorn on loopback, a bare Flask baseline, and pure engine steps/s.

    .venv/bin/python bench/webhooks.py [--concurrency 50] [--duration 20] [--workers 2] [--streams 2000] [--help]

Starts its own redis-server (no persistence) and a SQLite store in a temporary folder, runs
``prepare()`` once and times pure engine steps; then serves one gunicorn (the production gevent workers) with the
hotline's routes plus ``POST /bench/bare``, a Flask view answering TwiML built once. Client processes
with threads drive full signed calls (welcome -> 1 -> card -> PIN, answered with the balance ->
status callback) back to back and, with the same machinery, bodies and concurrency, the bare view,
alternating in rounds; last, the same calls paced, each caller pausing between steps. Prints the
figures and pass/fail against the targets; exits 0 whatever they are.

``--streams N`` then holds N live pages open (agent consoles, and dashboards for ``--dashboards``; one process of
raw sockets, ``bench/streams.py``) and runs the saturated and the paced calls again beside them, then the paced
calls once more after they closed: the webhooks' p99 with the pages open against the mean of before and after.
``--light-kdf`` seeds the demo cards' PINs with the cheapest scrypt the demo bank accepts (the PIN step's ~30 ms
of scrypt otherwise dominates the call flow's CPU).
"""

# ruff: noqa: E402  (the sys.path fix below has to run before the project's imports)

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# `python bench/webhooks.py` puts bench/ first on sys.path, where this file would shadow the
# ``webhooks`` package the app imports: take bench/ off and put the repository root first.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import argparse
import gc
import itertools
import math
import multiprocessing as mp
import os
import random
import resource
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from queue import Empty
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from admin.access import Access
from bench.harness import child_pids, free_port, percentile, run_until_done, stop, wait_until
from bench.streams import Streams, Tally, log_in
from hotline.app import Hotline, create_app, prepare
from hotline.settings import Settings
from hotline.wsgi_server import serve as serve_web
from ivr import events as ev
from ivr.engine import Engine
from ivr.model import Menu
from ivr.session import Session
from store.redis_server import scratch_redis

AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = "ACbench0123456789abcdef012345678"
CARD, PIN, BALANCE = "6222021234567894", "123456", b"12345.67"
BARE_PATH = "/bench/bare"
BARE_BLUEPRINT = "bench"

TARGET_RATIO = 0.5
TARGET_P99_MS = 15.0
TARGET_ENGINE_STEPS = 50_000

CARDS: list[str] = []
"""--distinct-cards: a card per client thread (the client processes are forks and see it); else every call types
``CARD``."""

SETTINGS_ENV = ("REDIS_URL", "DATABASE_URL", "HOTLINE_DATA_DIR", "TWILIO_AUTH_TOKEN",
                "TWILIO_ACCOUNT_SID", "HOTLINE_PUBLIC_URL")


# -- the server: the hotline app plus a bare route, under gunicorn ---------------------------

def bench_app(settings: Settings) -> Flask:
    """The hotline web app, plus ``POST /bench/bare`` answering TwiML built once (the baseline)."""
    app = create_app(settings)
    response = VoiceResponse()
    gather = response.gather(action="/twilio/voice?seq=0", method="POST", num_digits=1, timeout=6)
    gather.say("您好，欢迎致电客户服务热线。For English, press 9.", language="cmn-CN", voice="Polly.Zhiyu")
    response.redirect("/twilio/voice?seq=0&timeout=1", method="POST")
    twiml = str(response)

    def bare() -> Response:
        return Response(twiml, mimetype="text/xml")

    # Outside the login guard, as Twilio's own blueprint is: a guarded route answers 302 to /login, and every
    # bare request would count as broken (the ratio printed would compare against redirects).
    blueprint = Blueprint(BARE_BLUEPRINT, __name__)
    blueprint.add_url_rule(BARE_PATH, "bare", bare, methods=["POST"])
    app.register_blueprint(blueprint)
    access: Access = app.extensions["access"]
    access.exempt = access.exempt | {BARE_BLUEPRINT}
    return app


def check_bare(target: Target) -> None:
    """The baseline answers what the load expects of it (200 with the TwiML), before anything is timed."""
    raw = _raw_post(target, BARE_PATH, {"CallSid": "CAcheck"}, "")
    reply = exchange(target.address, raw)
    if not reply.startswith(b"HTTP/1.1 200") or b"<Gather" not in reply:
        raise RuntimeError(f"POST {BARE_PATH} answered {reply[:200]!r}, not 200 with the TwiML: the baseline is broken")


def serve(port: int, workers: int, worker_class: str) -> None:
    """The ``--serve`` mode: the process the benchmark starts as its server (settings from the environment)."""
    # gevent: the production worker (hotline.web_gevent), patched after the fork; gthread: HOTLINE_WEB_RUNTIME=threads
    settings = Settings(_env_file=None, web_runtime="gevent" if worker_class == "gevent" else "threads")  # type: ignore[call-arg]
    serve_web(settings, bench_app, bind=f"127.0.0.1:{port}", workers=workers, graceful_timeout=3,
              accesslog=None, errorlog="-", loglevel="warning")


# -- processes the benchmark owns ---------------------------------------------------------------

@contextmanager
def gunicorn_server(env: dict[str, str], port: int, workers: int, log: Path,
                    worker_class: str = "gthread") -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", "--port", str(port), "--workers", str(workers),
             "--worker-class", worker_class],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        try:
            wait_until(lambda: _healthy(port), proc, "gunicorn")
        except RuntimeError:
            sys.stderr.write(log.read_text(errors="replace")[-3000:])
            raise
        yield proc
    finally:
        stop(proc, signal.SIGINT)  # gunicorn: SIGINT is the quick shutdown


def _healthy(port: int) -> bool:
    try:
        reply = exchange(("127.0.0.1", port), f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                         "Connection: close\r\n\r\n".encode())
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.1 200")


def server_env(settings: Settings) -> dict[str, str]:
    """This process's environment without hotline settings, plus the benchmark's own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOTLINE_", "TWILIO_")) and k not in ("REDIS_URL", "DATABASE_URL")}
    values = (settings.redis_url, settings.database_url, str(settings.data_dir), settings.twilio_auth_token,
              settings.twilio_account_sid, settings.public_url)
    env.update({name: str(value) for name, value in zip(SETTINGS_ENV, values, strict=True)})
    return env


def machine_cpu() -> dict[str, float]:
    """CPU seconds of the whole machine so far, from /proc/stat: busy (anything but idle) and steal."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, steal = ticks[3] + ticks[4], ticks[7] if len(ticks) > 7 else 0
    hz = os.sysconf("SC_CLK_TCK")
    return {"machine": (sum(ticks[:8]) - idle - steal) / hz, "steal": steal / hz}


def cpu_seconds(pid: int, with_children: bool = False) -> float:
    """User+system CPU of ``pid`` (and of its live children) from /proc."""
    pids = [pid, *child_pids(pid)] if with_children else [pid]
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# -- the wire: prebuilt raw HTTP requests, one connection each (Connection: close) ---------

STEP_NAMES = ("welcome", "press 1", "card number", "PIN -> balance", "status callback")


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    public_url: str
    auth_token: str

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


@dataclass(frozen=True)
class Request:
    raw: bytes
    status: bytes
    """The status code expected, e.g. ``b"200"``."""
    marker: bytes
    """Bytes the answer must contain."""


def exchange(address: tuple[str, int], raw: bytes) -> bytes:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.connect(address)
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    finally:
        sock.close()
    return b"".join(chunks)


def _raw_post(target: Target, path: str, form: dict[str, str], signature: str) -> bytes:
    body = urlencode(form).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {signature}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


def call_requests(target: Target, validator: RequestValidator, call_sid: str, bare: bool,
                  card: str = CARD) -> list[Request]:
    """The five signed posts of one call, or the same bodies posted to the bare route."""
    base = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": "+8613812345678", "To": "+861095555",
            "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01"}
    steps = (
        ("/twilio/voice", {}, b"200", b"<Gather"),
        ("/twilio/voice?seq=0", {"Digits": "1"}, b"200", b"<Gather"),
        ("/twilio/voice?seq=1", {"Digits": card + "#"}, b"200", b"<Gather"),
        ("/twilio/voice?seq=2", {"Digits": PIN}, b"200", BALANCE),
        ("/twilio/status", {"CallStatus": "completed", "CallDuration": "42"}, b"204", b""),
    )
    out = []
    for path, fields, status, marker in steps:
        form = {**base, **fields}
        signature = validator.compute_signature(target.public_url + path, form)
        if bare:
            path, status, marker = BARE_PATH, b"200", b"<Gather"
        out.append(Request(_raw_post(target, path, form, signature), status, marker))
    return out


# -- the load generator: client processes x threads, each thread one call at a time ----------

@dataclass(frozen=True)
class Load:
    bare: bool
    duration_s: float
    calls: int | None
    """Calls per phase, prebuilt before the start; None: start calls until ``duration_s`` is over."""
    think_s: float = 0.0
    """Mean pause before each step after the first (uniform 0.5-1.5x), as a caller listening to the
    prompt would; threads then start spread over one pause so that they do not arrive in waves."""


@dataclass
class Samples:
    steps: list[int] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    calls: int = 0

    def merge(self, other: Samples) -> None:
        self.steps += other.steps
        self.ends += other.ends
        self.latencies += other.latencies
        self.errors += other.errors
        self.calls += other.calls


@dataclass(frozen=True)
class ClientJob:
    target: Target
    load: Load
    sid_prefix: str
    first_thread: int
    """Index of this process's first thread among all client threads of the phase."""
    calls_per_thread: list[int]
    concurrency: int

    @property
    def threads(self) -> int:
        return len(self.calls_per_thread)


def client_process(job: ClientJob, ready: Any, go: Any, start_at: Any, results: Any) -> None:
    """One client process: prebuild (in --calls mode), say ready, run its threads from the common start."""
    try:
        # Everything inherited from the parent is frozen out of the collector, and the collector
        # is off: a full collection over the parent's heap would stall every thread for ~50 ms.
        gc.freeze()
        gc.disable()
        validator = RequestValidator(job.target.auth_token)
        plans = [_calls_of_thread(job, validator, i) for i in range(job.threads)]
        samples = [Samples() for _ in plans]
        ready.put(os.getpid())
        go.wait()
        start = start_at.value
        cpu0 = _own_cpu()
        threads = [threading.Thread(target=_run_thread, args=(job, i, plan, start, out), daemon=True)
                   for i, (plan, out) in enumerate(zip(plans, samples, strict=True))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        merged = Samples()
        for s in samples:
            merged.merge(s)
        results.put((merged, _own_cpu() - cpu0))
    except KeyboardInterrupt:
        pass


def _calls_of_thread(job: ClientJob, validator: RequestValidator, thread: int) -> Iterator[list[Request]]:
    """The thread's calls: prebuilt now with --calls, else built one by one (outside the timings)."""
    sids = (f"CA{job.sid_prefix}{thread:04x}{n:024x}" for n in itertools.count())
    card = CARDS[(job.first_thread + thread) % len(CARDS)] if CARDS else CARD
    build = (call_requests(job.target, validator, sid, job.load.bare, card) for sid in sids)
    if job.load.calls is None:
        return build
    return iter(list(itertools.islice(build, job.calls_per_thread[thread])))


def _run_thread(job: ClientJob, thread: int, calls: Iterator[list[Request]], start: float, out: Samples) -> None:
    index = job.first_thread + thread
    pauses = random.Random(index)
    think = lambda: job.load.think_s * pauses.uniform(0.5, 1.5)  # noqa: E731
    deadline = start + job.load.duration_s
    start += job.load.think_s * index / job.concurrency
    while time.monotonic() < start:
        time.sleep(0.0005)
    for requests in calls:
        if job.load.calls is None and time.monotonic() >= deadline:
            return
        out.calls += 1
        _one_call(job.target.address, requests, think if job.load.think_s else None, out)


def _one_call(address: tuple[str, int], requests: list[Request], think: Callable[[], float] | None,
              out: Samples) -> None:
    for step, req in enumerate(requests):
        if think and step:
            time.sleep(think())
        t0 = time.monotonic()
        try:
            reply = exchange(address, req.raw)
        except OSError as exc:
            reply = repr(exc).encode()
        t1 = time.monotonic()
        out.steps.append(step)
        out.ends.append(t1)
        out.latencies.append(t1 - t0)
        if reply[9:12] != req.status or req.marker not in reply:
            out.errors.append(f"{STEP_NAMES[step]}: {reply[:400]!r}")
            return  # the call is broken: do not drive its later steps


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- one phase: run the clients, then cut the samples to the timed window ----------------------

@dataclass
class Phase:
    name: str
    load: Load
    concurrency: int
    window_s: float
    samples: Samples
    requests_total: int
    cpu: dict[str, float]
    """CPU seconds spent during the phase: client processes, gunicorn, redis-server, the machine."""
    rounds: int = 1


def merge_phases(phases: list[Phase]) -> Phase:
    """Rounds of the same phase as one: samples pooled, windows and CPU added up."""
    samples = Samples()
    for phase in phases:
        samples.merge(phase.samples)
    first = phases[0]
    return Phase(first.name, first.load, first.concurrency, sum(p.window_s for p in phases), samples,
                 sum(p.requests_total for p in phases), {k: sum(p.cpu[k] for p in phases) for k in first.cpu},
                 len(phases))


@dataclass(frozen=True)
class Servers:
    target: Target
    gunicorn_pid: int
    redis_pid: int


_phase_ids = itertools.count(1)


def run_phase(name: str, servers: Servers, load: Load, concurrency: int, procs: int) -> Phase:
    ctx = mp.get_context("fork")
    ready, results, go, start_at = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    jobs = _split(servers.target, load, concurrency, procs, next(_phase_ids))
    workers = [ctx.Process(target=client_process, args=(job, ready, go, start_at, results), daemon=True)
               for job in jobs]
    try:
        for w in workers:
            w.start()
        _collect(ready, workers)
        cpu0 = _server_cpu(servers)
        start_at.value = start = time.monotonic() + 0.05
        go.set()
        outcome = _collect(results, workers)
        cpu = {k: v - cpu0[k] for k, v in _server_cpu(servers).items()}
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
            w.join()
    merged = Samples()
    for samples, _ in outcome:
        merged.merge(samples)
    cpu["client"] = sum(c for _, c in outcome)
    return _cut(name, load, concurrency, start, merged, cpu)


def _collect(queue: Any, workers: list[Any]) -> list[Any]:
    """One message from each client process; raise if one died instead of sending it."""
    out: list[Any] = []
    while len(out) < len(workers):
        try:
            out.append(queue.get(timeout=0.5))
        except Empty:
            dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a client process died (exit status {dead[0]})") from None
    return out


def _split(target: Target, load: Load, concurrency: int, procs: int, phase: int) -> list[ClientJob]:
    procs = max(1, min(procs, concurrency))
    per_proc = [concurrency // procs + (i < concurrency % procs) for i in range(procs)]
    total_calls = load.calls or 0
    per_thread = [total_calls // concurrency + (i < total_calls % concurrency) for i in range(concurrency)]
    jobs, first = [], 0
    for i, threads in enumerate(per_proc):
        jobs.append(ClientJob(target, load, f"{phase:02x}{i:02x}", first, per_thread[first:first + threads],
                              concurrency))
        first += threads
    return jobs


def _server_cpu(servers: Servers) -> dict[str, float]:
    return {"gunicorn": cpu_seconds(servers.gunicorn_pid, with_children=True),
            "redis": cpu_seconds(servers.redis_pid), **machine_cpu(), "wall": time.monotonic()}


def _cut(name: str, load: Load, concurrency: int, start: float, all_: Samples, cpu: dict[str, float]) -> Phase:
    """With --duration keep the requests that ended inside the window; with --calls keep them all."""
    if load.calls is None:
        end = start + load.duration_s
    else:
        end = max(all_.ends, default=start)
    kept = Samples(errors=all_.errors, calls=all_.calls)
    for step, t_end, latency in zip(all_.steps, all_.ends, all_.latencies, strict=True):
        if t_end <= end:
            kept.steps.append(step)
            kept.ends.append(t_end)
            kept.latencies.append(latency)
    return Phase(name, load, concurrency, max(end - start, 1e-9), kept, len(all_.steps), cpu)


# -- figures -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    label: str
    count: int
    rate: float
    p50_ms: float
    p99_ms: float


def rows(phase: Phase, per_step: bool) -> list[Row]:
    s = phase.samples
    groups: list[tuple[str, list[float]]] = []
    if per_step:
        for i, step in enumerate(STEP_NAMES):
            groups.append((step, [lat for st, lat in zip(s.steps, s.latencies, strict=True) if st == i]))
    groups.append(("all requests", list(s.latencies)))
    out = []
    for label, lats in groups:
        lats.sort()
        out.append(Row(label, len(lats), len(lats) / phase.window_s, percentile(lats, 50) * 1e3,
                       percentile(lats, 99) * 1e3))
    return out


def print_phase(phase: Phase, per_step: bool) -> list[Row]:
    load = phase.load
    each = f"{load.calls} calls" if load.calls is not None else f"{load.duration_s:g} s"
    how = f"{phase.rounds} rounds of {each}" if phase.rounds > 1 else each
    pause = f"mean pause {load.think_s * 1e3:.0f} ms between steps" if load.think_s else "no pause between steps"
    print(f"\n{phase.name}\n  {phase.concurrency} concurrent clients, {how}, {pause}: "
          f"{phase.samples.calls} calls, {len(phase.samples.latencies)} requests in {phase.window_s:.1f} s")
    print(f"  {'step':<18} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    table = rows(phase, per_step)
    for row in table:
        print(f"  {row.label:<18} {row.count:>9} {row.rate:>9.0f} {row.p50_ms:>8.2f} {row.p99_ms:>8.2f}")
    n, cpu = max(phase.requests_total, 1), phase.cpu
    print(f"  CPU per request: gunicorn {cpu['gunicorn'] / n * 1e6:.0f} us, redis-server "
          f"{cpu['redis'] / n * 1e6:.0f} us, client {cpu['client'] / n * 1e6:.0f} us; "
          f"machine busy {cpu['machine'] / cpu['wall']:.2f} of {os.cpu_count()} cores "
          f"(steal {cpu['steal'] / cpu['wall']:.2f})")
    if phase.samples.errors:
        print(f"  ERRORS: {len(phase.samples.errors)} calls broke; first: {phase.samples.errors[0]}")
    return table


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# -- pure engine steps ----------------------------------------------------------------------------

def engine_cases(engine: Engine, menu: Menu) -> list[tuple[str, Callable[[], object]]]:
    """Engine steps on the default menu that call no service (so no SQL), each from a fixed session."""
    call = ev.CallStarted("CAengine", "+8613812345678", "+861095555", "twilio")
    at_main, _ = engine.start(menu, call)
    at_card, _ = engine.step(menu, at_main, ev.Digits("1"))
    assert at_main.node == "main" and at_card.node == "inquiry_card", (at_main.node, at_card.node)
    checks: list[tuple[str, Callable[[], tuple[Session, list]], str]] = [
        ("start: welcome -> main menu", lambda: engine.start(menu, call), "main"),
        ("main, key 9: language -> main", lambda: engine.step(menu, at_main, ev.Digits("9")), "main"),
        ("main, key 7: invalid, reprompt", lambda: engine.step(menu, at_main, ev.Digits("7")), "main"),
        ("main, no input: reprompt", lambda: engine.step(menu, at_main, ev.Timeout()), "main"),
        ("main, key 1 -> card prompt", lambda: engine.step(menu, at_main, ev.Digits("1")), "inquiry_card"),
        ("card fails Luhn: reprompt",
         lambda: engine.step(menu, at_card, ev.Digits(CARD[:-1] + "0#")), "inquiry_card"),
    ]
    for label, fn, node in checks:
        session, actions = fn()
        assert session.node == node and actions and not session.ended, label
    return [(label, fn) for label, fn, _ in checks]


def steps_per_second(fn: Callable[[], object], seconds: float) -> float:
    done, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        for _ in range(500):
            fn()
        done += 500
    return done / elapsed


def bench_engine(hotline: Hotline, seconds: float) -> float:
    menu = hotline.menus.live(hotline.settings.menu_name)
    cases = engine_cases(hotline.engine, menu)
    print(f"\npure engine, one thread on one core: Engine.start/Engine.step on the default menu "
          f"(v{menu.version}), {seconds:g} s each")
    print("  timed: steps that call no service (no SQL, no Redis, no TwiML rendering); each from the same")
    print("  stored session, as a webhook would load it; the card and PIN steps (SQL lookups) are not timed here")
    for label, fn in cases:
        print(f"  {label:<34} {steps_per_second(fn, seconds):>10,.0f} steps/s")
    fns = [fn for _, fn in cases]
    mix = itertools.cycle(fns)
    rate = steps_per_second(lambda: next(mix)(), seconds)
    print(f"  {'the six above, round robin':<34} {rate:>10,.0f} steps/s")
    return rate


# -- main ------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", "--calls-concurrency", type=int, default=50,
                   help="concurrent calls (client threads), also for the bare baseline (default 50)")
    p.add_argument("--duration", type=float, default=20,
                   help="seconds of bare endpoint and as many of call flow, saturated (default 20)")
    p.add_argument("--rounds", type=int, default=2,
                   help="split --duration into rounds alternating bare and call flow (default 2)")
    p.add_argument("--paced-duration", type=float, default=15, help="seconds of the paced phase (default 15)")
    p.add_argument("--calls", type=int, help="a fixed number of calls per phase instead of --duration")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--worker-class", choices=("gthread", "gevent"), default="gevent",
                   help="gunicorn's worker class (default gevent, as production; gthread: HOTLINE_WEB_RUNTIME=threads)")
    p.add_argument("--streams", type=int, default=0,
                   help="then hold this many live pages open and run the calls again beside them (e.g. 2000)")
    p.add_argument("--dashboards", type=float, default=0.05,
                   help="the share of --streams that are dashboards (the rest agent consoles; default 0.05)")
    p.add_argument("--agents", type=int, default=100, help="agents whose consoles --streams opens (default 100)")
    p.add_argument("--dashboard-refresh", type=float, default=None,
                   help="HOTLINE_DASHBOARD_REFRESH_SECONDS of the server (default: the hotline's, 1 s; 0.2: as "
                        "before 2026-12-07)")
    p.add_argument("--stream-cycles", type=int, default=2,
                   help="--streams: open, paced calls, close, paced calls; this many times (default 2)")
    p.add_argument("--distinct-cards", action="store_true",
                   help="a card per caller: PIN checks of one card wait for each other (5 at a time), not for others'")
    p.add_argument("--light-kdf", action="store_true",
                   help="seed the PINs with the cheapest scrypt the demo bank accepts (~0.6 ms a check, not ~30 ms)")
    p.add_argument("--client-procs", type=int, default=2, help="client processes (default 2)")
    p.add_argument("--paced-load", type=float, default=0.4,
                   help="the paced phase offers this fraction of the measured call-flow throughput "
                        "(default 0.4); 0 skips the paced phase")
    p.add_argument("--think-ms", type=float, default=None,
                   help="mean pause between steps in the paced phase instead of --paced-load")
    p.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured calls first (default 2)")
    p.add_argument("--engine-seconds", type=float, default=1, help="seconds per engine case (default 1)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def paced_think_s(calls_phase: Phase, concurrency: int, args: argparse.Namespace) -> float:
    """The mean pause that offers ``--paced-load`` of the measured call-flow throughput, or ``--think-ms``."""
    if args.think_ms is not None:
        return float(args.think_ms) / 1e3
    capacity = len(calls_phase.samples.latencies) / calls_phase.window_s
    return concurrency / (args.paced_load * capacity) if capacity and args.paced_load > 0 else 0.0


BARE_TITLE = "bare Flask endpoint (baseline): POST /bench/bare answering fixed TwiML, the same request bodies"
CALLS_TITLE = "call flow, saturated: signed calls back to back (welcome, 1, card, PIN -> balance, status)"
PACED_TITLE = "call flow, paced: the same calls, each caller pausing between steps"


def start_servers(stack: ExitStack, light_kdf: bool = False, cards: int = 0) -> tuple[Hotline, Servers, Path]:
    """redis-server, the SQLite store and ``prepare()``; gunicorn (pid 0 until then) by ``serve_http``."""
    if light_kdf:  # the stored hash carries its parameters: the server's checks then cost as little
        import bank.card_hashes

        bank.card_hashes.SCRYPT_LOG2_N, bank.card_hashes.SCRYPT_R = 10, 1
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hotline-bench-")))
    (tmp / "redis").mkdir()
    redis_url, redis_proc = stack.enter_context(scratch_redis(tmp / "redis"))
    port = free_port()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, redis_url=redis_url, database_url=f"sqlite:///{tmp / 'hotline.db'}",
        data_dir=tmp / "data", twilio_auth_token=AUTH_TOKEN, twilio_account_sid=ACCOUNT_SID,
        public_url=f"http://127.0.0.1:{port}",
    )
    hotline = prepare(settings)
    if cards:  # one per client thread, the demo card's balance: a card's PIN checks never wait for each other
        from decimal import Decimal

        from bank.core_banking import DemoBank, DemoCardSeed
        from bench.fastagi import card_numbers

        assert isinstance(hotline.bank, DemoBank)
        CARDS[:] = card_numbers(cards)
        hotline.bank.seed(tuple(DemoCardSeed(number, PIN, "000000", Decimal(BALANCE.decode())) for number in CARDS))
    servers = Servers(Target("127.0.0.1", port, settings.public_url, AUTH_TOKEN), 0, redis_proc.pid)
    return hotline, servers, tmp


def serve_http(args: argparse.Namespace, stack: ExitStack, hotline: Hotline, servers: Servers, tmp: Path) -> Servers:
    hotline.redis.close()  # the workers build their own clients; this process needs none any more
    hotline.sql.kw["bind"].dispose()
    port = servers.target.port
    env = server_env(hotline.settings)
    if args.streams:  # every agent's consoles (and the supervisors' dashboards) in one session each
        env["HOTLINE_LIVE_STREAMS_PER_PERSON"] = str(args.streams)
    if args.dashboard_refresh is not None:
        env["HOTLINE_DASHBOARD_REFRESH_SECONDS"] = str(args.dashboard_refresh)
    proc = stack.enter_context(gunicorn_server(env, port, args.workers, tmp / "gunicorn.log", args.worker_class))
    check_bare(servers.target)
    built = "all built and signed before the start" if args.calls else \
        "a call's five built and signed just before it starts, outside the timings"
    print(f"\nserver: gunicorn {args.workers} {args.worker_class} workers on 127.0.0.1:{port} (access log off), "
          f"SQLite, redis-server without persistence\nclient: {args.client_procs} processes x threads; "
          f"raw HTTP requests ({built}); one TCP connection per request, each sent with Connection: close")
    return Servers(servers.target, proc.pid, servers.redis_pid)


def compare(args: argparse.Namespace, servers: Servers) -> tuple[Phase, Phase]:
    """The bare endpoint and the call flow, alternating over ``--rounds`` so drift hits both alike."""
    n, procs, rounds = args.concurrency, args.client_procs, max(1, args.rounds)
    if args.warmup:
        run_phase("warm-up", servers, Load(bare=False, duration_s=args.warmup, calls=None), n, procs)
        run_phase("warm-up", servers, Load(bare=True, duration_s=args.warmup / 2, calls=None), n, procs)
    calls_each = max(1, args.calls // rounds) if args.calls else None
    bare_load = Load(bare=True, duration_s=args.duration / rounds, calls=calls_each)
    call_load = Load(bare=False, duration_s=args.duration / rounds, calls=calls_each)
    bare_runs, call_runs = [], []
    for _ in range(rounds):
        bare_runs.append(run_phase(BARE_TITLE, servers, bare_load, n, procs))
        call_runs.append(run_phase(CALLS_TITLE, servers, call_load, n, procs))
    return merge_phases(bare_runs), merge_phases(call_runs)


def paced(args: argparse.Namespace, servers: Servers, calls: Phase) -> Phase | None:
    think = paced_think_s(calls, args.concurrency, args)
    if think <= 0:
        return None
    load = Load(bare=False, duration_s=args.paced_duration, calls=args.calls, think_s=think)
    return run_phase(PACED_TITLE, servers, load, args.concurrency, args.client_procs)


def print_targets(engine_rate: float, bare: list[Row], calls: list[Row], paced: tuple[Phase, list[Row]] | None,
                  n: int) -> None:
    ratio = calls[-1].rate / bare[-1].rate if bare[-1].rate else math.nan
    print("\ntargets")
    _target("pure engine, one core (no-SQL steps)", f"{engine_rate:,.0f} steps/s",
            f">= {TARGET_ENGINE_STEPS:,}/s", engine_rate >= TARGET_ENGINE_STEPS)
    _target("call flow / bare throughput", f"{calls[-1].rate:.0f} / {bare[-1].rate:.0f} req/s = {ratio:.2f}",
            f">= {TARGET_RATIO}", ratio >= TARGET_RATIO)
    if paced is not None:
        phase, table = paced
        offered = len(phase.samples.latencies) / phase.window_s
        slow = sum(lat * 1e3 >= TARGET_P99_MS for lat in phase.samples.latencies)
        _target(f"p99, {n} calls paced ({offered:.0f} req/s)", _p99s(table), f"< {TARGET_P99_MS:g} ms",
                _worst_p99(table) < TARGET_P99_MS)
        print(f"    {slow} of {len(phase.samples.latencies)} paced requests took {TARGET_P99_MS:g} ms or more")
    _target(f"p99, {n} calls back to back", _p99s(calls), f"< {TARGET_P99_MS:g} ms",
            _worst_p99(calls) < TARGET_P99_MS)
    in_flight_ms = n / calls[-1].rate * 1e3 if calls[-1].rate else math.nan
    print(f"    back to back, {n} requests are always in flight for {calls[-1].rate:.0f} req/s: by Little's law "
          f"the mean latency is {in_flight_ms:.0f} ms, mostly queueing in front of the workers")


def _target(label: str, value: str, goal: str, ok: bool) -> None:
    print(f"  {label:<38} {value:<50} {goal:<11} {verdict(ok)}")


def _worst_p99(table: list[Row]) -> float:
    return max(row.p99_ms for row in table[:-1] or table)


def _p99s(table: list[Row]) -> str:
    worst = max(table[:-1] or table, key=lambda row: row.p99_ms)
    return f"{table[-1].p99_ms:.1f} ms all steps, {worst.p99_ms:.1f} ms worst ({worst.label})"


def run(args: argparse.Namespace, stack: ExitStack) -> None:
    print(f"hotline webhook benchmark: {os.cpu_count()} CPUs shared by gunicorn, redis-server and the client; "
          f"python {sys.version.split()[0]}")
    print("PIN checks: " + ("the cheapest scrypt the demo bank accepts, 2^10 r=1 (--light-kdf)" if args.light_kdf
                            else "the demo bank's production scrypt (2^13 r=8, ~30 ms of CPU each)"))
    hotline, servers, tmp = start_servers(stack, args.light_kdf, args.concurrency if args.distinct_cards else 0)
    print("cards: " + (f"one per caller ({args.concurrency}, --distinct-cards)" if args.distinct_cards else
                       "every caller types the one demo card (its PIN checks pass its gate 5 at a time)"))
    engine_rate = bench_engine(hotline, args.engine_seconds)
    people = staff_for_streams(hotline, args) if args.streams else []
    servers = serve_http(args, stack, hotline, servers, tmp)
    bare, calls = compare(args, servers)
    bare_rows = print_phase(bare, per_step=False)
    call_rows = print_phase(calls, per_step=True)
    slow = paced(args, servers, calls)
    paced_rows = (slow, print_phase(slow, per_step=True)) if slow is not None else None
    print_targets(engine_rate, bare_rows, call_rows, paced_rows, args.concurrency)
    if args.streams:
        with_streams(args, servers, people, calls, slow)


# -- live pages open beside the webhooks (--streams) ----------------------------------------------

STREAMS_PASSWORD = "bench-streams-password-0123"
TARGET_STREAM_MOVE = 0.20


def staff_for_streams(hotline: Hotline, args: argparse.Namespace) -> list[tuple[str, str]]:
    """``--agents`` agents (not ready: the bench's calls never queue) with a login each, and two supervisors;
    the (path, person) of every page ``--streams`` opens."""
    from routing.agents import Agent

    dashboards = round(args.streams * args.dashboards)
    for i in range(args.agents):
        agent_id = f"bench{i:04d}"
        hotline.agents.put(Agent(id=agent_id, name=agent_id, endpoint=f"PJSIP/{agent_id}", skills={"general": 5},
                                 languages=["zh-CN"]))
        hotline.router.set_agent_state(agent_id, "not_ready")
        hotline.accounts.add(agent_id, "agent", STREAMS_PASSWORD, agent_id)
    for name in ("benchsup0", "benchsup1"):
        hotline.accounts.add(name, "supervisor", STREAMS_PASSWORD)
    pages = [("/api/live/stream", f"benchsup{i % 2}") for i in range(dashboards)]
    pages += [("/api/agent/stream", f"bench{i % args.agents:04d}") for i in range(args.streams - dashboards)]
    return pages


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def with_streams(args: argparse.Namespace, servers: Servers, people: list[tuple[str, str]], calls: Phase,
                 paced_before: Phase | None) -> None:
    """``--stream-cycles`` times: open the pages, run the paced calls beside them, close them, run the paced calls
    again; the first time also the saturated calls beside them. The p99 beside the pages is compared with the p99
    of the phases without them (before the first cycle and after each), pooled, so that drift hits both alike."""
    target = servers.target
    base = f"http://{target.host}:{target.port}"
    cookies = {name: log_in(base, name, STREAMS_PASSWORD) for name in sorted({name for _, name in people})}
    pages = [(path, cookies[name]) for path, name in people]
    workers = child_pids(servers.gunicorn_pid)
    n, procs = args.concurrency, args.client_procs
    think = paced_before.load.think_s if paced_before is not None else paced_think_s(calls, n, args)
    paced_load = Load(bare=False, duration_s=args.paced_duration, calls=None, think_s=think)
    without = [paced_before] if paced_before is not None else []
    beside: list[Phase] = []
    saturated: tuple[Phase, list[Row]] | None = None
    for cycle in range(max(1, args.stream_cycles)):
        rss_before = rss_kb(workers)
        threads_before = sum(len(os.listdir(f"/proc/{pid}/task")) for pid in workers)
        began = time.monotonic()
        streams = Streams(target.host, target.port, pages)
        opened = streams.wait_open(120)
        took = time.monotonic() - began
        time.sleep(2)  # the first snapshots sent, the workers' heaps settled
        if cycle == 0:
            _describe_pages(args, people, workers, opened, took, rss_before, threads_before)
            cpu0, holder0, t0 = cpu_seconds(servers.gunicorn_pid, True), cpu_seconds(streams.proc.pid or 0), \
                time.monotonic()
            time.sleep(5)
            idle = time.monotonic() - t0
            server_share = (cpu_seconds(servers.gunicorn_pid, True) - cpu0) / idle
            print(f"  the pages open, no calls, {idle:.0f} s: gunicorn {server_share:.1%} of a core, the pages' holder "
                  f"(the browsers) {(cpu_seconds(streams.proc.pid or 0) - holder0) / idle:.1%}")
            load = Load(bare=False, duration_s=args.duration / max(1, args.rounds), calls=None)
            phase = run_phase(CALLS_TITLE + f", beside {opened.open} open pages", servers, load, n, procs)
            saturated = (phase, print_phase(phase, per_step=True))
        holder0, t0 = cpu_seconds(streams.proc.pid or 0), time.monotonic()
        beside.append(run_phase(PACED_TITLE + f", beside {opened.open} open pages", servers, paced_load, n, procs))
        holder_share = (cpu_seconds(streams.proc.pid or 0) - holder0) / (time.monotonic() - t0)
        during = streams.stop()
        without.append(run_phase(PACED_TITLE + ", without pages", servers, paced_load, n, procs))
        print(f"  cycle {cycle + 1}: {opened.open} pages open; paced p99 beside them {_all_p99(beside[-1]):.1f} ms, "
              f"after they closed {_all_p99(without[-1]):.1f} ms; the pages got {during.frames} frames, "
              f"{during.dropped} streams ended early; their holder used {holder_share:.0%} of a core")
    assert saturated is not None
    pooled_beside, pooled_without = merge_phases(beside), merge_phases(without)
    pooled_beside.name = PACED_TITLE + f", beside {args.streams} open pages ({len(beside)} phases pooled)"
    pooled_without.name = PACED_TITLE + f", without pages ({len(without)} phases pooled)"
    print_phase(pooled_without, per_step=True)
    print_phase(pooled_beside, per_step=True)
    print_stream_targets(calls, saturated, pooled_without, pooled_beside, args.streams)


def _describe_pages(args: argparse.Namespace, people: list[tuple[str, str]], workers: list[int], opened: Tally,
                    took: float, rss_before: int, threads_before: int) -> None:
    rss_after = rss_kb(workers)
    threads_after = sum(len(os.listdir(f"/proc/{pid}/task")) for pid in workers)
    dashboards = sum(path == "/api/live/stream" for path, _ in people)
    print(f"\n{args.streams} live pages ({dashboards} dashboards, {args.streams - dashboards} agent consoles of "
          f"{args.agents} agents) on {len(workers)} {args.worker_class} workers: {opened.open} open in {took:.1f} s "
          f"(refused on the way: {opened.refused_503} x 503, {opened.refused_429} x 429, retried)")
    per_page = (rss_after - rss_before) / max(opened.open, 1)
    print(f"  workers' memory {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB: {per_page:.0f} KB per open page; "
          f"threads {threads_before} -> {threads_after}")


def _all_p99(phase: Phase) -> float:
    return rows(phase, per_step=False)[-1].p99_ms


def print_stream_targets(calls: Phase, saturated: tuple[Phase, list[Row]], without: Phase, beside: Phase,
                         streams: int) -> None:
    print("\ntargets with live pages open")
    phase, table = saturated
    rate_without = len(calls.samples.latencies) / calls.window_s
    rate_with = len(phase.samples.latencies) / phase.window_s
    print(f"  call flow back to back: {rate_with:.0f} req/s beside the pages against {rate_without:.0f} without "
          f"({rate_with / rate_without:.2f}x); p99 {table[-1].p99_ms:.1f} against {_all_p99(calls):.1f} ms")
    moved = _all_p99(beside) / _all_p99(without) - 1
    _target(f"paced p99 beside {streams} pages", f"{_all_p99(beside):.1f} ms against {_all_p99(without):.1f} ms "
            f"without: {moved:+.0%}", f"< +{TARGET_STREAM_MOVE:.0%}", moved < TARGET_STREAM_MOVE)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args.port, args.workers, args.worker_class)
        return 0
    return run_until_done(run, args)


if __name__ == "__main__":
    sys.exit(main())
