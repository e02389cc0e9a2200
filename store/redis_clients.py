"""Every Redis client of a process, built from one URL: a standalone server, a master found through
Redis Sentinel, or a Redis Cluster. The other modules take a client and never look at the URL.

``REDIS_URL`` names all three, so every process (and ``hotline up``'s children) keeps taking its Redis
from one setting and the mode shows in one line of configuration:

- ``redis://[[user]:password@]host:port[/db]`` (or ``rediss://``, ``unix://``): one server;
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/<master>[/db][?sentinel_password=...]``:
  the sentinels (port 26379 by default) and the name they monitor the master under; the password is
  the master's, ``sentinel_password`` the sentinels' own when they have one;
- ``redis+cluster://[[user]:password@]host:port[,host:port...]``: some nodes of a Redis Cluster (one
  that answers is enough, the client learns the rest and follows the slots as they move).

``rediss+sentinel://`` and ``rediss+cluster://`` speak TLS. RQ cannot run on a cluster (its commands
span keys of many slots), so its jobs go to ``HOTLINE_RQ_REDIS_URL`` (standalone or Sentinel), which
defaults to ``REDIS_URL`` when that is not a cluster. See docs/scaling.md.
"""

from __future__ import annotations

import functools
import select
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection, SentinelManagedSSLConnection

from metrics import REDIS_ERRORS, REDIS_RETRIES, error_kind
from store.cooperative import gevent_patched

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
T = TypeVar("T")


class CountedRetry(Retry):
    """redis-py's retry, counting each retried failure and each command that failed for good (``/metrics``)."""

    def call_with_retry(self, do: Callable[[], T], fail: Callable[..., Any],
                        is_retryable: Callable[[Exception], bool] | None = None,
                        with_failure_count: bool = False) -> T:
        def counted_fail(error: Exception, *count: int) -> Any:
            REDIS_RETRIES.labels(error_kind(error)).inc()
            return fail(error, *count)
        try:
            return super().call_with_retry(do, counted_fail, is_retryable, with_failure_count)
        except redis.RedisError as exc:
            REDIS_ERRORS.labels(error_kind(exc)).inc()
            raise


RESTART_RETRY = CountedRetry(ExponentialBackoff(cap=0.1, base=0.02), 30, supported_errors=(redis.ConnectionError,))
"""A refused or dropped connection is tried again for about 2.8 s: a Redis restart (1-2 s with its append-only
file) is ridden through, callers hear their menu instead of the apology. Tries come every 0.1 s at most, so a
request waits at most that long after Redis is back (with 0.4 s steps, the restart hour's p99 carried up to
0.4 s on top of the outage). A longer outage costs a webhook a few of these (about 7 s, inside Twilio's 15 s)
before the apology. Timeouts are not retried: a hung Redis must not cost a webhook several
``HOTLINE_REDIS_TIMEOUT`` in a row."""
FAILOVER_RETRY = CountedRetry(ExponentialBackoff(cap=1.0, base=0.05), 3, supported_errors=(redis.ConnectionError,))
"""Sentinel: a command that meets the demoted master (READONLY, or a closed connection) is sent again
to the master the sentinels name now."""


class CheckedOutPool(redis.BlockingConnectionPool):
    """redis-py's blocking pool, with a cheaper answer to the question it asks of every connection it hands out:
    did the server send anything (a reply left unread, or the close of a connection it dropped)?

    redis-py asks with ``select.poll()``, which in a gevent process is gevent's cooperative poll: watchers and a
    timeout for a check that never waits, 5 % of a web worker's CPU on the webhook bench (py-spy, one command
    of two checks out a connection). The same zero-timeout ``poll()`` of the standard library answers it in a
    system call. Nothing to read, the usual case: the connection goes out as it is. Anything readable (or a TLS
    socket holding decrypted bytes, or no socket yet) goes through redis-py's own check, which reconnects."""

    def ensure_connection(self, connection: Any) -> None:
        if not _nothing_to_read(connection):
            super().ensure_connection(connection)


def _nothing_to_read(connection: Any) -> bool:
    sock = getattr(connection, "_sock", None)
    if sock is None or (hasattr(sock, "pending") and sock.pending()):
        return False
    poller = _unpatched_poll()()
    poller.register(sock.fileno(), select.POLLIN)
    return not poller.poll(0)  # 0: never waits, so the standard library's poll is safe on gevent's hub


