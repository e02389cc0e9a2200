"""How a call the hotline placed ended, read from Twilio's status callback."""

from __future__ import annotations

from collections.abc import Mapping

_FINAL_STATUS: dict[str, str] = {
    "completed": "answered", "busy": "busy", "no-answer": "no-answer", "failed": "failed", "canceled": "failed",
}


def twilio_disposition(form: Mapping[str, str]) -> str | None:
    """How a Twilio call ended, from its status callback; None while it is still going on."""
    outcome = _FINAL_STATUS.get(form.get("CallStatus", ""))
    if outcome == "answered":
        answered_by = form.get("AnsweredBy", "")
        if answered_by.startswith("machine_") or answered_by == "fax":
            return "voicemail"
    return outcome
