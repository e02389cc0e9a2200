"""The router under concurrent load: 8 OS processes hammer one real redis-server for ``RUN_S`` seconds.

Callers enqueue, renew and hang up calls; agent processes answer, reject, complete and flip states;
a ticker reconciles; a chaos process races everyone (answering the same offer, wrong agents,
duplicate call ids). Afterwards the events stream is replayed into a model of every
call and agent, which must never show a call offered twice, an agent holding two calls, or an
event that does not follow from the one before; and what is left in Redis must match the model
(no call lost, nobody stuck ringing, in wrap-up or in a queue next to an idle agent).
"""

from __future__ import annotations

import multiprocessing
import random
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from routing.agents import Agent, AgentRegistry
from routing.config import QueueConfig
from routing.exceptions import RouterError
from routing.keys import EVENTS_STREAM
from routing.router import CallRequest, Router

RUN_S = 10.0
"""How long the 8 processes race."""
WORKERS = ("caller", "caller", "caller", "agents", "agents", "agents", "ticker", "chaos")
SKILLS = ("loss", "complaint", "general")
LANGUAGES = ("en-US", "zh-CN")
AGENT_IDS = tuple(f"a{n:02d}" for n in range(30))
LOWER_LEVEL_AFTER = 0.5
QUEUES = {
    "loss": QueueConfig(min_level=4, lower_level_after=LOWER_LEVEL_AFTER, overflow_after=1, overflow_to="general",
                        callback_after=0, offer_timeout=0.5, wrap_up=0.3),
    "complaint": QueueConfig(strategy="most_skilled", min_level=3, lower_level_after=LOWER_LEVEL_AFTER,
                             overflow_after=1, overflow_to="general", callback_after=0, offer_timeout=0.5,
                             wrap_up=0.2),
    # wrap_up 0: the agent is available (and offered the next call) in the same script that ends the call.
    "general": QueueConfig(strategy="round_robin", lower_level_after=0, overflow_after=0, callback_after=0,
                           offer_timeout=0.4, wrap_up=0),
}
MAX_LIVE_PER_CALLER = 25
FINAL_TICK_AHEAD_S = 5.0
"""The last tick runs this far in the future: every offer, wrap-up and escalation step is due."""


def make_router(url: str, clock: Any = time.time) -> Router:
    return Router(redis.Redis.from_url(url), queues=QUEUES, clock=clock, lease_s=30)


# -- the workers (module level: the "spawn" context imports this module in each child) ----------

