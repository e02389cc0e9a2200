"""The hotline's own hold music: a short slice, so the hold document can end when the next announcement is due.

Twilio asks the waitUrl again only when its document runs out of verbs
(https://www.twilio.com/docs/voice/twiml/enqueue#waiturl): a whole track in one ``<Play>`` delays every position
announcement by the track's length. A slice played ``loop`` times fits the announcement period instead.
"""

from __future__ import annotations

import functools
import io
import math
import wave

SLICE_S = 10
RATE = 8000
_NOTES = (261.63, 329.63, 392.00, 523.25, 392.00, 329.63, 293.66, 349.23, 440.00, 349.23)
"""A slow, quiet arpeggio, one note a second: it loops without a seam."""


@functools.cache
def slice_wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(b"".join(_note(freq) for freq in _NOTES[:SLICE_S]))
    return out.getvalue()


def _note(freq: float) -> bytes:
    samples = []
    for i in range(RATE):
        envelope = math.sin(math.pi * i / RATE)  # fades in and out: no click between notes
        samples.append(int(3000 * envelope * math.sin(2 * math.pi * freq * i / RATE)))
    return b"".join(s.to_bytes(2, "little", signed=True) for s in samples)


def loops_until(due_in_s: float, slice_s: float, most_s: float) -> int:
    """How many times to play the slice so the document ends by the next announcement (at least once,
    never ``0``: Twilio reads loop=0 as forever, https://www.twilio.com/docs/voice/twiml/play#attributes-loop)."""
    if slice_s <= 0:
        return 1
    return max(1, math.floor(min(due_in_s, most_s) / slice_s))
