"""Asterisk's conversation recordings as stereo WAV: caller on the left, agent on the right.

``MixMonitor(<file>.raw,D)`` on the agent's channel interleaves the audio *from* the channel (the agent) and the
audio *to* it (the caller) as 16-bit signed linear, 8 kHz, two channels, headerless (app_mixmonitor.c: sample
``2i`` is the read side, ``2i+1`` the write side; the ``D`` option's doc asks for the ``.raw`` extension). The
samples are swapped so the caller is on the left. Twilio's dual-channel recording of the agent's leg (started by
REST while it is in the call's conference) has the leg's inbound track, the agent, on the first channel and its
outbound track, what it hears from the conference (the caller), on the second (Twilio's Flex guide, recording the
customer's leg in a conference so: "1. The Customer channel [...] 2. The Agent channel [...] for the rest of the
conversation participants",
https://www.twilio.com/docs/flex/developer/insights/enable-dual-channel-recordings); a callback's
``<Dial record="record-from-answer-dual">`` likewise puts the parent call (the agent leg) first
(https://www.twilio.com/docs/voice/twiml/dial#record): ``caller_left`` swaps those too, so a reviewer
always finds the caller on the left and the agent on the right, whichever channel the call came in on.
"""

from __future__ import annotations

import io
import sys
import time
import wave
from array import array
from pathlib import Path

RATE, WIDTH, CHANNELS = 8000, 2, 2


def stereo_wav(raw: bytes, swap: bool = True) -> tuple[bytes, float]:
    """The WAV file of MixMonitor's interleaved audio, and its length in seconds."""
    raw = raw[: len(raw) - len(raw) % (WIDTH * CHANNELS)]  # a file cut mid-frame (a crash) keeps whole frames
    samples = array("h", raw)
    if sys.byteorder == "big":  # Asterisk writes the host's order; WAV is little-endian
        samples.byteswap()
    if swap:
        left = samples[1::2]
        samples[1::2] = samples[0::2]
        samples[0::2] = left
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(CHANNELS)
        w.setsampwidth(WIDTH)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return out.getvalue(), len(samples) / CHANNELS / RATE


def wait_until_written(path: Path, timeout_s: float = 3.0, quiet_s: float = 0.3) -> bool:
    """True once ``path`` exists and has not grown for ``quiet_s``: MixMonitor closes the file in its own
    thread shortly after the agent's channel hangs up. False when it never appears."""
    deadline = time.monotonic() + timeout_s
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = path.stat().st_size if path.exists() else -1
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif size >= 0 and time.monotonic() - since >= quiet_s:
            return True
        time.sleep(0.05)
    return size >= 0


def caller_left(wav: bytes) -> bytes:
    """A two-channel 16-bit WAV with its channels swapped; any other audio as it is (a mono recording)."""
    try:
        with wave.open(io.BytesIO(wav)) as w:
            if (w.getnchannels(), w.getsampwidth()) != (CHANNELS, WIDTH):
                return wav
            rate, frames = w.getframerate(), w.readframes(w.getnframes())
    except (wave.Error, EOFError):
        return wav
    samples = array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    left = samples[1::2]
    samples[1::2] = samples[0::2]
    samples[0::2] = left
    if sys.byteorder == "big":
        samples.byteswap()
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(CHANNELS)
        w.setsampwidth(WIDTH)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()
