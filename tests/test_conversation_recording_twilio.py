"""Twilio records agent conversations (issue 19 section 1): the agent's leg in the call's conference is recorded by
REST on two channels, the recording callback stores the file as the call's conversation, the console pauses the
recording."""

from __future__ import annotations

import io
import time
import wave
from array import array
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from hotline.app import Hotline, create_app, prepare
from hotline.settings import Settings
from routing.agents import Agent
from routing.config import QueueConfig
from store.models import Recording
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_api import HOTLINE_NUMBER, TwilioApi
from tests.fakes.twilio_caller import TwilioCaller
from tests.fakes.twilio_media import MediaServer, wav_bytes
from tests.web import SessionClient, add_user


@pytest.fixture
def hotline(settings: Settings, twilio_api: TwilioApi, media: MediaServer) -> Hotline:
    twilio_api.recordings = media._answer  # one Twilio API: calls, recordings and their media
    fast = QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, wrap_up=5)
    return prepare(settings.model_copy(update={
        "twilio_api_base": twilio_api.server.url, "twilio_number": HOTLINE_NUMBER,
        "queues": {"general": fast, "inquiry": fast.model_copy(update={"record": "none"})},
        "recording_pause_max_s": 1.0,
    }))


@pytest.fixture
def app(hotline: Hotline) -> Any:
    app = create_app(hotline=hotline)
    app.testing = True
    return app


@pytest.fixture
def caller(app: Any, twilio_api: TwilioApi) -> TwilioCaller:
    return TwilioCaller(app.test_client(), AUTH_TOKEN, PUBLIC_URL, caller="+8613912345678", api=twilio_api)


@pytest.fixture
def ann(hotline: Hotline, app: Any) -> Iterator[SessionClient]:
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5, "inquiry": 5}, ["zh-CN"]))
    hotline.router.set_agent_state("ann", "available")
    add_user(hotline, "ann", "agent", agent_id="ann")
    yield SessionClient(app.test_client(), "ann")


def connect(caller: TwilioCaller, twilio_api: TwilioApi, key: str = "0") -> TwilioCaller:
    """The caller asks for an agent; ann's phone is rung and she picks up: her leg's TwiML is fetched (its
    <Dial> joins the call's conference, where the hotline moves the caller)."""
    caller.dial()
    if key != "0":
        caller.press(key)  # a menu whose queue is another skill
    caller.press("0")
    (create,) = twilio_api.created(1)
    caller.hold()
    leg = TwilioCaller(caller.client, AUTH_TOKEN, PUBLIC_URL, caller=HOTLINE_NUMBER, api=twilio_api,
                       call_sid=twilio_api.leg_sids[0])
    assert leg.answer_agent_leg(create["Url"], caller) == "bridged"
    return leg


def wait_for_recording(media: MediaServer, leg: str) -> str:
    """The hotline starts the leg's recording off the request thread: its RecordingSid once Twilio has it."""
    deadline = time.monotonic() + 5
    while leg not in media.running:
        assert time.monotonic() < deadline, "the agent's leg was never recorded"
        time.sleep(0.02)
    return media.running[leg]


def test_the_agent_leg_is_recorded_on_two_channels_and_stored_as_the_calls_conversation(
    caller: TwilioCaller, twilio_api: TwilioApi, media: MediaServer, hotline: Hotline, ann: SessionClient, app: Any,
) -> None:
    leg = connect(caller, twilio_api)
    # Nothing on the TwiML records: <Dial record> is for two-party dials, a <Conference> would record one mixed
    # channel. Twilio's Recording resource of ann's leg does, both parties apart.
    dial = leg.verb("Dial")
    assert "record" not in dial.attrib and "record" not in dial.find("Conference").attrib
    rec = wait_for_recording(media, leg.call_sid)
    callback = f"{PUBLIC_URL}/twilio/recording?conversation={caller.call_sid}&agent=ann"
    assert media.created[rec] == {"RecordingChannels": "dual", "RecordingStatusCallback": callback,
                                  "RecordingStatusCallbackMethod": "POST", "RecordingStatusCallbackEvent": "completed"}

    # The agent pauses for the card number: Twilio's Recording resource of her leg is paused, with silence.
    paused = ann("POST", f"/api/calls/{caller.call_sid}/recording", {"paused": True})
    assert paused.status_code == 200, paused.get_data(as_text=True)
    assert paused.json["paused"] is True
    assert media.status_updates == [(leg.call_sid, rec, {"Status": "paused", "PauseBehavior": "silence"})]
    again = ann("POST", f"/api/calls/{caller.call_sid}/recording", {"paused": True})
    assert again.status_code == 409
    time.sleep(0.3)
    resumed = ann("POST", f"/api/calls/{caller.call_sid}/recording", {"paused": False})
    assert resumed.status_code == 200 and media.status[rec] == "in-progress"
    (start, end), = resumed.json["pauses"]
    assert 0.25 <= end - start <= 1.0
    actions = [e["action"] for e in hotline.audit.entries(target=caller.call_sid)]
    assert {"recording_paused", "recording_resumed"} <= set(actions)

    # The call ends; Twilio has the dual-channel recording and posts its callback.
    stereo = wav_bytes(1.0, channels=2)
    url, form = media.complete(leg.call_sid, stereo, twilio_api.server.url)
    assert url == callback and form["RecordingChannels"] == "2"
    assert leg.post_raw(url, **form).status_code == 204
    with hotline.sql() as db:
        row = db.scalars(select(Recording).where(Recording.ref == rec)).one()
    assert (row.kind, row.call_id, row.leg, row.agent_id) == ("conversation", caller.call_sid, leg.call_sid, "ann")
    assert row.pauses == [[start, end]]
    kept = (hotline.settings.recordings_dir / row.path).read_bytes()
    with wave.open(io.BytesIO(stereo)) as w:
        twilios = array("h", w.readframes(w.getnframes()))
    with wave.open(io.BytesIO(kept)) as w:
        assert (w.getnchannels(), w.getnframes()) == (2, 8000)
        ours = array("h", w.readframes(w.getnframes()))
    # Twilio records the leg's own audio (the agent) first, what it hears (the conference: the caller) second:
    # kept with the caller on the left, as Asterisk's are.
    assert (ours[0::2], ours[1::2]) == (twilios[1::2], twilios[0::2])
    assert rec in media.deleted  # Twilio's copy goes once ours is kept, as complaint messages'

    # A supervisor plays it through a signed link, audited, with the pause for the player's gap.
    add_user(hotline, "sue", "supervisor")
    sue = SessionClient(app.test_client(), "sue")
    link = sue("POST", f"/api/recordings/{rec}/link")
    assert (link.json["kind"], link.json["call_id"], link.json["pauses"]) == ("conversation", caller.call_sid,
                                                                             [[start, end]])
    played = sue("GET", link.json["url"])
    assert played.status_code == 200 and played.data == kept
    assert hotline.audit.entries(action="recording_played", target=rec)


