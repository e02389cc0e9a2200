"""The agent-answer path with and without conversation recording, in the same run.

    .venv/bin/python bench/recording.py [--calls 300] [--asterisk [--pbx-calls 8]]

What recording adds where the agent picks up. The hold loop decides by the queue's ``record`` setting as it dials
the agent (one Redis SET, while the phone rings) and, for a recorded call, adds a pre-dial handler to the ``Dial``
that starts ``MixMonitor`` on the agent's channel before it rings; the ``agent-answered`` FastAGI script run by the
Dial ``U()`` gosub at pick-up then does the same work recorded or not (the router's answer, no AGI command). This
measures the script's whole turn as Asterisk sees it (connect, environment, commands, close) over loopback against
the real FastAGI server, alternating a recorded call (its conversation started as the dial would) and an unrecorded
one call by call, so both see the same machine load. Own redis-server (no persistence) and SQLite in a temporary
folder. Prints p50/p95/mean per setting and the difference; exits 0 whatever they are.

``--asterisk`` also measures on the real Asterisk 22 (tests/asterisk_pbx.py, as bench/asterisk.py): callers
transferred into the ``loss`` queue (record ``all``) and the ``general`` queue (record ``none``) in turn, one agent
on a Local channel; from the gosub's start on the agent's channel (``Newexten`` of ``hotline-agent-answer``) to the
agent's ``BridgeEnter``, by Asterisk's own event timestamps: the whole agent-answer path (MixMonitor was started
before the phone rang: not in it).
"""

# ruff: noqa: E402  (the sys.path fix below has to run before the project's imports)

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import argparse
import statistics
import tempfile
import threading
import time
from typing import Any

from bench.harness import percentile
from calls.conversations import Conversation, Conversations
from hotline.agi_app import create_agi_server
from hotline.app import prepare
from hotline.settings import Settings
from routing.agents import Agent
from routing.router import CallRequest
from softphone.agi_peer import AsteriskPeer
from store.redis_server import scratch_redis

SECRET = "bench-recording-secret-0123456789"


def on_asterisk(calls: int) -> dict[str, list[float]]:
    """ms from the answer gosub's start to the agent's BridgeEnter, per queue setting."""
    from hotline.cli import _build_prompts
    from tests import asterisk_stack
    from tests.asterisk_pbx import RealAsterisk, available, free_port
    from tests.conftest import RedisProcess

    why = available()
    if why:
        sys.exit(f"bench/recording.py --asterisk: {why}")
    asterisk_stack.QUEUES = {"loss": {"offer_timeout": 4, "wrap_up": 0, "record": "all"},
                             "general": {"offer_timeout": 4, "wrap_up": 0, "record": "none"}}
    took: dict[str, list[float]] = {"all": [], "none": []}
    with tempfile.TemporaryDirectory(prefix="hotline-recording-bench-") as tmp:
        folder = Path(tmp)
        redis_server = RedisProcess(folder)
        redis_server.start()
        pbx = RealAsterisk(folder / "asterisk", free_port(), folder / "var" / "recordings" / "prompts")
        pbx.install()
        settings = asterisk_stack.stack_settings(folder, redis_server.url, pbx)
        hotline = prepare(settings)
        _build_prompts(hotline, verbose=False)
        agi = asterisk_stack.AgiProcess(settings, folder / "agi.log")
        agi.start()
        pbx.start()
        try:
            hotline.agents.put(Agent("ben", "Ben", "Local/voice1@test-agents", {"loss": 5, "general": 5},
                                     ["zh-CN", "en-US"]))
            assert pbx.ami is not None
            for n in range(calls * 2 + 2):
                skill = "loss" if n % 2 else "general"
                deadline = time.monotonic() + 20
                while (agent := hotline.agents.get("ben")) is None or agent.state != "available":
                    if agent is not None and agent.state in ("offline", "not_ready"):
                        hotline.router.set_agent_state("ben", "available")
                    assert time.monotonic() < deadline, "the agent never came back"
                    time.sleep(0.05)
                answer_ms = _answer_path_ms(pbx, skill)
                if n >= 2:
                    took["all" if skill == "loss" else "none"].append(answer_ms)
        finally:
            pbx.stop()
            agi.stop()
            redis_server.stop()
    return took


