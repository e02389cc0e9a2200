"""How long a complaint may wait for its first contact and for its resolution, per category."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ComplaintDeadline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    first_contact_h: float = Field(default=24, gt=0)
    resolve_h: float = Field(default=120, gt=0)
    priority: int = Field(default=5, ge=1, le=10)
    """Starting priority of the work order; each escalation adds one (up to 10)."""


DEFAULT_DEADLINES: dict[str, ComplaintDeadline] = {
    "card_account": ComplaintDeadline(first_contact_h=4, resolve_h=48, priority=7),
    "fees": ComplaintDeadline(first_contact_h=24, resolve_h=120, priority=5),
    "service": ComplaintDeadline(first_contact_h=24, resolve_h=120, priority=5),
    "other": ComplaintDeadline(first_contact_h=24, resolve_h=168, priority=4),
}
