"""Twilio callers reach agents through the router: signed webhooks in, REST calls to agents out."""

from __future__ import annotations

import threading
import time

import pytest

from hotline.app import Hotline, create_app, prepare
from hotline.settings import Settings
from routing.agents import Agent
from routing.config import QueueConfig
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_api import HOTLINE_NUMBER, TwilioApi
from tests.fakes.twilio_caller import TwilioCaller


@pytest.fixture
def hotline(settings: Settings, twilio_api: TwilioApi) -> Hotline:
    fast = QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, wrap_up=5)
    return prepare(settings.model_copy(update={
        "twilio_api_base": twilio_api.server.url, "twilio_number": HOTLINE_NUMBER,
        "queues": {"general": fast},
    }))


@pytest.fixture
def caller(hotline: Hotline, twilio_api: TwilioApi) -> TwilioCaller:
    app = create_app(hotline=hotline)
    app.testing = True
    return TwilioCaller(app.test_client(), AUTH_TOKEN, PUBLIC_URL, caller="+8613912345678", api=twilio_api)


def staff(hotline: Hotline, *names: str) -> None:
    for name in names:
        hotline.agents.put(Agent(name, name.title(), f"client:{name}", {"general": 5, "inquiry": 5}, ["zh-CN"]))
        hotline.router.set_agent_state(name, "available")
        time.sleep(0.002)  # distinct idle-since: the first named has waited longest


def agent_leg(caller: TwilioCaller, n: int = 1) -> TwilioCaller:
    """The agent's side of the call, as Twilio would post it: the ``n``-th call the hotline created, picked up."""
    api = caller.api
    return TwilioCaller(caller.client, AUTH_TOKEN, PUBLIC_URL, caller=HOTLINE_NUMBER, api=api,
                        call_sid=api.leg_sids[n - 1] if api is not None and len(api.leg_sids) >= n else None)


