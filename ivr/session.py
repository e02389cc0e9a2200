"""The state of one call in the IVR: where it is, what it said, and the path it took."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Session:
    """One call's IVR state. Holds no secret: sensitive digits are kept masked only."""

    call_id: str
    channel: str
    caller: str
    called: str
    menu: str
    menu_version: int
    language: str
    node: str = ""
    attempts: int = 0
    visits: dict[str, int] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    path: list[dict[str, str]] = field(default_factory=list)
    buffer: str = ""
    """Digits typed ahead of the current prompt, consumed by the next node that gathers."""
    seq: int = 0
    """Step counter: lets a channel recognise a replayed step."""
    started_at: float = 0.0
    intent: str = ""
    outcome: str = ""
    ended: bool = False

    def copy(self) -> Session:
        return Session(**{
            **self.__dict__,
            "visits": dict(self.visits),
            "vars": dict(self.vars),
            "path": list(self.path),
        })

    def to_json(self) -> str:
        # vars() not asdict(): the fields are plain JSON values, and asdict deep-copies them all.
        return json.dumps(vars(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Session:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)
