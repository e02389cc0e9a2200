"""The engine on its own: (menu, session, event) -> (session, actions), with the demo bank on SQLite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bank.core_banking import DemoBank
from complaints.work_orders import WorkOrderDesk
from ivr import actions as act
from ivr import events as ev
from ivr.engine import Engine
from ivr.loader import load_menu_file
from ivr.model import Menu
from ivr.services import BankUnavailable, BusinessHours, ServiceTable
from ivr.session import Session
from store.db import connect

MENU = load_menu_file(Path(__file__).resolve().parent.parent / "ivr" / "menus" / "hotline.yaml")
CARD, PIN = "6222021234567894", "123456"
ALWAYS_OPEN = BusinessHours(opens=dt.time(0, 0), closes=dt.time(23, 59, 59))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    sql = connect(f"sqlite:///{tmp_path / 'bank.db'}")
    bank = DemoBank(sql, "test-card-secret")
    bank.seed()
    return Engine(ServiceTable(bank, WorkOrderDesk(sql), ALWAYS_OPEN), clock=lambda: 1_800_000_000.0)


def start(engine: Engine, menu: Menu = MENU, channel: str = "test") -> tuple[Session, list[act.Action]]:
    return engine.start(menu, ev.CallStarted("c1", "+8613812345678", "95555", channel))


def run(engine: Engine, session: Session, *steps: ev.Event) -> tuple[Session, list[act.Action]]:
    actions: list[act.Action] = []
    for event in steps:
        session, actions = engine.step(MENU, session, event)
    return session, actions


def texts(actions: list[act.Action]) -> list[str]:
    out = []
    for a in actions:
        if isinstance(a, act.Say):
            out.append(a.text)
        elif isinstance(a, act.Gather | act.Record):
            out.extend(s.text for s in a.prompt)
    return out


def test_start_greets_and_gathers_one_key(engine: Engine) -> None:
    session, actions = start(engine)
    assert isinstance(actions[0], act.Say) and actions[0].language == "zh-CN"
    gather = actions[1]
    assert isinstance(gather, act.Gather) and gather.max_digits == 1 and gather.finish_on_key == ""
    assert session.node == "main" and session.menu_version == MENU.version


def test_input_node_has_first_and_inter_digit_timeouts_and_finish_key(engine: Engine) -> None:
    _, actions = run(engine, start(engine)[0], ev.Digits("1"))
    (gather,) = actions
    assert isinstance(gather, act.Gather)
    assert (gather.timeout_s, gather.inter_digit_timeout_s, gather.finish_on_key) == (10, 5, "#")
    assert (gather.min_digits, gather.max_digits) == (16, 19)


def test_caller_can_type_ahead_through_menu_and_card_entry(engine: Engine) -> None:
    # "1", the card and "#" pressed during the welcome prompt: the next prompt is the PIN.
    session, actions = run(engine, start(engine)[0], ev.Digits("1" + CARD + "#"))
    assert session.node == "inquiry_pin"
    assert texts(actions) == ["请输入六位密码。"]


def test_session_keeps_only_masks_of_sensitive_digits(engine: Engine) -> None:
    card, pin = "6228480012345671", "654321"
    session, actions = run(engine, start(engine)[0], ev.Digits("1"), ev.Digits(card + "#"), ev.Digits(pin))
    stored = session.to_json()
    assert card not in stored and pin not in stored
    assert session.vars["card_number"] == "6228********5671"
    assert session.vars["pin"] == "******"
    assert [p["input"] for p in session.path][:5] == [
        "result open", "key 1", "digits 6228********5671", "result found", "digits ******"]
    assert "88.00" in texts(actions)[0]


def test_bad_luhn_is_reprompted_then_agent_after_retries(engine: Engine) -> None:
    bad = CARD[:-1] + "5"
    session, actions = run(engine, start(engine)[0], ev.Digits("1"), ev.Digits(bad + "#"))
    assert texts(actions) == ["卡号无效。", "请输入您的卡号，以井号键结束。"]
    assert session.path[-1]["input"] == "invalid 6222********7895"
    session, actions = run(engine, session, ev.Digits(bad + "#"), ev.Timeout())
    assert isinstance(actions[-1], act.Enqueue) and actions[-1].skills == ("inquiry",)


def test_three_wrong_pins_go_to_an_agent_never_a_loop(engine: Engine) -> None:
    session, _ = run(engine, start(engine)[0], ev.Digits("1"))
    for attempt in range(3):
        session, actions = run(engine, session, ev.Digits(CARD + "#"), ev.Digits("000000"))
        if attempt < 2:
            assert texts(actions) == ["卡号或密码不正确。", "请输入您的卡号，以井号键结束。"]
    assert texts(actions)[-2:] == ["验证失败次数过多，正在为您转接人工服务。", "正在为您转接人工服务，请稍候。"]
    enqueue = actions[-1]
    assert isinstance(enqueue, act.Enqueue) and enqueue.skills == ("inquiry",) and enqueue.priority == 5
    assert session.intent == "inquiry"


def test_nine_switches_language_and_back(engine: Engine) -> None:
    session, actions = run(engine, start(engine)[0], ev.Digits("9"))
    assert session.language == "en-US"
    assert texts(actions)[0].startswith("For balance and card status, press 1.")
    session, _ = run(engine, session, ev.Digits("9"))
    assert session.language == "zh-CN"


def test_no_input_reprompts_then_agent_in_business_hours(engine: Engine) -> None:
    session, actions = run(engine, start(engine)[0], ev.Timeout())
    assert texts(actions)[0] == "我们没有收到您的输入。"
    session, actions = run(engine, session, ev.Digits("7"))
    assert texts(actions)[0] == "您的输入有误。"
    session, actions = run(engine, session, ev.Timeout())
    assert isinstance(actions[-1], act.Enqueue) and actions[-1].skills == ("general",)


def test_after_hours_no_input_ends_politely(tmp_path: Path) -> None:
    sql = connect(f"sqlite:///{tmp_path / 'b.db'}")
    closed = BusinessHours(opens=dt.time(0, 0), closes=dt.time(0, 0))
    engine = Engine(ServiceTable(DemoBank(sql, "test-card-secret"), WorkOrderDesk(sql), closed))
    session, actions = run(engine, start(engine)[0], ev.Timeout(), ev.Timeout(), ev.Timeout())
    assert texts(actions)[-1] == "感谢您的来电，再见。"
    assert isinstance(actions[-1], act.Hangup) and session.ended


def test_zero_reaches_an_agent_from_any_menu(engine: Engine) -> None:
    session, actions = run(engine, start(engine)[0], ev.Digits("3"), ev.Digits("0"))
    assert isinstance(actions[-1], act.Enqueue) and actions[-1].skills == ("complaint",)
    session, actions = run(engine, start(engine)[0], ev.Digits("0"))
    assert isinstance(actions[-1], act.Enqueue) and actions[-1].skills == ("general",)


def test_hangup_mid_menu_ends_session_with_path(engine: Engine) -> None:
    session, actions = run(engine, start(engine)[0], ev.Digits("2"), ev.Hangup())
    assert session.ended and session.outcome == "hangup" and actions == []
    assert session.path[-1]["node"] == "loss_card" and session.path[-1]["input"] == "hangup"


def test_step_does_not_change_the_session_it_was_given(engine: Engine) -> None:
    before, _ = start(engine)
    snapshot = before.to_json()
    run(engine, before, ev.Digits("1"))
    assert before.to_json() == snapshot


class _CoreDownAtFreeze(DemoBank):
    """The demo bank, whose freeze call fails as a core system that times out would."""

    def freeze_card(self, token: str, id_last6: str) -> str | None:
        raise BankUnavailable("POST /cards/x/freeze: ReadTimeout")


def test_failed_freeze_goes_to_the_loss_queue_at_top_priority(tmp_path: Path) -> None:
    sql = connect(f"sqlite:///{tmp_path / 'b.db'}")
    bank = _CoreDownAtFreeze(sql, "test-card-secret")
    bank.seed()
    engine = Engine(ServiceTable(bank, WorkOrderDesk(sql), ALWAYS_OPEN))
    session, actions = run(engine, start(engine)[0], ev.Digits("2"), ev.Digits(CARD + "#"), ev.Digits("12345*"))
    enqueue = actions[-1]
    assert isinstance(enqueue, act.Enqueue)
    assert (enqueue.skills, enqueue.priority) == (("loss",), 10)
    assert session.path[-2]["input"] == "result error"


def test_hangup_while_queued_is_an_abandoned_call(engine: Engine) -> None:
    session, _ = run(engine, start(engine)[0], ev.Digits("0"))
    assert session.outcome == "queued"
    session, _ = run(engine, session, ev.Hangup())
    assert (session.outcome, session.intent, session.ended) == ("abandoned", "agent", True)


class _Floor:
    """Who is logged in, as the skill router answers: every queue but general overflows to general (as in
    ``routing.config.DEFAULT_QUEUES``); ``callbacks`` names the queues whose configuration offers callbacks."""

    def __init__(self, *staffed: tuple[str, str], callbacks: frozenset[str] = frozenset()) -> None:
        self.staffed_queues, self.callbacks = set(staffed), callbacks

    def staffed(self, skill: str, language: str) -> bool:
        return self.answering_queue(skill, language) is not None

    def answering_queue(self, skill: str, language: str) -> str | None:
        return next((q for q in (skill, "general") if (q, language) in self.staffed_queues), None)

    def offers_callback(self, skill: str) -> bool:
        return skill in self.callbacks


def _engine(tmp_path: Path, hours: BusinessHours, floor: _Floor | None) -> Engine:
    sql = connect(f"sqlite:///{tmp_path / 'bank.db'}")
    return Engine(ServiceTable(DemoBank(sql, "test-card-secret"), WorkOrderDesk(sql), hours, staffing=floor))


NEVER_OPEN = BusinessHours(opens=dt.time(0, 0), closes=dt.time(0, 0))


def test_agent_key_with_nobody_working_says_so_at_once_and_says_goodbye(tmp_path: Path) -> None:
    engine = _engine(tmp_path, ALWAYS_OPEN, _Floor(("general", "en-US")))  # English agents only
    session, _ = start(engine)
    session, actions = run(engine, session, ev.Digits("0"))
    assert not any(isinstance(a, act.Enqueue) for a in actions)
    assert "抱歉，目前没有可接听的客服人员，请稍后再拨。" in texts(actions)
    assert isinstance(actions[-1], act.Hangup) and session.outcome == "unanswered"
    assert session.path[-1]["input"] == "not queued: unstaffed"


def test_agent_key_with_an_agent_working_queues(tmp_path: Path) -> None:
    engine = _engine(tmp_path, ALWAYS_OPEN, _Floor(("general", "zh-CN")))
    session, _ = start(engine)
    session, actions = run(engine, session, ev.Digits("0"))
    assert isinstance(actions[-1], act.Enqueue) and session.outcome == "queued"


def test_after_hours_the_agent_key_gets_the_closed_message_but_lost_cards_still_queue(tmp_path: Path) -> None:
    engine = _engine(tmp_path, NEVER_OPEN, _Floor(("general", "zh-CN"), ("loss", "zh-CN")))
    session, _ = start(engine)
    session, actions = run(engine, session, ev.Digits("0"))
    assert "现在是人工服务的非工作时间，请在工作时间再来电。挂失业务二十四小时受理。" in texts(actions)
    assert not any(isinstance(a, act.Enqueue) for a in actions)
    # a lost card at night: wrong ID digits three times reach the loss queue all the same
    session, _ = start(engine)
    session, actions = run(engine, session, ev.Digits("2"), ev.Digits(CARD + "#"), ev.Digits("000000"),
                           ev.Digits("000000"), ev.Digits("000000"))
    assert isinstance(actions[-1], act.Enqueue) and actions[-1].skills == ("loss",)


def test_outside_hours_the_caller_hears_at_once_that_self_service_and_lost_cards_work(tmp_path: Path) -> None:
    engine = _engine(tmp_path, NEVER_OPEN, _Floor(("general", "zh-CN")))
    session, actions = start(engine)
    assert texts(actions)[1] == "现在是人工服务的非工作时间。自助查询和挂失服务二十四小时可用。"
    assert isinstance(actions[-1], act.Gather) and session.node == "main"
    session, actions = start(_engine(tmp_path, ALWAYS_OPEN, _Floor(("general", "zh-CN"))))
    assert "现在是人工服务的非工作时间。自助查询和挂失服务二十四小时可用。" not in texts(actions)


def test_agent_key_with_only_the_overflow_queue_working_goes_there_at_once(tmp_path: Path) -> None:
    engine = _engine(tmp_path, ALWAYS_OPEN, _Floor(("general", "zh-CN")))  # no complaint agent in
    session, actions = run(engine, start(engine)[0], ev.Digits("3"), ev.Digits("0"))
    assert isinstance(actions[-1], act.Enqueue) and actions[-1].skills == ("general",)
    assert session.intent == "complaint" and session.outcome == "queued"
    assert any(step["input"] == "overflow complaint -> general" for step in session.path)


def test_agent_key_with_nobody_working_offers_a_callback_where_the_channel_can_call_back(tmp_path: Path) -> None:
    floor = _Floor(("general", "en-US"), callbacks=frozenset({"general"}))
    engine = _engine(tmp_path, ALWAYS_OPEN, floor)
    session, actions = run(engine, start(engine, channel="twilio")[0], ev.Digits("0"))
    assert isinstance(actions[-1], act.Enqueue) and actions[-1].offer_callback
    assert session.path[-1]["input"] == "queued general (callback offered)"
    # Asterisk has no callback dialer: told at once, never held in silence
    session, actions = run(engine, start(engine, channel="asterisk")[0], ev.Digits("0"))
    assert "抱歉，目前没有可接听的客服人员，请稍后再拨。" in texts(actions)
    assert isinstance(actions[-1], act.Hangup) and not any(isinstance(a, act.Enqueue) for a in actions)
