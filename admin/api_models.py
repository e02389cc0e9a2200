"""The shapes of the existing ``/api`` answers, queries and bodies, for the OpenAPI document.

The views build their JSON themselves; these models say what it looks like, field for field, and
schemathesis checks in the tests that every answer matches.
"""

from __future__ import annotations

from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model

from reports.figures import Report
from routing.router import CallView as RouterCallView

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

# -- agents, queues, calls (admin/agents/api.py) ---------------------------------------------------------


class AgentView(BaseModel):
    id: str
    name: str
    endpoint: str
    skills: dict[str, int] = Field(description="skill -> level 1-10")
    languages: list[str]
    max_calls: int
    state: str = Field(description="offline, available, offered, busy, wrap_up or not_ready")
    since: float | None = Field(description="epoch seconds of the last state change")
    idle_since: float | None
    calls_today: int
    call: str | None = Field(description="the call the agent is offered or on")
    wrap_until: float | None
    reason: str = Field(default="", description="why the agent is in their state (a not-ready agent's break, ...)")


class AgentList(RootModel[list[AgentView]]):
    pass


class AgentBody(BaseModel):
    """An agent as the router knows it; the id is in the path."""

    name: str | None = None
    endpoint: str = Field(description="PJSIP/1001, client:alice or a phone number")
    skills: dict[str, int] = Field(description='skill -> level 1-10, e.g. {"loss": 9}')
    languages: list[str] = Field(description='e.g. ["zh-CN", "en-US"]')
    max_calls: int = 1


class AgentStateBody(BaseModel):
    state: str = Field(description="available, not_ready or offline")
    reason: str | None = Field(default=None, description="required for not_ready (break, lunch, ...); audited")


class MonitorBody(BaseModel):
    mode: str = Field(description="listen (hear both sides), whisper (the agent hears you) or barge (both do)")
    endpoint: str = Field(description="the supervisor's phone, e.g. PJSIP/1003: it rings, then joins the call")


class MonitorStarted(BaseModel):
    call_id: str
    agent: str
    mode: str
    ringing: str = Field(description="the supervisor's phone, ringing now")


class RecordingPauseBody(BaseModel):
    paused: bool = Field(description="true: pause the conversation's recording (a silent gap); false: resume it")


class RecordingState(BaseModel):
    call_id: str
    paused: bool
    paused_at: float | None = Field(description="seconds into the recording when the running pause began")
    pauses: list[list[float]] = Field(description="the pauses so far: [from_s, to_s] into the recording")


class HoldBody(BaseModel):
    on: bool = Field(description="true: the caller hears hold music and not the agent; false: back to the agent")


class TransferTo(BaseModel):
    kind: str = Field(description="queue (a skill), agent or supervisor (an agent id)")
    value: str = Field(description="the queue's skill, or the agent's id")


class TransferBody(BaseModel):
    mode: str = Field(description="cold: the caller goes at once; warm: the agent talks to the target first")
    to: TransferTo


class TargetAgent(BaseModel):
    id: str
    name: str


class TransferTargets(BaseModel):
    queues: list[str] = Field(description="the skills a call may be queued for")
    agents: list[TargetAgent] = Field(description="agents available now (not you)")
    supervisors: list[TargetAgent] = Field(
        description="supervisors available now (the router agents named like a supervisor's account)")


class CallControlDone(BaseModel):
    call_id: str
    action: str = Field(description="hangup, hold, resume, transfer, transfer_complete, transfer_cancel")


class QueueView(BaseModel):
    queue: str
    skill: str
    language: str
    waiting: int
    longest_wait_s: float
    agents: dict[str, int] = Field(description="agents serving this queue, by state")
    expected_wait_s: float | None


class QueueList(RootModel[list[QueueView]]):
    pass


API_CALL_FIELDS = ("call_id", "state", "queue", "position", "expected_wait_s", "estimate_confident", "agent",
                   "waited_s", "channel", "intent", "priority")
_call_fields: dict[str, Any] = {
    name: (kind, ...) for name, kind in get_type_hints(RouterCallView).items() if name in API_CALL_FIELDS}
CallView = create_model("CallView", **_call_fields)
"""``GET /api/calls/<id>``: the router's own ``CallView``, its public fields only (one definition of a call's view)."""


# -- work orders (admin/work_orders/api.py) -------------------------------------------------------


class WorkOrderView(BaseModel):
    number: str
    status: str
    category: str
    priority: int
    caller: str = Field(description="the caller's number, masked")
    language: str
    channel: str
    assignee: str | None
    resolution: str | None
    rating: int | None
    overdue: str | None = Field(description="first_contact or resolution once that deadline passed")
    call_id: str
    recording_ref: str
    created_at: str | None
    first_contact_due: str | None
    first_contact_at: str | None
    resolve_due: str | None
    resolved_at: str | None
    closed_at: str | None


class WorkOrderList(RootModel[list[WorkOrderView]]):
    pass


class WorkOrderChangeView(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    at: str | None
    actor: str
    action: str
    from_: str | None = Field(alias="from")
    to: str | None
    detail: str


class WorkOrderDetail(WorkOrderView):
    changes: list[WorkOrderChangeView] = Field(description="the audit trail, oldest change first")


class WorkOrderQuery(BaseModel):
    status: str | None = None
    category: str | None = None
    overdue: str | None = Field(None, description="1, true or yes: only overdue ones; anything else: not overdue")
    limit: int | None = Field(None, description="at most 1000 (default 200)")


class WorkOrderAction(BaseModel):
    by: str | None = Field(None, description="who does it: required with the API token (a person acts as themselves)")
    note: str | None = None
    to: str | None = Field(None, description="the assignee, for assign")


# -- call records (admin/work_orders/records_api.py) ---------------------------------------------------------


class RecordingRef(BaseModel):
    ref: str
    duration_s: float
    work_order: str | None


class RecordView(BaseModel):
    call_id: str
    channel: str
    direction: str
    caller_masked: str
    called: str
    started_at: str | None
    queued_at: str | None
    answered_at: str | None
    ended_at: str | None
    ivr_path: list[Any] = Field(description="the IVR steps of the call, one object per node")
    intent: str
    verified: bool
    queue: str
    wait_s: float | None
    predicted_wait_s: float | None
    agent_id: str
    talk_s: float | None
    outcome: str
    ivr_outcome: str
    end_status: str
    language: str
    menu_version: int | None
    recordings: list[RecordingRef]


class RecordList(RootModel[list[RecordView]]):
    pass


class RecordQuery(BaseModel):
    since: str | None = Field(None, description="ISO date or time (UTC when no zone), inclusive")
    until: str | None = Field(None, description="ISO date or time, exclusive")
    channel: str | None = None
    intent: str | None = None
    outcome: str | None = None
    queue: str | None = None
    agent_id: str | None = None
    limit: int | None = Field(None, description="1-500 (default 100)")


# -- reports (admin/reports/api.py) --------------------------------------------------------------


class ReportQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", pattern=DATE_PATTERN, description="first local day")
    to: str = Field(pattern=DATE_PATTERN, description="last local day (at most 366 days after from)")


class ReportBody(RootModel[Report]):
    """Every figure is defined in ``reports/figures.py``."""
