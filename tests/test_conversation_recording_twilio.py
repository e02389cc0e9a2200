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


def test_the_recording_starts_when_the_agent_joins_after_the_whisper_and_pauses_count_from_there(
    caller: TwilioCaller, twilio_api: TwilioApi, media: MediaServer, hotline: Hotline, ann: SessionClient,
) -> None:
    caller.dial()
    caller.press("0")
    (create,) = twilio_api.created(1)
    caller.hold()
    leg = TwilioCaller(caller.client, AUTH_TOKEN, PUBLIC_URL, caller=HOTLINE_NUMBER, api=twilio_api,
                       call_sid=twilio_api.leg_sids[0])
    whisper: dict[str, float] = {}

    def hearing_the_whisper() -> None:
        # Ann hears "a call about ..., waited N s" before her <Dial><Conference>: nothing records her leg yet,
        # and the console cannot pause what does not run.
        assert leg.verbs() == ["Say", "Dial"] and leg.said()
        whisper["from"] = time.time()
        time.sleep(0.8)
        assert not media.created and leg.call_sid not in media.running
        early = ann("POST", f"/api/calls/{caller.call_sid}/recording", {"paused": True})
        assert early.status_code == 409 and "not being recorded" in early.json["error"]
        whisper["to"] = time.time()

    assert leg.answer_agent_leg(create["Url"], caller, during_whisper=hearing_the_whisper) == "bridged"
    rec = wait_for_recording(media, leg.call_sid)  # her join's callback started it
    assert media.began[rec] >= whisper["to"]
    # Both <Conference> nouns ask for the participant-join events, at the same signed URL: whichever side
    # joins first sets the conference's (https://www.twilio.com/docs/voice/twiml/conference#attributes-statuscallback).
    events = f"{PUBLIC_URL}/twilio/conference/status?call={caller.call_sid}"
    for side in (leg, caller):
        noun = side.verb("Dial").find("Conference")
        assert noun is not None
        assert (noun.get("statusCallback"), noun.get("statusCallbackEvent"), noun.get("statusCallbackMethod")) == (
            events, "join leave", "POST")
    joins = [(form["CallSid"], status) for url, form, status in twilio_api.delivered
             if form["StatusCallbackEvent"] == "participant-join"]
    assert joins == [(caller.call_sid, 204), (leg.call_sid, 204)]  # the caller, moved in at once, joined first

    time.sleep(0.4)
    asked = time.time()
    assert ann("POST", f"/api/calls/{caller.call_sid}/recording", {"paused": True}).status_code == 200
    time.sleep(0.2)
    resumed = ann("POST", f"/api/calls/{caller.call_sid}/recording", {"paused": False})
    (start, end), = resumed.json["pauses"]
    # The gap sits where it is in Twilio's audio, which began at the join: not 0.8 s (the whisper) later.
    assert abs(start - (asked - media.began[rec])) < 0.25
    assert 0.35 <= start <= asked - whisper["from"] - 0.6 and 0.15 <= end - start < 1.0
    url, form = media.complete(leg.call_sid, wav_bytes(2.0, channels=2), twilio_api.server.url)
    assert leg.post_raw(url, **form).status_code == 204
    with hotline.sql() as db:
        assert db.scalars(select(Recording).where(Recording.ref == rec)).one().pauses == [[start, end]]


@pytest.mark.parametrize("mode", ["listen", "whisper", "barge"])
def test_a_supervisor_joining_the_conference_starts_no_recording(
    caller: TwilioCaller, twilio_api: TwilioApi, media: MediaServer, hotline: Hotline, ann: SessionClient, app: Any,
    mode: str,
) -> None:
    leg = connect(caller, twilio_api)
    rec = wait_for_recording(media, leg.call_sid)
    add_user(hotline, "sue", "supervisor")
    sue = SessionClient(app.test_client(), "sue")
    assert sue("POST", f"/api/calls/{caller.call_sid}/monitor",
               {"mode": mode, "endpoint": "client:sue"}).status_code == 202
    joined = [form for _, form, status in twilio_api.delivered if status == 204]
    (supervisor,) = [f for f in joined if f["CallSid"] not in (caller.call_sid, leg.call_sid)]
    assert supervisor["StatusCallbackEvent"] == "participant-join"
    assert supervisor["Coaching"] == ("true" if mode == "whisper" else "false")
    time.sleep(0.3)
    assert list(media.created) == [rec]  # still ann's one recording, on her leg
    assert set(media.running) == {leg.call_sid}


