"""The shared client's pool hands out only connections ready for a command: one the server dropped, or one left
with a reply nobody read, is replaced first (``store.redis_clients.CheckedOutPool``), with no retry spent."""

from __future__ import annotations

import time

import redis

from store.redis_clients import CheckedOutPool, RedisClients


def test_a_connection_the_server_dropped_is_replaced_before_the_next_command(redis_url: str) -> None:
    # A pooled client, as every client is under gevent: no retry, so a dropped connection handed out would fail.
    client = RedisClients(redis_url).blocking(socket_timeout_s=1.0)
    assert isinstance(client.connection_pool, CheckedOutPool)
    client.set("pool:k", "v")
    mine = client.client_id()
    assert redis.Redis.from_url(redis_url).client_kill_filter(_id=mine) == 1  # as a Redis restart would
    assert client.get("pool:k") == b"v"
    assert client.client_id() != mine


def test_a_connection_left_with_an_unread_reply_is_not_handed_out(redis_url: str) -> None:
    pool = CheckedOutPool.from_url(redis_url, max_connections=1, timeout=1)
    client = redis.Redis(connection_pool=pool)
    client.set("pool:k", "v")
    connection = pool.get_connection()
    connection.send_command("ECHO", "stale")  # its reply is never read: a command cut short
    time.sleep(0.05)
    pool.release(connection)
    assert client.get("pool:k") == b"v"  # not b"stale"
