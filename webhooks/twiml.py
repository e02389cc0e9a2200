"""Engine actions -> TwiML, through ``twilio.twiml.voice_response`` only: one renderer per action."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from twilio.twiml.voice_response import Gather as GatherVerb
from twilio.twiml.voice_response import VoiceResponse

from ivr import actions as act
from recordings.prompts import HAN, MANDARIN, speech_plan

# Twilio names Mandarin differently from the menu; Polly voices speak both languages well.
VOICES: dict[str, tuple[str, str]] = {
    "zh-CN": ("cmn-CN", "Polly.Zhiyu"),
    "en-US": ("en-US", "Polly.Joanna"),
}


@dataclass(frozen=True)
class StepUrls:
    step: str
    """Where the next caller event goes (Gather/Record/Enqueue action)."""
    timeout: str
    """Where Twilio goes when a Gather or Record ends with nothing: the Redirect after it."""
    recording_status: str
    queue_name: str
    """This caller's own Twilio queue (see ``webhooks.hold``)."""
    wait: str
    """The hold TwiML: position, expected wait, callback offer, music."""


def render(actions: list[act.Action], urls: StepUrls) -> str:
    """A whole TwiML document for one engine step."""
    response = VoiceResponse()
    pending: list[act.Say] = []
    for action in actions:
        if isinstance(action, act.Say):
            pending.append(action)
            continue
        if isinstance(action, act.Gather):
            # Announcements right before a Gather go inside it: the caller may key ahead during them.
            action = replace(action, prompt=(*pending, *action.prompt))
        else:
            for say in pending:
                speak(response, say)
        pending = []
        _RENDER[type(action)](response, action, urls)
    for say in pending:
        speak(response, say)
    return str(response)


def speak(parent: VoiceResponse | GatherVerb, say: act.Say) -> None:
    # An English voice cannot read Chinese ("中文服务请按9。" in the English menu): such runs get the Mandarin
    # voice. The Mandarin voice reads the odd Latin word itself, so Chinese text stays one <Say>.
    pieces = [(say.language, say.text)]
    if not say.language.startswith("zh") and HAN.search(say.text):
        pieces = [("zh-CN" if voice == MANDARIN else say.language, words)
                  for voice, words in speech_plan(say.text, say.language)]
    for language, words in pieces:
        twilio_language, voice = VOICES.get(language, (language, None))
        parent.say(words, language=twilio_language, voice=voice)


def _render_gather(response: VoiceResponse, action: act.Gather, urls: StepUrls) -> None:
    # Prompts nested in <Gather> let the caller press keys while they play (type-ahead).
    # Twilio has one timeout for first and next digits: use the longer so nobody is cut off.
    wait = max(action.timeout_s, action.inter_digit_timeout_s or 0)
    gather = response.gather(
        action=urls.step, method="POST", num_digits=action.max_digits,
        finish_on_key=action.finish_on_key, timeout=math.ceil(wait),
    )
    for say in action.prompt:
        speak(gather, say)
    # A Gather that gets nothing falls through without a request: tell the engine it timed out.
    response.redirect(urls.timeout, method="POST")


def _render_record(response: VoiceResponse, action: act.Record, urls: StepUrls) -> None:
    for say in action.prompt:
        speak(response, say)
    response.record(
        action=urls.step, method="POST", max_length=action.max_seconds,
        finish_on_key=action.finish_on_key, timeout=math.ceil(action.silence_timeout_s), play_beep=True,
        recording_status_callback=urls.recording_status, recording_status_callback_method="POST",
    )
    response.redirect(urls.timeout, method="POST")


def _render_enqueue(response: VoiceResponse, action: act.Enqueue, urls: StepUrls) -> None:
    enqueue(response, urls)


def enqueue(response: VoiceResponse, urls: StepUrls) -> None:
    """The caller into their own Twilio queue, held by the wait URL, leaving through the step URL."""
    response.enqueue(name=urls.queue_name, action=urls.step, method="POST", wait_url=urls.wait,
                     wait_url_method="POST")


def _render_transfer(response: VoiceResponse, action: act.Transfer, urls: StepUrls) -> None:
    response.dial(action.target, action=urls.step, method="POST")


def _render_hangup(response: VoiceResponse, action: act.Hangup, urls: StepUrls) -> None:
    response.hangup()


_RENDER: dict[type, Callable[[VoiceResponse, Any, StepUrls], None]] = {
    act.Gather: _render_gather, act.Record: _render_record,
    act.Enqueue: _render_enqueue, act.Transfer: _render_transfer, act.Hangup: _render_hangup,
}
