"""Twilio records the agent conversation: the attributes of the TwiML verb that connects the agent.

``<Dial record="record-from-answer-dual">`` records the agent leg from the moment the caller is connected, one
channel per party (https://www.twilio.com/docs/voice/twiml/dial#record), and posts the recording status callback
(https://www.twilio.com/docs/voice/twiml/dial#recordingstatuscallback) to ``/twilio/recording`` with the caller's
call and the agent in its query, so the fetch stores it as that call's conversation (``recordings.twilio_fetch``).
A ``<Conference>`` takes the same attributes with ``record="record-from-start"``
(https://www.twilio.com/docs/voice/twiml/conference#record).
"""

from __future__ import annotations

from urllib.parse import urlencode

DIAL_RECORD = "record-from-answer-dual"
CONFERENCE_RECORD = "record-from-start"


def recording_attributes(public_url: str, call_id: str, agent_id: str, record: str = DIAL_RECORD) -> dict[str, str]:
    """Keyword arguments for twilio's ``VoiceResponse.dial(...)`` (or ``Dial.conference(...)``)."""
    query = urlencode({"conversation": call_id, "agent": agent_id})
    return {
        "record": record,
        "recording_status_callback": f"{public_url.rstrip('/')}/twilio/recording?{query}",
        "recording_status_callback_method": "POST",
        "recording_status_callback_event": "completed",
    }
