"""Placing return-visit calls: Twilio REST or Asterisk AMI ``Originate``.

A dialer places one call and says how it went as far as it can tell: the AMI dialer waits for the
``OriginateResponse`` (answered, no-answer, busy, failed); Twilio answers at once and the outcome
arrives later on the status callback, so its result is ``pending``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Disposition = Literal["pending", "answered", "no-answer", "busy", "voicemail", "refused", "failed"]


@dataclass(frozen=True)
class VisitCall:
    visit_id: int
    attempt: int
    number: str
    """The customer's number, as stored on the work order."""
    language: str
    """The menu language the survey should start in (``zh-CN``, ``en-US``)."""


@dataclass(frozen=True)
class DialResult:
    disposition: Disposition
    provider_call_id: str = ""
    detail: str = ""


class VisitDialer(Protocol):
    def dial(self, call: VisitCall) -> DialResult: ...
