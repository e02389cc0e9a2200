"""Placing return-visit calls: Twilio REST or Asterisk AMI ``Originate``.

A dialer places one call and says how it went as far as it can tell: the AMI dialer waits for the
``OriginateResponse`` (answered, no-answer, busy, failed); Twilio answers at once and the outcome
arrives later on the status callback, so its result is ``pending``.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from complaints.visit_calls import DialResult, VisitCall
from ivr.masking import mask_phone
from workers.ami import AmiClient, AmiError

log = logging.getLogger(__name__)

_LONG_NUMBER = re.compile(r"\+?\d{7,}")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
"""The operating system's reason inside requests' long error text: ``Connection refused``."""


def scrub(text: str, number: str) -> str:
    """``text`` with the customer's number (and any other phone-length digit run) masked."""
    if number:
        text = text.replace(number, mask_phone(number))
        bare = number.lstrip("+")
        if bare:
            text = text.replace(bare, mask_phone(bare))
    return _LONG_NUMBER.sub(lambda m: mask_phone(m.group()), text)


# -- Twilio ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwilioVisitConfig:
    account_sid: str
    auth_token: str
    api_base: str
    from_number: str
    """The hotline's Twilio number: what the customer sees calling."""
    public_url: str
    """Where Twilio reaches the hotline's webhooks (the survey TwiML and the status callback)."""
    ring_timeout_s: int = 30
    request_timeout_s: float = 15.0
    """How long the REST call may take: the job must not hang on an unreachable API."""


class TwilioVisitDialer:
    """Asks Twilio to call the customer; the outcome comes later to ``/twilio/visit/status``."""

    def __init__(self, config: TwilioVisitConfig) -> None:
        self.config = config
        self.client = Client(config.account_sid, config.auth_token,
                             http_client=TwilioHttpClient(timeout=config.request_timeout_s))
        self.client.api.base_url = config.api_base.rstrip("/")

    def dial(self, call: VisitCall) -> DialResult:
        public = self.config.public_url.rstrip("/")
        answer = urlencode({"menu": "survey", "visit": call.visit_id, "attempt": call.attempt, "lang": call.language})
        status = urlencode({"visit": call.visit_id, "attempt": call.attempt})
        try:
            created = self.client.calls.create(
                to=call.number, from_=self.config.from_number, url=f"{public}/twilio/voice?{answer}",
                status_callback=f"{public}/twilio/visit/status?{status}",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                machine_detection="Enable", timeout=self.config.ring_timeout_s,
            )
        except TwilioRestException as exc:
            code = f", error {exc.code}" if exc.code else ""
            detail = scrub(f"Twilio refused the call (HTTP {exc.status}{code}): {exc.msg}", call.number)
            return self._failed(call, detail)
        except (TwilioException, OSError) as exc:  # requests' errors are OSErrors
            errno = _ERRNO.search(str(exc))
            why = f"{type(exc).__name__} ({errno.group(1).strip()})" if errno else type(exc).__name__
            detail = scrub(f"could not reach Twilio at {self.config.api_base.rstrip('/')}: {why}", call.number)
            return self._failed(call, detail)
        log.info("visit %s attempt %s: Twilio call %s to %s queued", call.visit_id, call.attempt, created.sid,
                 mask_phone(call.number))
        return DialResult("pending", created.sid or "")

    def _failed(self, call: VisitCall, detail: str) -> DialResult:
        log.warning("visit %s attempt %s: call to %s not placed: %s", call.visit_id, call.attempt,
                    mask_phone(call.number), detail)
        return DialResult("failed", detail=detail)


# -- Asterisk AMI ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AmiConfig:
    host: str
    port: int
    username: str
    secret: str
    channel_template: str = "PJSIP/{number}@hotline-trunk"
    context: str = "hotline-outbound"
    """The dialplan context the answered call enters (asterisk_conf/extensions.conf runs the survey there)."""
    exten: str = "s"
    priority: int = 1
    caller_id: str = ""
    ring_timeout_s: int = 30
    connect_timeout_s: float = 5.0
    """Connecting, and each direct reply (login, the Originate acknowledgement)."""
    result_grace_s: float = 10.0
    """How long after the ring timeout the OriginateResponse may still come (the trunk's own delays)."""


