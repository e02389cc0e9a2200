"""Pausing and resuming a conversation's recording at the channel that records it.

- Asterisk: AMI ``MixMonitorMute`` on the agent's channel, ``Direction: both`` (app_mixmonitor.c): the audiohook
  writes zeros in both directions while muted (main/audiohook.c clears the frames), so the file keeps its length
  and the pause is a silent gap; card digits said meanwhile are not in it.
- Twilio: the Recording resource of the agent leg, ``Status=paused`` / ``in-progress`` with
  ``PauseBehavior=silence`` (https://www.twilio.com/docs/voice/api/recording#update-a-recording-resource);
  ``Twilio.CURRENT`` names the recording running on that call. The same client starts that recording
  (``start``: ``POST Calls/<leg>/Recordings.json``, https://www.twilio.com/docs/voice/api/recording#create-a-recording-resource).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from calls.conversations import Conversation
from workers.ami import AmiError, one_action
from workers.dialers import AmiConfig

log = logging.getLogger(__name__)


class SwitchRefused(RuntimeError):
    """The channel did not pause or resume the recording (the text says why)."""


class AmiRecordingSwitch:
    def __init__(self, config: AmiConfig) -> None:
        self.config = config

    def set_paused(self, conversation: Conversation, paused: bool) -> None:
        cfg = self.config
        headers = [("Channel", conversation.leg), ("Direction", "both"), ("State", "1" if paused else "0")]
        try:
            reply = one_action(cfg.host, cfg.port, cfg.username, cfg.secret, "MixMonitorMute", headers,
                               timeout_s=cfg.connect_timeout_s, id_prefix="hotline-mute")
        except (AmiError, ValueError) as exc:
            raise SwitchRefused(f"Asterisk could not be asked: {exc}") from None
        if reply.get("response", "").lower() != "success":
            raise SwitchRefused(f"Asterisk refused: {reply.get('message') or 'no reason given'}")


class TwilioRecordingSwitch:
    def __init__(self, account_sid: str, auth_token: str, api_base: str, timeout_s: float = 10.0) -> None:
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout_s))
        self.client.api.base_url = api_base.rstrip("/")

    def set_paused(self, conversation: Conversation, paused: bool) -> None:
        recording = self.client.calls(conversation.leg).recordings("Twilio.CURRENT")
        try:
            if paused:
                recording.update(status="paused", pause_behavior="silence")
            else:
                recording.update(status="in-progress")
        except (TwilioException, OSError) as exc:
            raise SwitchRefused(f"Twilio refused: {exc}") from None

    def start(self, leg: str, params: Mapping[str, str]) -> bool:
        """Start recording the call ``leg`` with the Recording resource's parameters (``RecordingChannels``,
        ``RecordingStatusCallback``...: ``webhooks.conversation_recording.recording_params``). False, logged, when
        Twilio refused (a call not in progress: not answered yet, or already over)."""
        try:
            self.client.calls(leg).recordings.create(
                recording_channels=params["RecordingChannels"],
                recording_status_callback=params["RecordingStatusCallback"],
                recording_status_callback_method=params["RecordingStatusCallbackMethod"],
                recording_status_callback_event=params["RecordingStatusCallbackEvent"].split(),
            )
        except (TwilioException, OSError) as exc:
            log.warning("call leg %s: Twilio refused to start the conversation recording: %s", leg, exc)
            return False
        return True
