"""In Chromium: an agent on a recorded Twilio call pauses the recording from the console for the card number,
then resumes it; Twilio's Recording resource follows, and the audit has both."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

from hotline.app import Hotline
from routing.agents import Agent
from tests.fakes.twilio_api import TwilioApi
from tests.fakes.twilio_caller import TwilioCaller
from tests.fakes.twilio_media import MediaServer
from tests.test_console import agent_leg, app, caller, hotline  # noqa: F401
from tests.web import add_user, browser_login


def test_agent_pauses_and_resumes_the_recording_from_the_console(
    hotline: Hotline, caller: TwilioCaller, twilio_api: TwilioApi, media: MediaServer, site: str,  # noqa: F811
    page: Any,
) -> None:
    twilio_api.recordings = media._answer  # the Recording resources live on the same Twilio API
    hotline.agents.put(Agent("ann", "Ann", "client:ann", {"general": 5}, ["zh-CN"]))
    add_user(hotline, "ann", "agent", agent_id="ann")
    browser_login(page, site, "ann", "/agent")
    page.click("#go-available")
    expect(page.locator("#state")).to_have_text("available")
    caller.dial()
    caller.press("0")
    expect(page.locator("#offer")).to_be_visible()
    page.click("#accept")
    (create,) = twilio_api.created(1)
    caller.hold()
    leg = agent_leg(caller)
    # she picks up (following the hotline's documents as Twilio does, a pause while the caller reaches the queue
    # included): the hotline records her leg by REST, both parties apart
    assert leg.answer_agent_leg(create["Url"], caller) == "bridged"
    deadline = time.monotonic() + 5
    while leg.call_sid not in media.running:
        assert time.monotonic() < deadline, "the agent's leg was never recorded"
        time.sleep(0.02)
    rec = media.running[leg.call_sid]
    assert media.created[rec]["RecordingChannels"] == "dual"
    expect(page.locator("#state")).to_have_text("busy")

    button = page.locator("#recording-pause")
    expect(button).to_have_text("Pause recording")
    button.click()
    expect(button).to_have_text("Resume recording")
    expect(button).to_have_attribute("aria-pressed", "true")
    assert media.status[rec] == "paused"
    button.click()
    expect(button).to_have_text("Pause recording")
    assert media.status[rec] == "in-progress"
    actions = [e["action"] for e in hotline.audit.entries(actor="ann", target=caller.call_sid)]
    assert actions == ["recording_resumed", "recording_paused"]  # newest first
