"""Twilio callers and their agents meet in a conference named for the call, so a supervisor can listen, whisper
or barge, and the console can hold, hang up and transfer: against Twilio's REST fake and the signed webhooks."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from hotline.app import Hotline, create_app, prepare, twilio_call_control
from hotline.settings import Settings
from routing.agents import Agent
from routing.config import QueueConfig
from routing.router import CallView
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_api import HOTLINE_NUMBER, Conference, TwilioApi
from tests.fakes.twilio_caller import TwilioCaller
from tests.web import SessionClient, add_user
from workers.twilio_control import TwilioCallControl

MUSIC = f"{PUBLIC_URL}/twilio/hold-music.wav"


@pytest.fixture
def hotline(settings: Settings, twilio_api: TwilioApi) -> Hotline:
    fast = QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, wrap_up=5)
    return prepare(settings.model_copy(update={
        "twilio_api_base": twilio_api.server.url, "twilio_number": HOTLINE_NUMBER,
        "queues": {"general": fast, "inquiry": fast},
    }))


@pytest.fixture
def app(hotline: Hotline) -> Any:
    app = create_app(hotline=hotline)
    app.testing = True
    return app


@pytest.fixture
def control(hotline: Hotline) -> TwilioCallControl:
    built = twilio_call_control(hotline, MUSIC)
    assert built is not None
    return built


def new_caller(app: Any, api: TwilioApi, number: str = "+8613912345678") -> TwilioCaller:
    return TwilioCaller(app.test_client(), AUTH_TOKEN, PUBLIC_URL, caller=number, api=api)


def staff(hotline: Hotline, name: str, skills: dict[str, int] | None = None) -> None:
    hotline.agents.put(Agent(name, name.title(), f"client:{name}", skills or {"general": 5}, ["zh-CN"]))
    hotline.router.set_agent_state(name, "available")
    time.sleep(0.002)  # distinct idle-since: the first staffed has waited longest


def leg_of(caller: TwilioCaller, api: TwilioApi, agent: str, timeout_s: float = 5) -> tuple[TwilioCaller, str]:
    """The phone of ``agent`` picking up the call the hotline placed to it; with the connect URL."""
    deadline = time.monotonic() + timeout_s
    while not (legs := api.legs_to(f"client:{agent}")):
        assert time.monotonic() < deadline, f"{agent} was never rung"
        time.sleep(0.01)
    leg = legs[-1]
    return TwilioCaller(caller.client, AUTH_TOKEN, PUBLIC_URL, caller=HOTLINE_NUMBER, api=api, call_sid=leg.sid), leg.url


def connected(app: Any, hotline: Hotline, api: TwilioApi, agent: str = "ann") -> tuple[TwilioCaller, TwilioCaller]:
    """A caller who pressed 0, held, and was taken by ``agent``: both in the call's conference."""
    caller = new_caller(app, api)
    caller.dial()
    caller.press("0")
    caller.hold()
    leg, url = leg_of(caller, api, agent)
    assert leg.answer_agent_leg(url, caller) == "bridged"
    return caller, leg


def in_conference(app: Any, hotline: Hotline, api: TwilioApi) -> tuple[TwilioCaller, TwilioCaller, Conference]:
    """``connected`` (to ann), with the call's conference."""
    caller, leg = connected(app, hotline, api)
    room = api.conference(f"hotline-{caller.call_sid}")
    assert room is not None
    return caller, leg, room


def view(hotline: Hotline, call_id: str) -> CallView:
    found = hotline.router.call(call_id)
    assert found is not None
    return found


