"""In Chromium: a QA reviewer scoring a stereo conversation recording listens to the caller or the agent alone
(Web Audio gains on each channel) and sees where the agent paused the recording on the call's timeline."""

from __future__ import annotations

import datetime as dt
import io
import wave
from typing import Any

from complaints.recording_links import record_recording
from hotline.app import Hotline
from recordings.store import CONVERSATIONS
from tests.quality_floor import floor
from tests.test_browser_axe import violations
from tests.web import browser_login

GAINS = """(() => { const g = document.getElementById('listening').audio.gains;
                    return [g.caller.gain.value, g.agent.gain.value]; })()"""


def stereo_silence(seconds: float = 3.0, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0\0\0" * int(seconds * rate))
    return out.getvalue()


def test_the_reviewer_hears_one_party_alone_and_sees_the_recordings_pauses(
        hotline: Hotline, site: str, page: Any) -> None:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    floor(hotline, at)
    record_recording(hotline.sql, hotline.recordings.save(
        "RE-CA-ann-conv", "CA-ann", stereo_silence(), 3.0, kind=CONVERSATIONS, agent_id="ann",
        pauses=((1.0, 2.0),)))

    browser_login(page, site, "quinn", "/admin/quality")
    page.locator("#review-queue tr[data-call='CA-ann'] a.score").click()
    page.wait_for_selector("#channel-choice:not([hidden])")
    assert page.get_attribute("#listening", "data-channel") == "both"
    page.wait_for_selector("#timeline tr[data-kind=recording_paused]")
    assert violations(page) == []  # the control and the pause row (the axe walk does not reach this page)

    page.get_by_label("Caller only").check()
    assert page.get_attribute("#listening", "data-channel") == "caller"
    assert page.evaluate(GAINS) == [1, 0]
    page.get_by_label("Agent only").check()
    assert page.get_attribute("#listening", "data-channel") == "agent"
    assert page.evaluate(GAINS) == [0, 1]
    page.get_by_label("Both parties").focus()
    page.keyboard.press("Space")
    assert page.get_attribute("#listening", "data-channel") == "both"
    assert page.evaluate(GAINS) == [1, 1]

    paused = page.locator("#timeline tr[data-kind=recording_paused]")
    assert paused.count() == 1
    assert " ".join(paused.inner_text().split()) == "1.0 Recording paused 1.0–2.0 s"
    offsets = page.evaluate("""[...document.querySelectorAll('#timeline tbody tr')]
                               .map(r => [r.dataset.kind, parseFloat(r.cells[0].textContent)])""")
    at_pause = [kind for kind, _ in offsets].index("recording_paused")
    assert all(o <= 1.0 for _, o in offsets[:at_pause] if o == o)  # NaN: the IVR steps, which have no time
    assert all(o > 1.0 for _, o in offsets[at_pause + 1:] if o == o)
