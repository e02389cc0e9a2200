"""Not a timing: checks that this tree's router scripts do what an older version's did (bench/router.py's speed
work must not change what the router means).

    .venv/bin/python bench/router_equivalence.py --against caf11e7 [--seeds 0-20] [--steps 400]

Two hotlines in one scratch redis-server, one with the router scripts of git REF (whole, as REF ran them), one
with this tree's, on the same simulated clock; every seed draws random agents (skills, levels, languages),
queue settings (strategies, floors, escalations, offer timeouts, wrap-ups) and operations (callers queued,
agents' states and skills changed, offers answered, accepted or rejected, calls ended, transferred, left for
a callback, the reconciler run, time moved on), runs each on both, and requires the same reply and, after
every step, the same keys: hashes, sorted sets with their scores, sets, lists, and the events' fields. The
offer notices (``notify:``) are left out: they expire in real time. Exits 1 at the first difference.
"""

# ruff: noqa: E402  (the sys.path fix below has to run before the project's imports)

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import argparse
import collections
import random
import tempfile
from typing import Any

import redis

from bench.router import SimClock, redis_server
from bench.router_versions import export_lua
from routing.agents import Agent, AgentRegistry
from routing.config import QueueConfig
from routing.exceptions import RouterError
from routing.router import CallRequest, Router
from routing.scripts import RouterScripts

SKILLS = ("loss", "complaint", "inquiry", "survey", "general")
LANGUAGES = ("zh-CN", "en-US")
OPERATIONS = (["enqueue"] * 3 + ["state"] * 2 + ["answer"] * 3 + ["end"] * 3 + ["tick"] * 2 + ["advance"] * 2
              + ["transfer", "callback", "put", "accept", "reject"])


def keys_of(client: redis.Redis, router: Router) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pattern = router.prefix.replace("{", "[{]").replace("}", "[}]") + "*"
    for raw in client.scan_iter(match=pattern, count=1000):
        key = _text(raw)[len(router.prefix):]
        if key.startswith("notify:"):
            continue
        kind = _text(client.type(raw))
        if kind == "hash":
            out[key] = client.hgetall(raw)
        elif kind == "zset":
            out[key] = client.zrange(raw, 0, -1, withscores=True)
        elif kind == "set":
            out[key] = sorted(client.smembers(raw))
        elif kind == "list":
            out[key] = client.lrange(raw, 0, -1)
        elif kind == "stream":  # the events: their fields (the ids are the server's clock)
            out[key] = [fields for _, fields in client.xrange(raw) or []]
        else:
            out[key] = client.get(raw)
    return out


def random_agent(rng: random.Random, agent_id: str) -> Agent:
    return Agent(agent_id, agent_id.upper(), f"PJSIP/{agent_id}",
                 {s: rng.randint(1, 10) for s in rng.sample(SKILLS, rng.randint(1, 3))},
                 rng.sample(LANGUAGES, rng.randint(1, 2)))