_ORIGINATE_REASONS = {
    "0": "no such extension, or the channel could not be created",
    "1": "hung up before answering",
    "3": "no answer",
    "4": "answered",
    "5": "busy",
    "8": "congestion",
}
"""OriginateResponse ``Reason``: the last control frame Asterisk saw on the outbound channel."""


def asterisk_language(language: str) -> str:
    """``zh-CN`` -> ``zh``, ``en-US`` -> ``en``: the dialplan sets CHANNEL(language) from it."""
    return language.split("-", 1)[0].lower()


class AmiVisitDialer:
    """Originates the call over AMI and waits for Asterisk to say how it went."""

    def __init__(self, config: AmiConfig) -> None:
        self.config = config

    def originate_headers(self, call: VisitCall) -> list[tuple[str, object]]:
        """The Originate action's fields; ``Variable`` repeats, one channel variable each."""
        cfg = self.config
        headers: list[tuple[str, object]] = [
            ("Channel", cfg.channel_template.format(number=call.number)),
            ("Context", cfg.context), ("Exten", cfg.exten), ("Priority", cfg.priority),
        ]
        if cfg.caller_id:
            headers.append(("CallerID", cfg.caller_id))
        return [
            *headers, ("Timeout", cfg.ring_timeout_s * 1000), ("Async", "true"),
            ("Variable", f"HOTLINE_VISIT={call.visit_id}"), ("Variable", f"HOTLINE_ATTEMPT={call.attempt}"),
            ("Variable", f"HOTLINE_LANGUAGE={asterisk_language(call.language)}"),
            # The survey script runs only with this dial's one-time token (ReturnVisits.start_survey).
            *([("Variable", f"HOTLINE_VISIT_TOKEN={call.token}")] if call.token else []),
        ]

    def dial(self, call: VisitCall) -> DialResult:
        cfg = self.config
        action_id = f"hotline-visit-{call.visit_id}-{call.attempt}-{secrets.token_hex(4)}"
        try:
            with AmiClient(cfg.host, cfg.port, cfg.connect_timeout_s) as ami:
                ami.connect()
                ami.login(cfg.username, cfg.secret)
                try:
                    result = self._originate(ami, call, action_id)
                finally:
                    ami.logoff()
        except AmiError as exc:
            result = DialResult("failed", detail=scrub(str(exc), call.number))
        except ValueError as exc:  # a number with a line break in it: never sent
            result = DialResult("failed", detail=scrub(f"not dialable: {exc}", call.number))
        level = logging.INFO if result.disposition != "failed" else logging.WARNING
        log.log(level, "visit %s attempt %s: AMI call to %s %s%s", call.visit_id, call.attempt,
                mask_phone(call.number), result.disposition, f" ({result.detail})" if result.detail else "")
        return result

    def _originate(self, ami: AmiClient, call: VisitCall, action_id: str) -> DialResult:
        cfg = self.config
        ack = ami.request("Originate", self.originate_headers(call), action_id=action_id,
                          timeout_s=cfg.connect_timeout_s)
        if ack.get("response", "").lower() != "success":
            detail = f"Asterisk refused the Originate: {ack.get('message') or 'no reason given'}"
            return DialResult("failed", detail=scrub(detail, call.number))
        event = ami.wait_for(
            lambda m: m.get("event", "").lower() == "originateresponse" and m.get("actionid") == action_id,
            cfg.ring_timeout_s + cfg.result_grace_s, "the OriginateResponse event",
        )
        uniqueid = event.get("uniqueid", "")
        call_id = "" if uniqueid in ("", "<null>") else uniqueid
        reason = event.get("reason", "")
        if event.get("response", "").lower() == "success":
            return DialResult("answered", call_id)
        if reason == "3":
            return DialResult("no-answer", call_id)
        if reason == "5":
            return DialResult("busy", call_id)
        meaning = _ORIGINATE_REASONS.get(reason, "unknown reason")
        return DialResult("failed", call_id, f"Asterisk could not place the call: Reason {reason or '?'} ({meaning})")
