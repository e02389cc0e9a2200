"""Agent conversations recorded (issue 19 section 1): which calls a queue records, the stereo file made of
Asterisk's MixMonitor audio, the pauses kept as offsets into the audio."""

from __future__ import annotations

import io
import threading
import time
import wave
from array import array

import pydantic
import pytest
import redis

from calls.conversations import AlreadySo, Conversation, Conversations, NotRecording
from hotline.app import Hotline
from recordings.conversation_audio import stereo_wav
from recordings.sampling import records
from routing.agents import Agent
from routing.config import QueueConfig
from softphone.agi_peer import AsteriskPeer


def test_a_sample_records_about_that_share_of_calls_and_always_the_same_ones() -> None:
    calls = [f"1712345678.{n}" for n in range(10000)]
    picked = [c for c in calls if records("25%", c)]
    assert 2300 <= len(picked) <= 2700  # binomial(10000, 0.25): 5 standard deviations is +-217
    assert picked == [c for c in calls if records("25%", c)]  # by the call id: every process agrees
    assert set(picked) <= {c for c in calls if records("50%", c)}  # a bigger share keeps the smaller one's calls
    assert all(records("all", c) for c in calls[:100]) and not any(records("none", c) for c in calls[:100])
    assert not any(records("0%", c) for c in calls[:100]) and all(records("100%", c) for c in calls[:100])


def test_the_queue_setting_takes_all_none_or_a_percentage_and_defaults_to_all() -> None:
    assert QueueConfig().record == "all"
    assert QueueConfig(record="none").record == "none" and QueueConfig(record="5%").record == "5%"
    for wrong in ("some", "150%", "25", "-1%"):
        with pytest.raises(pydantic.ValidationError):
            QueueConfig(record=wrong)


def test_mixmonitor_interleaved_audio_becomes_a_stereo_wav_with_the_caller_on_the_left() -> None:
    # MixMonitor D on the agent's channel: sample 2i is from the agent, 2i+1 to the agent (the caller).
    agent, caller = 1000, -2000
    raw = array("h", [agent, caller] * 8000).tobytes() + b"\x01"  # 1 s, and a byte cut mid-frame
    audio, seconds = stereo_wav(raw)
    assert seconds == 1.0
    with wave.open(io.BytesIO(audio)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth(), w.getnframes()) == (2, 8000, 2, 8000)
        frames = array("h", w.readframes(2))
    assert list(frames) == [caller, agent, caller, agent]


def test_pauses_are_kept_as_offsets_and_a_running_pause_ends_with_the_call(redis_url: str) -> None:
    now = [1000.0]
    talks = Conversations(redis.Redis.from_url(redis_url), "t:", clock=lambda: now[0])
    talks.start(Conversation("c1", "asterisk", "ann", "Local/x;1", 1000.0, "/spool/c1"))
    now[0] = 1004.5
    assert talks.pause("c1").paused_at == 4.5
    with pytest.raises(AlreadySo):
        talks.pause("c1")
    now[0] = 1010.0
    assert talks.resume("c1").pauses == ((4.5, 10.0),)
    with pytest.raises(AlreadySo):
        talks.resume("c1")
    now[0] = 1012.0
    talks.pause("c1")
    with pytest.raises(AlreadySo):  # the automatic resume of the first pause leaves the second alone
        talks.resume("c1", paused_at=4.5)
    now[0] = 1020.0
    ended = talks.end("c1")
    assert ended is not None and ended.pauses == ((4.5, 10.0), (12.0, 20.0)) and ended.paused_at is None
    assert talks.get("c1") is None and talks.end("c1") is None
    with pytest.raises(NotRecording):
        talks.pause("c1")


