"""End to end over a real Asterisk 22 (tests/asterisk_pbx.py): Local-channel callers typing at a human pace,
the hotline's FastAGI server in its own process, the project's asterisk_conf/ as installed by an admin.

Skipped (with the reason) where no Asterisk is built; required with CI=true."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
import sqlalchemy

from hotline.app import Hotline, prepare
from hotline.cli import _build_prompts
from hotline.settings import Settings
from routing.agents import Agent
from routing.exceptions import RouterError
from routing.keys import EVENTS_STREAM
from tests.asterisk_pbx import Caller, RealAsterisk, SipPhone, available, free_port
from tests.asterisk_stack import AgiProcess, agi_environment, stack_settings
from tests.conftest import RedisProcess

ROOT = Path(__file__).resolve().parents[1]
CARD, PIN, ID6 = "6222021234567894", "123456", "12345*"
INQUIRY = (("main", "1"), ("inquiry_card", CARD + "#"), ("inquiry_pin", PIN))
"""The prompts an inquiring caller answers, and what they type."""


@pytest.fixture(scope="module")
def rt_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    why = available()
    if why:
        if os.environ.get("CI"):
            raise RuntimeError(f"CI needs the real Asterisk: {why}")
        pytest.skip(why)
    return tmp_path_factory.mktemp("real-asterisk")


@pytest.fixture(scope="module")
def rt_redis(rt_folder: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(rt_folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rt_asterisk(rt_folder: Path) -> RealAsterisk:
    """The PBX, installed but not yet started: its ports are chosen, so the hotline can be told them."""
    asterisk = RealAsterisk(rt_folder / "asterisk", free_port(), rt_folder / "var" / "recordings" / "prompts")
    asterisk.install()
    return asterisk


@pytest.fixture(scope="module")
def rt_settings(rt_folder: Path, rt_redis: RedisProcess, rt_asterisk: RealAsterisk) -> Settings:
    return stack_settings(rt_folder, rt_redis.url, rt_asterisk)


@pytest.fixture(scope="module")
def rt_hotline(rt_settings: Settings) -> Hotline:
    hotline = prepare(rt_settings)
    assert _build_prompts(hotline, verbose=False)["failed"] == 0  # `hotline prompts build`: espeak-ng + sox
    return hotline


@pytest.fixture(scope="module")
def fastagi(rt_hotline: Hotline, rt_settings: Settings, rt_folder: Path) -> Iterator[AgiProcess]:
    agi = AgiProcess(rt_settings, rt_folder / "agi.log")
    agi.start()
    yield agi
    agi.stop()


@pytest.fixture(scope="module")
def pbx(rt_asterisk: RealAsterisk, fastagi: AgiProcess) -> Iterator[RealAsterisk]:
    rt_asterisk.start()
    yield rt_asterisk
    rt_asterisk.stop()


def events(settings: Settings, kind: str, call_id: str) -> list[dict[str, str]]:
    rows = redis.Redis.from_url(settings.redis_url or "", decode_responses=True).xrange(EVENTS_STREAM)
    return [f for _, f in rows if f["type"] == kind and f.get("call_id") == call_id]


def ended(settings: Settings, call: Caller, timeout_s: float = 15) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = events(settings, "call_ended", call.ivr_id)
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no call_ended for {call.ivr_id}")


def sql(settings: Settings, query: str, **params: object) -> list[sqlalchemy.Row]:
    engine = sqlalchemy.create_engine(settings.sql_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sqlalchemy.text(query), params))
    finally:
        engine.dispose()


# -- the caller's journeys --------------------------------------------------------------------------------

def test_inquiry_reads_the_balance_back(pbx: RealAsterisk, rt_settings: Settings) -> None:
    call = pbx.call()
    call.answer(*INQUIRY)
    balance = call.wait_prompt("inquiry_after")  # the balance, filled for this call, then the choices
    assert "/dynamic/" in balance["command"]
    call.hang_up()
    call.wait_end()
    end = ended(rt_settings, call)
    assert (end["verified"], end["intent"], end["channel"]) == ("yes", "inquiry", "asterisk")
    assert call.heard()[:3] == ["hotline/hotline/zh-CN/welcome", "hotline/hotline/zh-CN/main",
                                "hotline/hotline/zh-CN/inquiry_card"]
    assert CARD not in str(call.commands()) and PIN not in str(call.commands())
    # Asterisk played the balance prompt from the file the hotline rendered (not a missing sound)
    dynamic = next(s for s in call.heard() if "/dynamic/" in s)
    assert (rt_settings.recordings_dir / "prompts" / (dynamic.removeprefix("hotline/") + ".wav")).exists()
    assert f"Playing '{dynamic}" in pbx.log.read_text()


def test_pin_typed_while_fastagi_is_paused_keeps_every_digit(
    pbx: RealAsterisk, rt_settings: Settings, fastagi: AgiProcess,
) -> None:
    """res_agi frees every frame it reads while no command runs: a paused server lost a digit every time
    when entries were read one WAIT FOR DIGIT at a time. One Read holds the whole entry."""
    call = pbx.call()
    call.answer(("main", "1"), ("inquiry_card", CARD + "#"))
    call.wait_prompt("inquiry_pin")
    assert fastagi.proc is not None
    call.press(PIN[:2])
    os.kill(fastagi.proc.pid, signal.SIGSTOP)
    try:
        call.press(PIN[2:4])  # 0.6 s of keys while the FastAGI process is stopped
    finally:
        os.kill(fastagi.proc.pid, signal.SIGCONT)
    call.press(PIN[4:])
    call.wait_prompt("inquiry_after")
    call.hang_up()
    assert ended(rt_settings, call)["verified"] == "yes"


def test_loss_report_freezes_the_card_and_reads_the_reference(pbx: RealAsterisk, rt_settings: Settings) -> None:
    call = pbx.call()
    call.answer(("main", "2"), ("loss_card", "6228480012345671#"), ("loss_id", "888888"))
    call.wait_prompt("loss_after")
    call.hang_up()
    end = ended(rt_settings, call)
    assert (end["intent"], end["outcome"]) == ("loss", "self_served")
    assert any("/dynamic/" in s for s in call.heard())  # the reference number, read back
    (status,) = sql(rt_settings, "SELECT status FROM demo_cards WHERE last4 = '5671'")
    assert status[0] == "frozen"


def _complaint(pbx: RealAsterisk, caller: str = "13812345678") -> Caller:
    call = pbx.call(caller)
    call.answer(("main", "3"), ("complaint_category", "2"))  # fees
    call.wait_command("RECORD FILE")
    call.speak()
    time.sleep(3.5)
    return call


def _work_order(settings: Settings, call: Caller, timeout_s: float = 15) -> sqlalchemy.Row:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = sql(settings, "SELECT number, category, recording_ref, channel FROM work_orders WHERE call_id = :c",
                   c=call.ivr_id)
        if rows:
            return rows[0]
        time.sleep(0.2)
    raise AssertionError(f"no work order for {call.ivr_id}")


def _stored_seconds(settings: Settings, ref: str, work_order: str) -> float:
    """The stored WAV's length; its row links it to the work order."""
    deadline = time.monotonic() + 10
    while not (rows := sql(settings, "SELECT path, work_order FROM recordings WHERE ref = :r", r=ref)):
        assert time.monotonic() < deadline, f"no recording row for {ref}"
        time.sleep(0.2)
    path, linked = rows[0]
    assert linked == work_order
    sidecar = json.loads((settings.recordings_dir / path).with_suffix(".json").read_text())
    assert sidecar["work_order"] == work_order  # the metadata file beside the audio says so too
    with wave.open(str(settings.recordings_dir / path)) as audio:
        return audio.getnframes() / audio.getframerate()


