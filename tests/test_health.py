"""Health that means something: ``/healthz`` says the process answers, ``/readyz`` whether it can take calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from sqlalchemy import delete

from calls.keys import live_menu_key
from hotline.app import create_app, prepare
from hotline.settings import Settings
from simulate.stack import TcpProxy
from store.models import MenuVersion
from tests.conftest import RedisProcess
from workers.records_lag import records_lag
from workers.stream import RECORDS_GROUP

SECRETS_OF = ("password", "postgresql://", "redis://", "127.0.0.1")


def wait_for(client: Any, want: Callable[[Any], bool], within_s: float) -> tuple[Any, float]:
    """Poll ``/readyz`` until ``want(reply)``; the reply and the seconds it took."""
    start = time.monotonic()
    while True:
        reply = client.get("/readyz")
        took = time.monotonic() - start
        if want(reply) or took > within_s:
            return reply, took
        time.sleep(0.1)


def failing(reply: Any) -> dict[str, str]:
    return {name: check["reason"] for name, check in reply.json["checks"].items() if not check["ok"]}


def test_healthz_answers_without_redis_or_sql_and_readyz_is_ready_on_a_sound_hotline(client: Any) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    reply = client.get("/readyz")
    assert reply.status_code == 200, reply.json
    assert reply.json["status"] == "ready"
    assert reply.json["checks"]["menu"] == {"ok": True, "menu": "hotline", "version": 1}
    assert reply.json["checks"]["records"]["ok"] and reply.json["checks"]["redis"] == {"ok": True}


def test_readyz_turns_not_ready_within_5_s_of_redis_stopping_and_ready_within_5_s_of_its_return(
        settings: Settings, own_redis: RedisProcess) -> None:
    client = create_app(hotline=prepare(settings.model_copy(update={"redis_url": own_redis.url}))).test_client()
    assert client.get("/readyz").status_code == 200
    own_redis.stop()
    down, took_down = wait_for(client, lambda r: r.status_code == 503, 5)
    assert down.status_code == 503 and took_down < 5
    assert set(failing(down)) == {"redis", "records"}  # the menu is still known (from SQL), the database answers
    assert failing(down)["redis"].startswith("no answer")
    assert client.get("/healthz").status_code == 200  # alive all along: nothing to restart
    own_redis.start()
    up, took_up = wait_for(client, lambda r: r.status_code == 200, 5)
    assert up.status_code == 200 and took_up < 5, up.json
    print(f"readyz: not ready {took_down:.2f} s after Redis stopped, ready {took_up:.2f} s after it returned")


@pytest.mark.parametrize("database_url", ["private_postgres"], indirect=True)
def test_readyz_names_the_database_while_postgresql_is_cut_off(settings: Settings, private_postgres_url: str) -> None:
    proxy = TcpProxy(private_postgres_url)
    try:
        client = create_app(hotline=prepare(settings.model_copy(
            update={"database_url": proxy.url, "db_timeout_s": 1.0}))).test_client()
        assert client.get("/readyz").status_code == 200
        with proxy.cut():
            time.sleep(1.1)  # past the cached answer
            started = time.monotonic()
            reply = client.get("/readyz")
            took = time.monotonic() - started
        assert reply.status_code == 503 and took < 1.5
        assert list(failing(reply)) == ["database"]
        assert failing(reply)["database"].startswith("no answer")
        assert not any(secret in reply.get_data(as_text=True) for secret in SECRETS_OF)
        back, _ = wait_for(client, lambda r: r.status_code == 200, 10)
        assert back.status_code == 200, back.json
    finally:
        proxy.close()


def test_readyz_is_not_ready_when_no_menu_is_published(client: Any, hotline: Any) -> None:
    with hotline.sql.begin() as db:
        db.execute(delete(MenuVersion).where(MenuVersion.menu == "hotline"))
    hotline.redis.delete(live_menu_key("hotline"))
    reply, _ = wait_for(client, lambda r: r.status_code == 503, 3)
    assert failing(reply) == {"menu": "no version of menu 'hotline' is published"}


def test_readyz_is_not_ready_while_call_records_lag_past_the_limit(client: Any, hotline: Any) -> None:
    stream, client_redis = hotline.events.stream, hotline.redis
    two_minutes_ago_ms = int(time.time() * 1000) - 120_000
    client_redis.xadd(stream, {"kind": "call_started", "call_id": "CA-old"}, id=f"{two_minutes_ago_ms}-0")
    client_redis.xadd(stream, {"kind": "call_ended", "call_id": "CA-old"})
    assert records_lag(client_redis, stream).unwritten == 2  # no writer ever ran: all of it is unwritten
    reply, _ = wait_for(client, lambda r: r.status_code == 503, 3)
    assert list(failing(reply)) == ["records"] and "120 s behind" in failing(reply)["records"]
    # A writer reads both (pending now), writes the first; the second, seconds old, is within the limit.
    client_redis.xgroup_create(stream, RECORDS_GROUP, id="0")
    read = client_redis.xreadgroup(RECORDS_GROUP, "w1", {stream: ">"}, count=10)
    assert records_lag(client_redis, stream).oldest_age_s >= 119
    client_redis.xack(stream, RECORDS_GROUP, read[0][1][0][0])
    lag = records_lag(client_redis, stream)
    assert lag.unwritten == 1 and lag.oldest_age_s < 5
    ready, _ = wait_for(client, lambda r: r.status_code == 200, 3)
    assert ready.json["checks"]["records"] == {"ok": True, "lag_s": pytest.approx(lag.oldest_age_s, abs=2),
                                               "unwritten": 1}


def test_records_lag_counts_entries_not_yet_read(hotline: Any) -> None:
    r: redis.Redis = hotline.redis
    stream = hotline.events.stream
    assert records_lag(r, stream).oldest_age_s == 0
    r.xgroup_create(stream, RECORDS_GROUP, id="0", mkstream=True)
    r.xadd(stream, {"kind": "call_started"}, id=f"{int(time.time() * 1000) - 90_000}-0")
    lag = records_lag(r, stream)
    assert lag.unwritten == 1 and 89 <= lag.oldest_age_s < 95


def test_readyz_is_not_ready_while_the_database_is_behind_this_release(client: Any, hotline: Any) -> None:
    # A release whose tables are not there yet would fail its queries: not ready until `hotline db upgrade`.
    from alembic import command

    from store import schema

    engine = hotline.sql.kw["bind"]
    assert client.get("/readyz").json["checks"]["database"] == {"ok": True, "schema": schema.head()}
    with engine.begin() as conn:
        command.downgrade(schema.alembic_config(conn), "-1")
    time.sleep(1.1)  # past the answer kept for a second
    reply = client.get("/readyz")
    assert reply.status_code == 503
    assert "hotline db upgrade" in reply.json["checks"]["database"]["reason"]
    schema.upgrade(engine)
    time.sleep(1.1)
    assert client.get("/readyz").status_code == 200
