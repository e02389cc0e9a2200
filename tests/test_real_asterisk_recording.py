"""Agent conversations recorded on a real Asterisk 22 (issue 19 section 1): MixMonitor started on the agent's
channel as the hold loop dials it (a pre-dial handler), one stereo file (caller left, agent right) from answer to hang-up, kept as the call's
conversation; a pause from the console is a silent gap of its length, audited.

The agent is a Local channel that talks all along (a 1500 Hz tone) and hangs up after a few seconds; the caller
speaks (a 300-900 Hz sweep, 3 s) once connected. Skipped where no Asterisk is built; required with CI=true."""

# ruff: noqa: F811  (the real-PBX fixtures are imported from test_real_asterisk, then named as parameters)

from __future__ import annotations

import hashlib
import io
import json
import math
import subprocess
import time
import wave
from array import array

import sqlalchemy

from hotline.app import Hotline, create_app
from hotline.settings import Settings
from tests.asterisk_pbx import Caller, RealAsterisk
from tests.test_real_asterisk import (  # noqa: F401  (module fixtures, shared with the other real-PBX tests)
    _event,
    fastagi,
    floor,
    pbx,
    rt_asterisk,
    rt_folder,
    rt_hotline,
    rt_redis,
    rt_settings,
    sql,
    staff,
)
from tests.web import SessionClient, add_user

WINDOW_S = 0.1
LOUD, QUIET = 1000.0, 100.0
"""RMS of 16-bit samples: the test tones are at 0.3-0.6 of full scale (~7000-14000), silence is 0."""


def _connect(pbx: RealAsterisk, settings: Settings) -> tuple[Caller, dict[str, str]]:
    call = pbx.call()
    call.wait_prompt("main")
    call.press("0")
    assert pbx.ami is not None
    bridged = pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter" and e.get("uniqueid") == call.ivr_id,
                               after=call.mark)
    agent = pbx.ami.wait_for(lambda e: e.get("event") == "BridgeEnter" and e.get("bridgeuniqueid")
                             == bridged["bridgeuniqueid"] and e.get("uniqueid") != call.ivr_id, after=call.mark)
    _event(settings, "call_answered", call.ivr_id)
    return call, agent


def _bridge_seconds(pbx: RealAsterisk, call: Caller, agent: dict[str, str]) -> float:
    assert pbx.ami is not None
    left = pbx.ami.wait_for(lambda e: e.get("event") == "BridgeLeave" and e.get("uniqueid") == agent["uniqueid"],
                            timeout_s=30, after=call.mark)
    return float(left["timestamp"]) - float(agent["timestamp"])


def _conversation(settings: Settings, call_id: str, timeout_s: float = 20) -> sqlalchemy.Row:
    deadline = time.monotonic() + timeout_s
    while not (rows := sql(settings, "SELECT * FROM recordings WHERE kind = 'conversation' AND call_id = :c",
                           c=call_id)):
        assert time.monotonic() < deadline, f"no conversation recording of {call_id}"
        time.sleep(0.2)
    (row,) = rows
    return row


