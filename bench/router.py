"""The Redis skill router (``routing/``): assignments/s, assignment latency, cost against the backlog.

    .venv/bin/python bench/router.py [--agents 1000] [--calls 10000] [--before main] [--quick] [--help]

Own redis-server (no persistence) on a free loopback port; every call runs sequentially over one redis-py
connection (``single_connection_client=True``, hiredis, as the hotline app). An op is one router script call
(one EVALSHA, one round trip). An assignment is an offer made by the Lua scripts, its latency that of the
router call that returned it. Ceiling: EVALSHA of ``return 0`` (register_script, same keys and leading
arguments), timed once after each scenario router call.
Scenario: agents (3 of 20 skills, levels 1-10; 1-2 of 2 languages) log in over the first simulated minute
while calls arrive (Poisson); offers are answered at once, talk is exponential, wrap-up 0 (end_call frees the
agent and offers it the next waiting call), waiting callers may hang up; the router runs on a simulated clock.
Backlog: N calls wait over the 40 queues; ``--active-agents`` log in (set_agent_state -> offer), then cycle
answer -> end_call (-> next offer); each call offered is replaced in its queue (untimed), so N stays. Each N
has its own hotline (key prefix) in the same Redis and the sizes take turns, in rounds.
``--before REF``: the same runs with the router's Lua scripts as git has them at REF too (only the scripts:
the Python is this tree's), in the same redis-server under hotlines of their own, the two taking turns event
by event (the scenario) and round by round (the backlogs), so that the machine's slower moments hit both
alike; each is measured against its own no-op ceiling; the figures are printed for both, then side by side.
Inside Redis, per assignment: the commands the scripts ran over the scenario and the µs Redis spent in
EVALSHA (INFO commandstats, the setup not counted; the no-ops' few µs included alike in both versions).
"""

# ruff: noqa: E402  (the sys.path fix below has to run before the project's imports)

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import argparse
import heapq
import itertools
import random
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import redis
from redis.utils import HIREDIS_AVAILABLE

from bench.harness import percentile
from bench.router_versions import Figures, ServerWork, compare, export_lua, take_turns
from routing.agents import Agent, AgentRegistry
from routing.config import QueueConfig
from routing.keys import EVENTS_STREAM
from routing.router import CallRequest, Ended, Offer, Router
from routing.scripts import RouterScripts
from store.redis_server import scratch_redis

SKILLS = tuple(f"skill_{chr(ord('a') + i)}" for i in range(20))
LANGUAGES = ("zh-CN", "en-US")
TARGET_RATIO, TARGET_P99_MS, TARGET_FLAT = 0.3, 2.0, 2.0
ROUNDS = 10
R = TypeVar("R")


class SimClock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Meter:
    """Times router calls; each offer a call returns is one assignment with that call's latency.
    With ``noop``, one no-op EVALSHA is timed after every router call (the ceiling)."""

    def __init__(self, noop: Callable[[], object] | None = None) -> None:
        self.calls: dict[str, list[float]] = {}
        self.assigning: dict[str, list[float]] = {}
        self.offers, self.assigning_s, self.noop, self.noop_s = 0, 0.0, noop, 0.0

    def run(self, fn: Callable[..., R], *args: Any) -> R:
        t0 = time.perf_counter()
        out = fn(*args)
        took = time.perf_counter() - t0
        self.calls.setdefault(fn.__name__, []).append(took)
        offers = out.offers if isinstance(out, Ended) else out if isinstance(out, list) else []
        if offers:
            self.assigning.setdefault(fn.__name__, []).extend([took] * len(offers))
            self.offers, self.assigning_s = self.offers + len(offers), self.assigning_s + took
        if self.noop:
            t0 = time.perf_counter()
            self.noop()
            self.noop_s += time.perf_counter() - t0
        return out

    def busy_s(self) -> float:
        return sum(sum(v) for v in self.calls.values())

    def latencies(self) -> list[float]:
        return sorted(itertools.chain.from_iterable(self.assigning.values()))


@contextmanager
def redis_server() -> Iterator[redis.Redis]:
    with tempfile.TemporaryDirectory(prefix="bench-router-") as folder, scratch_redis(Path(folder)) as (url, _):
        client = redis.Redis.from_url(url, single_connection_client=True)
        try:
            yield client
        finally:
            client.close()