def run(client: redis.Redis, old_lua: Path, seed: int, steps: int, seen: collections.Counter[str]) -> str | None:
    """One seed; returns the first difference, or None."""
    rng, clock = random.Random(seed), SimClock()
    queues = {skill: QueueConfig(
        strategy=rng.choice(["longest_idle", "most_skilled", "fewest_calls", "round_robin"]),
        min_level=rng.choice([1, 1, 3, 6]), lower_level_after=rng.choice([0, 5, 20]),
        overflow_after=rng.choice([0, 10, 30]), callback_after=rng.choice([0, 0, 40]),
        offer_timeout=rng.choice([5, 20]), wrap_up=rng.choice([0, 0, 3])) for skill in SKILLS}
    lease = rng.choice([60, 3600])
    routers = [Router(client, hotline=f"old{seed}", queues=queues, clock=clock, lease_s=lease),
               Router(client, hotline=f"new{seed}", queues=queues, clock=clock, lease_s=lease)]
    routers[0].scripts = RouterScripts(client, routers[0].prefix, routers[0].events_stream, clock,
                                       lua_dir=old_lua, prune=False)
    for router in routers:
        router.configure()
    agents = [random_agent(rng, f"a{i}") for i in range(rng.randint(3, 12))]
    for router in routers:
        for agent in agents:
            AgentRegistry(router, SKILLS).put(agent)
    calls: list[str] = []

    def pick(state: bytes, share: float) -> str:
        if rng.random() < share:
            found = [c for c in calls if client.hget(routers[0].key(f"call:{c}"), "state") == state]
            if found:
                return rng.choice(found)
        return rng.choice(calls)

    for step in range(steps):
        op = rng.choice(OPERATIONS if rng.random() < 0.97 else ["reject"])
        if op == "advance":
            clock.now += rng.choice([0.5, 1, 3, 10, 30])
            continue
        if op in ("answer", "end", "transfer", "callback", "accept", "reject") and not calls:
            continue
        name, args, kwargs = op, (), {}  # type: tuple[str, tuple[Any, ...], dict[str, Any]]
        if op == "enqueue":
            calls.append(f"c{len(calls) + 1}")
            args = (CallRequest(calls[-1], rng.choice(SKILLS), rng.choice(LANGUAGES), rng.randint(0, 9), "x",
                                vip=rng.random() < 0.1),)
        elif op == "state":
            name = "set_agent_state"
            args = (rng.choice(agents).id, rng.choice(["available"] * 3 + ["not_ready", "offline"]),
                    rng.choice(["", "break"]))
        elif op in ("answer", "accept", "reject"):
            call_id = pick(b"offered", 0.85)
            holder = _text(client.hget(routers[0].key(f"call:{call_id}"), "agent"))
            agent_id = holder if holder and rng.random() < 0.9 else rng.choice(agents).id
            args = {"answer": (call_id, agent_id), "accept": (call_id, agent_id, 10),
                    "reject": (call_id, agent_id, "noanswer")}[op]
        elif op == "end":
            name, args = "end_call", (pick(b"busy", 0.6), rng.choice(["completed", "caller_hangup"]))
            kwargs = {"cancel_callback": rng.random() < 0.3, "agent": rng.choice(["", rng.choice(agents).id])}
        elif op == "transfer":
            call_id = pick(b"busy", 0.85)
            args = (call_id, _text(client.hget(routers[0].key(f"call:{call_id}"), "agent")) or "a0",
                    rng.choice(["queue", "pinned", "joined"]))
            kwargs = {"skill": rng.choice(SKILLS), "to_agent": rng.choice(agents).id}
        elif op == "callback":
            name, args = "request_callback", (rng.choice(calls), f"+86{rng.randint(100, 999)}")
        elif op == "put":  # the agent's skills and languages change
            args = (random_agent(rng, rng.choice(agents).id),)
        replies = []
        for router in routers:
            target: Any = AgentRegistry(router, SKILLS) if name == "put" else router
            try:
                replies.append(getattr(target, name)(*args, **kwargs))
            except RouterError as exc:
                replies.append(f"{type(exc).__name__}: {exc}")
        if replies[0] != replies[1]:
            return f"seed {seed} step {step} {op}: replies differ: {replies[0]!r} != {replies[1]!r}"
        before, after = keys_of(client, routers[0]), keys_of(client, routers[1])
        if before != after:
            keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            return f"seed {seed} step {step} {op}: keys differ: {keys[:5]}"
        offers = getattr(replies[0], "offers", replies[0])
        seen[f"{op} {'with offers' if isinstance(offers, list) and offers else 'without'}"] += 1
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--against", required=True, metavar="REF", help="the git ref whose router scripts to compare with")
    p.add_argument("--seeds", default="0-20", help="first-last seed (default 0-20)")
    p.add_argument("--steps", type=int, default=400, help="operations per seed (default 400)")
    args = p.parse_args(argv)
    first, _, last = args.seeds.partition("-")
    seen: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="router-equivalence-") as folder, redis_server() as client:
        old_lua = export_lua(args.against, Path(folder))
        for seed in range(int(first), int(last or first) + 1):
            difference = run(client, old_lua, seed, args.steps, seen)
            if difference:
                print(difference)
                return 1
            client.flushall()
    print(f"same replies and keys as {args.against}'s scripts, seeds {args.seeds}, {args.steps} operations each:")
    for what, count in sorted(seen.items()):
        print(f"  {what:<32} {count:>6,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