def loudness(audio: bytes) -> tuple[list[float], list[float]]:
    """RMS per 100 ms window of the left and the right channel."""
    with wave.open(io.BytesIO(audio)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        samples = array("h", w.readframes(w.getnframes()))
    per = int(8000 * WINDOW_S) * 2
    out: tuple[list[float], list[float]] = ([], [])
    for start in range(0, len(samples) - per + 1, per):
        chunk = samples[start:start + per]
        for side in (0, 1):
            values = chunk[side::2]
            out[side].append(math.sqrt(sum(v * v for v in values) / len(values)))
    return out


def test_a_conversation_is_recorded_from_answer_to_hang_up_caller_left_agent_right(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    staff(floor, "rea", "Local/voice5@test-agents")
    call, agent = _connect(pbx, rt_settings)
    time.sleep(1.2)  # the agent greets; the caller listens
    call.speak()  # 3 s of the caller's voice, then silence (frames of it)
    bridge_s = _bridge_seconds(pbx, call, agent)
    row = _conversation(rt_settings, call.ivr_id)
    assert (row.agent_id, row.leg.startswith("Local/voice5@test-agents"), row.work_order) == ("rea", True, None)
    path = rt_settings.recordings_dir / row.path
    audio = path.read_bytes()
    assert hashlib.sha256(audio).hexdigest() == row.sha256
    channels = subprocess.run(["soxi", "-c", str(path)], capture_output=True, text=True, check=True).stdout
    seconds = float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True).stdout)
    assert channels.strip() == "2"
    assert abs(seconds - bridge_s) <= 0.5, (seconds, bridge_s)  # from answer to hang-up
    assert abs(row.duration_s - seconds) < 0.01
    left, right = loudness(audio)
    # The agent talks from the start to the end: the right channel; the caller only once they speak: the left.
    assert min(right[2:-2]) > LOUD, right
    assert max(left[:5]) < QUIET, left[:12]  # the caller listened first: nothing on the left
    speaking = [i for i, v in enumerate(left) if v > LOUD]
    assert speaking and 2.7 <= len(speaking) * WINDOW_S <= 3.3, left  # their 3 s, on the left only
    assert len(speaking) == speaking[-1] - speaking[0] + 1 and 0.5 <= speaking[0] * WINDOW_S <= 3.0, left
    assert not (rt_settings.recordings_dir / "spool" / (path.stem + ".raw")).exists()  # moved, not copied


def test_a_pause_from_the_console_is_a_silent_gap_of_its_length_and_audited(
    pbx: RealAsterisk, rt_settings: Settings, floor: Hotline,
) -> None:
    staff(floor, "pia", "Local/voice8@test-agents")
    add_user(floor, "pia", "agent", agent_id="pia")
    pia = SessionClient(create_app(hotline=floor).test_client(), "pia")
    call, agent = _connect(pbx, rt_settings)
    time.sleep(1.5)
    paused = pia("POST", f"/api/calls/{call.ivr_id}/recording", {"paused": True})
    assert paused.status_code == 200, paused.get_data(as_text=True)
    pause_started = time.monotonic()
    time.sleep(2.0)  # the caller reads out their card number: none of it may be in the file
    resumed = pia("POST", f"/api/calls/{call.ivr_id}/recording", {"paused": False})
    pause_s = time.monotonic() - pause_started
    assert resumed.status_code == 200, resumed.get_data(as_text=True)
    _bridge_seconds(pbx, call, agent)
    row = _conversation(rt_settings, call.ivr_id)
    (start, end), = json.loads(row.pauses)  # raw SQL: the JSON column's text
    assert abs((end - start) - pause_s) < 0.3
    _, right = loudness((rt_settings.recordings_dir / row.path).read_bytes())
    quiet = [i for i, v in enumerate(right) if v < QUIET]
    assert quiet, right
    gap_s = (quiet[-1] - quiet[0] + 1) * WINDOW_S
    assert len(quiet) == quiet[-1] - quiet[0] + 1, "one gap, not several"
    assert abs(gap_s - pause_s) <= 0.3, (gap_s, pause_s)
    assert abs(quiet[0] * WINDOW_S - start) <= 0.3, (quiet[0] * WINDOW_S, start)  # where the offsets say
    actions = {e["action"]: e for e in floor.audit.entries(target=call.ivr_id)}
    # The audit notes the offsets as the console saw them (from the agent's answer, as the router noted it); the
    # recording's own are moved to where the audio has the gap (its first frame comes a moment later).
    paused_entry, resumed_entry = actions["recording_paused"], actions["recording_resumed"]
    assert paused_entry["actor"] == "pia" and paused_entry["detail"]["at_s"] == resumed_entry["detail"]["from_s"]
    assert abs((resumed_entry["detail"]["to_s"] - resumed_entry["detail"]["from_s"]) - (end - start)) < 0.01
    assert 0 <= paused_entry["detail"]["at_s"] - start < 1.0