def test_caller_pressing_0_is_connected_to_the_longest_idle_agent(
    caller: TwilioCaller, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann", "bob")
    caller.dial()
    caller.press("0")
    assert caller.queue() == "general:zh-CN"
    enqueue = caller.verb("Enqueue")
    assert enqueue.attrib["waitUrl"] == f"{PUBLIC_URL}/twilio/queue/wait?call={caller.call_sid}"

    (create,) = twilio_api.created(1)
    assert (create["To"], create["From"], create["Timeout"]) == ("client:ann", HOTLINE_NUMBER, "20")
    assert create["Url"] == f"{PUBLIC_URL}/twilio/agent/connect?call={caller.call_sid}&agent=ann"
    assert create["StatusCallback"] == f"{PUBLIC_URL}/twilio/agent/status?call={caller.call_sid}&agent=ann"

    caller.hold()  # in the queue: Twilio asks the waitUrl
    ann = agent_leg(caller)
    ann.post(create["Url"])
    assert ann.verbs() == ["Say", "Dial"]
    room = ann.verb("Dial").find("Conference")
    assert room.text == f"hotline-{caller.call_sid}"  # the conference named for exactly this caller
    assert (room.get("endConferenceOnExit"), room.get("beep")) == ("true", "false")
    assert ann.said()[0].startswith("来电，人工服务，已等待")  # no English code word in the Chinese whisper
    assert hotline.agents.get("ann").state == "busy"  # type: ignore[union-attr]

    # Twilio was asked to move the caller's call out of their queue, into the same conference.
    (path, form), = twilio_api.updates()
    assert path.endswith(f"/Calls/{caller.call_sid}.json")
    assert form["Url"] == f"{PUBLIC_URL}/twilio/caller/resume?call={caller.call_sid}"
    caller.follow()
    assert caller.verb("Dial").find("Conference").text == f"hotline-{caller.call_sid}"
    conference = twilio_api.conference(f"hotline-{caller.call_sid}")
    assert conference is not None and set(conference.participants) == {caller.call_sid, ann.call_sid}

    ann.leave_conference()  # ann hangs up: the conference ends (she ends it on exit), both Dial actions come
    assert hotline.agents.get("ann").state == "wrap_up"  # type: ignore[union-attr]
    assert caller.leave_conference() is not None and caller.verbs() == ["Hangup"]
    assert caller.hang_up() == 204
    assert hotline.router.call(caller.call_sid) is None


def test_agent_who_does_not_answer_goes_not_ready_and_the_next_agent_is_rung(
    caller: TwilioCaller, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann", "bob")
    caller.dial()
    caller.press("0")
    first = twilio_api.created(1)[0]
    ann = agent_leg(caller)
    status = ann.post_raw(first["StatusCallback"], CallStatus="no-answer")
    assert status.status_code == 204
    second = twilio_api.created(2)[1]
    assert second["To"] == "client:bob"
    assert hotline.agents.get("ann").state == "not_ready"  # type: ignore[union-attr]
    # ann picks up late: told the call is gone, hung up; bob still has it
    ann.post(first["Url"])
    assert ann.verbs() == ["Say", "Hangup"]
    assert hotline.router.call(caller.call_sid).agent == "bob"  # type: ignore[union-attr]


@pytest.mark.parametrize("scripts_forgotten", [False, True], ids=["", "after-a-redis-restart"])
def test_caller_hanging_up_while_an_agent_rings_cancels_the_ring(
    scripts_forgotten: bool, caller: TwilioCaller, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann")
    caller.dial()
    caller.press("0")
    twilio_api.created(1)
    deadline = time.monotonic() + 5
    while not hotline.router.call(caller.call_sid).fields.get("agent_leg"):  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    if scripts_forgotten:  # as after a Redis restart: the status callback's batch meets NOSCRIPT for the router
        hotline.redis.script_flush()
    assert caller.hang_up() == 204
    deadline = time.monotonic() + 5
    while not twilio_api.updates():
        assert time.monotonic() < deadline, "the agent's ring was never cancelled"
        time.sleep(0.01)
    path, form = twilio_api.updates()[0]
    assert path.endswith("/Calls/CAagentleg0000000000000000000001.json") and form == {"Status": "canceled"}
    assert hotline.agents.get("ann").state == "available"  # type: ignore[union-attr]


def test_waiting_caller_hears_music_then_takes_a_callback_that_keeps_the_place(
    caller: TwilioCaller, hotline: Hotline,
) -> None:
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5}, ["zh-CN"]))  # offline
    hotline.redis.hset(hotline.router.key("qconf:general"), "callback_after", "60")
    caller.dial()
    caller.press("0")
    queue = caller.queue()
    wait_url = caller.verb("Enqueue").attrib["waitUrl"]
    caller.post(wait_url, QueuePosition="1", QueueTime="0")
    assert caller.verbs() == ["Play"] and caller.verb("Play").text.endswith("/twilio/hold-music.wav")

    now = time.time()
    hotline.router.tick()  # nothing due yet: no callback offer
    caller.post(wait_url)
    assert caller.verbs() == ["Play"]
    hotline.router.scripts.run("tick", 500, now=now + 61)  # a minute later: the callback step is due
    caller.post(wait_url)
    gather = caller.verb("Gather")
    assert "按1" in "".join(caller.said())
    caller.post(gather.attrib["action"], Digits="1")
    assert caller.verbs() == ["Say", "Hangup"]
    assert caller.hang_up() == 204  # hanging up after choosing the callback keeps it
    view = hotline.router.call(caller.call_sid)
    assert view is not None and (view.state, view.queue) == ("callback", queue)
    assert view.fields["callback_number"] == "+8613912345678"


def test_a_caller_who_took_a_callback_and_calls_again_has_it_cancelled(
    caller: TwilioCaller, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5}, ["zh-CN"]))  # offline
    caller.dial()
    caller.press("0")
    caller.post(caller.verb("Enqueue").attrib["waitUrl"], QueuePosition="1", QueueTime="0")
    hotline.router.request_callback(caller.call_sid, "+8613912345678")
    assert caller.hang_up() == 204
    assert hotline.router.call(caller.call_sid).state == "callback"  # type: ignore[union-attr]

    again = TwilioCaller(caller.client, AUTH_TOKEN, PUBLIC_URL, caller="+8613912345678", api=twilio_api)
    again.dial()
    assert again.verb("Gather") is not None  # served as any new call: the menu
    assert hotline.router.call(caller.call_sid) is None  # the callback nobody needs now is gone
    assert hotline.router.call(again.call_sid) is None  # and the new call is in the menu, not queued


