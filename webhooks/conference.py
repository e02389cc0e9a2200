"""The conference a Twilio caller and their agent talk in: its name and the ``<Conference>`` noun each side dials.

One conference per call, named for the caller's CallSid: the router pins a caller to one agent, that agent's leg
and the caller's call dial the same name, and nobody else's does (a supervisor is added by the REST API,
``workers.twilio_control``). https://www.twilio.com/docs/voice/twiml/conference
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from twilio.twiml.voice_response import Dial

CONFERENCE_PREFIX = "hotline-"
JOIN_EVENT, LEAVE_EVENT = "participant-join", "participant-leave"
"""``StatusCallbackEvent`` of a participant joining, leaving (https://www.twilio.com/docs/voice/twiml/conference
#attributes-statuscallbackevent)."""


def conference_name(call_id: str) -> str:
    """The conference of the caller ``call_id`` (a CallSid: 34 characters, so the name stays short)."""
    return f"{CONFERENCE_PREFIX}{call_id}"


def events_url(public_url: str, call_id: str) -> str:
    """Where Twilio posts the conference's participant-join and -leave events (``/twilio/conference/status``)."""
    return f"{public_url.rstrip('/')}/twilio/conference/status?{urlencode({'call': call_id})}"


def join_conference(dial: Dial, call_id: str, role: Literal["agent", "caller"], public_url: str) -> None:
    """Add the ``<Conference>`` noun for the caller or their agent (``role``: the same noun today) to ``dial``.

    - ``startConferenceOnEnter``: the conference starts when either arrives: the caller is moved in the moment
      the agent answers, so neither waits for the other with music (``waitUrl=""``: silence, no Twilio playlist).
    - ``endConferenceOnExit``: either one leaving ends it, so the other is not left alone in an empty room (the
      agent's leg is updated to ``false`` before it leaves on a completed warm transfer).
    - ``beep="false"``: no tone when someone joins; a supervisor joining muted must not be announced.
    - ``statusCallback`` with ``statusCallbackEvent="join"``: Twilio posts ``participant-join`` (with the joining
      ``CallSid``) as each participant joins, supervisors added by REST included; the agent leg's recording starts
      then, after its whisper (``TwilioHold.participant_joined``); and ``leave``: a warm transfer's target who
      hangs up before the hand-over is released at once (``TwilioHold.participant_left``). On both nouns alike:
      the first participant's
      settings may be the ones the conference keeps, and either side may join first.
      https://www.twilio.com/docs/voice/twiml/conference#attributes-statuscallback
    https://www.twilio.com/docs/voice/twiml/conference#attributes
    """
    # No `record` here: a conference records one mixed channel. The agent conversation is recorded by REST on
    # the agent's leg, caller and agent apart (webhooks.conversation_recording). See docs/twilio.md.
    dial.conference(
        conference_name(call_id), start_conference_on_enter=True, end_conference_on_exit=True, beep="false",
        wait_url="", status_callback=events_url(public_url, call_id), status_callback_event="join leave",
        status_callback_method="POST",
    )
