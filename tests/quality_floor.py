"""A hotline with what the quality tests need: a published form, reviewers, agents, recorded calls in a queue."""

from __future__ import annotations

import datetime as dt

from complaints.recording_links import record_recording
from hotline.app import Hotline
from quality.forms import EXAMPLE, load_text
from store.models import CallRecord, ReviewItem
from tests.web import add_user

AUDIO = b"RIFF" + bytes(range(256)) * 40
ANSWERS = {"q_greeting": "yes", "q_verified": "yes", "q_courtesy": "4", "q_resolution": "no"}
"""68.75 (tests/test_quality_scoring.py writes out the arithmetic)."""


def recorded_call(hotline: Hotline, call_id: str, agent: str, at: dt.datetime, queue: str = "general",
                  talk_s: float = 120.0) -> None:
    with hotline.sql() as db:
        db.add(CallRecord(call_id=call_id, agent_id=agent, queue=queue, started_at=at, channel="twilio",
                          queued_at=at + dt.timedelta(seconds=20), answered_at=at + dt.timedelta(seconds=30),
                          ended_at=at + dt.timedelta(seconds=30 + talk_s), talk_s=talk_s, outcome="routed",
                          ivr_path=[{"node": "main", "input": "0"}, {"node": "to_agent"}]))
        db.commit()
    meta = hotline.recordings.save(f"RE-{call_id}", call_id, AUDIO, talk_s)
    record_recording(hotline.sql, meta)


def queue_item(hotline: Hotline, call_id: str, agent: str, reviewer: str, at: dt.datetime) -> int:
    with hotline.sql() as db:
        item = ReviewItem(call_id=call_id, agent_id=agent, queue="general", call_started_at=at, week="2026-W49",
                          reasons=["share"], reviewer=reviewer)
        db.add(item)
        db.commit()
        return item.id


def floor(hotline: Hotline, at: dt.datetime) -> dict[str, int]:
    """boss (admin) publishes the form; quinn (qa) and sue (supervisor) review; ann and bob are agents; sue is also
    agent sue. Calls: CA-ann (ann) in quinn's queue, CA-bob (bob) recorded but in nobody's queue, CA-sue (sue's
    own call) in sue's queue."""
    add_user(hotline, "boss", "admin")
    add_user(hotline, "quinn", "qa")
    add_user(hotline, "sue", "supervisor")
    add_user(hotline, "ann", "agent")
    add_user(hotline, "bob", "agent")
    hotline.forms.publish("standard", load_text(EXAMPLE), "boss")
    for call_id, agent in (("CA-ann", "ann"), ("CA-bob", "bob"), ("CA-sue", "sue")):
        recorded_call(hotline, call_id, agent, at)
    return {"ann": queue_item(hotline, "CA-ann", "ann", "quinn", at),
            "sue": queue_item(hotline, "CA-sue", "sue", "sue", at)}