@pytest.mark.parametrize("ending", ["pound", "silence", "hangup"])
def test_complaint_is_recorded_and_a_work_order_opened(pbx: RealAsterisk, rt_settings: Settings, ending: str) -> None:
    call = _complaint(pbx)
    if ending == "pound":
        call.press("#")
    elif ending == "hangup":
        call.hang_up()  # after speaking: the message is a complaint all the same
    order = _work_order(rt_settings, call, timeout_s=20)
    assert (order.category, order.channel) == ("fees", "asterisk")
    assert _stored_seconds(rt_settings, order.recording_ref, order.number) >= 2.5
    assert not list((rt_settings.recordings_dir / "spool").glob(f"{call.ivr_id}*"))  # nothing left behind
    if ending != "hangup":
        call.wait_prompt("complaint_after")  # the work order number was read out before it
        assert any("/dynamic/" in s for s in call.heard())
        call.hang_up()
    end = ended(rt_settings, call)
    assert end["intent"] == "complaint"


def test_complaint_is_taken_even_when_the_beep_is_missing(pbx: RealAsterisk, rt_settings: Settings) -> None:
    """RECORD FILE ... BEEP answers ``-1 (randomerror)`` without a beep file: not a hang-up; recorded again
    without the beep."""
    beep = pbx.data / "sounds" / "beep.wav"
    beep.rename(beep.with_suffix(".away"))
    try:
        call = pbx.call()
        call.answer(("main", "3"), ("complaint_category", "1"))
        records = 0
        deadline = time.monotonic() + 20
        while (records := sum(c.startswith("RECORD FILE") for c in call.commands())) < 2:
            assert time.monotonic() < deadline, call.commands()
            time.sleep(0.1)
        call.speak()
        time.sleep(3.5)
        call.press("#")
        order = _work_order(rt_settings, call, timeout_s=20)
        assert order.category == "service" and records == 2
        first, again = [c for c in call.commands() if c.startswith("RECORD FILE")]
        assert "BEEP" in first and "BEEP" not in again
        call.hang_up()
        assert ended(rt_settings, call)["outcome"] == "self_served"  # not a silent hang-up counted as abandoned
    finally:
        beep.with_suffix(".away").rename(beep)


