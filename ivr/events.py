"""What a channel tells the engine: the caller did something, or time passed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallStarted:
    call_id: str
    caller: str
    called: str
    channel: str
    language: str | None = None
    vars: tuple[tuple[str, str], ...] = ()
    """Variables the call starts with, e.g. the return visit an outbound survey call is about."""


@dataclass(frozen=True)
class Digits:
    digits: str


@dataclass(frozen=True)
class Timeout:
    """The caller pressed nothing (or recorded nothing) before the node's timeout."""


@dataclass(frozen=True)
class RecordingSaved:
    ref: str
    seconds: float


@dataclass(frozen=True)
class QueueResult:
    """The caller left the queue: ``result`` is bridged, hangup, leave, error, ..."""

    result: str


@dataclass(frozen=True)
class Hangup:
    """The caller hung up."""


Event = CallStarted | Digits | Timeout | RecordingSaved | QueueResult | Hangup