def make_agents(rng: random.Random, count: int) -> list[Agent]:
    spoken = (["zh-CN"], ["en-US"], ["zh-CN", "en-US"])
    return [Agent(id=f"a{i:04d}", name=f"Agent {i}", endpoint=f"PJSIP/{1000 + i}",
                  skills={s: rng.randint(1, 10) for s in rng.sample(SKILLS, 3)},
                  languages=rng.choices(spoken, weights=(5, 2, 3))[0]) for i in range(count)]


def new_router(client: redis.Redis, hotline: str, agents: list[Agent], clock: SimClock, min_level: int,
               lua: Path | None = None) -> Router:
    queue = QueueConfig(min_level=min_level, wrap_up=0, lower_level_after=0, overflow_after=0, callback_after=0)
    router = Router(client, hotline=hotline, queues={skill: queue for skill in SKILLS}, clock=clock)
    if lua is not None:  # --before: another version's scripts
        router.scripts = RouterScripts(client, router.prefix, router.events_stream, clock, lua_dir=lua, prune=False)
    router.configure()
    registry = AgentRegistry(router, SKILLS)
    for agent in agents:
        registry.put(agent)  # offline: no offers
    return router


def call_request(rng: random.Random, n: int, skill: str | None = None, language: str | None = None) -> CallRequest:
    return CallRequest(
        call_id=f"c{n:06d}", skill=skill or rng.choice(SKILLS),
        language=language or rng.choices(LANGUAGES, weights=(65, 35))[0], priority=rng.choice((3, 5)),
        channel=f"PJSIP/trunk-{n:06d}", caller="138****5678", ivr_path=({"node": "main", "digits": "1"},),
        intent="inquiry", vip=rng.random() < 0.02)


def scenario(client: redis.Redis, agents: list[Agent], args: argparse.Namespace, meter: Meter,
             lua: Path | None = None, hotline: str = "bench") -> Iterator[None]:
    """Discrete-event run on a simulated clock, timed into ``meter``; yields once set up, then after each event
    (so that two versions can take turns)."""
    rng, clock = random.Random(args.seed), SimClock()
    router = new_router(client, hotline, agents, clock, args.min_level, lua)
    noop, argv = client.register_script("return 0"), [router.prefix, repr(clock.now), router.scripts.today()]
    meter.noop, seq = lambda: noop(keys=[EVENTS_STREAM], args=argv), itertools.count()
    events, at = [(clock.now + rng.uniform(0, 60), next(seq), "login", a.id) for a in agents], clock.now
    for n in range(args.calls):
        at += rng.expovariate(args.load * len(agents) / args.talk)
        events.append((at, next(seq), "arrive", str(n)))
    heapq.heapify(events)
    waiting: set[str] = set()
    yield

    def later(delay: float, kind: str, ref: str) -> None:
        heapq.heappush(events, (clock.now + delay, next(seq), kind, ref))

    def take(offers: list[Offer]) -> None:
        for offer in offers:
            waiting.discard(offer.call_id)
            meter.run(router.answer, offer.call_id, offer.agent_id)
            later(rng.expovariate(1 / args.talk), "hangup", offer.call_id)

    while events:
        clock.now, _, kind, ref = heapq.heappop(events)
        if kind == "arrive":
            request = call_request(rng, int(ref))
            waiting.add(request.call_id)
            later(rng.expovariate(1 / args.patience), "abandon", request.call_id)
            take(meter.run(router.enqueue, request))
        elif kind == "login":
            take(meter.run(router.set_agent_state, ref, "available"))
        elif kind == "hangup":
            take(meter.run(router.end_call, ref, "completed").offers)
        elif kind == "abandon" and ref in waiting:
            waiting.discard(ref)
            meter.run(router.end_call, ref, "abandoned")
        yield