def test_the_caller_and_their_agent_talk_in_a_conference_named_for_the_call(
    app: Any, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann")
    caller, ann = connected(app, hotline, twilio_api)
    room = twilio_api.conference(f"hotline-{caller.call_sid}")
    assert room is not None and set(room.participants) == {caller.call_sid, ann.call_sid}
    # Either one leaving ends it: nobody is left alone in the conference.
    assert room.participants[caller.call_sid].end_conference_on_exit
    assert room.participants[ann.call_sid].end_conference_on_exit
    assert ann.verb("Dial").find("Conference").get("beep") == "false"
    ann.leave_conference()
    assert room.status == "completed"
    assert caller.leave_conference() is not None and caller.verbs() == ["Hangup"]
    assert hotline.agents.get("ann").state == "wrap_up"  # type: ignore[union-attr]


def test_two_agents_answering_at_once_each_get_the_caller_the_router_pinned_to_them(
    app: Any, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann")
    staff(hotline, "bob")
    first, second = new_caller(app, twilio_api, "+8613900000001"), new_caller(app, twilio_api, "+8613900000002")
    for caller in (first, second):
        caller.dial()
        caller.press("0")
        caller.hold()
    ann, ann_url = leg_of(first, twilio_api, "ann")
    bob, bob_url = leg_of(second, twilio_api, "bob")
    pinned = {view(hotline, c.call_sid).agent: c for c in (first, second)}
    assert set(pinned) == {"ann", "bob"}

    answers: dict[str, str] = {}
    pickups = [threading.Thread(target=lambda leg=leg, url=url, name=name: answers.__setitem__(
        name, leg.post(url).find("Dial/Conference").text)) for leg, url, name in ((ann, ann_url, "ann"),
                                                                                    (bob, bob_url, "bob"))]
    for pickup in pickups:
        pickup.start()
    for pickup in pickups:
        pickup.join()
    for caller in (first, second):
        caller.follow()  # Twilio moves each caller where the hotline said
    for name, leg in (("ann", ann), ("bob", bob)):
        caller = pinned[name]
        assert answers[name] == f"hotline-{caller.call_sid}"
        room = twilio_api.conference(f"hotline-{caller.call_sid}")
        assert room is not None and set(room.participants) == {caller.call_sid, leg.call_sid}


@pytest.mark.parametrize(("mode", "muted", "coaching"), [("listen", True, False), ("whisper", False, True),
                                                          ("barge", False, False)])
def test_a_supervisor_listens_whispers_or_barges_as_a_participant_of_the_conference(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, mode: str, muted: bool, coaching: bool,
) -> None:
    staff(hotline, "ann")
    caller, ann = connected(app, hotline, twilio_api)
    add_user(hotline, "sue", "supervisor")
    sue = SessionClient(app.test_client(), "sue")

    started = sue("POST", f"/api/calls/{caller.call_sid}/monitor", {"mode": mode, "endpoint": "client:sue"})

    assert started.status_code == 202, started.get_data(as_text=True)
    assert started.json == {"call_id": caller.call_sid, "agent": "ann", "mode": mode, "ringing": "client:sue"}
    room = twilio_api.conference(f"hotline-{caller.call_sid}")
    assert room is not None
    (supervisor,) = [p for sid, p in room.participants.items() if sid not in (caller.call_sid, ann.call_sid)]
    assert twilio_api.calls[supervisor.call_sid].to == "client:sue"
    assert (supervisor.muted, supervisor.coaching) == (muted, coaching)
    # Coaching is heard by the agent's leg only; a supervisor leaving never ends the caller's conversation.
    assert supervisor.call_sid_to_coach == (ann.call_sid if coaching else "")
    assert not supervisor.end_conference_on_exit and supervisor.beep == "false"
    (entry,) = hotline.audit.entries(action="call_monitored", target=caller.call_sid)
    assert (entry["actor"], entry["detail"]["mode"], entry["detail"]["agent"]) == ("sue", mode, "ann")


def test_a_supervisor_cannot_join_a_call_not_yet_connected_nor_ring_an_endpoint_twilio_cannot_reach(
    app: Any, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann")
    add_user(hotline, "sue", "supervisor")
    sue = SessionClient(app.test_client(), "sue")
    waiting = new_caller(app, twilio_api)
    waiting.dial()
    waiting.press("0")  # offered to ann, not answered: no conference yet
    early = sue("POST", f"/api/calls/{waiting.call_sid}/monitor", {"mode": "listen", "endpoint": "client:sue"})
    assert early.status_code == 404

    waiting.hold()
    leg, url = leg_of(waiting, twilio_api, "ann")
    assert leg.answer_agent_leg(url, waiting) == "bridged"
    bad = sue("POST", f"/api/calls/{waiting.call_sid}/monitor", {"mode": "listen", "endpoint": "sue"})
    assert bad.status_code == 400 and "client:" in bad.json["error"]
    room = twilio_api.conference(f"hotline-{waiting.call_sid}")
    assert room is not None and len(room.participants) == 2  # nobody rung
    assert hotline.audit.entries(action="call_monitored") == []


def test_the_agent_holds_and_takes_back_the_caller(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl,
) -> None:
    staff(hotline, "ann")
    caller, ann, room = in_conference(app, hotline, twilio_api)

    control.hold(view(hotline, caller.call_sid), True)
    held = room.participants[caller.call_sid]
    assert (held.hold, held.hold_url) == (True, MUSIC)
    assert not room.participants[ann.call_sid].hold  # the agent is not the one on hold

    control.hold(view(hotline, caller.call_sid), False)
    assert not room.participants[caller.call_sid].hold
    assert room.status == "in-progress" and hotline.agents.get("ann").state == "busy"  # type: ignore[union-attr]


def test_hanging_up_from_the_console_ends_the_callers_call_and_the_conference(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl,
) -> None:
    staff(hotline, "ann")
    caller, ann, room = in_conference(app, hotline, twilio_api)

    control.hangup(view(hotline, caller.call_sid))

    assert twilio_api.calls[caller.call_sid].status == "completed"
    assert room.status == "completed" and room.participants == {}  # the caller ended it on exit
    ann.leave_conference()  # the agent's Dial ends with it
    assert caller.hang_up() == 204  # the caller's final status callback
    assert hotline.router.call(caller.call_sid) is None
    assert hotline.agents.get("ann").state == "wrap_up"  # type: ignore[union-attr]


def test_a_cold_transfer_to_a_queue_puts_the_same_call_back_on_hold_until_that_queues_agent_takes_it(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl,
) -> None:
    from calls.control import TransferTarget

    staff(hotline, "ann")
    caller, ann = connected(app, hotline, twilio_api)
    first_room = twilio_api.conference(f"hotline-{caller.call_sid}")
    assert first_room is not None
    staff(hotline, "bob", {"inquiry": 5})

    control.transfer(view(hotline, caller.call_sid), TransferTarget("queue", "inquiry"), "cold")

    assert hotline.agents.get("ann").state == "wrap_up"  # type: ignore[union-attr]
    moved = view(hotline, caller.call_sid)  # the same call id, in line for the other queue
    assert moved.queue == "inquiry:zh-CN" and moved.state == "offered" and moved.agent == "bob"
    caller.follow()  # out of the conference, back on hold: the same step URL gets the caller's next result
    enqueue = caller.verb("Enqueue")
    assert enqueue.text == f"hotline-{caller.call_sid}"
    assert enqueue.get("waitUrl") == f"{PUBLIC_URL}/twilio/queue/wait?call={caller.call_sid}"
    assert first_room.status == "completed"
    ann.leave_conference()  # ann's Dial ends with the conference: nothing changes for the moved call
    assert view(hotline, caller.call_sid).agent == "bob"

    bob, url = leg_of(caller, twilio_api, "bob")
    bob.post(url)
    assert "Dial" not in bob.verbs()  # the caller is not back on hold yet: bob waits for them
    caller.hold()
    assert bob.answer_agent_leg(url, caller) == "bridged"
    room = twilio_api.conference(f"hotline-{caller.call_sid}")
    assert room is not None and room is not first_room
    assert set(room.participants) == {caller.call_sid, bob.call_sid}
    assert hotline.agents.get("bob").state == "busy"  # type: ignore[union-attr]

    bob.leave_conference()
    assert caller.leave_conference() is not None and caller.verbs() == ["Hangup"]
    assert caller.hang_up() == 204
    assert hotline.router.call(caller.call_sid) is None


def test_a_transfer_to_an_unknown_queue_or_a_warm_one_to_a_queue_is_refused_and_changes_nothing(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl,
) -> None:
    from calls.control import ControlRefused, TransferTarget

    staff(hotline, "ann")
    caller, _ = connected(app, hotline, twilio_api)
    for target, mode in ((TransferTarget("queue", "sales"), "cold"), (TransferTarget("queue", "inquiry"), "warm")):
        with pytest.raises(ControlRefused):
            control.transfer(view(hotline, caller.call_sid), target, mode)  # type: ignore[arg-type]
    assert view(hotline, caller.call_sid).state == "busy"
    assert twilio_api.conference(f"hotline-{caller.call_sid}") is not None
    assert twilio_api.next_redirect(caller.call_sid) is None


def outcomes(hotline: Hotline, call_id: str) -> list[str]:
    from routing.keys import EVENTS_STREAM

    return [f[b"outcome"].decode() for _, f in hotline.redis.xrange(EVENTS_STREAM)
            if f[b"type"] == b"call_ended" and f[b"call_id"].decode() == call_id]


def test_the_agent_hanging_up_first_then_the_caller_counts_the_call_as_routed_whatever_twilio_sends_first(
    app: Any, hotline: Hotline, twilio_api: TwilioApi,
) -> None:
    staff(hotline, "ann")
    caller, ann = connected(app, hotline, twilio_api)
    ann.leave_conference()  # the agent's Dial action: the router's call is over
    assert hotline.router.call(caller.call_sid) is None
    # The caller's final status callback before the Dial action of their conference (no order is documented).
    assert caller.hang_up() == 204
    assert outcomes(hotline, caller.call_sid) == ["routed"]


def test_a_warm_transfer_consults_the_target_with_the_caller_on_hold_then_hands_the_caller_over(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl,
) -> None:
    from calls.control import TransferTarget

    staff(hotline, "ann")
    hotline.agents.put(Agent("sue", "Sue", "client:sue", {"general": 5}, ["zh-CN"]))  # a supervisor's phone
    hotline.router.set_agent_state("sue", "available")  # free to take the call (reserved while consulted)
    caller, ann, room = in_conference(app, hotline, twilio_api)

    control.transfer(view(hotline, caller.call_sid), TransferTarget("supervisor", "sue"), "warm")

    (consult,) = [p for p in room.participants.values() if p.label == "consult"]
    assert twilio_api.calls[consult.call_sid].to == "client:sue"
    assert room.participants[caller.call_sid].hold and room.participants[caller.call_sid].hold_url == MUSIC
    assert not consult.muted and not consult.end_conference_on_exit

    control.complete_transfer(view(hotline, caller.call_sid))

    assert set(room.participants) == {caller.call_sid, consult.call_sid}  # the agent left, the conference goes on
    assert room.status == "in-progress" and not room.participants[caller.call_sid].hold
    assert consult.end_conference_on_exit  # sue hanging up ends it: the caller is never left alone
    assert hotline.agents.get("ann").state == "wrap_up"  # type: ignore[union-attr]
    ann.leave_conference()  # ann's Dial action comes: nothing more changes
    twilio_api.leave(consult.call_sid)  # sue hangs up: the conference ends
    assert room.status == "completed"
    assert caller.leave_conference() is not None and caller.verbs() == ["Hangup"]
    assert caller.hang_up() == 204
    assert outcomes(hotline, caller.call_sid) == ["routed"]


def test_a_cancelled_warm_transfer_drops_the_target_and_gives_the_agent_the_caller_back(
    app: Any, hotline: Hotline, twilio_api: TwilioApi, control: TwilioCallControl,
) -> None:
    from calls.control import ControlRefused, TransferTarget

    staff(hotline, "ann")
    staff(hotline, "bob")
    caller, ann, room = in_conference(app, hotline, twilio_api)
    with pytest.raises(ControlRefused):
        control.transfer(view(hotline, caller.call_sid), TransferTarget("agent", "nobody"), "warm")
    assert not room.participants[caller.call_sid].hold and len(room.participants) == 2  # refused: nothing done

    control.transfer(view(hotline, caller.call_sid), TransferTarget("agent", "bob"), "warm")
    assert len(room.participants) == 3
    control.cancel_transfer(view(hotline, caller.call_sid))

    assert set(room.participants) == {caller.call_sid, ann.call_sid}
    assert not room.participants[caller.call_sid].hold
    assert view(hotline, caller.call_sid).agent == "ann" and room.status == "in-progress"


def test_the_day_simulators_twilio_connects_a_caller_to_an_agent_through_the_conference(
    settings: Settings, tmp_path: Any,
) -> None:
    """The day simulator's Twilio (``simulate/twilio_cloud.py``) plays the same conference flow over real HTTP:
    the hotline's REST redirect moves its caller into the conference its agent's leg dialled."""
    import socket

    from werkzeug.serving import make_server

    from simulate.clock import DayClock, Measurements
    from simulate.phones import AgentPhones
    from simulate.twilio_cloud import TwilioCloud

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    clock, measured = DayClock(real_s=86.4), Measurements()  # a day second is a millisecond
    cloud = TwilioCloud(url, AUTH_TOKEN, clock, measured, AgentPhones(1), 0.0, seed=1)
    fast = QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, wrap_up=5)
    hotline = prepare(settings.model_copy(update={
        "public_url": url, "twilio_api_base": cloud.api_base, "twilio_number": HOTLINE_NUMBER,
        "queues": {"general": fast}}))
    server = make_server("127.0.0.1", port, create_app(hotline=hotline), threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        staff(hotline, "ann")
        sid, outcome = cloud.call(["0"], "+8613912345678", None, patience_s=20_000, talk_s=200)
        assert outcome.answered and not outcome.abandoned and not outcome.failed, measured.problems
        assert measured.problems == []
        deadline = time.monotonic() + 5
        while outcomes(hotline, sid) != ["routed"]:
            assert time.monotonic() < deadline, outcomes(hotline, sid)
            time.sleep(0.05)
        assert hotline.agents.get("ann").state == "wrap_up"  # type: ignore[union-attr]
    finally:
        server.shutdown()
        serving.join(5)
        cloud.close()
