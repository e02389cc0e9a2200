"""A scripted caller as Twilio would place it: signed webhooks, following the TwiML it gets back.

Used by ``hotline call --channel twilio`` to try a menu against a running hotline.
"""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from twilio.request_validator import RequestValidator

from softphone.agi_peer import RECORD_PREFIX

MAX_STEPS = 200


class TwilioRefused(RuntimeError):
    """The hotline answered a webhook with an error status (403: the signature did not match its token)."""


@dataclass
class TwilioPeer:
    base_url: str
    auth_token: str
    keys: list[str]
    caller: str = "+8613812345678"
    called: str = "+8695555"
    ask: Callable[[str], str] | None = None
    on_say: Callable[[str], None] | None = None
    call_sid: str = field(default_factory=lambda: f"CA{uuid.uuid4().hex}")
    """A fresh CallSid per call, as Twilio gives (calls one after another must not merge)."""
    timeout_s: float = 10.0
    language: str | None = None
    """Sent as ``?lang=`` on the first webhook, as a number configured for one language would."""
    hold_s: float = 0.0
    """How long the caller stays in the queue (following its waitUrl as Twilio does) before hanging up."""
    on_event: Callable[[str], None] | None = None

    def call(self) -> list[str]:
        """Walk the call; return everything said, in order."""
        said: list[str] = []
        keys, http = list(self.keys), requests.Session()
        first = f"{self.base_url.rstrip('/')}/twilio/voice"
        url: str | None = f"{first}?lang={self.language}" if self.language else first
        fields: dict[str, str] = {}
        for _ in range(MAX_STEPS):
            if url is None:
                break
            twiml = ET.fromstring(self._post(http, url, fields))
            for say in twiml.iter("Say"):
                said.append(say.text or "")
                if self.on_say:
                    self.on_say(say.text or "")
            url, fields = self._next(twiml, keys)
        self._post(http, f"{self.base_url.rstrip('/')}/twilio/status", {"CallStatus": "completed"})
        return said

    def _next(self, twiml: ET.Element, keys: list[str]) -> tuple[str | None, dict[str, str]]:
        """Where the caller's answer goes, and the answer."""
        redirect = twiml.find("Redirect")
        for verb in twiml:
            if verb.tag == "Gather":
                entry = self._entry(keys, "keys")
                return (verb.attrib["action"], {"Digits": entry}) if entry else (_text(redirect), {})
            if verb.tag == "Record":
                entry = self._entry(keys, "seconds to speak").removeprefix(RECORD_PREFIX)
                if not entry.isdigit() or entry == "0":
                    return _text(redirect), {}
                sid = f"RE{self.call_sid[2:]}"
                return verb.attrib["action"], {"RecordingSid": sid, "RecordingDuration": entry,
                                               "RecordingUrl": f"https://api.twilio.com/Recordings/{sid}"}
            if verb.tag == "Enqueue":
                self._hold(verb)
                return None, {}
            if verb.tag in ("Dial", "Hangup"):
                return None, {}
        return _text(redirect), {}

    def _hold(self, enqueue: ET.Element) -> None:
        """In the queue: Twilio fetches the waitUrl and plays it, again and again, until an agent dequeues the
        caller or they hang up (after ``hold_s`` here)."""
        wait_url = enqueue.attrib.get("waitUrl")
        if self.on_event:
            self.on_event(f"queued in {enqueue.text or 'a queue'}; holding for {self.hold_s:.0f} s")
        http, started = requests.Session(), time.monotonic()
        while wait_url and time.monotonic() - started < self.hold_s:
            waited = f"{time.monotonic() - started:.0f}"
            twiml = ET.fromstring(self._post(http, wait_url, {"QueueTime": waited, "QueuePosition": "1",
                                                              "CurrentQueueSize": "1", "AvgQueueTime": waited}))
            for say in twiml.iter("Say"):
                if self.on_say:
                    self.on_say(say.text or "")
            time.sleep(min(5.0, max(0.0, self.hold_s - (time.monotonic() - started))))

    def _entry(self, keys: list[str], wanted: str) -> str:
        if keys:
            return keys.pop(0)
        return self.ask(wanted) if self.ask else ""

    def _post(self, http: requests.Session, url: str, fields: dict[str, str]) -> bytes:
        form = {"CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32, "From": self.caller, "To": self.called,
                "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", **fields}
        signature = RequestValidator(self.auth_token).compute_signature(url, form)
        reply = http.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=self.timeout_s)
        if reply.status_code == 403:
            raise TwilioRefused(f"the hotline refused the webhook at {url} (403): its TWILIO_AUTH_TOKEN (or "
                                "HOTLINE_PUBLIC_URL) differs from the one this call is signed with")
        if reply.status_code >= 400:
            raise TwilioRefused(f"the hotline answered {reply.status_code} at {url}")
        return reply.content


def _text(element: ET.Element | None) -> str | None:
    return element.text if element is not None else None
