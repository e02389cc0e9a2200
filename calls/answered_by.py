"""Answering machine detection on the calls the hotline places (return visits).

With ``MachineDetection=Enable`` Twilio puts ``AnsweredBy`` (``human``, ``machine_start``, ``fax``, ``unknown``)
on the request to the call's Url, the first webhook (https://www.twilio.com/docs/voice/answering-machine-detection);
the status callback is not documented to carry it. So the first webhook decides and notes the outcome here, and
the status callback reads it back for the attempt's disposition.
"""

from __future__ import annotations

from typing import Literal

import redis

from calls.keys import answered_by_key

MACHINES = frozenset({"machine_start", "fax"})
"""What ``Enable`` reports for a machine (``machine_end_*`` come only with ``DetectMessageEnd``)."""
NOTE_TTL_S = 4 * 3600
"""Twilio ends any call after four hours: its status callback comes before then."""


def is_machine(answered_by: str, unknown_is: Literal["human", "machine"]) -> bool:
    return answered_by in MACHINES or answered_by.startswith("machine_") or (
        answered_by == "unknown" and unknown_is == "machine")


class AnsweredByNotes:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def note_machine(self, call_id: str) -> None:
        self._redis.set(answered_by_key(call_id), "voicemail", ex=NOTE_TTL_S)

    def disposition(self, call_id: str, from_status: str | None) -> str | None:
        """The attempt's disposition: ``voicemail`` when the first webhook found a machine, else the status's."""
        if from_status == "answered" and self._redis.get(answered_by_key(call_id)) is not None:
            return "voicemail"
        return from_status
