"""The call events both channels emit, shaped in one place for the call-record writer."""

from __future__ import annotations

from redis.client import Pipeline

from ivr import actions as act
from ivr.masking import mask_phone, number_key
from ivr.session import Session
from routing.batch import Reader
from routing.events import EventLog
from routing.router import CallRequest


def emit_call_started(events: EventLog, session: Session, direction: str = "inbound") -> None:
    events.emit("call_started", **_started(session, direction))


def call_started_in(pipe: Pipeline, events: EventLog, session: Session, direction: str = "inbound") -> Reader[None]:
    """``emit_call_started`` in a batch (``routing.batch``)."""
    return events.emit_in(pipe, "call_started", **_started(session, direction))


def _started(session: Session, direction: str) -> dict[str, object]:
    return {"call_id": session.call_id, "channel": session.channel, "caller": mask_phone(session.caller),
            "caller_key": number_key(session.caller), "called": session.called, "direction": direction,
            "menu": session.menu, "menu_version": session.menu_version, "language": session.language}


def emit_call_ended(events: EventLog, session: Session, status: str, duration_s: str = "") -> None:
    """Once per call, with the IVR path so far (masked like everything in the session)."""
    events.emit("call_ended", **_ended(session, status, duration_s))


def call_ended_in(pipe: Pipeline, events: EventLog, session: Session, status: str,
                  duration_s: str = "") -> Reader[None]:
    """``emit_call_ended`` in a batch (``routing.batch``)."""
    return events.emit_in(pipe, "call_ended", **_ended(session, status, duration_s))


def _ended(session: Session, status: str, duration_s: str) -> dict[str, object]:
    return {"call_id": session.call_id, "channel": session.channel, "status": status, "duration_s": duration_s,
            "intent": session.intent, "outcome": session.outcome or "hangup",
            "verified": "yes" if verified(session) else "no", "language": session.language,
            "menu_version": session.menu_version, "ivr_path": session.path}


def emit_call_failed(events: EventLog, call_id: str, channel: str, caller: str, called: str,
                     direction: str = "") -> None:
    """A call the hotline could not serve (its channel's error boundary): it still gets a whole record,
    started and ended as failed. Harmless after the call's own events: a failure is never undone."""
    events.emit("call_started", call_id=call_id, channel=channel, caller=mask_phone(caller),
                caller_key=number_key(caller), called=called[:32], direction=direction[:16])
    events.emit("call_ended", call_id=call_id, channel=channel, status="failed", outcome="error")


def queue_request(session: Session, enqueue: act.Enqueue, channel: str) -> CallRequest:
    """What the router needs to queue a caller who reached a ``queue`` node, from either channel."""
    return CallRequest(
        call_id=session.call_id, skill=enqueue.skills[0], language=enqueue.language, priority=enqueue.priority,
        channel=channel, caller=mask_phone(session.caller), ivr_path=enqueue.ivr_path or tuple(session.path),
        intent=session.intent, vip=session.vars.get("vip") == "1",
        # For the agent's screen pop: whether the caller proved who they are, and the key that finds
        # their open work orders (the router holds no phone number).
        extra={"verified": "yes" if verified(session) else "no", "caller_key": number_key(session.caller)},
    )


def verified(session: Session) -> bool:
    """The caller passed the card and PIN check (the balance service ran for them)."""
    return "balance" in session.vars
