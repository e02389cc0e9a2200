"""The hotline on a master found through Redis Sentinel: real master, replica and sentinel on loopback,
and a forced failover in the middle of a call."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from hotline.app import Hotline, create_app, prepare
from hotline.settings import Settings
from routing.agents import Agent
from routing.router import CallRequest
from store.redis_clients import RedisUrlError, parse_redis_url
from store.redis_server import redis_server_binary
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, free_port
from tests.fakes.twilio_caller import TwilioCaller

MASTER = "hotline"


class SentinelSetup:
    """A master, its replica and one sentinel watching them (quorum 1), each a redis-server process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.master_port, self.replica_port, self.sentinel_port = free_port(), free_port(), free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{MASTER}"

    def start(self) -> None:
        self._server("master", self.master_port)
        self._server("replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        # The sentinel learns of replicas from the master's INFO, at once and then every 10 s: in sync first.
        _wait(lambda: _replica_online(self.master_port), "the replica did not sync with the master")
        config = self.folder / "sentinel.conf"  # a sentinel rewrites its config file: it must be its own
        config.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.folder}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 2000\nsentinel failover-timeout {MASTER} 10000\n")
        self.procs.append(subprocess.Popen([redis_server_binary(), str(config), "--sentinel"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait(lambda: self._replica_known(), "the sentinel did not see the replica in sync")

    def sentinel(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, decode_responses=True)

    def master_port_now(self) -> int:
        return int(self.sentinel().sentinel_get_master_addr_by_name(MASTER)[1])

    def fail_over(self) -> None:
        """SENTINEL FAILOVER, once the data is on the replica; returns when the replica is the master
        and the old master follows it."""
        redis.Redis(port=self.master_port).wait(1, 5000)
        self.sentinel().execute_command("SENTINEL", "FAILOVER", MASTER)
        _wait(lambda: self.master_port_now() == self.replica_port
              and _role(self.replica_port) == "master" and _role(self.master_port) == "slave",
              "the failover did not complete")

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()

    def _server(self, name: str, port: int, *options: str) -> None:
        folder = self.folder / name
        folder.mkdir()
        self.procs.append(subprocess.Popen(
            [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
             "--appendonly", "no", "--repl-diskless-sync-delay", "0", *options],  # no 5 s wait before the sync
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def _replica_known(self) -> bool:
        try:
            replicas = self.sentinel().sentinel_slaves(MASTER)
        except redis.RedisError:
            return False
        return any(r["port"] == self.replica_port and r.get("master-link-status") == "ok"
                   and not ({"s_down", "disconnected"} & set(r["flags"].split(","))) for r in replicas)


def _replica_online(master_port: int) -> bool:
    try:
        info = redis.Redis(port=master_port).info("replication")
    except redis.RedisError:
        return False
    return info.get("connected_slaves") == 1 and info["slave0"]["state"] == "online"


def _role(port: int) -> str:
    try:
        return str(redis.Redis(port=port).info("replication")["role"])
    except redis.RedisError:
        return ""


def _wait(ready: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.1)


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[SentinelSetup]:
    setup = SentinelSetup(tmp_path / "redis")
    setup.folder.mkdir()
    try:
        setup.start()
        yield setup
    finally:
        setup.stop()


@pytest.fixture
def sentinel_hotline(sentinel_setup: SentinelSetup, tmp_path: Path) -> Iterator[Hotline]:
    settings = Settings(
        redis_url=sentinel_setup.url, database_url=f"sqlite:///{tmp_path / 'hotline.db'}", data_dir=tmp_path / "data",
        twilio_auth_token=AUTH_TOKEN, twilio_account_sid=ACCOUNT_SID, public_url=PUBLIC_URL,
        business_opens="00:00", business_closes="23:59:59",
    )
    hotline = prepare(settings)
    yield hotline
    hotline.sql.kw["bind"].dispose()


def served_by(client: redis.Redis) -> int:
    """The port of the server a client's commands reach."""
    return int(client.info("server")["tcp_port"])


def test_the_hotline_finds_the_master_and_goes_on_after_a_failover(
    sentinel_setup: SentinelSetup, sentinel_hotline: Hotline,
) -> None:
    hotline = sentinel_hotline
    assert served_by(hotline.redis) == sentinel_setup.master_port
    hotline.agents.put(Agent("ann", "Ann", "PJSIP/1001", {"general": 5}, ["zh-CN"]))
    hotline.router.set_agent_state("ann", "available")
    (offer,) = hotline.router.enqueue(CallRequest("c1", "general", "zh-CN", 5, "asterisk"))
    assert offer.agent_id == "ann"
    caller = TwilioCaller(create_app(hotline=hotline).test_client(), AUTH_TOKEN, PUBLIC_URL)
    caller.dial()
    caller.press("1")
    waiting = hotline.redis_clients.blocking(3)  # a FastAGI caller on hold waits for an offer this way
    assert waiting.blpop([hotline.router.key("notify:c2")], timeout=0.1) is None

    sentinel_setup.fail_over()

    # The same clients, mid-call: the caller's menu session and the router's state came along.
    caller.press("6222021234567894#")
    assert caller.said() == ["请输入六位密码。"]
    caller.press("123456")
    assert caller.said()[0] == "您的余额为12345.67元，卡片状态：正常。"
    hotline.router.answer("c1", "ann")
    assert hotline.router.end_call("c1", "completed").state == "busy"
    assert hotline.agents.get("ann").state == "wrap_up"  # type: ignore[union-attr]
    assert served_by(hotline.redis) == sentinel_setup.replica_port
    assert hotline.router.enqueue(CallRequest("c2", "general", "zh-CN", 5, "asterisk")) == []  # ann wraps up
    hotline.agents.put(Agent("bob", "Bob", "PJSIP/1002", {"general": 5}, ["zh-CN"]))
    hotline.router.set_agent_state("bob", "available")
    assert waiting.blpop([hotline.router.key("notify:c2")], timeout=1) == (hotline.router.key("notify:c2").encode(),
                                                                             b"bob")
    job = hotline.jobs.enqueue("workers.jobs.flag_overdue")  # RQ's connection follows the master too
    assert redis.Redis(port=sentinel_setup.replica_port).exists(f"rq:job:{job.id}")
    events = [f[b"type"] for _, f in redis.Redis(port=sentinel_setup.replica_port).xrange(hotline.events.stream)]
    assert events.count(b"call_completed") == 1 and events.count(b"call_started") == 1


def test_sentinel_urls_name_the_sentinels_the_master_and_the_credentials() -> None:
    target = parse_redis_url("redis+sentinel://:pw%2F1@10.0.0.1,10.0.0.2:26380/main-redis/2?sentinel_password=s3")
    assert (target.mode, target.master, target.db) == ("sentinel", "main-redis", 2)
    assert target.nodes == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (target.password, target.sentinel_password, target.ssl) == ("pw/1", "s3", False)
    assert target.describe() == "redis master 'main-redis' (db 2) via sentinels 10.0.0.1:26379,10.0.0.2:26380"
    assert parse_redis_url("redis://127.0.0.1:6379/0").mode == "standalone"
    with pytest.raises(RedisUrlError, match="name the monitored master"):
        parse_redis_url("redis+sentinel://10.0.0.1:26379")
