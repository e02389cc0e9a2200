"""A return visit's call as the complaint desk asks for it, and what a dialer says of it. The dialers
(Twilio REST, Asterisk AMI) live with the worker that runs them (``workers.dialers``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

RATING_LABELS = {1: "very satisfied", 2: "satisfied", 3: "neutral", 4: "dissatisfied", 5: "very dissatisfied"}
"""The 5-point satisfaction question of the return-visit survey."""

Disposition = Literal["pending", "answered", "no-answer", "busy", "voicemail", "refused", "failed"]


@dataclass(frozen=True)
class VisitCall:
    visit_id: int
    attempt: int
    number: str
    """The customer's number, as stored on the work order."""
    language: str
    """The menu language the survey should start in (``zh-CN``, ``en-US``)."""
    token: str = ""
    """One-time token of this dial: the Asterisk survey runs only with it (``ReturnVisits.start_survey``)."""


@dataclass(frozen=True)
class DialResult:
    disposition: Disposition
    provider_call_id: str = ""
    detail: str = ""


class VisitDialer(Protocol):
    def dial(self, call: VisitCall) -> DialResult: ...
