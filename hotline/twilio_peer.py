"""A scripted caller as Twilio would place it: signed webhooks, following the TwiML it gets back.

Used by ``hotline call --channel twilio`` to try a menu against a running hotline.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from twilio.request_validator import RequestValidator

from hotline.agi_peer import RECORD_PREFIX

_sids = itertools.count(1)
MAX_STEPS = 200


@dataclass
class TwilioPeer:
    base_url: str
    auth_token: str
    keys: list[str]
    caller: str = "+8613812345678"
    called: str = "+8695555"
    ask: Callable[[str], str] | None = None
    on_say: Callable[[str], None] | None = None
    call_sid: str = field(default_factory=lambda: f"CA{next(_sids):032x}")
    timeout_s: float = 10.0

    def call(self) -> list[str]:
        """Walk the call; return everything said, in order."""
        said: list[str] = []
        keys, http = list(self.keys), requests.Session()
        url: str | None = f"{self.base_url.rstrip('/')}/twilio/voice"
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
            if verb.tag in ("Enqueue", "Dial", "Hangup"):
                return None, {}
        return _text(redirect), {}

    def _entry(self, keys: list[str], wanted: str) -> str:
        if keys:
            return keys.pop(0)
        return self.ask(wanted) if self.ask else ""

    def _post(self, http: requests.Session, url: str, fields: dict[str, str]) -> bytes:
        form = {"CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32, "From": self.caller, "To": self.called,
                "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", **fields}
        signature = RequestValidator(self.auth_token).compute_signature(url, form)
        reply = http.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=self.timeout_s)
        reply.raise_for_status()
        return reply.content


def _text(element: ET.Element | None) -> str | None:
    return element.text if element is not None else None