@functools.cache
def _unpatched_poll() -> Callable[[], Any]:
    if gevent_patched():
        from gevent import monkey

        return monkey.get_original("select", "poll")  # type: ignore[no-any-return]
    return select.poll


POOL_SIZE = 100
"""Connections a standalone client's pool opens at most (redis-py's own default)."""
GEVENT_POOL_SIZE = 1000
"""The same in a gevent process, where every command takes a pooled connection (``RedisClients.shared``): a call
per connection for up to the default HOTLINE_AGI_MAX_CONNECTIONS; redis-server allows 10,000 clients."""


class SentinelMasterConnection(SentinelManagedConnection):
    """Asks the sentinels where the master is on every reconnect. redis-py reconnects a dropped connection
    through ``connect_check_health``, which skips that question and dials the demoted master again, retry
    after retry (redis/redis-py#3874): a failover would fail every command until the process restarts."""

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if not self._sock and self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health, retry_socket_connect)


class SentinelMasterSSLConnection(SentinelMasterConnection, SentinelManagedSSLConnection):
    """The same over TLS."""


class RedisUrlError(ValueError):
    """``REDIS_URL`` or ``HOTLINE_RQ_REDIS_URL`` cannot be used as given."""


@dataclass(frozen=True)
class RedisTarget:
    """Where one URL points."""

    mode: str
    """``standalone``, ``sentinel`` or ``cluster``."""
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    """Sentinels, or cluster nodes to start from."""
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False

    def describe(self) -> str:
        """For logs: the mode and the addresses, never a password."""
        if self.mode == "standalone":
            parts = urlsplit(self.url)
            return f"redis {parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"
        nodes = ",".join(f"{host}:{port}" for host, port in self.nodes)
        if self.mode == "sentinel":
            return f"redis master {self.master!r} (db {self.db}) via sentinels {nodes}"
        return f"redis cluster via {nodes}"

    def auth(self) -> dict[str, Any]:
        return {"username": self.username, "password": self.password}


