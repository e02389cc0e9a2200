"""The PIN-failure counter against a real Redis that goes away or loses its data, and the SQL record behind it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from sqlalchemy.orm import sessionmaker

from calls.pin_locks import PinLocks
from calls.pin_records import PinPolicy, PinRecords
from ivr.services import CallInfo, PinCard
from routing.events import EventLog
from tests.conftest import RedisProcess

CARD, PIN = "6228480012345671", "654321"
MASKED = "6228********5671"


class Bank:
    """The core's check, counting how often it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    def check(self, pin: str) -> Callable[[], bool]:
        def verify() -> bool:
            self.asked += 1
            return pin == PIN
        return verify


def counter(url: str, sql: sessionmaker, tmp_path: Path, **policy: float) -> PinLocks:
    client = redis.Redis.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3)
    rules = PinPolicy(**policy)  # type: ignore[arg-type]
    return PinLocks(client, PinRecords(sql, rules), EventLog(client, tmp_path / "spool"), "secret", rules)


CALL = CallInfo("CA-guess", "+8613800000000", "twilio", "zh-CN")


def test_redis_away_the_database_counts_alone_and_redis_back_empty_learns_the_lock(
    own_redis: RedisProcess, sql: sessionmaker, tmp_path: Path,
) -> None:
    pins, bank = counter(own_redis.url, sql, tmp_path), Bank()
    card = PinCard(pins.card_key(CARD), MASKED)
    assert pins.check(card, CALL, bank.check("000001")) == "wrong_pin"

    own_redis.stop()  # away: nothing of the count is lost, and guessing still stops at 5
    answers = [pins.check(card, CALL, bank.check(f"00000{n}")) for n in range(2, 8)]
    assert answers == ["wrong_pin"] * 3 + ["locked"] * 3
    assert pins.check(card, CALL, bank.check(PIN)) == "locked"
    assert bank.asked == 5

    own_redis.start()  # back, empty (no persistence): the record fills it again
    assert pins.check(card, CALL, bank.check(PIN)) == "locked"
    assert bank.asked == 5


def test_redis_losing_its_data_forgets_no_failure(own_redis: RedisProcess, sql: sessionmaker, tmp_path: Path) -> None:
    pins, bank = counter(own_redis.url, sql, tmp_path), Bank()
    card = PinCard(pins.card_key(CARD), MASKED)
    assert [pins.check(card, CALL, bank.check(f"00000{n}")) for n in range(4)] == ["wrong_pin"] * 4

    own_redis.stop()
    own_redis.start()

    assert pins.check(card, CALL, bank.check("000009")) == "locked"
    assert pins.check(card, CALL, bank.check(PIN)) == "locked"
    assert bank.asked == 5


def test_a_lock_ends_after_its_time_and_the_window_forgets_old_failures(
    own_redis: RedisProcess, sql: sessionmaker, tmp_path: Path,
) -> None:
    pins, bank = counter(own_redis.url, sql, tmp_path, max_failures=2, window_s=0.6, lock_s=0.6), Bank()
    card = PinCard(pins.card_key(CARD), MASKED)
    assert pins.check(card, CALL, bank.check("000001")) == "wrong_pin"
    time.sleep(0.7)  # the window passed: that failure no longer counts
    assert pins.check(card, CALL, bank.check("000002")) == "wrong_pin"
    assert pins.check(card, CALL, bank.check("000003")) == "locked"
    assert pins.check(card, CALL, bank.check(PIN)) == "locked"
    time.sleep(0.7)
    assert pins.check(card, CALL, bank.check(PIN)) == "ok"


def test_a_core_failure_is_not_counted_as_a_guess(own_redis: RedisProcess, sql: sessionmaker, tmp_path: Path) -> None:
    pins = counter(own_redis.url, sql, tmp_path, max_failures=2)
    card = PinCard(pins.card_key(CARD), MASKED)

    def broken() -> bool:
        raise TimeoutError("core system away")

    for _ in range(5):
        with pytest.raises(TimeoutError):
            pins.check(card, CALL, broken)
    assert pins.check(card, CALL, Bank().check("000001")) == "wrong_pin"


def test_the_counter_keeps_no_card_number(own_redis: RedisProcess, sql: sessionmaker, tmp_path: Path) -> None:
    pins = counter(own_redis.url, sql, tmp_path)
    card = PinCard(pins.card_key(CARD), MASKED)
    for n in range(5):
        pins.check(card, CALL, Bank().check(f"00000{n}"))
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    kept = str({key: client.hgetall(key) for key in client.scan_iter("hotline:pin:*")})
    assert CARD not in kept and card.key in kept
    assert CARD not in str(pins.listing()) and PinLocks.__name__  # the listing shows the mask only
    assert pins.listing()[0].card_masked == MASKED


def test_redis_losing_its_data_during_the_fifth_check_still_locks(own_redis: RedisProcess, sql: sessionmaker,
                                                                  tmp_path: Path) -> None:
    pins, bank = counter(own_redis.url, sql, tmp_path), Bank()
    card = PinCard(pins.card_key(CARD), MASKED)
    for n in range(4):
        assert pins.check(card, CALL, bank.check(f"00000{n}")) == "wrong_pin"

    def wrong_while_redis_restarts() -> bool:
        redis.Redis.from_url(own_redis.url).flushall()
        return False

    assert pins.check(card, CALL, wrong_while_redis_restarts) == "locked"
    assert pins.check(card, CALL, bank.check(PIN)) == "locked"
    assert pins.listing()[0].locked_at is not None


def test_checks_a_dead_process_left_in_flight_stop_holding_the_tries(own_redis: RedisProcess, sql: sessionmaker,
                                                                     tmp_path: Path) -> None:
    """Five checks reserved by a FastAGI process killed before the bank answered: a minute later they are taken
    for abandoned, and the cardholder's right PIN is checked (they were never judged, so they lock nothing)."""
    now = [1_800_000_000.0]
    client = redis.Redis.from_url(own_redis.url)
    rules = PinPolicy()
    pins = PinLocks(client, PinRecords(sql, rules), EventLog(client, tmp_path / "spool"), "secret", rules,
                    clock=lambda: now[0])
    card = PinCard(pins.card_key(CARD), MASKED)
    reserve = pins._reserve  # what a check does before it asks the bank; the process dies right after
    for _ in range(5):
        assert reserve(card, pins._now())[0] == "try"

    now[0] += 61
    assert pins.check(card, CALL, Bank().check(PIN)) == "ok"
    assert pins.listing() == []