def backlog(client: redis.Redis, agents: list[Agent], size: int, meter: Meter, args: argparse.Namespace,
            lua: Path | None = None, hotline: str = "") -> Iterator[int]:
    """Keeps ``size`` calls waiting in its own hotline; yields the number waiting after each round."""
    rng, clock = random.Random(args.seed + size), SimClock()
    router = new_router(client, hotline or f"backlog{size}", agents, clock, args.min_level, lua)
    queues = [(skill, lang) for skill in SKILLS for lang in LANGUAGES]
    where: dict[str, tuple[str, str]] = {}
    counter, pending = itertools.count(), deque[Offer]()

    def add_call(skill: str, lang: str) -> list[Offer]:
        request = call_request(rng, next(counter), skill, lang)
        where[request.call_id] = (skill, lang)
        clock.now += 0.001
        return router.enqueue(request)

    def take(offers: list[Offer]) -> None:
        for offer in offers:
            pending.append(offer)
            take(add_call(*where.pop(offer.call_id)))  # a new call in the same queue: the backlog stays

    for n in range(size):
        assert not add_call(*queues[n % len(queues)])
    for agent in agents[:args.active_agents]:
        take(meter.run(router.set_agent_state, agent.id, "available"))
    while pending:
        for _ in range(args.backlog_assignments // ROUNDS):
            offer = pending.popleft()  # every end_call offers the agent the next call: never empty
            clock.now += 0.001
            meter.run(router.answer, offer.call_id, offer.agent_id)
            take(meter.run(router.end_call, offer.call_id, "completed").offers)
        yield sum(int(client.zcard(router.key(f"queue:{skill}:{lang}"))) for skill, lang in queues)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}"


def print_calls(meter: Meter) -> None:
    print(f"  {'router call':<16} {'calls':>7} {'offers':>7} {'mean µs':>8} {'p50 µs':>7} {'p99 µs':>7}"
          "   when it made offers: p50 / p99 µs")
    for name, times in sorted(meter.calls.items()):
        times, assigning = sorted(times), sorted(meter.assigning.get(name, []))
        extra = f"{us(percentile(assigning, 50))} / {us(percentile(assigning, 99))}" if assigning else "-"
        print(f"  {name:<16} {len(times):>7,} {len(assigning):>7,} {us(statistics.fmean(times)):>8} "
              f"{us(percentile(times, 50)):>7} {us(percentile(times, 99)):>7}   {extra}")


