"""In Chromium: a QA reviewer scores a recorded call from their review queue while listening; the agent
acknowledges the evaluation; the scorecard shows it."""

from __future__ import annotations

import datetime as dt
import io
import wave
from typing import Any

from complaints.recording_links import record_recording
from hotline.app import Hotline
from tests.quality_floor import floor
from tests.web import browser_login


def silence_wav(seconds: float = 2.0, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
    return out.getvalue()


def test_a_qa_reviewer_scores_a_recorded_call_the_agent_acknowledges_the_scorecard_shows_it(
        hotline: Hotline, site: str, page: Any) -> None:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    floor(hotline, at)
    record_recording(hotline.sql, hotline.recordings.save("RE-CA-ann-2", "CA-ann", silence_wav(), 2.0))

    browser_login(page, site, "quinn", "/admin/quality")
    row = page.locator("#review-queue tr[data-call='CA-ann']")
    assert "share of the agent's calls" in row.inner_text()
    row.locator("a.score").click()
    page.wait_for_selector("#score-form")
    assert "node=main input=0" in page.inner_text("#timeline")  # the IVR path beside the player
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    assert abs(page.evaluate("document.getElementById('player').duration") - 2.0) < 0.05
    page.evaluate("document.getElementById('player').currentTime = 1.2")
    page.click("#comment-now")
    assert page.input_value("#comments input[name=comment_at] >> nth=0") == "0:01"
    page.keyboard.type("greeting too fast")
    page.check("[data-question=greeting] input[value=yes]")
    page.check("[data-question=verified] input[value=yes]")
    page.check("[data-question=courtesy] input[value='4']")
    page.check("[data-question=resolution] input[value=no]")
    page.click("#submit-score")
    page.wait_for_selector("text=Evaluation of CA-ann submitted: 68.75")
    assert page.locator("#review-queue tr[data-call='CA-ann']").count() == 0
    played = hotline.audit.entries(action="recording_played")
    assert [(e["actor"], e["target"]) for e in played] == [("quinn", "RE-CA-ann-2")]

    page.click("#logout")
    browser_login(page, site, "ann")
    page.click("nav >> text=My evaluations")
    evaluation = page.locator("#evaluations tr[data-evaluation]")
    assert evaluation.count() == 1
    assert "68.75" in evaluation.inner_text() and "0:01 greeting too fast" in evaluation.inner_text()
    evaluation.locator("input[name=note]").fill("thanks")
    evaluation.locator("button.acknowledge").click()
    page.wait_for_selector("text=Evaluation acknowledged")
    assert page.inner_text("#evaluations tr[data-evaluation] .status") == "acknowledged"

    page.click("#logout")
    browser_login(page, site, "sue")
    page.click("nav >> text=Quality")
    page.click("text=Scorecards")
    page.wait_for_selector("#scorecards tr[data-key='ann']")
    assert page.inner_text("#scorecards tr[data-key='ann'] .average") == "68.75"
    chart = page.evaluate("Chart.getChart(document.getElementById('trend-chart')).data.datasets.map(d => d.label)")
    assert chart == ["ann"]