def test_hold_announces_position_and_expected_wait_when_confident(caller: TwilioCaller, hotline: Hotline) -> None:
    from routing.router import CallRequest

    staff(hotline, "ann")
    router = hotline.router
    router.enqueue(CallRequest("warm", "general", "zh-CN", 5, "asterisk"))
    router.answer("warm", "ann")  # ann is busy: one agent staffed, none free
    router.enqueue(CallRequest("ahead", "general", "zh-CN", 5, "asterisk"))
    wait_url = f"{PUBLIC_URL}/twilio/queue/wait?call={caller.call_sid}"

    hotline.redis.lpush(router.key("aht:general"), *(["120"] * 4))
    caller.dial()
    caller.press("0")
    caller.post(wait_url)
    assert caller.said() == [] and caller.verbs() == ["Play"]  # 4 handle times: not confident enough to say

    hotline.redis.hdel(router.key(f"call:{caller.call_sid}"), "announced_at")
    hotline.redis.lpush(router.key("aht:general"), "120")
    caller.post(wait_url)
    assert caller.said() == ["您前面还有1位客户，预计等待约4分钟。"]  # 2nd in line x 120 s / 1 agent
    caller.post(wait_url)
    assert caller.said() == []  # not again before HOTLINE_HOLD_ANNOUNCE_EVERY