def target(label: str, value: str, goal: str, ok: bool) -> None:
    print(f"  {label:<44} {value:<44} {goal:<10} target {'met' if ok else 'missed'}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=1000, help="agents (default 1000)")
    p.add_argument("--calls", type=int, default=10_000, help="calls arriving in the scenario (default 10000)")
    p.add_argument("--load", type=float, default=1.0, help="offered load per agent (default 1.0)")
    p.add_argument("--talk", type=float, default=120, help="mean talk time, simulated s (default 120)")
    p.add_argument("--patience", type=float, default=300, help="mean caller patience, simulated s (default 300)")
    p.add_argument("--min-level", type=int, default=1, help="every queue's min_level (default 1: any level)")
    p.add_argument("--backlogs", default="100,1000,10000", help="waiting calls (default 100,1000,10000)")
    p.add_argument("--backlog-assignments", type=int, default=5000, help="timed per backlog (default 5000)")
    p.add_argument("--active-agents", type=int, default=50, help="agents logged in per backlog (default 50)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--before", metavar="REF", help="also run the router scripts of git REF (e.g. main), for comparison")
    p.add_argument("--quick", action="store_true", help="smoke run: 200 agents, 1000 calls, small backlogs")
    args = p.parse_args(argv)
    if args.quick:
        args.agents, args.calls, args.backlogs, args.backlog_assignments = 200, 1000, "100,1000", 300
    return args


def report(meter: Meter, work: ServerWork, backlogs: dict[int, Meter], args: argparse.Namespace) -> Figures:
    ops, busy, lat = sum(map(len, meter.calls.values())), meter.busy_s(), meter.latencies()
    ceiling, rate, assigning_rate = ops / meter.noop_s, meter.offers / busy, meter.offers / meter.assigning_s
    print(f"\nscenario: {args.agents} agents, {len(SKILLS)} skills x {len(LANGUAGES)} languages, {args.calls:,} calls, "
          f"load {args.load}, talk {args.talk:g} s, patience {args.patience:g} s (simulated clock)")
    print_calls(meter)
    print(f"  {meter.offers:,} assignments; {ops:,} router ops ({ops / meter.offers:.2f} per assignment) took "
          f"{busy:.2f} s: {ops / busy:,.0f} ops/s")
    print(f"  inside Redis, per assignment: {work.commands / meter.offers:.1f} commands run by the scripts, "
          f"{work.evalsha_us / meter.offers:,.0f} µs in EVALSHA ({ops / meter.offers:.2f} scripts and as many no-ops)")
    print(f"  no-op EVALSHA ceiling: {ceiling:,.0f} ops/s ({ops:,} calls, one after each router call)")
    print(f"  assignments/s: {rate:,.0f} over all router calls; {assigning_rate:,.0f} over the calls that made "
          "them (enqueue, set_agent_state, end_call)")
    print("\nbacklog: cost per assignment with N calls waiting (the set_agent_state / end_call that made it)")
    print(f"  {'waiting':>8} {'assignments':>11} {'mean µs':>8} {'p50 µs':>7} {'p99 µs':>7} {'cycle µs':>9}")
    means = {}
    for size, m in backlogs.items():
        b_lat = m.latencies()
        means[size] = m.assigning_s / m.offers
        print(f"  {size:>8,} {m.offers:>11,} {us(means[size]):>8} {us(percentile(b_lat, 50)):>7} "
              f"{us(percentile(b_lat, 99)):>7} {us(m.busy_s() / m.offers):>9}")
    print("  (cycle: answer + end_call + set_agent_state time per assignment; refill enqueues untimed)")
    flat, p99 = max(means.values()) / min(means.values()), percentile(lat, 99) * 1e3
    print("\ntargets")
    target("assignments/s, all router calls / ceiling", f"{rate:,.0f} / {ceiling:,.0f} = {rate / ceiling:.2f}",
           f">= {TARGET_RATIO}", rate / ceiling >= TARGET_RATIO)
    target("assignments/s, assigning calls / ceiling",
           f"{assigning_rate:,.0f} / {ceiling:,.0f} = {assigning_rate / ceiling:.2f}", f">= {TARGET_RATIO}",
           assigning_rate / ceiling >= TARGET_RATIO)
    target("p99 assignment latency (scenario)", f"{p99:.2f} ms (p50 {percentile(lat, 50) * 1e3:.2f} ms)",
           f"< {TARGET_P99_MS:g} ms", p99 < TARGET_P99_MS)
    target(f"µs per assignment, {min(means):,} -> {max(means):,} waiting",
           " / ".join(us(v) for v in means.values()) + f", max/min {flat:.2f}", f"<= {TARGET_FLAT:g}x",
           flat <= TARGET_FLAT)
    return Figures(rate / ceiling, assigning_rate / ceiling, percentile(lat, 50) * 1e3, p99, ops / meter.offers,
                   work.commands / meter.offers, busy / meter.offers * 1e6, work.evalsha_us / meter.offers, flat)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    agents = make_agents(random.Random(args.seed), args.agents)
    sizes = [int(n) for n in args.backlogs.split(",")]
    with ExitStack() as stack:
        versions: dict[str, Path | None] = {"": None}
        if args.before:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-router-lua-")))
            versions = {f"before: the scripts of {args.before}": export_lua(args.before, folder),
                        "after: this tree's scripts": None}
        client = stack.enter_context(redis_server())
        print(f"router benchmark: redis-server {client.info('server')['redis_version']} on loopback, one redis-py "
              f"connection (single_connection_client, hiredis {'on' if HIREDIS_AVAILABLE else 'off'}), "
              f"python {sys.version.split()[0]}" + (", the two versions taking turns event by event" if args.before
                                                    else ""))
        meters = {label: Meter() for label in versions}
        runs = [scenario(client, agents, args, meters[label], versions[label], f"bench{i}")
                for i, label in enumerate(versions)]
        for run in runs:
            next(run)  # set up: agents and queues stored (not counted)
        work = dict(zip(versions, take_turns(client, runs), strict=True))
        client.flushall()
        backlogs = {(label, size): Meter() for label in versions for size in sizes}
        rounds = {(label, size): backlog(client, agents, size, backlogs[label, size], args, versions[label],
                                         f"backlog{size}v{i}") for i, label in enumerate(versions) for size in sizes}
        for _ in range(ROUNDS):  # sizes and versions take turns, so that a slower minute of the machine hits all alike
            for (_, size), sized in rounds.items():
                waiting = next(sized)
                assert waiting == size, (waiting, size)
    figures = {}
    for label in versions:
        if label:
            print(f"\n===== {label} =====")
        figures[label] = report(meters[label], work[label], {size: backlogs[label, size] for size in sizes}, args)
    if len(figures) == 2:
        compare(*figures.values())
    return 0


if __name__ == "__main__":
    sys.exit(main())