def parse_redis_url(url: str) -> RedisTarget:
    """Raises RedisUrlError saying what is wrong."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SENTINEL_SCHEMES and scheme not in CLUSTER_SCHEMES:
        return RedisTarget("standalone", url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    is_sentinel = scheme in SENTINEL_SCHEMES
    nodes = tuple(_node(item, 26379 if is_sentinel else 6379, url) for item in hosts.split(",") if item)
    if not nodes:
        raise RedisUrlError(f"{_safe(url)}: name at least one host:port")
    common: dict[str, Any] = {
        "username": unquote(username) or None, "password": unquote(password) or None,
        "ssl": (SENTINEL_SCHEMES | CLUSTER_SCHEMES)[scheme],
    }
    path = [p for p in parts.path.split("/") if p]
    if not is_sentinel:
        if path:
            raise RedisUrlError(f"{_safe(url)}: a Redis Cluster has only database 0, the URL takes no path")
        return RedisTarget("cluster", url, nodes, **common)
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise RedisUrlError(f"{_safe(url)}: name the monitored master (and optionally the db): .../<master>[/<db>]")
    sentinel_password = parse_qs(parts.query).get("sentinel_password", [None])[0]
    return RedisTarget("sentinel", url, nodes, master=unquote(path[0]), db=int(path[1]) if len(path) == 2 else 0,
                       sentinel_password=sentinel_password, **common)


class RedisClients:
    """Builds the clients one process needs. ``timeout_s`` bounds each command of the shared client
    (``HOTLINE_REDIS_TIMEOUT``): a webhook must not hang on a Redis that went away."""

    def __init__(self, url: str, jobs_url: str | None = None, timeout_s: float = 0.5) -> None:
        self.target, self.timeout_s = parse_redis_url(url), timeout_s
        self.jobs_target = parse_redis_url(jobs_url) if jobs_url else self.target
        if self.jobs_target.mode == "cluster":
            raise RedisUrlError(
                f"{self.jobs_target.describe()}: RQ cannot run on a Redis Cluster (its commands span keys of many "
                "slots): set HOTLINE_RQ_REDIS_URL to a standalone or Sentinel Redis for the jobs")
        self._sentinels: dict[RedisTarget, Sentinel] = {}

    @property
    def mode(self) -> str:
        return self.target.mode

    def describe(self) -> str:
        jobs = "" if self.jobs_target is self.target else f"; jobs on {self.jobs_target.describe()}"
        return self.target.describe() + jobs

    def shared(self) -> redis.Redis:
        """The process's client for routing, sessions, events and menus.

        Standalone and Sentinel: one locked connection for the whole process. A webhook makes two or
        three commands in a row, and skipping the pool's checkout per command is a fifth of each round
        trip. Cluster: a pool per node (a command goes to the node of its key's slot).
        """
        t = self.timeout_s
        retry = {"retry": RESTART_RETRY} if self.target.mode == "standalone" else {}
        # Under gevent (the FastAGI process) the one connection's lock would be held from a command's send to
        # the moment the hub comes back to read its reply, after every other ready call has run: one command
        # per turn of the hub for the whole process. There each command takes a pooled connection instead.
        return self._client(self.target, socket_timeout=t, socket_connect_timeout=t, health_check_interval=30,
                            single_connection_client=not gevent_patched(), **retry)

    def blocking(self, socket_timeout_s: float, decode_responses: bool = False,
                 connect_timeout_s: float | None = None) -> redis.Redis:
        """A pooled client of its own, for blocking reads (``XREAD``/``BLPOP`` with a timeout below
        ``socket_timeout_s``), which would hold up every other command on the shared connection."""
        return self._client(self.target, socket_timeout=socket_timeout_s, decode_responses=decode_responses,
                            socket_connect_timeout=self.timeout_s if connect_timeout_s is None else connect_timeout_s)

    def jobs(self, connect_timeout_s: float | None = None) -> redis.Redis:
        """RQ's connection (queues, scheduler, the job clock): no read timeout, RQ's dequeue blocks."""
        return self._client(self.jobs_target, socket_connect_timeout=connect_timeout_s)

    def _client(self, target: RedisTarget, single_connection_client: bool = False, **options: Any) -> redis.Redis:
        if target.mode == "standalone":
            # Pipelines check out pool connections even on the single-connection client. Beyond POOL_SIZE at once a
            # command waits for one to come back (up to the command timeout) instead of failing: a FastAGI process
            # runs a greenlet per call, and a thousand calls at once may each be in a pipeline.
            wait_s = options.get("socket_timeout") or self.timeout_s
            size = GEVENT_POOL_SIZE if gevent_patched() else POOL_SIZE
            if gevent_patched():  # gevent's queue, in C, instead of the standard one over patched locks (4 % of CPU)
                from gevent.queue import LifoQueue

                options["queue_class"] = LifoQueue
            waiting = CheckedOutPool.from_url(target.url, max_connections=size, timeout=wait_s, **options)
            client = redis.Redis(connection_pool=waiting, single_connection_client=single_connection_client)
            client.auto_close_connection_pool = True
            return client
        if target.mode == "sentinel":
            connection_class = SentinelMasterSSLConnection if target.ssl else SentinelMasterConnection
            pool = SentinelConnectionPool(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                target.master, self._sentinel(target), db=target.db, retry=FAILOVER_RETRY,
                connection_class=connection_class, **target.auth(), **options)
            return redis.Redis(connection_pool=pool, single_connection_client=single_connection_client)
        options.pop("health_check_interval", None)  # the cluster client checks its nodes itself
        nodes = [ClusterNode(host, port) for host, port in target.nodes]  # type: ignore[no-untyped-call]
        cluster = RedisCluster(startup_nodes=nodes, ssl=target.ssl, **target.auth(), **options)
        # RedisCluster offers the commands the hotline sends (a script's keys, pipelines without MULTI,
        # streams) under the same names: tests/test_redis_cluster.py runs them on a real cluster.
        return cast(redis.Redis, cluster)

    def _sentinel(self, target: RedisTarget) -> Sentinel:
        if target not in self._sentinels:
            t = self.timeout_s
            sentinel_kwargs: dict[str, Any] = {"socket_timeout": t, "socket_connect_timeout": t,
                                               "password": target.sentinel_password, "ssl": target.ssl}
            self._sentinels[target] = Sentinel(
                list(target.nodes), sentinel_kwargs=sentinel_kwargs)
        return self._sentinels[target]


def _node(item: str, default_port: int, url: str) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", str(default_port))
    if not host or not port.isdigit():
        raise RedisUrlError(f"{_safe(url)}: {item!r} is not host:port")
    return host, int(port)


def _safe(url: str) -> str:
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{hosts}{parts.path}"