def test_a_transferred_call_keeps_one_conversation_per_leg_each_with_its_own_pauses(redis_url: str) -> None:
    now = [1000.0]
    talks = Conversations(redis.Redis.from_url(redis_url), "t:", clock=lambda: now[0])
    talks.start(Conversation("c1", "twilio", "ann", "CAann", 1000.0))
    now[0] = 1002.0
    talks.pause("c1", "ann")
    now[0] = 1003.0
    talks.resume("c1", "ann")
    # handed on to bob: his leg is recorded before Twilio's callback for ann's recording arrives
    now[0] = 1010.0
    talks.start(Conversation("c1", "twilio", "bob", "CAbob", 1010.0))
    now[0] = 1011.0
    assert talks.pause("c1").agent_id == "bob"  # naming no agent: the call's newest leg
    ann = talks.end("c1", "ann")
    assert ann is not None and ann.pauses == ((2.0, 3.0),) and ann.leg == "CAann"
    now[0] = 1012.5
    bob = talks.end("c1", "bob")
    assert bob is not None and bob.pauses == ((1.0, 2.5),)
    assert talks.get("c1") is None and talks.get("c1", "ann") is None


def _staffed(hotline: Hotline, record: str) -> Conversations:
    hotline.router.queues["general"] = hotline.router.queues["general"].model_copy(update={"record": record})
    hotline.agents.put(Agent("ann", "Ann", "PJSIP/1001", {"general": 5}, ["zh-CN"]))
    hotline.router.set_agent_state("ann", "available")
    return Conversations(hotline.redis, hotline.router.key(""))


def _dial(call: AsteriskPeer | object) -> str:
    (dial,) = [c for c in call.commands if c.startswith("EXEC Dial")]  # type: ignore[attr-defined]
    return dial


def test_a_recorded_queue_s_dial_starts_mixmonitor_on_the_agent_s_channel_and_the_pick_up_does_no_more(
    agi_server: tuple[str, int], hotline: Hotline,
) -> None:
    talks = _staffed(hotline, "all")
    talking = threading.Event()
    peer = AsteriskPeer(["0"], patience_s=30, talk_s=0, dial_gate=talking)
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(peer.dial(*agi_server)))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while (view := hotline.router.call(peer.uniqueid)) is None or view.state != "busy":
            assert time.monotonic() < deadline, "the agent never answered"
            time.sleep(0.02)
        conversation = talks.get(peer.uniqueid)
        spool = (hotline.settings.recordings_dir / "spool").resolve()
        assert conversation is not None and (conversation.channel, conversation.agent_id) == ("asterisk", "ann")
        assert conversation.path.startswith(f"{spool}/conv-{peer.uniqueid}-ann-")
        # the agent's channel, for pausing MixMonitor there, is what the answer script noted with the answer
        assert view.fields["answered_leg"] == "PJSIP/1001-0000002a"
    finally:
        talking.set()
        thread.join(15)
    (call,) = done
    assert _dial(call) == (f'EXEC Dial "PJSIP/1001,20,b(hotline-agent-record^s^1({conversation.path}))'
                           f'U(hotline-agent-answer^{peer.uniqueid}^ann)"')
    (agent_leg,) = call.agent_legs  # type: ignore[attr-defined]
    assert agent_leg.commands == []  # recorded or not, the pick-up is the router's answer and nothing else


def test_a_queue_set_to_none_dials_without_recording(agi_server: tuple[str, int], hotline: Hotline) -> None:
    talks = _staffed(hotline, "none")
    peer = AsteriskPeer(["0"], patience_s=30, talk_s=0.1)
    call = peer.dial(*agi_server)
    assert _dial(call) == f'EXEC Dial "PJSIP/1001,20,U(hotline-agent-answer^{peer.uniqueid}^ann)"'
    assert call.agent_legs[0].commands == [] and talks.get(peer.uniqueid) is None


def test_a_recorded_leg_nobody_picked_up_leaves_nothing_to_keep(
    agi_server: tuple[str, int], hotline: Hotline, caplog: pytest.LogCaptureFixture,
) -> None:
    talks = _staffed(hotline, "all")
    peer = AsteriskPeer(["0"], patience_s=1.5, dial_status="NOANSWER")
    call = peer.dial(*agi_server)
    assert "b(hotline-agent-record^s^1(" in _dial(call)
    assert talks.get(peer.uniqueid) is None  # dropped as the Dial returned, not waited for
    # nothing waits for a file of this leg (a keeper would wait for it for seconds, then warn)
    assert not [t for t in threading.enumerate() if t.name == f"keep-{peer.uniqueid[:24]}"]
    assert f"conversation of call {peer.uniqueid}: no recording at" not in caplog.text
