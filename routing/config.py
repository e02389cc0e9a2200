"""Per-queue routing settings: strategy, skill floor, escalation steps, offer timeout, wrap-up."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

RECORD_POLICY = r"^(all|none|(100|[1-9]?[0-9])%)$"
"""``all``, ``none`` or a sample ``25%`` of the queue's conversations (``recordings.sampling.records``)."""

Strategy = Literal["longest_idle", "most_skilled", "fewest_calls", "round_robin"]


class QueueConfig(BaseModel):
    """How one skill's queue hands calls to agents. Times are seconds; 0 turns a step off."""

    model_config = {"frozen": True, "extra": "forbid"}

    strategy: Strategy = "longest_idle"
    min_level: int = Field(default=1, ge=1, le=10)
    """Lowest skill level offered a call at first."""
    lower_level_after: float = Field(default=30, ge=0)
    """Escalation 1: after this wait any level of the skill will do."""
    overflow_after: float = Field(default=90, ge=0)
    """Escalation 2: after this wait the call is also offered to ``overflow_to`` agents."""
    overflow_to: str = "general"
    callback_after: float = Field(default=120, ge=0)
    """Escalation 3: after this wait the caller is offered a callback that keeps their place."""
    offer_timeout: float = Field(default=20, gt=0)
    """An agent who does not answer by then goes not_ready; the call is offered again."""
    wrap_up: float = Field(default=10, ge=0)
    """After-call work before the agent is offered the next call."""
    record: str = Field(default="all", pattern=RECORD_POLICY)
    """Which agent conversations of this queue are recorded: ``all``, ``none`` or a share such as ``25%``
    (the same calls every time: picked by a hash of the call id)."""

    def as_redis(self) -> dict[str, str]:
        return {name: str(value) for name, value in self.model_dump().items()}


DEFAULT_QUEUES: dict[str, QueueConfig] = {
    "loss": QueueConfig(min_level=5, lower_level_after=20, overflow_after=45, callback_after=0),
    "complaint": QueueConfig(min_level=3),
    "inquiry": QueueConfig(),
    "general": QueueConfig(overflow_after=0),
    "survey": QueueConfig(overflow_after=0, callback_after=0),
}
"""Lost cards never wait for a callback: they overflow fast instead."""