def _answer_path_ms(pbx: Any, skill: str) -> float:
    """One caller into ``skill``'s queue, to the end of the call; ms from the gosub's start to the bridge."""
    call = pbx.call(exten=skill, context="hotline-queues")
    bridged = pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter" and e.get("uniqueid") == call.ivr_id,
                               after=call.mark)
    leg = pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter" and e.get("uniqueid") != call.ivr_id
                           and e.get("bridgeuniqueid") == bridged["bridgeuniqueid"], after=call.mark)
    gosub = pbx.ami.wait_for(lambda e: e.get("event") == "Newexten" and e.get("context") == "hotline-agent-answer",
                             uniqueid=leg["uniqueid"])
    call.wait_end(30)
    return (float(leg["timestamp"]) - float(gosub["timestamp"])) * 1000


def report(title: str, took: dict[str, list[float]]) -> None:
    print(title)
    print(f"  {'record':>7} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    for name, values in took.items():
        values.sort()
        print(f"  {name:>7} {percentile(values, 50):>8.2f} {percentile(values, 95):>8.2f} "
              f"{statistics.mean(values):>8.2f}")
    diff = percentile(took["all"], 50) - percentile(took["none"], 50)
    print(f"  recording adds {diff:+.2f} ms at p50")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per setting")
    parser.add_argument("--asterisk", action="store_true", help="also on the real Asterisk")
    parser.add_argument("--pbx-calls", type=int, default=8, help="calls per setting on the real Asterisk")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hotline-recording-bench-") as tmp, \
            scratch_redis(Path(tmp)) as (redis_url, _):
        settings = Settings(_env_file=None, redis_url=redis_url, database_url=f"sqlite:///{tmp}/hotline.db",  # type: ignore[call-arg]
                            data_dir=Path(tmp) / "var", agi_host="127.0.0.1", agi_port=0, agi_secret=SECRET)
        hotline = prepare(settings)
        router = hotline.router
        router.queues["inquiry"] = router.queues["inquiry"].model_copy(update={"record": "all", "wrap_up": 0})
        router.queues["general"] = router.queues["general"].model_copy(update={"record": "none", "wrap_up": 0})
        router.configure()
        hotline.agents.put(Agent("ann", "Ann", "PJSIP/1001", {"inquiry": 5, "general": 5}, ["zh-CN"]))
        talks = Conversations(hotline.redis, router.key(""))
        server = create_agi_server(hotline)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        host, port = "127.0.0.1", server.server_address[1]
        took: dict[str, list[float]] = {"all": [], "none": []}
        try:
            for n in range(args.calls * 2 + 20):
                skill = "inquiry" if n % 2 else "general"
                call_id = f"1800000000.{n}"
                router.set_agent_state("ann", "available")
                offers = router.enqueue(CallRequest(call_id, skill, "zh-CN", 5, "asterisk"))
                assert [o.agent_id for o in offers] == ["ann"], offers
                if skill == "inquiry":  # as the hold loop does when it dials a recorded call's agent
                    talks.start(Conversation(call_id, "asterisk", "ann", "", time.time(), f"{tmp}/conv-{n}"))
                peer = AsteriskPeer([], caller="1001", channel="PJSIP/1001-00000001", secret=SECRET,
                                    script=f"agent-answered?call={call_id}&agent=ann")
                started = time.perf_counter()
                done = peer.dial(host, port)
                elapsed = time.perf_counter() - started
                assert done.commands == [], done.commands  # recorded or not: the answer and nothing else
                router.end_call(call_id, "completed", agent="ann")
                hotline.redis.delete(f"{router.key('')}recording:{call_id}")
                if n >= 20:  # the first ones warm the server up
                    took["all" if skill == "inquiry" else "none"].append(elapsed * 1000)
        finally:
            server.shutdown()
            server.server_close()
    report(f"agent-answered FastAGI script, {args.calls} calls per setting, alternating (loopback, one at a time; "
           "the same work either way: the difference is noise)", took)
    if args.asterisk:
        report(f"real Asterisk, {args.pbx_calls} calls per setting, alternating: answer gosub start -> agent's "
               "BridgeEnter (AGI script; MixMonitor started at the dial)", on_asterisk(args.pbx_calls))


if __name__ == "__main__":
    main()
