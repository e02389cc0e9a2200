"""Router, sessions and events on one redis-server and on a 3-node Redis Cluster, through the hotline's own
clients (``hotline.redis_clients``): what the cluster costs one process, and what several hotlines gain.

    .venv/bin/python bench/redis_modes.py [--calls 5000] [--processes 2] [--quick]

Both deployments run on this machine's loopback, without persistence (the cluster started as the tests
start it: ``tests/test_redis_cluster.py``). Per mode:
- router cycle, one process: a call is enqueued (offered at once to one of 50 available agents), answered
  and ended (wrap-up 0), sequentially; each router call timed;
- sessions: ``SessionStore.save`` of a new call, then ``load``; events: ``EventLog.emit``;
- several hotlines at once: ``--processes`` processes, each its own hotline name (on the cluster, names
  whose hash tags fall on different nodes), each running the router cycle; total router calls/s.
"""

# ruff: noqa: E402  (the sys.path fix below has to run before the project's imports)

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import redis

from calls.sessions import SessionStore
from ivr.session import Session
from routing.agents import Agent, AgentRegistry
from routing.config import QueueConfig
from routing.events import EventLog
from routing.keys import router_prefix
from routing.router import CallRequest, Router
from store.redis_clients import RedisClients
from store.redis_server import scratch_redis
from tests.test_redis_cluster import RedisClusterProcesses

AGENTS = 50
PLAIN = QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, wrap_up=0)


class Timings:
    def __init__(self) -> None:
        self.by_op: dict[str, list[float]] = {}

    def run(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self.by_op.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    def line(self, name: str) -> str:
        times = sorted(self.by_op[name])
        p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
        return (f"{len(times) / sum(times):>9,.0f} /s  p50 {p50 * 1e6:>5,.0f} µs  p99 {p99 * 1e6:>6,.0f} µs  "
                f"({len(times):,} calls)")


def router_cycle(client: redis.Redis, hotline: str, calls: int, timings: Timings) -> None:
    router = Router(client, hotline, {"general": PLAIN}, lease_s=3600)
    router.configure()
    registry = AgentRegistry(router, ["general"])
    for n in range(AGENTS):
        registry.put(Agent(f"a{n}", f"Agent {n}", f"PJSIP/{1000 + n}", {"general": 5}, ["zh-CN"]))
        router.set_agent_state(f"a{n}", "available")
    for n in range(calls):
        call_id = f"{hotline}-{n}"
        (offer,) = timings.run("enqueue", router.enqueue, CallRequest(call_id, "general", "zh-CN", 5, "asterisk"))
        timings.run("answer", router.answer, call_id, offer.agent_id)
        timings.run("end_call", router.end_call, call_id, "completed")


def sessions_and_events(client: redis.Redis, calls: int, spool: Path, timings: Timings) -> None:
    store, events = SessionStore(client, ttl_s=600), EventLog(client, spool)
    for n in range(calls):
        session = Session(f"CA{n:08d}", "twilio", "138****5678", "95555", "hotline", 1, "zh-CN", node="main")
        timings.run("session save", store.save, session, "<Response><Gather/></Response>")
        timings.run("session load", store.load, session.call_id)
        timings.run("event emit", events.emit, "call_step", call_id=session.call_id, node="main")


def _worker(url: str, jobs_url: str, hotline: str, calls: int, start: Any, out: Any) -> None:
    client = RedisClients(url, jobs_url).shared()
    timings = Timings()
    start.wait()
    t0 = time.perf_counter()
    router_cycle(client, hotline, calls, timings)
    out.put((sum(len(v) for v in timings.by_op.values()), time.perf_counter() - t0))


def parallel(url: str, jobs_url: str, names: list[str], calls: int) -> float:
    """Router calls per second over all processes (from the first start to the last finish)."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, jobs_url, name, calls, start, out)) for name in names]
    for proc in procs:
        proc.start()
    time.sleep(2)  # every process imported and connected
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    return sum(ops for ops, _ in results) / max(seconds for _, seconds in results)


def names_on_nodes(cluster: RedisClusterProcesses, count: int) -> list[str]:
    """Hotline names whose hash tags fall on ``count`` different nodes."""
    node, found = cluster.node(0), {}
    for n in range(1000):
        name = f"bank{n}"
        found.setdefault(cluster.node_of_slot(node.execute_command("CLUSTER", "KEYSLOT", router_prefix(name))), name)
        if len(found) == min(count, cluster.size):
            break
    names = list(found.values())
    return (names * count)[:count]


def measure(label: str, url: str, jobs_url: str, names: list[str], args: argparse.Namespace) -> None:
    client = RedisClients(url, jobs_url).shared()
    timings = Timings()
    router_cycle(client, "bench", args.calls, timings)
    with tempfile.TemporaryDirectory() as spool:
        sessions_and_events(client, args.calls, Path(spool), timings)
    print(f"\n{label}")
    for name in timings.by_op:
        print(f"  {name:<14} {timings.line(name)}")
    cycle = sum(len(timings.by_op[op]) for op in ("enqueue", "answer", "end_call"))
    cycle_s = sum(sum(timings.by_op[op]) for op in ("enqueue", "answer", "end_call"))
    print(f"  {'router calls':<14} {cycle / cycle_s:>9,.0f} /s  one process")
    rate = parallel(url, jobs_url, names, args.calls)
    print(f"  {'router calls':<14} {rate:>9,.0f} /s  {len(names)} processes, hotlines {', '.join(names)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=5000, help="calls per measurement (default 5000)")
    p.add_argument("--processes", type=int, default=2, help="hotlines routing at once (default 2)")
    p.add_argument("--quick", action="store_true", help="smoke run: 300 calls")
    args = p.parse_args(argv)
    if args.quick:
        args.calls = 300
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as folder, scratch_redis(Path(folder)) as (url, _):
        version = redis.Redis.from_url(url).info("server")["redis_version"]
        print(f"redis modes: redis-server {version}, {os.cpu_count()} cores, python {sys.version.split()[0]}; "
              f"{args.calls:,} calls per measurement")
        measure("standalone (one redis-server, one locked connection per process)", url, url,
                [f"bank{n}" for n in range(args.processes)], args)
        cluster = RedisClusterProcesses(Path(folder) / "cluster")
        (Path(folder) / "cluster").mkdir()
        try:
            cluster.start()
            measure(f"cluster ({cluster.size} masters, redis-py RedisCluster)", cluster.url, url,
                    names_on_nodes(cluster, args.processes), args)
        finally:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