def test_a_pause_nobody_ends_resumes_by_itself_audited(
    caller: TwilioCaller, twilio_api: TwilioApi, media: MediaServer, hotline: Hotline, ann: SessionClient,
) -> None:
    leg = connect(caller, twilio_api)
    rec = wait_for_recording(media, leg.call_sid)
    assert ann("POST", f"/api/calls/{caller.call_sid}/recording", {"paused": True}).status_code == 200
    deadline = time.monotonic() + 5
    while media.status[rec] != "in-progress":  # HOTLINE_RECORDING_PAUSE_MAX is 1 s here
        assert time.monotonic() < deadline, "the pause never ended"
        time.sleep(0.05)
    while not (resumed := hotline.audit.entries(action="recording_resumed", target=caller.call_sid)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert resumed[0]["actor"] == "system" and resumed[0]["detail"]["automatic"] is True
    assert 0.9 <= resumed[0]["detail"]["to_s"] - resumed[0]["detail"]["from_s"] <= 2.0


def test_another_agent_cannot_pause_and_a_queue_set_to_none_records_nothing(
    caller: TwilioCaller, twilio_api: TwilioApi, media: MediaServer, hotline: Hotline, ann: SessionClient, app: Any,
) -> None:
    hotline.router.queues["general"] = hotline.router.queues["general"].model_copy(update={"record": "none"})
    leg = connect(caller, twilio_api)
    assert "record" not in leg.verb("Dial").attrib
    time.sleep(0.3)
    assert leg.call_sid not in media.running and not media.created  # no recording was started by REST
    add_user(hotline, "bob", "agent", agent_id="bob")
    bob = SessionClient(app.test_client(), "bob")
    assert bob("POST", f"/api/calls/{caller.call_sid}/recording", {"paused": True}).status_code == 403
    nothing = ann("POST", f"/api/calls/{caller.call_sid}/recording", {"paused": True})
    assert nothing.status_code == 409 and "not being recorded" in nothing.json["error"]


def test_twilio_refuses_to_record_a_leg_not_in_progress_and_the_hotline_tries_again(
    caller: TwilioCaller, twilio_api: TwilioApi, media: MediaServer, hotline: Hotline, ann: SessionClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caller.dial()
    caller.press("0")
    (create,) = twilio_api.created(1)
    caller.hold()
    leg = TwilioCaller(caller.client, AUTH_TOKEN, PUBLIC_URL, caller=HOTLINE_NUMBER, api=twilio_api,
                       call_sid=twilio_api.leg_sids[0])
    twilio_api.calls[leg.call_sid].status = "ringing"  # as Twilio sees it for a moment: not in progress yet
    with caplog.at_level("WARNING"):
        assert leg.answer_agent_leg(create["Url"], caller) == "bridged"
        deadline = time.monotonic() + 3
        while "Twilio refused to start the conversation recording" not in caplog.text:
            assert time.monotonic() < deadline, "the refusal was not logged"
            time.sleep(0.02)
    assert not media.created  # Twilio refused it: "Call is not in-progress"
    twilio_api.calls[leg.call_sid].status = "in-progress"
    rec = wait_for_recording(media, leg.call_sid)  # tried again a second later, and recorded
    assert media.created[rec]["RecordingChannels"] == "dual"


def test_a_leg_twilio_never_records_is_logged_as_not_recorded(
    caller: TwilioCaller, twilio_api: TwilioApi, media: MediaServer, hotline: Hotline, ann: SessionClient,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("webhooks.hold.RECORDING_START_RETRY_S", 0.05)
    caller.dial()
    caller.press("0")
    (create,) = twilio_api.created(1)
    caller.hold()
    leg = TwilioCaller(caller.client, AUTH_TOKEN, PUBLIC_URL, caller=HOTLINE_NUMBER, api=twilio_api,
                       call_sid=twilio_api.leg_sids[0])
    twilio_api.calls[leg.call_sid].status = "completed"  # the agent hung up at once: nothing left to record
    with caplog.at_level("WARNING"):
        leg.answer_agent_leg(create["Url"], caller)
        deadline = time.monotonic() + 3
        while "it is not recorded" not in caplog.text:
            assert time.monotonic() < deadline, "the lost recording was not logged"
            time.sleep(0.02)
    assert caplog.text.count("Twilio refused to start the conversation recording") == 3
    assert f"call {caller.call_sid}: Twilio refused to record the conversation on agent leg {leg.call_sid}" in (
        caplog.text)
    assert not media.created
