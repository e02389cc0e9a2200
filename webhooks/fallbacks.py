"""What each Twilio route answers when the hotline cannot serve it: TwiML that the verb in progress allows.

The error boundary used to answer ``<Say><Enqueue>general</Enqueue><Hangup/>`` everywhere. But a waitUrl may use
only Play, Say, Pause, Hangup, Redirect, Leave and Gather (https://www.twilio.com/docs/voice/twiml/enqueue#waiturl):
anything else ends the hold with ``QueueResult=error``. An agent's own leg must never be enqueued, and nothing
dequeues a queue no agent dials.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from ivr import actions as act
from webhooks.twiml import speak

SORRY_BACKUP = (("zh-CN", "对不起，系统暂时无法处理您的请求，正在为您转接人工服务。"),
                ("en-US", "Sorry, something went wrong. Connecting you to an agent."))
SORRY_LATER = (("zh-CN", "对不起，系统暂时无法处理您的请求，请稍后再拨。"),
               ("en-US", "Sorry, something went wrong. Please call again later."))

SORRY_TEXTS = frozenset(text for _, text in (*SORRY_BACKUP, *SORRY_LATER))
APOLOGY = SORRY_BACKUP[0][1] + SORRY_BACKUP[1][1]
"""The FastAGI side's apology audio (``hotline prompts build`` renders it): it then goes to the fallback queue."""


@dataclass(frozen=True)
class FallbackConfig:
    backup_number: str = ""
    """``HOTLINE_BACKUP_NUMBER``: where a caller goes when the hotline cannot serve them; unset: an apology."""
    hold_music_url: str = ""


def for_endpoint(endpoint: str, config: FallbackConfig) -> str:
    """The fallback TwiML of the blueprint endpoint (``twilio.<view>``) that failed."""
    return _BY_ENDPOINT.get(endpoint.removeprefix("twilio."), _nothing)(config)


def for_caller(config: FallbackConfig) -> str:
    """A caller's call the hotline cannot serve: the backup number, or an apology and goodbye. Also what the
    number's Voice Fallback URL serves (https://www.twilio.com/docs/usage/webhooks/voice-webhooks#fallback-url)."""
    response = VoiceResponse()
    for language, text in SORRY_BACKUP if config.backup_number else SORRY_LATER:
        speak(response, act.Say(text, language))
    if config.backup_number:
        response.dial(config.backup_number)
    response.hangup()
    return str(response)


def for_hold(config: FallbackConfig) -> str:
    """A caller on hold keeps holding: music, then Twilio asks the waitUrl again (it may work by then)."""
    response = VoiceResponse()
    if config.hold_music_url:
        response.play(config.hold_music_url)
    else:
        response.pause(length=10)
    return str(response)


def for_agent_leg(config: FallbackConfig) -> str:
    """The agent's own leg: hang it up; the caller stays in their queue and the router offers them again."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def _nothing(config: FallbackConfig) -> str:
    return str(VoiceResponse())  # status callbacks: Twilio ignores what they answer


_BY_ENDPOINT: dict[str, Callable[[FallbackConfig], str]] = {
    "voice": for_caller, "fallback": for_caller, "caller_resume": for_caller,
    "queue_wait": for_hold, "queue_choice": for_hold,
    "agent_connect": for_agent_leg, "agent_done": for_agent_leg,
}
