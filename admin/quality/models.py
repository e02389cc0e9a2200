"""The shapes of ``/api/quality`` for the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class ReviewItemView(BaseModel):
    id: int
    call_id: str
    agent_id: str
    queue: str
    call_started_at: str | None
    week: str = Field(description="the ISO week of the call in HOTLINE_TIMEZONE, 2026-W49")
    reasons: list[str] = Field(description="share, reopened, dissatisfied, long, calibration")
    reviewer: str
    calibration: bool
    status: str = Field(description="open (to score) or disputed (the agent disputed the evaluation)")


class ReviewQueue(RootModel[list[ReviewItemView]]):
    pass


class SamplingBody(BaseModel):
    week: str | None = Field(None, description="YYYY-Www (default: this week in HOTLINE_TIMEZONE)")


class SamplingResult(BaseModel):
    week: str
    picked: int = Field(description="calls the rules pick in the week (queued before or now)")
    added: int = Field(description="new review items made by this run")
    by_reason: dict[str, int]


class ScorecardQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str | None = Field(None, alias="from", description="first local day YYYY-MM-DD (default: 27 days ago)")
    to: str | None = Field(None, description="last local day (default: today)")
    group: Literal["agent", "queue"] = "agent"
    bucket: Literal["week", "month"] = "week"
    only: str | None = Field(None, description="one agent or queue")


class ScorecardRowView(BaseModel):
    key: str
    evaluations: int
    average: float | None
    auto_fail_rate: float | None
    sections: dict[str, float | None]
    trend: dict[str, float | None]
    calls_handled: int
    aht_s: float | None
    csat: float | None
    rated: int


class ScorecardBody(BaseModel):
    """Every figure is defined in quality/scorecards.py."""

    group: str
    bucket: str
    start: str
    end: str
    buckets: list[str]
    sections: list[str]
    rows: list[ScorecardRowView]
