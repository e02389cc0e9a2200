"""The hotline on a real 3-node Redis Cluster started on loopback: the router, sessions, events, records.

RQ's jobs go to a standalone Redis beside it (``HOTLINE_RQ_REDIS_URL``), as docs/scaling.md says they must.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from admin.live.sse import event_tail
from calls.sessions import SessionStore
from hotline.app import Hotline, build_hotline, create_app, prepare
from hotline.settings import Settings
from ivr.services import CallInfo, PinCard
from ivr.session import Session
from recordings.prompts import write_placeholder_prompts
from routing.agents import Agent, AgentRegistry
from routing.config import QueueConfig
from routing.events import EventLog
from routing.keys import events_stream, router_prefix
from routing.router import CallRequest, Router
from softphone.agi_peer import AsteriskPeer
from store.db import connect
from store.models import CallRecord
from store.redis_clients import RedisClients, RedisUrlError, parse_redis_url
from store.redis_server import redis_server_binary
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, serve_agi
from tests.fakes.call_events import routed_call
from tests.fakes.clock import Clock
from tests.fakes.twilio_caller import TwilioCaller
from workers.jobs import QUEUE
from workers.records import RecordWriter
from workers.stream import RECORDS_GROUP, ConsumerConfig, StreamConsumer

REPO = Path(__file__).resolve().parent.parent
SLOTS = 16384
SKILLS = ("loss", "complaint", "inquiry", "general", "survey")


class RedisClusterProcesses:
    """Three redis-server masters on loopback with the slots split between them, no replicas."""

    def __init__(self, folder: Path, size: int = 3) -> None:
        self.folder, self.size = folder, size
        self.ports: list[int] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports[:2])

    def start(self) -> None:
        for index in range(self.size):
            port = _port_with_bus_port()  # the cluster bus listens on port + 10000 (also on Redis 6)
            node_dir = self.folder / f"node{index}"
            node_dir.mkdir()
            self.ports.append(port)
            self.procs.append(subprocess.Popen(
                [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
                 "--cluster-enabled", "yes", "--cluster-config-file", str(node_dir / "nodes.conf"),
                 "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        nodes = [self.node(index) for index in range(self.size)]
        _wait(lambda: all(_pings(node) for node in nodes), "cluster nodes did not start")
        for index, node in enumerate(nodes):
            node.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
            first, last = SLOTS * index // self.size, SLOTS * (index + 1) // self.size - 1
            node.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
        for port in self.ports[1:]:
            nodes[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        _wait(lambda: all(_ready(node, self.size) for node in nodes), "the cluster did not come together")

    def node(self, index: int) -> redis.Redis:
        return redis.Redis(port=self.ports[index], decode_responses=True)

    def node_of_slot(self, slot: int) -> int:
        """The index of the node ``start`` gave ``slot`` to."""
        return next(index for index in range(self.size) if slot < SLOTS * (index + 1) // self.size)

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def _port_with_bus_port() -> int:
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _pings(node: redis.Redis) -> bool:
    try:
        return bool(node.ping())
    except redis.ConnectionError:
        return False


def _ready(node: redis.Redis, size: int) -> bool:
    info = node.execute_command("CLUSTER", "INFO")
    text = info if isinstance(info, str) else str(info)
    return ("cluster_state:ok" in text and f"cluster_known_nodes:{size}" in text
            and f"cluster_slots_ok:{SLOTS}" in text)


def _wait(ready: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster: RedisClusterProcesses) -> Iterator[str]:
    def flush() -> None:
        for index in range(redis_cluster.size):
            redis_cluster.node(index).flushall()

    flush()
    yield redis_cluster.url
    flush()


@pytest.fixture
def shared(cluster_url: str) -> redis.Redis:
    """The client a hotline process routes with, built for the cluster URL."""
    return RedisClients(cluster_url, jobs_url="redis://127.0.0.1:1/0").shared()


@pytest.fixture
def cluster_hotline(cluster_url: str, redis_url: str, tmp_path: Path) -> Iterator[Hotline]:
    settings = Settings(
        redis_url=cluster_url, rq_redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'hotline.db'}",
        data_dir=tmp_path / "data", twilio_auth_token=AUTH_TOKEN, twilio_account_sid=ACCOUNT_SID,
        public_url=PUBLIC_URL, business_opens="00:00", business_closes="23:59:59",
    )
    hotline = prepare(settings)
    yield hotline
    hotline.sql.kw["bind"].dispose()


def make_router(client: redis.Redis, clock: Clock, hotline: str = "hotline", **queues: QueueConfig) -> Router:
    plain = QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, wrap_up=0)
    router = Router(client, hotline, {skill: queues.get(skill, plain) for skill in SKILLS}, clock=clock, lease_s=3600)
    router.configure()
    return router


def staff(router: Router, clock: Clock, *agents: tuple[str, dict[str, int]]) -> None:
    registry = AgentRegistry(router, SKILLS)
    for agent_id, skills in agents:
        registry.put(Agent(agent_id, agent_id.title(), f"PJSIP/{agent_id}", skills, ["zh-CN"]))
        router.set_agent_state(agent_id, "available")
        clock.advance(1)


def call(call_id: str, skill: str, priority: int = 5) -> CallRequest:
    return CallRequest(call_id, skill, "zh-CN", priority, "asterisk")


def stream(client: redis.Redis, name: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(name)]


# -- the router ------------------------------------------------------------------------------------


def test_a_call_is_offered_to_the_agent_with_its_skill_answered_and_ended(shared: redis.Redis) -> None:
    clock = Clock()
    router = make_router(shared, clock, loss=QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0,
                                                         wrap_up=30))
    staff(router, clock, ("ann", {"complaint": 9}), ("bob", {"loss": 6}))
    (offer,) = router.enqueue(call("c1", "loss", priority=9))
    assert (offer.call_id, offer.agent_id, offer.endpoint) == ("c1", "bob", "PJSIP/bob")
    assert router.answer("c1", "bob").wait_s == 0
    clock.advance(42)
    assert router.end_call("c1", "completed").state == "busy"
    assert AgentRegistry(router).get("bob").state == "wrap_up"  # type: ignore[union-attr]
    clock.advance(31)
    router.tick()  # wrap-up over
    assert AgentRegistry(router).get("bob").state == "available"  # type: ignore[union-attr]
    events = stream(shared, router.events_stream)
    assert [e["type"] for e in events if e["type"].startswith("call_")] == [
        "call_queued", "call_offered", "call_answered", "call_completed"]
    assert [e["state"] for e in events if e.get("agent") == "bob" and e["type"] == "agent_state"] == [
        "available", "offered", "busy", "wrap_up", "available"]


def test_a_waiting_call_overflows_to_general_on_the_escalation_tick(shared: redis.Redis) -> None:
    clock = Clock()
    router = make_router(shared, clock, complaint=QueueConfig(lower_level_after=0, overflow_after=60,
                                                              callback_after=0, wrap_up=0))
    staff(router, clock, ("gen", {"general": 5}))
    assert router.enqueue(call("c1", "complaint")) == []
    clock.advance(30)
    assert router.tick().offers == []
    clock.advance(31)
    assert [o.agent_id for o in router.tick().offers] == ["gen"]
    view = router.call("c1")
    assert view is not None and (view.state, view.agent) == ("offered", "gen")


def test_every_router_key_and_the_events_stream_share_one_slot(
    shared: redis.Redis, redis_cluster: RedisClusterProcesses,
) -> None:
    clock = Clock()
    router = make_router(shared, clock, inquiry=QueueConfig(strategy="round_robin", lower_level_after=0,
                                                            overflow_after=0, callback_after=0, wrap_up=10))
    staff(router, clock, ("ann", {"inquiry": 5, "loss": 3}), ("bob", {"inquiry": 7}))
    router.enqueue(call("talked", "inquiry"))
    router.answer("talked", "ann")
    router.end_call("talked", "completed")  # handle times, wrap-up
    router.enqueue(call("ringing", "inquiry"))  # bob rings: offers, notify
    router.answer("ringing", "bob")  # leases
    router.enqueue(call("waiting", "inquiry"))
    router.request_callback("waiting", "13812345678")  # callback index
    router.enqueue(call("queued", "loss"))  # a queue, escalation
    keys = [key for index in range(redis_cluster.size)
            for key in redis_cluster.node(index).scan_iter(match=f"{router.prefix}*")]
    assert router.events_stream in keys
    assert {"queue:loss:zh-CN", "rr:inquiry", "aht:inquiry", "leases", "wrapups", "notify:ringing"} <= {
        key.removeprefix(router.prefix) for key in keys}
    node = redis_cluster.node(0)
    slots = {node.execute_command("CLUSTER", "KEYSLOT", key) for key in keys}
    assert slots == {node.execute_command("CLUSTER", "KEYSLOT", events_stream("hotline"))}


def test_the_dashboards_agent_rows_are_read_with_their_calls(shared: redis.Redis) -> None:
    clock = Clock()
    router = make_router(shared, clock)
    staff(router, clock, ("ann", {"general": 5}), ("bob", {"loss": 5}))
    router.set_agent_state("bob", "not_ready", "lunch")
    router.enqueue(CallRequest("c1", "general", "zh-CN", 0, "twilio", caller="138****5678"))
    router.answer("c1", "ann")
    (ann, on_call), (bob, no_call) = AgentRegistry(router, SKILLS).on_floor()
    assert on_call is not None and (ann.state, on_call.queue, on_call.caller) == ("busy", "general:zh-CN", "138****5678")
    assert (on_call.state, on_call.answered_at) == ("busy", clock.now)
    assert (bob.state, bob.reason, no_call) == ("not_ready", "lunch", None)


def test_hotlines_with_other_names_route_on_other_nodes_at_once(
    shared: redis.Redis, redis_cluster: RedisClusterProcesses,
) -> None:
    node = redis_cluster.node(0)
    names = [f"bank{n}" for n in range(20)]
    by_node = {redis_cluster.node_of_slot(node.execute_command("CLUSTER", "KEYSLOT", router_prefix(n))): n
               for n in names}
    assert len(by_node) == redis_cluster.size  # twenty names reach every node
    clock = Clock()
    routers = [make_router(shared, clock, hotline=name) for name in by_node.values()]
    for router in routers:
        staff(router, clock, ("ann", {"general": 5}))
    for router in routers:
        assert [o.agent_id for o in router.enqueue(call("c1", "general"))] == ["ann"]
        last = stream(shared, router.events_stream)[-1]
        assert (last["type"], last["call_id"], last["agent"]) == ("call_offered", "c1", "ann")
    for index, name in by_node.items():
        assert redis_cluster.node(index).exists(events_stream(name))


# -- sessions, events, records ------------------------------------------------------------------------


def ivr_session(call_id: str, node: str, seq: int = 0) -> Session:
    return Session(call_id, "twilio", "138****5678", "95555", "hotline", 1, "zh-CN", node=node, seq=seq)


def test_sessions_are_saved_loaded_and_taken_on_the_cluster_and_survive_a_script_flush(
    shared: redis.Redis, redis_cluster: RedisClusterProcesses,
) -> None:
    store = SessionStore(shared, ttl_s=60)
    sessions = [ivr_session(f"CA{n}", "main") for n in range(10)]
    for session in sessions:
        assert store.save(session, f"<Response>{session.call_id}</Response>")
    assert store.in_ivr() == 10
    for index in range(redis_cluster.size):  # as after a restart: every node forgot the save script
        redis_cluster.node(index).script_flush()
    advanced = ivr_session("CA3", "inquiry_card", seq=1)
    assert store.save(advanced, "<Response>card</Response>")
    loaded = store.load("CA3")
    assert loaded is not None and (loaded.session.node, loaded.last_answer) == ("inquiry_card", "<Response>card</Response>")
    taken = store.take("CA7")
    assert taken is not None and taken.session.call_id == "CA7"
    assert store.take("CA7") is None and store.in_ivr() == 9


def test_a_twilio_caller_walks_the_menu_and_the_call_becomes_a_record(cluster_hotline: Hotline) -> None:
    caller = TwilioCaller(create_app(hotline=cluster_hotline).test_client(), AUTH_TOKEN, PUBLIC_URL)
    caller.dial()
    caller.press("1")
    caller.press("6222021234567894#")
    caller.press("123456")
    assert caller.said()[0] == "您的余额为12345.67元，卡片状态：正常。"
    assert cluster_hotline.sessions.in_ivr() == 1
    caller.hang_up()
    assert cluster_hotline.sessions.in_ivr() == 0
    written = _write_records(cluster_hotline)
    assert written >= 2  # call_started, call_ended
    with cluster_hotline.sql() as db:
        (record,) = db.scalars(select(CallRecord)).all()
    assert (record.channel, record.intent, record.outcome, record.verified) == ("twilio", "inquiry", "self_served", True)


def test_a_fastagi_caller_reaches_the_agent_and_the_dashboard_stream_sees_it(cluster_hotline: Hotline) -> None:
    write_placeholder_prompts(cluster_hotline.menus.live("hotline"), cluster_hotline.settings.recordings_dir / "prompts")
    tail = event_tail(cluster_hotline.redis_clients, cluster_hotline.events.stream)
    start = tail.position()
    for agent_id, extension in (("ann", "1001"), ("bob", "1002")):
        cluster_hotline.agents.put(Agent(agent_id, agent_id.title(), f"PJSIP/{extension}", {"general": 5}, ["zh-CN"]))
        cluster_hotline.router.set_agent_state(agent_id, "available")
        time.sleep(0.002)  # ann has been idle longest
    with serve_agi(cluster_hotline) as address:
        peer = AsteriskPeer(["0"], patience_s=30, talk_s=0.2)
        agi_call = peer.dial(*address)
    (dial,) = [c for c in agi_call.commands if c.startswith("EXEC Dial")]  # recorded: the queue says "all"
    assert dial.startswith('EXEC Dial "PJSIP/1001,20,b(hotline-agent-record^s^1(')
    assert dial.endswith(f'))U(hotline-agent-answer^{peer.uniqueid}^ann)"')
    seen = next(batch for batch in tail.follow(start, block_s=1) if batch)
    assert seen[0]["type"] == "agent_state"
    _write_records(cluster_hotline)
    with cluster_hotline.sql() as db:
        (record,) = db.scalars(select(CallRecord)).all()
    assert (record.call_id, record.agent_id, record.outcome) == (peer.uniqueid, "ann", "routed")


def _write_records(hotline: Hotline) -> int:
    """What a ``hotline worker`` does with the stream: the record writer's consumer, until it has read all."""
    reader = hotline.redis_clients.blocking(10)
    consumer = StreamConsumer(reader, ConsumerConfig(hotline.events.stream, RECORDS_GROUP, "w1", block_ms=10),
                              RecordWriter(hotline.sql).write)
    consumer.ensure_group()
    total = 0
    while written := consumer.step():
        total += written
    return total


