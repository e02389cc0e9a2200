"""The shape of the live dashboard's snapshot (``/api/live`` and each event of ``/api/live/stream``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class QueueRow(BaseModel):
    queue: str = Field(description="skill:language")
    skill: str
    language: str
    waiting: int
    longest_wait_s: float = Field(description="how long the caller waiting longest has waited; 0 when none")
    agents: dict[str, int] = Field(description="agents serving this queue, by state")
    expected_wait_s: float | None = Field(description="for a caller joining now; null when not known")


class Today(BaseModel):
    """Queue figures of the local day so far, defined as in the reports (``reports/figures.py``)."""

    day: str = Field(description="the local date, YYYY-MM-DD, in the hotline's time zone")
    service_level_s: float
    queued: int
    answered: int
    answered_within_sl: int
    service_level: float | None = Field(description="answered within service_level_s / queued; null when none")
    abandoned: int
    abandonment_rate: float | None = Field(description="abandoned / queued; null when none queued")
    as_of: float = Field(description="epoch seconds these figures were read from the call records")


class CurrentCall(BaseModel):
    id: str | None = Field(description="the call's id (for POST /api/calls/<id>/monitor)")
    queue: str = Field(description="skill:language the call was offered from")
    caller: str = Field(description="the caller's number, masked")
    state: str = Field(description="offered (ringing the agent) or busy (talking)")
    talk_s: float | None = Field(description="seconds since the agent answered; null while ringing")


class AgentRow(BaseModel):
    id: str
    name: str
    state: str
    reason: str = Field(description="why a not-ready agent is not ready; empty in any other state")
    in_state_s: float | None = Field(description="seconds in this state at the snapshot; null when never set")
    calls_today: int = Field(description="calls answered today (the hotline's day)")
    call: CurrentCall | None = Field(description="the call the agent is offered or on")


class LiveSnapshot(BaseModel):
    at: float = Field(description="epoch seconds of the snapshot")
    waiting: int = Field(description="callers waiting in every queue")
    longest_wait_s: float = Field(description="the longest wait of any caller waiting now")
    in_ivr: int = Field(description="calls in the menus now (neither queued nor ended)")
    agents: dict[str, int] = Field(description="every agent by state, each state present")
    agents_total: int
    queues: list[QueueRow]
    today: Today
    agent_rows: list[AgentRow] = Field(description="every agent, by id")
