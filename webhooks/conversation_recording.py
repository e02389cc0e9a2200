"""Twilio records the agent conversation: how, and where its recording status callback goes.

The agent and the caller talk in a ``<Conference>`` (``webhooks.conference``). Twilio records a conference through
the noun's own ``record`` attribute, one mixed channel (https://www.twilio.com/docs/voice/twiml/conference#record;
"Voice recordings where dual-channel is not supported, such as TwiML <conference> noun [...] all audio will be mixed
in a single channel file", https://www.twilio.com/en-us/changelog/dual-channel-voice-recordings-by-default), and
``<Dial record>`` records the parties a ``<Dial>`` connects (https://www.twilio.com/docs/voice/twiml/dial#record),
which no page promises for a ``<Conference>`` noun. So the agent's leg is recorded by REST once it has joined the
conference, after the whisper it hears first (its participant-join callback: ``TwilioHold.participant_joined``;
``recording_params``: ``POST Calls/<leg>/Recordings.json`` with ``RecordingChannels=dual``,
https://www.twilio.com/docs/voice/api/recording#create-a-recording-resource): "dual records each party of a 2-party
call into separate channels", the inbound track (what Twilio receives from the leg: the agent) and the outbound one
(what Twilio plays to it: the conference, i.e. the caller),
https://www.twilio.com/docs/voice/tutorials/how-record-single-side-call,
the recorded leg's party on the first channel and the rest of the conference on the second
(https://www.twilio.com/docs/flex/developer/insights/enable-dual-channel-recordings, which records a customer's
leg this way).
Pausing goes to that leg's ``Recordings/Twilio.CURRENT`` (``workers.recording_switch``).

A callback's ``<Dial><Number>`` (the agent calling the customer back) is a two-party ``<Dial>``: it keeps
``<Dial record="record-from-answer-dual">`` (``recording_attributes``).
Either way the recording status callback goes to ``/twilio/recording`` with the caller's call and the agent in its
query, so the fetch stores it as that call's conversation (``recordings.twilio_fetch``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlencode

DIAL_RECORD = "record-from-answer-dual"

StartRecording = Callable[[str, Mapping[str, str]], bool]
"""Start recording a call (its sid) by REST with these parameters; False when Twilio refused."""


def callback_url(public_url: str, call_id: str, agent_id: str) -> str:
    """Where Twilio posts the conversation's recording status callback."""
    query = urlencode({"conversation": call_id, "agent": agent_id})
    return f"{public_url.rstrip('/')}/twilio/recording?{query}"


def recording_attributes(public_url: str, call_id: str, agent_id: str, record: str = DIAL_RECORD) -> dict[str, str]:
    """Keyword arguments for twilio's ``VoiceResponse.dial(...)`` (a two-party ``<Dial><Number>``)."""
    return {
        "record": record,
        "recording_status_callback": callback_url(public_url, call_id, agent_id),
        "recording_status_callback_method": "POST",
        "recording_status_callback_event": "completed",
    }


def recording_params(public_url: str, call_id: str, agent_id: str) -> dict[str, str]:
    """The parameters of ``POST Calls/<agent leg>/Recordings.json`` that records the conversation: both parties on
    their own channel, the callback once the recording is completed (the call ended)."""
    return {
        "RecordingChannels": "dual",
        "RecordingStatusCallback": callback_url(public_url, call_id, agent_id),
        "RecordingStatusCallbackMethod": "POST",
        "RecordingStatusCallbackEvent": "completed",
    }