# -- RQ beside the cluster -----------------------------------------------------------------------------


def test_a_hotline_worker_writes_records_from_the_cluster_and_runs_jobs_from_the_rq_redis(
    cluster_url: str, redis_url: str, tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'hotline.db'}"
    env = {**os.environ, "REDIS_URL": cluster_url, "HOTLINE_RQ_REDIS_URL": redis_url, "DATABASE_URL": database_url,
           "HOTLINE_DATA_DIR": str(tmp_path / "data")}
    sql = connect(database_url)
    events = EventLog(RedisClients(cluster_url, redis_url).shared(), tmp_path / "spool", events_stream("hotline"))
    job = Queue(QUEUE, connection=redis.Redis.from_url(redis_url)).enqueue("workers.jobs.sweep_visits")
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "hotline.cli", "worker"], cwd=REPO, env=env,
                              stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        for call_id in ("CA1", "CA2"):
            for event in routed_call(call_id):
                events.emit(event.pop("type"), **event)
        _wait(lambda: _records(sql) == 2 and job.get_status(refresh=True) == "finished",
              "the worker to write both records and run the job")
    finally:
        _stop(worker, log)
    with sql() as db:
        assert {(r.call_id, r.agent_id, r.outcome) for r in db.scalars(select(CallRecord))} == {
            ("CA1", "a7", "routed"), ("CA2", "a7", "routed")}
    sql.kw["bind"].dispose()
    assert "redis cluster via 127.0.0.1" in log.read_text()  # it says where it reads from, without secrets


