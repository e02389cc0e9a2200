"""Call events as the channels and the router write them, for record-writer tests and the benchmark."""

from __future__ import annotations

import json

from ivr.masking import mask_phone, number_key

T0 = 1_800_000_000.0


def routed_call(call_id: str, at: float = T0, wait_s: float = 12.5, talk_s: float = 95.0,
                caller: str = "13812345678") -> list[dict[str, str]]:
    """A Twilio caller who chose the agent menu, waited ``wait_s`` and talked ``talk_s``: the full event trail."""
    queued, answered = at + 8.0, at + 8.0 + wait_s
    ended = answered + talk_s
    path = [{"node": "main", "input": "key 0", "at": "2027-01-15T08:00:08Z"}]
    return [
        {"type": "call_started", "ts": f"{at:.3f}", "call_id": call_id, "channel": "twilio",
         "caller": mask_phone(caller), "caller_key": number_key(caller), "called": "95555", "direction": "inbound",
         "menu": "hotline", "menu_version": "3", "language": "zh-CN"},
        {"type": "call_queued", "ts": f"{queued:.3f}", "call_id": call_id, "skill": "general", "language": "zh-CN",
         "priority": "5", "channel": "twilio", "enqueued_at": f"{queued:.3f}", "predicted_wait_s": "10.0"},
        {"type": "call_answered", "ts": f"{answered:.3f}", "call_id": call_id, "agent": "a7", "skill": "general",
         "wait_s": f"{wait_s:.3f}", "predicted_wait_s": "10.0"},
        {"type": "call_completed", "ts": f"{ended:.3f}", "call_id": call_id, "agent": "a7",
         "talk_s": f"{talk_s:.3f}", "reason": "caller_hangup"},
        {"type": "call_ended", "ts": f"{ended + 0.2:.3f}", "call_id": call_id, "channel": "twilio",
         "status": "completed", "duration_s": f"{ended - at:.0f}", "intent": "agent", "outcome": "queued",
         "verified": "no", "language": "zh-CN", "menu_version": "3", "ivr_path": json.dumps(path)},
    ]


def call_ended(call_id: str, at: float = T0, outcome: str = "self_served") -> dict[str, str]:
    """The one event of a call served by the menu alone (the benchmark's "call-ended" event)."""
    path = [{"node": "inquiry_card", "input": "digits 6222********3445", "at": "2027-01-15T08:00:04Z"},
            {"node": "inquiry_pin", "input": "digits ******", "at": "2027-01-15T08:00:09Z"}]
    return {"type": "call_ended", "ts": f"{at:.3f}", "call_id": call_id, "channel": "asterisk",
            "status": "completed", "duration_s": "41", "intent": "inquiry", "outcome": outcome,
            "verified": "yes", "language": "zh-CN", "menu_version": "3", "ivr_path": json.dumps(path)}