def test_an_agent_who_picks_up_before_the_caller_reaches_their_queue_waits_for_them(
    caller: TwilioCaller, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann")
    caller.dial()
    caller.press("0")  # the caller hears the <Say> before <Enqueue>: their queue does not exist yet
    (create,) = twilio_api.created(1)
    ann = agent_leg(caller)
    ann.post(create["Url"])
    assert "Dial" not in ann.verbs()  # not yet: the caller is moved to the agent only once on hold

    caller.hold()  # the caller is in the queue (Twilio's first waitUrl request)
    assert ann.answer_agent_leg(ann.verb("Redirect").text or "", caller) == "bridged"
    assert hotline.agents.get("ann").state == "busy"  # type: ignore[union-attr]


def test_an_agent_who_picks_up_at_once_reaches_the_caller(
    caller: TwilioCaller, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann")
    caller.dial()
    caller.press("0")
    (create,) = twilio_api.created(1)
    ann = agent_leg(caller)
    waiter = threading.Timer(1.5, caller.hold)  # the caller reaches the queue while the agent waits
    waiter.start()
    assert ann.answer_agent_leg(create["Url"], caller) == "bridged"
    waiter.join()
    caller.leave_conference()
    assert caller.verbs() == ["Hangup"]


def test_position_is_announced_every_period_not_once_per_music_track(
    caller: TwilioCaller, hotline: Hotline,
) -> None:
    from routing.router import CallRequest
    from tests.fakes.clock import Clock

    staff(hotline, "ann")
    hotline.router.enqueue(CallRequest("warm", "general", "zh-CN", 5, "asterisk"))
    hotline.router.answer("warm", "ann")  # ann is busy: the caller waits
    hotline.redis.lpush(hotline.router.key("aht:general"), *(["120"] * 5))  # confident enough to announce
    caller.dial()
    caller.press("0")
    clock = hotline.router.clock = Clock(time.time())
    music = f"{PUBLIC_URL}/twilio/hold-music.wav"

    whole_track = "http://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3"  # minutes long
    heard = caller.hold_for(300, clock, {music: 10.0, whole_track: 180.0})

    times = [at for at, _ in heard]
    assert len(times) >= 5, heard  # HOTLINE_HOLD_ANNOUNCE_EVERY is 45 s: 300 s of hold hear it 5 or 6 times
    assert all(later - earlier <= 45 + 10 for earlier, later in zip(times, times[1:], strict=False))
    assert caller.client.get("/twilio/hold-music.wav").data[:4] == b"RIFF"  # the slice, served by the hotline


def test_a_callers_twilio_queue_is_deleted_when_the_call_ends_and_the_sweep_takes_stragglers(
    caller: TwilioCaller, hotline: Hotline, twilio_api: TwilioApi, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workers import jobs
    from workers.runner import JobWorker

    caller.dial()
    caller.press("0")
    caller.hold()
    twilio_api.queues[caller.queue_sid] = {"sid": caller.queue_sid, "friendly_name": f"hotline-{caller.call_sid}",
                                           "current_size": 0, "date_updated": "Sun, 06 Dec 2026 10:00:00 +0000"}
    caller.hang_up_holding(["action", "status"])
    monkeypatch.setattr(jobs, "_context", hotline)
    JobWorker([hotline.jobs], connection=hotline.jobs.connection).work(burst=True)
    assert twilio_api.deletes() == [f"/2010-04-01/Accounts/{hotline.settings.twilio_account_sid}"
                                    f"/Queues/{caller.queue_sid}.json"]

    old, busy = "Sun, 06 Dec 2026 08:00:00 +0000", "Sun, 06 Dec 2026 08:00:00 +0000"
    twilio_api.queues.update({
        "QUold": {"sid": "QUold", "friendly_name": "hotline-CAold", "current_size": 0, "date_updated": old},
        "QUbusy": {"sid": "QUbusy", "friendly_name": "hotline-CAbusy", "current_size": 1, "date_updated": busy},
        "QUtheirs": {"sid": "QUtheirs", "friendly_name": "sales", "current_size": 0, "date_updated": old},
    })
    assert jobs.sweep_twilio_queues() == 1
    assert sorted(twilio_api.queues) == ["QUbusy", "QUtheirs"]


def test_an_agents_voicemail_never_takes_the_caller_only_a_person_pressing_1(
    caller: TwilioCaller, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    hotline.agents.put(Agent("mia", "Mia", "+8613700000000", {"general": 5}, ["zh-CN"]))  # a mobile
    hotline.router.set_agent_state("mia", "available")
    time.sleep(0.002)
    staff(hotline, "bob")
    caller.dial()
    caller.press("0")
    caller.hold()
    (create,) = twilio_api.created(1)
    assert create["To"] == "+8613700000000"
    voicemail = agent_leg(caller)
    voicemail.post(create["Url"])
    assert voicemail.verbs() == ["Gather", "Redirect"]  # screened: no <Dial> before a key
    voicemail.wait()  # a mailbox presses nothing: Twilio falls through to the <Redirect>
    assert voicemail.verbs() == ["Hangup"]
    assert hotline.agents.get("mia").state == "not_ready"  # type: ignore[union-attr]
    second = twilio_api.created(2)[1]
    assert second["To"] == "client:bob" and "screen" not in second["Url"]  # an app endpoint has no voicemail
    bob = agent_leg(caller, 2)
    assert bob.answer_agent_leg(second["Url"], caller) == "bridged"


def test_an_agent_on_a_mobile_who_presses_1_takes_the_caller(
    caller: TwilioCaller, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    hotline.agents.put(Agent("mia", "Mia", "+8613700000000", {"general": 5}, ["zh-CN"]))
    hotline.router.set_agent_state("mia", "available")
    caller.dial()
    caller.press("0")
    caller.hold()
    (create,) = twilio_api.created(1)
    mia = agent_leg(caller)
    mia.post(create["Url"])
    assert mia.said() == ["热线来电，接听请按1。"]
    mia.press("1")
    assert mia.verbs() == ["Say", "Dial"]
    assert mia.verb("Dial").find("Conference").text == f"hotline-{caller.call_sid}"
    assert hotline.agents.get("mia").state == "busy"  # type: ignore[union-attr]


def test_without_the_hotline_number_agent_legs_are_not_rung_from_nobody_and_the_start_says_why(
    settings: Settings, caplog: pytest.LogCaptureFixture,
) -> None:
    hotline = prepare(settings)  # TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN set, HOTLINE_TWILIO_NUMBER not
    assert "twilio" not in hotline.connector.dialers
    assert any("HOTLINE_TWILIO_NUMBER is not" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def test_a_stalled_twilio_api_does_not_hold_a_ring_thread_and_the_call_is_offered_again(
    caller: TwilioCaller, hotline: Hotline,
) -> None:
    from tests.fakes.http_server import LocalHttpServer, Reply
    from webhooks.agent_legs import AgentLegConfig, TwilioAgentDialer

    def stall(request: object) -> Reply:
        time.sleep(3)  # accepts the connection, never answers in time
        return Reply(500)

    stalled = LocalHttpServer(stall).start()
    try:
        dialer = TwilioAgentDialer(AgentLegConfig(PUBLIC_URL, "ACx", "token", stalled.url, HOTLINE_NUMBER,
                                                  request_timeout_s=0.5), hotline.router, workers=1)
        hotline.connector.dialers["twilio"] = dialer
        staff(hotline, "ann")
        caller.dial()
        caller.press("0")
        deadline = time.monotonic() + 2.5
        while hotline.agents.get("ann").state != "not_ready":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the ring never timed out"
            time.sleep(0.05)
        assert hotline.router.call(caller.call_sid).state == "waiting"  # type: ignore[union-attr]
    finally:
        stalled.stop()