@dataclass
class Worker:
    index: int
    router: Router
    rng: random.Random
    stats: Counter[str] = field(default_factory=Counter)
    enqueued: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    seq: int = 0

    def attempt(self, name: str, operation: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one router operation; refusals (RouterError) are part of the game and only counted."""
        try:
            result = operation(*args, **kwargs)
        except RouterError as exc:
            self.stats[f"{name} refused {type(exc).__name__}"] += 1
            return None
        self.stats[f"{name} ok"] += 1
        return result

    def agent_row(self, agent_id: str) -> tuple[str, str]:
        state, call = self.router.redis.hmget(self.router.key(f"agent:{agent_id}"), "state", "call")
        return (state or b"").decode(), (call or b"").decode()

    # A caller's channel: new calls, lease renewals for the calls it still holds, hang-ups.
    def caller_step(self) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.55 and len(self.live) < MAX_LIVE_PER_CALLER:
            self.seq += 1
            call_id = f"w{self.index}-{self.seq}"
            request = CallRequest(
                call_id, rng.choice(SKILLS[:2] if rng.random() < 0.8 else SKILLS), rng.choice(LANGUAGES),
                rng.randint(0, 9), f"chan-{call_id}", vip=rng.random() < 0.1,
            )
            # One call in five has a short lease its channel never renews: the reconciler must end it.
            lease = 1.5 if rng.random() < 0.2 else None
            self.attempt("enqueue", self.router.enqueue, request, lease_s=lease)
            self.enqueued.append(call_id)
            self.live.append(call_id)
            if lease is None:
                self.renewed.append(call_id)
        elif roll < 0.75 and self.renewed:
            self.router.renew(self.renewed[-20:], lease_s=30)
            self.stats["renew"] += 1
        elif self.live:
            call_id = self.live.pop(rng.randrange(len(self.live)))
            if call_id in self.renewed:
                self.renewed.remove(call_id)
            self.attempt("end_call", self.router.end_call, call_id, "caller_hung_up")
        time.sleep(rng.uniform(0, 0.01))

    # Agents' phones and desktops: look at an agent (a stale read, on purpose) and act on it.
    def agents_step(self) -> None:
        rng, router = self.rng, self.router
        agent_id = rng.choice(AGENT_IDS)
        state, call_id = self.agent_row(agent_id)
        roll = rng.random()
        if state == "offered":
            if roll < 0.5:
                self.attempt("answer", router.answer, call_id, agent_id, lease_s=rng.choice((30, 1.0)))
            elif roll < 0.65:
                self.attempt("reject", router.reject, call_id, agent_id, "no_answer")
            elif roll < 0.75:
                self.attempt("set_state", router.set_agent_state, agent_id, rng.choice(("not_ready", "offline")))
            # else: let the offer time out
        elif state == "busy":
            if roll < 0.03:  # talk a while: callers pile up, wait, escalate and overflow
                self.attempt("end_call", router.end_call, call_id, "completed")
            elif roll < 0.05:
                self.attempt("set_state", router.set_agent_state, agent_id, "offline")  # refused: on a call
        elif state in ("offline", "not_ready", "wrap_up"):
            if roll < 0.5:
                self.attempt("set_state", router.set_agent_state, agent_id, "available")
            elif roll < 0.55:
                self.attempt("set_state", router.set_agent_state, agent_id, rng.choice(("not_ready", "offline")))
        elif state == "available" and roll < 0.08:
            self.attempt("set_state", router.set_agent_state, agent_id, rng.choice(("not_ready", "offline")))
        time.sleep(rng.uniform(0, 0.004))

    # The reconciler, with an agent flipping now and then.
    def ticker_step(self) -> None:
        self.attempt("tick", self.router.tick)
        if self.rng.random() < 0.3:
            agent_id = self.rng.choice(AGENT_IDS)
            want = self.rng.choice(("available", "available", "not_ready", "offline"))
            self.attempt("set_state", self.router.set_agent_state, agent_id, want)
        time.sleep(0.02)

    # Races the others on the very same calls: double answers, wrong agents, duplicate ids.
    def chaos_step(self) -> None:
        rng, router = self.rng, self.router
        roll = rng.random()
        offered = router.redis.zrandmember(router.key("offers"))
        offered_id = offered.decode() if offered else None
        agent = router.redis.hget(router.key(f"call:{offered_id}"), "agent") if offered_id else None
        if offered_id and agent and roll < 0.3:
            # The same answer an agents process may be sending right now: one must win.
            self.attempt("answer", router.answer, offered_id, agent.decode())
        elif offered_id and agent and roll < 0.45:
            other = rng.choice([a for a in AGENT_IDS if a != agent.decode()])
            self.attempt("answer_wrong_agent", router.answer, offered_id, other)
            self.attempt("reject_wrong_agent", router.reject, offered_id, other, "late report")
        elif roll < 0.6:
            queue = f"{rng.choice(SKILLS)}:{rng.choice(LANGUAGES)}"
            waiting = router.redis.zrandmember(router.key(f"queue:{queue}"))
            if waiting:  # the caller hangs up while the router may be offering the call
                self.attempt("end_call", router.end_call, waiting.decode(), "caller_hung_up")
        elif roll < 0.7:
            worker = rng.randrange(len(WORKERS))
            duplicate = CallRequest(f"w{worker}-{rng.randint(1, 50)}", "general", rng.choice(LANGUAGES), 5, "dup")
            self.attempt("enqueue_duplicate", router.enqueue, duplicate)
        elif roll < 0.8:
            self.attempt("end_call_unknown", router.end_call, f"nobody-{rng.randint(0, 10**6)}", "noise")
        else:
            agent_id = rng.choice(AGENT_IDS)
            self.attempt("set_state", router.set_agent_state, agent_id, rng.choice(("available", "not_ready")))
        time.sleep(rng.uniform(0, 0.01))


def run_worker(role: str, index: int, url: str, ready: Any, start: Any, results: Any) -> None:
    """One OS process: ``role`` steps until ``RUN_S`` is over; reports stats or its traceback."""
    try:
        worker = Worker(index, make_router(url), random.Random(1000 + index))
        step = getattr(worker, f"{role}_step")
        worker.router.redis.ping()
        ready.put(index)
        if not start.wait(timeout=120):
            raise TimeoutError("never told to start")
        deadline = time.monotonic() + RUN_S
        while time.monotonic() < deadline:
            step()
        results.put({"index": index, "role": role, "stats": dict(worker.stats), "enqueued": worker.enqueued})
    except BaseException:  # noqa: B036 - the parent must hear about any failure, whatever it is
        results.put({"index": index, "role": role, "error": traceback.format_exc()})


# -- the replay of the events stream ------------------------------------------------------------

@dataclass
class CallModel:
    state: str = "waiting"
    agent: str | None = None
    skill: str = ""
    language: str = ""


@dataclass
class AgentModel:
    state: str = "offline"
    holding: str | None = None


@dataclass
class Replay:
    agents: dict[str, dict[str, str]]
    """Agent hashes: skills and languages, for checking who may be offered what."""
    calls: dict[str, CallModel] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    queued: set[str] = field(default_factory=set)
    model: dict[str, AgentModel] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def bad(self, event_id: str, text: str) -> None:
        if len(self.violations) < 50:
            self.violations.append(f"{event_id}: {text}")

    def agent(self, agent_id: str) -> AgentModel:
        return self.model.setdefault(agent_id, AgentModel())

    def live_call(self, event_id: str, event: dict[str, str]) -> CallModel | None:
        call_id = event["call_id"]
        call = self.calls.get(call_id)
        if call is None:
            self.bad(event_id, f"{event['type']} for call {call_id}, which is not in the router ({event})")
        return call

    def release(self, event_id: str, call_id: str, agent_id: str) -> None:
        held = self.agent(agent_id)
        if held.holding != call_id:
            self.bad(event_id, f"agent {agent_id} let go of call {call_id} but was holding {held.holding}")
        held.holding = None

    def apply(self, event_id: str, event: dict[str, str]) -> None:
        kind = event["type"]
        self.counts[kind] += 1
        if kind == "agent_state":
            self.agent_state(event_id, event)
        elif kind == "call_queued":
            call_id = event["call_id"]
            if call_id in self.calls:
                self.bad(event_id, f"call {call_id} queued again while still {self.calls[call_id].state}")
            self.calls[call_id] = CallModel(skill=event["skill"], language=event["language"])
            self.queued.add(call_id)
            self.ended.discard(call_id)  # an id may come back after it ended (a re-entry)
        elif kind in ("call_offered", "call_answered", "call_completed", "call_abandoned", "call_offer_failed",
                      "call_requeued", "call_overflowed", "callback_offered", "callback_requested"):
            call = self.live_call(event_id, event)
            if call is not None:
                getattr(self, kind)(event_id, event, call)

    def agent_state(self, event_id: str, event: dict[str, str]) -> None:
        agent_id, state, previous = event["agent"], event["state"], event["previous"]
        held = self.agent(agent_id)
        if previous != held.state:
            self.bad(event_id, f"agent {agent_id} went {previous}->{state}, but the stream had it {held.state}")
        if state == "offered" and (previous != "available" or held.holding is not None):
            self.bad(event_id, f"agent {agent_id} offered a call while {previous}, holding {held.holding}")
        if state == "busy" and (previous != "offered" or held.holding is None):
            self.bad(event_id, f"agent {agent_id} busy from {previous}, holding {held.holding}")
        if state not in ("offered", "busy") and held.holding is not None:
            self.bad(event_id, f"agent {agent_id} went {state} while still holding call {held.holding}: "
                               "the call was dropped without an event")
        held.state = state

    def call_offered(self, event_id: str, event: dict[str, str], call: CallModel) -> None:
        call_id, agent_id, skill = event["call_id"], event["agent"], event["skill"]
        if call.state != "waiting":
            self.bad(event_id, f"call {call_id} offered to {agent_id} while {call.state} to {call.agent}: double offer")
        held = self.agent(agent_id)
        if held.state != "offered" or held.holding is not None:
            self.bad(event_id, f"call {call_id} offered to agent {agent_id}, who is {held.state} "
                               f"holding {held.holding}: an agent with two calls")
        profile = self.agents[agent_id]
        levels = dict(part.split(":") for part in profile["skills"].split(","))
        if skill not in (call.skill, QUEUES[call.skill].overflow_to) or skill not in levels:
            self.bad(event_id, f"call {call_id} for {call.skill} offered as {skill} to {agent_id} ({levels})")
        elif call.language not in profile["languages"].split(","):
            self.bad(event_id, f"call {call_id} in {call.language} offered to {agent_id} ({profile['languages']})")
        elif int(levels[skill]) < QUEUES[skill].min_level and float(event["wait_s"]) < LOWER_LEVEL_AFTER - 0.001:
            self.bad(event_id, f"call {call_id} offered to {agent_id} at {skill} level {levels[skill]} after "
                               f"{event['wait_s']} s, below the floor {QUEUES[skill].min_level}")
        call.state, call.agent, held.holding = "offered", agent_id, call_id

    def call_answered(self, event_id: str, event: dict[str, str], call: CallModel) -> None:
        if call.state != "offered" or call.agent != event["agent"]:
            self.bad(event_id, f"call {event['call_id']} answered by {event['agent']} while {call.state} "
                               f"to {call.agent}")
        call.state = "busy"

    def call_completed(self, event_id: str, event: dict[str, str], call: CallModel) -> None:
        if call.state != "busy" or call.agent != event["agent"]:
            self.bad(event_id, f"call {event['call_id']} completed by {event['agent']} while {call.state} "
                               f"to {call.agent}")
        self.release(event_id, event["call_id"], event["agent"])
        self.end(event["call_id"])

    def call_abandoned(self, event_id: str, event: dict[str, str], call: CallModel) -> None:
        if event["state"] != call.state or call.state not in ("waiting", "offered"):
            self.bad(event_id, f"call {event['call_id']} abandoned as {event['state']} while {call.state}")
        if call.state == "offered" and call.agent:
            self.release(event_id, event["call_id"], call.agent)
        self.end(event["call_id"])

    def call_offer_failed(self, event_id: str, event: dict[str, str], call: CallModel) -> None:
        if call.state != "offered" or call.agent != event["agent"]:
            self.bad(event_id, f"offer of call {event['call_id']} to {event['agent']} failed while {call.state} "
                               f"to {call.agent}")
        self.release(event_id, event["call_id"], event["agent"])
        call.state, call.agent = "waiting", None

    call_requeued = call_offer_failed

    def call_overflowed(self, event_id: str, event: dict[str, str], call: CallModel) -> None:
        if call.state != "waiting":
            self.bad(event_id, f"call {event['call_id']} overflowed while {call.state}")

    def callback_offered(self, event_id: str, event: dict[str, str], call: CallModel) -> None:
        self.bad(event_id, f"unexpected {event['type']} (callbacks are off in this test)")

    callback_requested = callback_offered

    def end(self, call_id: str) -> None:
        del self.calls[call_id]
        self.ended.add(call_id)


def read_events(client: redis.Redis) -> list[tuple[str, dict[str, str]]]:
    rows: list[tuple[str, dict[str, str]]] = []
    start = "-"
    while True:
        chunk = client.xrange(EVENTS_STREAM, start, "+", count=10_000)
        rows.extend(chunk)
        if len(chunk) < 10_000:
            return rows
        start = "(" + chunk[-1][0]


# -- the test -----------------------------------------------------------------------------------

def staff(router: Router) -> dict[str, dict[str, str]]:
    """30 agents over 3 skills and 2 languages (every queue staffed, at high and low levels)."""
    rng = random.Random(7)
    registry = AgentRegistry(router, SKILLS)
    for n, agent_id in enumerate(AGENT_IDS):
        skills = {SKILLS[n % 3]: 1 + n % 10}
        for extra in rng.sample(SKILLS, rng.randint(0, 2)):
            skills.setdefault(extra, rng.randint(1, 10))
        languages = [LANGUAGES[n % 2]] if n % 3 else list(LANGUAGES)
        registry.put(Agent(agent_id, agent_id, f"PJSIP/{agent_id}", skills, languages))
        if n % 2 == 0:
            router.set_agent_state(agent_id, "available")
    pipe = router.redis.pipeline(transaction=False)
    for agent_id in AGENT_IDS:
        pipe.hgetall(router.key(f"agent:{agent_id}"))
    return {agent_id: row for agent_id, row in zip(AGENT_IDS, pipe.execute(), strict=True)}


def race(url: str) -> list[dict[str, Any]]:
    """Runs the 8 workers; returns their reports."""
    ctx = multiprocessing.get_context("spawn")  # no redis connection or lock inherited from pytest
    ready, start, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=run_worker, args=(role, n, url, ready, start, results), daemon=True)
             for n, role in enumerate(WORKERS)]
    for proc in procs:
        proc.start()
    try:
        # The interpreters take a while to come up (more on a loaded box): all 8 start racing together.
        for _ in procs:
            ready.get(timeout=60)
        start.set()
        reports = [results.get(timeout=RUN_S + 60) for _ in procs]
        for proc in procs:
            proc.join(timeout=10)
        return reports
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()


def test_eight_processes_never_double_offer_nor_lose_a_call(redis_url: str) -> None:
    router = make_router(redis_url)
    router.configure()
    profiles = {agent_id: {k.decode(): v.decode() for k, v in row.items()}
                for agent_id, row in staff(router).items()}

    reports = race(redis_url)
    errors = [f"{r['role']} #{r['index']}:\n{r['error']}" for r in reports if "error" in r]
    assert not errors, "a worker crashed (not a RouterError):\n" + "\n".join(errors)

    # Everything due is due now: offers time out, wrap-ups end, every call is past its escalation steps.
    final = make_router(redis_url, clock=lambda: time.time() + FINAL_TICK_AHEAD_S)
    final.tick(limit=100_000)

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    replay = Replay(profiles)
    for event_id, event in read_events(client):
        replay.apply(event_id, event)
    assert not replay.violations, "the events stream shows a race:\n" + "\n".join(replay.violations)

    stats: Counter[str] = Counter()
    enqueued: set[str] = set()
    for report in reports:
        stats.update(report["stats"])
        enqueued.update(report["enqueued"])

    # The race really happened: every path was taken, many times (a quiet 2-core box does about 1500 calls,
    # 800 offers, 600 answers, 90 offer timeouts or rejections, 60 requeues, 30 overflows; these floors are
    # far below that, so that a slow box does not fail, yet a run that hardly raced does).
    for kind, least in (("call_queued", 100), ("call_offered", 100), ("call_answered", 30), ("call_completed", 10),
                        ("call_abandoned", 10), ("call_offer_failed", 5), ("call_requeued", 3),
                        ("call_overflowed", 3)):
        assert replay.counts[kind] >= least, f"only {replay.counts[kind]} {kind} events ({dict(replay.counts)})"
    # Every answer the router accepted is one call_answered (and the replay saw each one answer the agent
    # the call was ringing): two processes answering the same offer never both win.
    answers_ok = stats["answer ok"]
    assert replay.counts["call_answered"] == answers_ok, (replay.counts["call_answered"], answers_ok)

    # No call lost: every call a caller put in line was seen, and is either over or still in the router.
    assert not enqueued - replay.queued, f"calls enqueued without a call_queued event: {enqueued - replay.queued}"
    check_redis_matches_replay(client, router.prefix, replay)


def check_redis_matches_replay(client: redis.Redis, prefix: str, replay: Replay) -> None:
    problems: list[str] = []

    def zmembers(name: str) -> set[str]:
        return set(client.zrange(prefix + name, 0, -1))

    offers, leases, wrapups, escalate = (zmembers(n) for n in ("offers", "leases", "wrapups", "escalate"))
    in_redis = {key[len(prefix) + len("call:"):] for key in client.scan_iter(prefix + "call:*", count=1000)}
    if in_redis - set(replay.calls):
        problems.append(f"calls in Redis the stream says are over or never were: {sorted(in_redis - set(replay.calls))}")
    for call_id, model in replay.calls.items():
        call = client.hgetall(f"{prefix}call:{call_id}")
        if not call:
            problems.append(f"call {call_id} lost: {model.state} in the stream, gone from Redis without an event")
            continue
        if call["state"] != model.state or (call.get("agent") or None) != model.agent:
            problems.append(f"call {call_id} is {call['state']}/{call.get('agent')} in Redis, "
                            f"{model.state}/{model.agent} in the stream")
        if call_id not in leases:
            problems.append(f"call {call_id} ({call['state']}) has no lease: nothing would end it if its channel died")
        if call["state"] == "waiting":
            missing = [q for q in call["queues"].split() if client.zscore(f"{prefix}queue:{q}", call_id) is None]
            if missing:
                problems.append(f"waiting call {call_id} is in no line for {missing}: nobody will ever take it")
        else:
            agent = client.hgetall(f"{prefix}agent:{call['agent']}")
            if agent.get("state") != call["state"] or agent.get("call") != call_id:
                problems.append(f"call {call_id} {call['state']} to {call['agent']}, but that agent is "
                                f"{agent.get('state')} with call {agent.get('call')}")
            if call["state"] == "offered" and call_id not in offers:
                problems.append(f"call {call_id} ringing with no offer deadline: it would ring forever")
    for key in client.scan_iter(prefix + "queue:*", count=1000):
        for call_id in client.zrange(key, 0, -1):
            if replay.calls.get(call_id, CallModel(state="gone")).state != "waiting":
                problems.append(f"{key} holds call {call_id}, which is not waiting")
    if offers - {c for c, m in replay.calls.items() if m.state == "offered"}:
        problems.append(f"offer deadlines for calls not ringing: {offers}")

    # Agents: what the stream says, and what Redis holds, agree; and the pools are exactly the idle agents.
    for agent_id in AGENT_IDS:
        agent = client.hgetall(f"{prefix}agent:{agent_id}")
        model = replay.model[agent_id]
        if agent["state"] != model.state or (agent.get("call") or None) != model.holding:
            problems.append(f"agent {agent_id} is {agent['state']}/{agent.get('call')} in Redis, "
                            f"{model.state}/{model.holding} in the stream")
        if agent["state"] in ("offered", "busy"):
            call = client.hgetall(f"{prefix}call:{agent.get('call')}")
            if call.get("agent") != agent_id or call.get("state") != agent["state"]:
                problems.append(f"agent {agent_id} {agent['state']} with call {agent.get('call')}, which is "
                                f"{call.get('state')} to {call.get('agent')}")
        if (agent["state"] == "wrap_up") != (agent_id in wrapups):
            problems.append(f"agent {agent_id} is {agent['state']}; in the wrap-up index: {agent_id in wrapups}")
        profile = replay.agents[agent_id]
        for part in profile["skills"].split(","):
            for language in profile["languages"].split(","):
                queue = f"{part.split(':')[0]}:{language}"
                pooled = client.zscore(f"{prefix}pool:{queue}", agent_id) is not None
                if pooled != (agent["state"] == "available"):
                    problems.append(f"agent {agent_id} is {agent['state']}; in the {queue} pool: {pooled}")
                # After the tick ahead, every waiting call is past its skill floor: an idle agent next to a
                # waiting call means the call is stuck.
                if agent["state"] == "available" and client.zcard(f"{prefix}queue:{queue}"):
                    problems.append(f"agent {agent_id} idle while calls wait in {queue}")
    waiting_escalations = escalate - {c for c, m in replay.calls.items() if m.state == "waiting"}
    if waiting_escalations:
        problems.append(f"escalation steps scheduled for calls not waiting: {sorted(waiting_escalations)}")
    assert not problems, "Redis does not match the events stream:\n" + "\n".join(problems[:50])