# -- agents ----------------------------------------------------------------------------------------------

def staff(hotline: Hotline, agent_id: str, endpoint: str, skill: str = "general", state: str = "available") -> None:
    hotline.agents.put(Agent(agent_id, agent_id.title(), endpoint, {skill: 5}, ["zh-CN", "en-US"]))
    hotline.router.set_agent_state(agent_id, state)
    time.sleep(0.01)  # the first one staffed has been idle longest


@pytest.fixture
def floor(rt_hotline: Hotline) -> Iterator[Hotline]:
    """The agents a test staffs leave the floor after it."""
    yield rt_hotline
    for agent in rt_hotline.agents.all():
        with contextlib.suppress(RouterError):  # still on a call a failed test left: the reconciler frees it
            rt_hotline.router.set_agent_state(agent.id, "offline")
            rt_hotline.agents.remove(agent.id)


def _state(hotline: Hotline, agent_id: str, wanted: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while (agent := hotline.agents.get(agent_id)) is None or agent.state != wanted:
        assert time.monotonic() < deadline, f"{agent_id} is {agent.state if agent else None}, not {wanted}"
        time.sleep(0.1)


def _event(settings: Settings, kind: str, call_id: str, timeout_s: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while not (found := events(settings, kind, call_id)):
        assert time.monotonic() < deadline, f"no {kind} for {call_id}"
        time.sleep(0.1)
    return found[0]


def test_caller_pressing_0_talks_to_the_agent_who_answers(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    staff(floor, "ann", "Local/talk3@test-agents")
    call = pbx.call()
    call.wait_prompt("main")
    call.press("0")
    dial = call.wait_command("EXEC Dial")
    # recorded (the queue's setting is "all"): MixMonitor starts on the agent's channel as it is dialled
    assert dial["command"].startswith('EXEC Dial "Local/talk3@test-agents,4,b(hotline-agent-record^s^1(')
    assert dial["command"].endswith("))U(hotline-agent-answer^" + call.ivr_id + '^ann)"')
    assert pbx.ami is not None
    bridged = pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter" and e.get("uniqueid") == call.ivr_id,
                               after=call.mark)
    agent_leg = pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter" and e.get("bridgeuniqueid")
                                 == bridged["bridgeuniqueid"] and e.get("uniqueid") != call.ivr_id, after=call.mark)
    assert agent_leg["channel"].startswith("Local/talk3@test-agents")
    answered = _event(rt_settings, "call_answered", call.ivr_id)
    completed = _event(rt_settings, "call_completed", call.ivr_id)
    assert (answered["agent"], completed["agent"]) == ("ann", "ann")
    assert float(completed["talk_s"]) >= 2.5
    _state(floor, "ann", "wrap_up", timeout_s=5)
    _state(floor, "ann", "available", timeout_s=10)  # after the 2 s wrap-up
    assert ended(rt_settings, call)["outcome"] == "routed"
    assert "hotline/hotline/zh-CN/agent_general" in call.heard()


def test_agent_who_never_answers_goes_not_ready_and_the_caller_is_offered_again(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    staff(floor, "ann", "Local/ring@test-agents")
    staff(floor, "bob", "Local/talk1@test-agents")
    call = pbx.call()
    call.wait_prompt("main")
    call.press("0")
    first = call.wait_command("EXEC Dial")
    assert "Local/ring@test-agents" in first["command"]
    _state(floor, "ann", "not_ready", timeout_s=15)
    assert _event(rt_settings, "call_answered", call.ivr_id)["agent"] == "bob"
    assert ended(rt_settings, call, timeout_s=20)["outcome"] == "routed"


def test_caller_who_hangs_up_on_hold_is_abandoned_and_leaves_the_queue(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    staff(floor, "ann", "Local/talk30@test-agents")
    first = pbx.call(caller="13900000001")  # takes the only agent
    first.wait_prompt("main")
    first.press("0")
    _event(rt_settings, "call_answered", first.ivr_id)
    call = pbx.call()  # the agent is working (on a call): this caller holds
    call.wait_prompt("main")
    call.press("0")
    assert pbx.ami is not None
    pbx.ami.wait_for(lambda e: e.get("event") == "MusicOnHoldStart", uniqueid=call.ivr_id)
    call.hang_up()
    end = ended(rt_settings, call)
    assert end["outcome"] == "abandoned"
    assert _event(rt_settings, "call_abandoned", call.ivr_id)
    view = floor.router.call(call.ivr_id)
    assert view is None or view.state != "waiting"
    first.hang_up()
    _state(floor, "ann", "available", timeout_s=10)


def test_agent_key_with_nobody_working_is_told_at_once(pbx: RealAsterisk, rt_settings: Settings, floor: Hotline) -> None:
    """No agent available, on a call or in wrap-up for the queue: no 30 minutes of hold music."""
    staff(floor, "ann", "Local/talk1@test-agents", state="not_ready")  # on a break
    call = pbx.call()
    call.wait_prompt("main")
    call.press("0")
    call.wait_end(20)
    assert call.heard()[-2:] == ["hotline/hotline/zh-CN/defaults.no_agent", "hotline/hotline/zh-CN/goodbye"]
    assert not any(c.startswith("SET MUSIC") for c in call.commands())
    assert ended(rt_settings, call)["outcome"] == "unanswered"


def test_complaint_caller_with_no_complaint_agent_is_put_through_to_the_overflow_queue_at_once(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    """Only a general agent is in: the complaint call goes straight to the queue complaints overflow to."""
    staff(floor, "gus", "Local/talk1@test-agents")  # skill general only
    call = pbx.call()
    call.wait_prompt("main")
    call.press("3")
    call.wait_prompt("complaint_category")
    call.press("0")
    dial = call.wait_command("EXEC Dial")
    assert "Local/talk1@test-agents" in dial["command"]
    assert _event(rt_settings, "call_queued", call.ivr_id)["skill"] == "general"
    assert ended(rt_settings, call, timeout_s=20)["outcome"] == "routed"


def test_on_a_holiday_the_caller_hears_agents_are_closed_and_the_agent_key_gets_the_closed_message(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    """The holiday is written by this process (as the admin page would); the FastAGI process, started long
    before, reads it once its calendar cache expires: no restart."""
    today = dt.datetime.now(ZoneInfo(rt_settings.timezone)).date()
    staff(floor, "ann", "Local/talk1@test-agents")  # an agent is in: the hours alone close the queue
    floor.hours.add_holiday(today, "测试假日")
    try:
        time.sleep(floor.hours.ttl_s + 0.5)  # the other process's cache of the calendar expires
        call = pbx.call()
        call.wait_prompt("main")
        call.press("0")
        call.wait_end(20)
        heard = call.heard()
        assert heard[:3] == ["hotline/hotline/zh-CN/welcome", "hotline/hotline/zh-CN/closed_notice",
                             "hotline/hotline/zh-CN/main"]
        assert heard[-2:] == ["hotline/hotline/zh-CN/defaults.closed", "hotline/hotline/zh-CN/goodbye"]
        assert not any(c.startswith("EXEC Dial") for c in call.commands())
        assert ended(rt_settings, call)["outcome"] == "unanswered"
    finally:
        floor.hours.remove_holiday(today)
        time.sleep(floor.hours.ttl_s + 0.5)


def test_language_switch_plays_the_english_menu(pbx: RealAsterisk, rt_settings: Settings) -> None:
    call = pbx.call()
    call.wait_prompt("main")
    call.press("9")
    call.wait_prompt("en-US/main")
    call.hang_up()
    assert ended(rt_settings, call)["language"] == "en-US"
    assert call.heard()[-1] == "hotline/hotline/en-US/main"


def test_blind_transfer_into_a_queue_is_a_call_of_its_own(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    staff(floor, "lin", "Local/talk1@test-agents", skill="loss")
    call = pbx.call(caller="13912345678", exten="loss", context="hotline-queues")
    answered = _event(rt_settings, "call_answered", call.ivr_id)
    assert answered["agent"] == "lin"
    started = _event(rt_settings, "call_started", call.ivr_id)
    assert (started["channel"], started["called"], started["caller"]) == ("asterisk", "loss", "139****5678")
    end = ended(rt_settings, call, timeout_s=20)
    assert (end["intent"], end["outcome"]) == ("loss", "routed")


# -- return visits ---------------------------------------------------------------------------------------

def test_return_visit_over_ami_originate_rated_5_reopens_the_work_order(
    pbx: RealAsterisk, rt_settings: Settings, rt_hotline: Hotline,
) -> None:
    call = _complaint(pbx, caller="13700001111")
    call.press("#")
    order = _work_order(rt_settings, call)
    call.wait_prompt("complaint_after")
    call.hang_up()
    rt_hotline.desk.act(order.number, "resolve", "supervisor", note="fee refunded")
    ((visit_id, status),) = sql(rt_settings, "SELECT v.id, v.status FROM return_visits v JOIN work_orders w "
                                "ON w.id = v.work_order_id WHERE w.number = :n", n=order.number)
    assert status == "scheduled"
    assert pbx.ami is not None
    mark = len(pbx.ami.events)
    outcome: list[str] = []
    dialing = threading.Thread(target=lambda: outcome.append(rt_hotline.visits.dial(visit_id, 1)))
    dialing.start()  # the job: AMI Originate into hotline-outbound, then waits for OriginateResponse
    rating = pbx.ami.wait_for(lambda e: e.get("event") == "AGIExecStart" and "/rating" in e.get("command", ""),
                              after=mark, timeout_s=60)
    customer_phone = rating["channel"].replace(";1", ";2")  # the customer's side of the Local channel
    pbx.ami.action("PlayDTMF", Channel=customer_phone, Digit="5", Duration="200")  # very dissatisfied
    pbx.ami.wait_for(lambda e: e.get("event") == "AGIExecStart" and e.get("uniqueid") == rating["uniqueid"]
                     and e["command"].startswith("EXEC Read") and "/rating" not in e["command"], after=mark)
    time.sleep(0.5)  # "you chose very dissatisfied; to confirm press 1" has started
    pbx.ami.action("PlayDTMF", Channel=customer_phone, Digit="1", Duration="200")  # confirmed
    dialing.join(30)
    assert outcome and outcome[0].startswith("attempt 1: answered")
    deadline = time.monotonic() + 30
    while sql(rt_settings, "SELECT status FROM work_orders WHERE number = :n", n=order.number)[0][0] != "reopened":
        assert time.monotonic() < deadline, "the rating did not reopen the work order"
        time.sleep(0.2)
    ((rating_stored,),) = sql(rt_settings, "SELECT rating FROM work_orders WHERE number = :n", n=order.number)
    assert rating_stored == 5
    assert "survey?visit=" in rating["command"] or rating["channel"].startswith("Local/13700001111@test-customers")


# -- many at once ----------------------------------------------------------------------------------------

def _inquiry(pbx: RealAsterisk) -> Caller:
    call = pbx.call()
    call.answer(*INQUIRY, timeout_s=60)
    call.wait_prompt("inquiry_after", timeout_s=60)
    call.hang_up()
    return call


def test_100_simultaneous_callers_are_all_verified(pbx: RealAsterisk, rt_settings: Settings) -> None:
    with ThreadPoolExecutor(100) as pool:
        calls = list(pool.map(lambda _: _inquiry(pbx), range(100)))
    verified = [ended(rt_settings, call, timeout_s=30)["verified"] for call in calls]
    assert verified.count("yes") == 100  # every digit of 100 cards and PINs arrived


def test_plain_agi_launcher_runs_a_call_with_the_hotlines_environment(
    pbx: RealAsterisk, rt_settings: Settings, fastagi: AgiProcess,
) -> None:
    """``AGI(hotline-agi)``: Asterisk runs the launcher `hotline agi-script install` wrote, with its own
    environment (no virtual environment, no settings): the call is served all the same."""
    env = agi_environment(rt_settings)
    subprocess.run([sys.executable, "-m", "hotline.cli", "agi-script", "install", "--dir", str(pbx.agi_bin)],
                   env=env, cwd=ROOT, check=True, capture_output=True)
    fastagi.stop()  # nothing but the plain AGI script can answer now
    try:
        call = pbx.call(exten="95555", context="test-plain-agi")
        call.answer(*INQUIRY)
        call.wait_prompt("inquiry_after")
        call.hang_up()
        assert ended(rt_settings, call)["verified"] == "yes"
    finally:
        fastagi.start()


# -- agents' desk phones on PJSIP (the project's pjsip.conf) ----------------------------------------------

def test_agent_logs_in_pauses_and_out_from_a_pjsip_phone(pbx: RealAsterisk, floor: Hotline) -> None:
    staff(floor, "ann", "PJSIP/1001", state="offline")
    phone = SipPhone(pbx, "1001", "change-me-1001")
    phone.register()
    for code, state in (("*1", "available"), ("*3", "not_ready"), ("*1", "available"), ("*2", "offline")):
        phone.dial(code)
        _state(floor, "ann", state, timeout_s=5)


@pytest.mark.parametrize("exten", ["1", "2"])
def test_a_dialplan_without_the_fastagi_secret_runs_no_script(
    pbx: RealAsterisk, floor: Hotline, fastagi: AgiProcess, exten: str,
) -> None:
    """Issue 17: ``AGI(agi://.../agent-login?action=logout)`` without the secret (1) or with another (2) is
    refused by the hotline: the agent whose phone this is stays logged in, not one AGI command runs."""
    staff(floor, "dan", f"Local/{exten}@test-no-secret")
    seen = fastagi.log.stat().st_size
    call = pbx.call(exten=exten, context="test-no-secret")
    call.wait_end(timeout_s=20)
    assert call.commands() == []
    assert b"refused: wrong or missing secret (script 'agent-login'" in fastagi.log.read_bytes()[seen:]
    agent = floor.agents.get("dan")
    assert agent is not None and agent.state == "available"


def test_caller_is_put_through_to_an_agent_on_a_pjsip_phone(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    staff(floor, "bea", "PJSIP/1002")
    phone = SipPhone(pbx, "1002", "change-me-1002")
    phone.register()
    phone.pick_up()
    call = pbx.call()
    call.wait_prompt("main")
    call.press("0")
    assert pbx.ami is not None
    bridged = pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter", uniqueid=call.ivr_id)
    agent_leg = pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter" and e.get("bridgeuniqueid")
                                 == bridged["bridgeuniqueid"] and e.get("uniqueid") != call.ivr_id)
    assert agent_leg["channel"].startswith("PJSIP/1002-")
    completed = _event(rt_settings, "call_completed", call.ivr_id)  # the phone answered, talked, hung up
    phone.hang_up_phone()
    assert completed["agent"] == "bea" and float(completed["talk_s"]) >= 1.5
    _state(floor, "bea", "available", timeout_s=10)
    assert ended(rt_settings, call)["outcome"] == "routed"


# -- supervisors on a live call ----------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "options"), [("listen", "qE"), ("whisper", "qwE"), ("barge", "qBE")])
def test_a_supervisor_joins_an_agents_call_from_the_api_over_chanspy(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline, mode: str, options: str,
) -> None:
    """Asterisk rings the supervisor's phone and ChanSpy attaches to the agent's channel, in the mode asked;
    the audit log says who joined which call how. (The supervisor's phone here answers on a Local channel.)"""
    from hotline.app import create_app
    from tests.web import SessionClient, add_user

    agent = f"kai-{mode}"  # one per mode: a failed mode leaves its agent on the call, not the next one's
    staff(floor, agent, "Local/talk8@test-agents")
    call = pbx.call()
    call.wait_prompt("main")
    call.press("0")
    assert pbx.ami is not None
    pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter", uniqueid=call.ivr_id)
    _event(rt_settings, "call_answered", call.ivr_id)
    add_user(floor, f"sue-{mode}", "supervisor")
    sue = SessionClient(create_app(hotline=floor).test_client(), f"sue-{mode}")
    phone = "Local/s@test-caller"
    started = sue("POST", f"/api/calls/{call.ivr_id}/monitor", {"mode": mode, "endpoint": phone})
    assert started.status_code == 202, started.get_data(as_text=True)
    spy = pbx.ami.wait_for(lambda e: e.get("event") == "ChanSpyStart", after=call.mark)
    assert spy["spyeechannel"].startswith("Local/talk8@test-agents")
    assert spy["spyerchannel"].startswith("Local/s@test-caller")
    # The spy runs ChanSpy with the mode's options (Originate runs the application itself: no Newexten).
    spying = [line.split("!") for line in pbx.cli("core show channels concise").splitlines()
              if line.startswith(spy["spyerchannel"])]
    assert [(fields[5], fields[6]) for fields in spying] == [("ChanSpy", f"Local/talk8@test-agents,{options}")]
    entry = floor.audit.entries(action="call_monitored", target=call.ivr_id)[0]
    assert (entry["actor"], entry["detail"]["mode"], entry["detail"]["agent"]) == (f"sue-{mode}", mode, agent)
    wrong = sue("POST", "/api/calls/CA-nobody/monitor", {"mode": mode, "endpoint": phone})
    assert wrong.status_code == 404 and "没有接通坐席" in wrong.json["error"]  # zh-CN, the pages' default
    ended(rt_settings, call, timeout_s=30)
