"""The SQL store on SQLite and PostgreSQL: work orders, menu versions, the demo bank, and no secrets kept."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import redis
from sqlalchemy import func, select, text
from sqlalchemy.orm import sessionmaker

from bank.core_banking import DEMO_CARDS, DemoBank
from calls.menus import DEFAULT_MENU_FILE, MenuRepository
from complaints.work_orders import WorkOrderDesk
from hotline.app import Hotline, card_secret_of
from ivr.loader import MenuError
from ivr.services import Account, CallInfo
from store.db import connect
from store.models import Base, CardFreeze, DemoCard, MenuVersion, WorkOrder
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_caller import TwilioCaller

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

DEFAULT_MENU = DEFAULT_MENU_FILE.read_text(encoding="utf-8")
OLD_WELCOME, NEW_WELCOME = "您好，欢迎致电客户服务热线。", "您好，欢迎致电新版客户服务热线。"
CARD, PIN, ID_LAST6 = DEMO_CARDS[0].number, DEMO_CARDS[0].pin, DEMO_CARDS[0].id_last6
UNKNOWN_CARD = "4111111111111111"
CARD_SECRET = "test-card-secret-of-this-installation"


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def call(call_id: str = "CA-complaint-1", caller: str = "+8613812345678") -> CallInfo:
    return CallInfo(call_id=call_id, caller=caller, channel="twilio", language="zh-CN")


def count(sql: sessionmaker, model: type[Base]) -> int:
    with sql() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def in_threads(n: int, work: Callable[[int], str]) -> list[str]:
    """Run ``work(i)`` for i in range(n) at the same moment; every result, or the first failure."""
    start, results, errors = threading.Barrier(n), [""] * n, []

    def run(i: int) -> None:
        try:
            start.wait(5)
            results[i] = work(i)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


# -- work orders -------------------------------------------------------------------------------

def test_one_work_order_per_call_with_the_caller_masked(sql: sessionmaker) -> None:
    intake = WorkOrderDesk(sql)

    number = intake.open_work_order(call(), "fees", "RE-first")
    again = intake.open_work_order(call(), "fees", "RE-first")

    assert again == number
    assert number.startswith(f"{dt.datetime.now(dt.UTC):%y%m%d}") and number.isdigit() and len(number) == 12
    assert count(sql, WorkOrder) == 1
    with sql() as db:
        order = db.scalars(select(WorkOrder)).one()
    assert (order.number, order.call_id, order.category) == (number, "CA-complaint-1", "fees")
    assert order.caller_masked == "+86138****5678"
    assert (order.recording_ref, order.status, order.language) == ("RE-first", "open", "zh-CN")


def test_each_call_gets_its_own_work_order_and_unknown_categories_are_other(sql: sessionmaker) -> None:
    intake = WorkOrderDesk(sql)

    first = intake.open_work_order(call("CA-a"), "service", "RE-a")
    second = intake.open_work_order(call("CA-b", "+8613900001111"), "free beer", "RE-b")

    assert first != second
    with sql() as db:
        orders = {o.call_id: o for o in db.scalars(select(WorkOrder))}
    assert orders["CA-b"].category == "other" and orders["CA-b"].caller_masked == "+86139****1111"


def test_simultaneous_complaints_each_get_a_number(sql: sessionmaker) -> None:
    intake = WorkOrderDesk(sql)

    numbers = in_threads(6, lambda i: intake.open_work_order(call(f"CA-busy-{i}"), "fees", f"RE-{i}"))

    assert len(set(numbers)) == 6
    assert count(sql, WorkOrder) == 6


def test_a_retried_step_racing_the_first_gets_the_same_number(sql: sessionmaker) -> None:
    intake = WorkOrderDesk(sql)

    numbers = in_threads(4, lambda i: intake.open_work_order(call("CA-retried"), "fees", "RE-retried"))

    assert len(set(numbers)) == 1
    assert count(sql, WorkOrder) == 1


# -- menu versions -----------------------------------------------------------------------------

def welcome(menus: MenuRepository, version: int | None = None) -> str:
    menu = menus.live("hotline") if version is None else menus.version("hotline", version)
    prompt = menu.nodes["welcome"].prompt
    assert prompt is not None
    return prompt["zh-CN"]


def changed_menu() -> str:
    source = DEFAULT_MENU.replace(OLD_WELCOME, NEW_WELCOME)
    assert source != DEFAULT_MENU
    return source


def test_publishing_numbers_versions_and_the_latest_is_live(sql: sessionmaker, redis_client: redis.Redis) -> None:
    menus = MenuRepository(sql, redis_client)

    first = menus.publish(DEFAULT_MENU, published_by="alice")
    second = menus.publish(changed_menu(), published_by="bob")

    assert (first.version, second.version) == (1, 2)
    assert menus.live("hotline").version == 2
    assert welcome(menus).startswith(NEW_WELCOME)
    assert menus.version("hotline", 1).version == 1
    assert welcome(menus, 1).startswith(OLD_WELCOME)
    with sql() as db:
        by = {v: who for v, who in db.execute(select(MenuVersion.version, MenuVersion.published_by))}
    assert by == {1: "alice", 2: "bob"}


def test_another_process_sees_a_publish_without_restarting(sql: sessionmaker, redis_client: redis.Redis,
                                                           database_url: str) -> None:
    here, there_sql = MenuRepository(sql, redis_client), connect(database_url)
    try:
        there = MenuRepository(there_sql, redis_client)
        here.publish(DEFAULT_MENU, published_by="alice")
        assert there.live("hotline").version == 1

        here.publish(changed_menu(), published_by="bob")

        assert there.live("hotline").version == 2
        assert welcome(there).startswith(NEW_WELCOME)
    finally:
        there_sql.kw["bind"].dispose()


def test_live_menu_survives_redis_losing_its_data(sql: sessionmaker, redis_client: redis.Redis) -> None:
    menus = MenuRepository(sql, redis_client)
    menus.publish(DEFAULT_MENU, published_by="alice")
    menus.publish(changed_menu(), published_by="bob")

    redis_client.flushall()

    assert MenuRepository(sql, redis_client).live("hotline").version == 2


def test_ensure_published_does_not_add_a_version_each_start(sql: sessionmaker, redis_client: redis.Redis) -> None:
    menus = MenuRepository(sql, redis_client)

    assert menus.ensure_published("hotline").version == 1
    menus.publish(changed_menu(), published_by="bob")
    assert MenuRepository(sql, redis_client).ensure_published("hotline").version == 2

    assert count(sql, MenuVersion) == 2


INVALID_MENUS = {
    "broken yaml": "name: hotline\nnodes: [unclosed\n",
    "unknown field": DEFAULT_MENU + "\nsurprise: true\n",
    "missing target": DEFAULT_MENU.replace("    next: main\n", "    next: nowhere\n", 1),
    "unknown service": DEFAULT_MENU.replace("service: bank.lookup_card", "service: bank.transfer_all", 1),
}


@pytest.mark.parametrize("problem", INVALID_MENUS)
def test_an_invalid_menu_is_refused_and_the_live_one_stays(
    problem: str, sql: sessionmaker, redis_client: redis.Redis,
) -> None:
    menus = MenuRepository(sql, redis_client)
    menus.publish(DEFAULT_MENU, published_by="alice")
    assert INVALID_MENUS[problem] != DEFAULT_MENU

    with pytest.raises(MenuError):
        menus.publish(INVALID_MENUS[problem], published_by="mallory")

    assert menus.live("hotline").version == 1
    assert MenuRepository(sql, redis_client).live("hotline").version == 1
    assert welcome(menus).startswith(OLD_WELCOME)
    assert count(sql, MenuVersion) == 1


# -- the demo bank -----------------------------------------------------------------------------

def test_seeding_twice_changes_nothing(sql: sessionmaker) -> None:
    bank = DemoBank(sql, CARD_SECRET)
    bank.seed()
    with sql() as db:
        before = {c.token: (c.number_hash, c.balance, c.status) for c in db.scalars(select(DemoCard))}

    bank.seed()

    with sql() as db:
        after = {c.token: (c.number_hash, c.balance, c.status) for c in db.scalars(select(DemoCard))}
    assert after == before and len(after) == len(DEMO_CARDS)


@pytest.mark.parametrize("seed", DEMO_CARDS, ids=lambda c: c.number[-4:])
def test_demo_cards_answer_lookup_pin_balance_and_status(seed: Any, sql: sessionmaker) -> None:
    bank = DemoBank(sql, CARD_SECRET)
    bank.seed()

    card = bank.lookup_card(seed.number)

    assert card is not None and card.status == seed.status
    assert bank.verify_pin(card.token, seed.pin) is True
    assert bank.verify_pin(card.token, "999999") is False
    assert bank.account(card.token) == Account(seed.balance, seed.status)
    assert isinstance(bank.account(card.token).balance, Decimal)


def test_unknown_card_is_not_found(sql: sessionmaker) -> None:
    bank = DemoBank(sql, CARD_SECRET)
    bank.seed()

    assert bank.lookup_card(UNKNOWN_CARD) is None
    assert bank.lookup_card(CARD[:-1]) is None


def test_freeze_needs_the_id_digits_and_gives_one_reference(sql: sessionmaker) -> None:
    bank = DemoBank(sql, CARD_SECRET)
    bank.seed()
    card = bank.lookup_card(CARD)
    assert card is not None

    assert bank.freeze_card(card.token, "999999") is None
    assert bank.account(card.token).status == "active"

    typed_id = ID_LAST6.replace("X", "*")  # an X is typed with the star key
    reference = bank.freeze_card(card.token, typed_id)
    again = bank.freeze_card(card.token, typed_id)

    assert reference is not None and reference.isdigit() and len(reference) == 12
    assert again == reference
    assert bank.account(card.token).status == "frozen"
    found = bank.lookup_card(CARD)
    assert found is not None and found.status == "frozen"
    with sql() as db:
        assert list(db.scalars(select(CardFreeze.reference))) == [reference]


def test_simultaneous_loss_reports_of_one_card_give_one_reference(sql: sessionmaker) -> None:
    bank = DemoBank(sql, CARD_SECRET)
    bank.seed()
    card = bank.lookup_card(CARD)
    assert card is not None
    typed_id = ID_LAST6.replace("X", "*")

    references = in_threads(8, lambda i: bank.freeze_card(card.token, typed_id) or "")

    assert len(set(references)) == 1, f"callers were told {sorted(set(references))}"
    with sql() as db:
        assert list(db.scalars(select(CardFreeze.reference))) == references[:1]
        assert db.scalar(select(DemoCard.freeze_reference).where(DemoCard.token == card.token)) == references[0]


def test_freeze_of_an_unknown_token_is_none(sql: sessionmaker) -> None:
    bank = DemoBank(sql, CARD_SECRET)
    bank.seed()

    assert bank.freeze_card("no-such-token", ID_LAST6) is None
    assert count(sql, CardFreeze) == 0


# -- nothing a caller typed in confidence is kept -----------------------------------------------

def database_text(sql: sessionmaker) -> str:
    """Every value of every table, as text (timestamps left out: their digits are noise)."""
    values: list[str] = []
    with sql() as db:
        for table in Base.metadata.sorted_tables:
            for row in db.execute(text(f"SELECT * FROM {table.name}")):
                values.extend(str(v) for v in row if not isinstance(v, dt.datetime | dt.date))
    return "\n".join(values)


def test_no_card_number_pin_or_id_digits_anywhere_in_the_database(hotline: Hotline, client: Any) -> None:
    caller = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL, caller="+8613900007777")
    caller.dial()
    caller.press("1")
    caller.press(CARD + "#")
    caller.press("000000")  # a wrong PIN first
    caller.press(CARD + "#")
    caller.press(PIN)
    assert any(text.startswith("您的余额为12345.67元") for text in caller.said())
    caller.press("2")  # main menu
    caller.press("2")  # report the card lost
    caller.press(CARD + "#")
    caller.press(ID_LAST6.replace("X", "*"))
    assert any("您的卡片已冻结" in text for text in caller.said())
    caller.press("2")  # main menu
    caller.press("3")
    caller.press("2")
    caller.record("RE0000000000000000000000000000dump", 12)
    assert any("工单号" in text for text in caller.said())
    assert caller.hang_up() == 204
    bank = DemoBank(hotline.sql, card_secret_of(hotline.settings))
    bank.seed()
    for seed in DEMO_CARDS:
        token = bank.lookup_card(seed.number)
        assert token is not None and bank.verify_pin(token.token, seed.pin)

    stored = database_text(hotline.sql)

    assert "+86139****7777" in stored and CARD[-4:] in stored  # the dump does reach the rows
    for seed in DEMO_CARDS:
        for secret in {seed.number, seed.pin, seed.id_last6, seed.id_last6.replace("X", "*")}:
            assert secret not in stored, f"{secret} is in the database"