def test_late_and_repeated_join_callbacks_start_the_agents_recording_once_and_nobody_elses(
    caller: TwilioCaller, twilio_api: TwilioApi, media: MediaServer, hotline: Hotline, ann: SessionClient, app: Any,
) -> None:
    twilio_api.late_callbacks = True  # Twilio posts the joins whenever it does: after everything else here
    leg = connect(caller, twilio_api)
    add_user(hotline, "sue", "supervisor")
    sue = SessionClient(app.test_client(), "sue")
    assert sue("POST", f"/api/calls/{caller.call_sid}/monitor",
               {"mode": "listen", "endpoint": "client:sue"}).status_code == 202
    time.sleep(0.3)
    assert not media.created  # joined, but the hotline has not heard of it
    owed = list(twilio_api.owed)
    assert [form["CallSid"] for _, form in owed][:2] == [leg.call_sid, caller.call_sid] and len(owed) == 3

    # A forged join (not signed by the account) is refused and starts nothing.
    url, form = owed[0]
    forged = caller.client.post(url.removeprefix(PUBLIC_URL), data=form, headers={"X-Twilio-Signature": "bm9wZQ=="})
    assert forged.status_code == 403

    # Newest first: the supervisor's join, then the caller's: nothing; then ann's: her leg is recorded.
    assert twilio_api.deliver_owed(count=2, newest_first=True) == [204, 204]
    time.sleep(0.3)
    assert not media.created
    assert twilio_api.deliver_owed() == [204]
    rec = wait_for_recording(media, leg.call_sid)
    # A status callback may come twice (https://www.twilio.com/docs/usage/webhooks/webhooks-overview).
    assert twilio_api.webhook is not None and twilio_api.webhook(url, form) == 204
    time.sleep(0.3)
    assert list(media.created) == [rec]


def test_a_join_never_heard_of_is_recorded_from_the_fallback_with_a_warning(
    caller: TwilioCaller, twilio_api: TwilioApi, media: MediaServer, hotline: Hotline, ann: SessionClient,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("webhooks.hold.JOIN_WAIT_S", 0.5)
    twilio_api.late_callbacks = True  # and never delivered: Twilio retries no status callback
    with caplog.at_level("WARNING"):
        connected_at = time.time()
        leg = connect(caller, twilio_api)
        rec = wait_for_recording(media, leg.call_sid)
    assert media.began[rec] - connected_at >= 0.5
    assert f"no participant-join callback for agent leg {leg.call_sid}" in caplog.text
    # The join arriving after all starts nothing more.
    assert twilio_api.deliver_owed() == [204, 204]
    time.sleep(0.3)
    assert list(media.created) == [rec]


def test_a_call_that_ends_before_the_agent_joins_is_not_recorded_by_the_fallback(
    caller: TwilioCaller, twilio_api: TwilioApi, media: MediaServer, hotline: Hotline, ann: SessionClient,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("webhooks.hold.JOIN_WAIT_S", 0.3)
    twilio_api.late_callbacks = True
    caller.dial()
    caller.press("0")
    (create,) = twilio_api.created(1)
    caller.hold()
    leg = TwilioCaller(caller.client, AUTH_TOKEN, PUBLIC_URL, caller=HOTLINE_NUMBER, api=twilio_api,
                       call_sid=twilio_api.leg_sids[0])

    def caller_hangs_up() -> None:
        assert caller.hang_up() == 204

    with caplog.at_level("WARNING"):
        # The caller hangs up while ann hears the whisper: the call is over before her leg joins.
        leg.answer_agent_leg(create["Url"], caller, during_whisper=caller_hangs_up)
        time.sleep(0.8)
    assert not media.created
    assert "no participant-join callback" not in caplog.text
