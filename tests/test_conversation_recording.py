"""Agent conversations recorded (issue 19 section 1): which calls a queue records, the stereo file made of
Asterisk's MixMonitor audio, the pauses kept as offsets into the audio."""

from __future__ import annotations

import io
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
from routing.router import CallRequest
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


def _offered(hotline: Hotline, call_id: str, skill: str = "general") -> None:
    hotline.agents.put(Agent("ann", "Ann", "PJSIP/1001", {skill: 5}, ["zh-CN"]))
    hotline.router.set_agent_state("ann", "available")
    offers = hotline.router.enqueue(CallRequest(call_id, skill, "zh-CN", 5, "asterisk"))
    assert [o.agent_id for o in offers] == ["ann"]


def test_the_answer_script_names_the_file_mixmonitor_writes_when_the_queue_records(
    agi_server: tuple[str, int], hotline: Hotline,
) -> None:
    _offered(hotline, "1712345678.1")
    answered = AsteriskPeer([], caller="1001", script="agent-answered?call=1712345678.1&agent=ann").dial(*agi_server)
    (command,) = answered.commands
    spool = (hotline.settings.recordings_dir / "spool").resolve()
    assert command.startswith(f'SET VARIABLE HOTLINE_RECORD "{spool}/conv-1712345678.1-ann-')
    conversation = Conversations(hotline.redis, hotline.router.key("")).get("1712345678.1")
    assert conversation is not None and (conversation.channel, conversation.agent_id) == ("asterisk", "ann")
    assert command.endswith(f'{conversation.path}"')


def test_the_answer_script_records_nothing_for_a_queue_set_to_none(
    agi_server: tuple[str, int], hotline: Hotline,
) -> None:
    hotline.router.queues["general"] = hotline.router.queues["general"].model_copy(update={"record": "none"})
    _offered(hotline, "1712345678.2")
    answered = AsteriskPeer([], caller="1001", script="agent-answered?call=1712345678.2&agent=ann").dial(*agi_server)
    assert answered.commands == []
    assert Conversations(hotline.redis, hotline.router.key("")).get("1712345678.2") is None