def _stop(worker: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, as `hotline up` stops it. What this test checks is done by then: a worker that a loaded machine
    keeps from stopping within a minute (seen once in CI) is killed with a warning that carries its thread stacks
    (``hotline worker`` dumps them on SIGUSR1), not failed."""
    worker.terminate()
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.send_signal(signal.SIGUSR1)
        time.sleep(2)
        worker.kill()
        worker.wait(timeout=10)
        warnings.warn(f"hotline worker took over 60 s to stop on SIGTERM; its threads:\n{log.read_text()[-6000:]}",
                      stacklevel=1)


def _records(sql: sessionmaker[Any]) -> int:
    with sql() as db:
        return len(db.scalars(select(CallRecord.id)).all())


def test_jobs_go_to_the_rq_redis_not_the_cluster(cluster_hotline: Hotline, redis_url: str,
                                                 redis_cluster: RedisClusterProcesses) -> None:
    job = cluster_hotline.jobs.enqueue("workers.jobs.flag_overdue")
    assert redis.Redis.from_url(redis_url).exists(f"rq:job:{job.id}")
    assert not any(redis_cluster.node(i).keys("rq:*") for i in range(redis_cluster.size))


def test_a_cluster_without_a_redis_for_the_jobs_is_refused_with_the_reason(cluster_url: str, tmp_path: Path) -> None:
    with pytest.raises(RedisUrlError, match="RQ cannot run on a Redis Cluster.*HOTLINE_RQ_REDIS_URL"):
        build_hotline(Settings(redis_url=cluster_url, data_dir=tmp_path))
    with pytest.raises(RedisUrlError, match="RQ cannot run on a Redis Cluster"):
        RedisClients("redis://127.0.0.1:6379/0", jobs_url=cluster_url)


def test_cluster_urls_name_their_nodes_and_credentials() -> None:
    target = parse_redis_url("rediss+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2")
    assert (target.mode, target.nodes) == ("cluster", (("10.0.0.1", 7000), ("10.0.0.2", 6379)))
    assert (target.username, target.password, target.ssl) == ("app", "s@cret", True)
    assert "s@cret" not in target.describe() and "cret" not in target.describe()
    with pytest.raises(RedisUrlError, match="no path"):
        parse_redis_url("redis+cluster://10.0.0.1:7000/2")
    with pytest.raises(RedisUrlError, match="host:port"):
        parse_redis_url("redis+cluster://:pw@")


def test_pin_failures_are_counted_and_locked_on_a_cluster(cluster_hotline: Hotline) -> None:
    """The PIN counter's scripts touch one key each: they run on any node the card's key hashes to."""
    pins = cluster_hotline.pin_locks
    call = CallInfo("CA-cluster", "+8613800000000", "twilio", "zh-CN")
    cards = [PinCard(pins.card_key(number), "6228********0000") for number in ("6228480012345671", "6222021234567894")]
    for card in cards:  # two cards, most likely on two nodes
        answers = [pins.check(card, call, lambda: False) for _ in range(6)]
        assert answers == ["wrong_pin"] * 4 + ["locked"] * 2
        assert pins.check(card, call, lambda: True) == "locked"
    assert len(pins.listing()) == 2
