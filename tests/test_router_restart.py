"""The router survives redis-server being killed: with the append-only file on, calls waiting in line,
a call ringing an agent, a call being talked, agents' states and timers all come back, and routing
goes on where it stopped."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from routing.agents import Agent, AgentRegistry
from routing.config import QueueConfig
from routing.keys import EVENTS_STREAM
from routing.router import CallRequest, Offer, Router
from store.redis_server import redis_server_binary
from tests.conftest import RedisProcess
from tests.fakes.clock import Clock

WRAP_UP_S = 10
QUEUES = {"loss": QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, offer_timeout=300,
                              wrap_up=WRAP_UP_S)}


class DurableRedis(RedisProcess):
    """A redis-server that writes every change to its append-only file, fsynced before it replies."""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:  # BusyLoadingError (still reading the file) is a ConnectionError too
                if redis.Redis.from_url(self.url).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[DurableRedis]:
    server = DurableRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def dump(client: redis.Redis) -> dict[str, Any]:
    """Every key with its full content (the events stream included)."""
    out: dict[str, Any] = {}
    for key in sorted(client.scan_iter(count=1000)):
        kind = client.type(key)
        if kind == "string":
            out[key] = client.get(key)
        elif kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "list":
            out[key] = client.lrange(key, 0, -1)
        elif kind == "set":
            out[key] = sorted(client.smembers(key))
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            out[key] = client.xrange(key)
        else:
            raise AssertionError(f"{key}: unexpected type {kind}")
    return out


def test_calls_agents_and_timers_survive_a_killed_redis(durable_redis: DurableRedis) -> None:
    clock = Clock()
    router = Router(redis.Redis.from_url(durable_redis.url), queues=QUEUES, clock=clock, lease_s=3600)
    router.configure()
    registry = AgentRegistry(router, tuple(QUEUES))
    for agent_id, language in (("ann", "en-US"), ("bob", "en-US"), ("cat", "en-US"), ("dan", "de-DE")):
        registry.put(Agent(agent_id, agent_id.title(), f"PJSIP/{agent_id}", {"loss": 5}, [language]))

    def enqueue(call_id: str, priority: int = 5, language: str = "en-US") -> list[Offer]:
        clock.advance(1)
        return router.enqueue(CallRequest(call_id, "loss", language, priority, f"chan-{call_id}"))

    clock.advance(1)
    router.set_agent_state("ann", "available")
    assert enqueue("c1") == [Offer("c1", "ann", "PJSIP/ann", "chan-c1", "live")]
    router.answer("c1", "ann")  # busy: ann talks to c1
    clock.advance(1)
    router.set_agent_state("bob", "available")
    assert enqueue("c2") == [Offer("c2", "bob", "PJSIP/bob", "chan-c2", "live")]  # ringing bob
    assert enqueue("c3") == enqueue("c4", priority=8) == enqueue("c5") == enqueue("c6", language="de-DE") == []
    router.set_agent_state("cat", "not_ready")  # dan stays offline

    def where() -> dict[str, tuple[str, int | None, str | None]]:
        return {c: (v.state, v.position, v.agent) for c in ("c1", "c2", "c3", "c4", "c5", "c6")
                if (v := router.call(c)) is not None}

    before = where()
    assert before == {
        "c1": ("busy", None, "ann"), "c2": ("offered", None, "bob"),
        "c4": ("waiting", 1, None), "c3": ("waiting", 2, None), "c5": ("waiting", 3, None),  # priority, then age
        "c6": ("waiting", 1, None),
    }
    agents_before = registry.all()
    assert {a.id: (a.state, a.call) for a in agents_before} == {
        "ann": ("busy", "c1"), "bob": ("offered", "c2"), "cat": ("not_ready", None), "dan": ("offline", None)}
    plain = redis.Redis.from_url(durable_redis.url, decode_responses=True)
    everything = dump(plain)

    durable_redis.stop()  # SIGKILL: no shutdown save, only what the append-only file already holds
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(durable_redis.url, retry=Retry(NoBackoff(), 0)).ping()
    durable_redis.start()  # same port, same folder: it reloads the append-only file

    # The Router built before the kill is used as is, as a long-running hotline process would: its redis-py
    # pool finds its connection dead on checkout and reconnects (and retries on ConnectionError), and the
    # router's Lua scripts, gone from the new server's script cache, are loaded again by redis-py on NOSCRIPT.
    assert where() == before
    assert registry.all() == agents_before
    assert dump(plain) == everything, "some key or event did not survive the restart"

    # Routing goes on where it stopped.
    clock.advance(1)
    assert router.set_agent_state("cat", "available") == [Offer("c4", "cat", "PJSIP/cat", "chan-c4", "live")]
    assert where()["c3"] == ("waiting", 1, None) and where()["c5"] == ("waiting", 2, None)
    assert router.answer("c2", "bob").channel == "chan-c2"  # the offer made before the kill is still good
    clock.advance(30)
    ended = router.end_call("c1", "completed")
    assert ended.offers == []  # ann goes to wrap-up, not straight to the next caller
    ann = registry.get("ann")
    assert ann is not None and ann.state == "wrap_up" and ann.wrap_until == clock.now + WRAP_UP_S
    clock.advance(WRAP_UP_S)
    assert router.tick().offers == [Offer("c3", "ann", "PJSIP/ann", "chan-c3", "live")]  # head of the line
    assert where()["c5"] == ("waiting", 1, None) and where()["c6"] == ("waiting", 1, None)
    kinds = [fields["type"] for _, fields in plain.xrange(EVENTS_STREAM)][len(everything[EVENTS_STREAM]):]
    assert kinds == ["agent_state", "agent_state", "call_offered", "agent_state", "call_answered",
                     "call_completed", "agent_state", "agent_state", "agent_state", "call_offered"]
