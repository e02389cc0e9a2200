"""Agents: who they are, what they can do, where to ring them, and their state in the router."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from routing.endpoints import endpoint_problem
from routing.router import Ended, Offer, Router, _offers, _text
from routing.scripts import RouterScripts

AGENT_STATES = ("offline", "available", "offered", "busy", "wrap_up", "not_ready")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SKILL = re.compile(r"^[a-z_]{1,32}$")


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    endpoint: str
    """Asterisk ``PJSIP/1001``, a Twilio ``client:alice`` identity, or a phone number."""
    skills: Mapping[str, int]
    """Skill -> level 1-10."""
    languages: Sequence[str]
    max_calls: int = 1
    state: str = "offline"
    since: float | None = None
    idle_since: float | None = None
    calls_today: int = 0
    call: str | None = None
    wrap_until: float | None = None
    reason: str = ""
    """Why the agent is in their state, as given with the change (a not-ready agent's ``break``, ...)."""
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def check(self, known_skills: Sequence[str], sip_domains: Collection[str] = ()) -> None:
        """Raises ValueError with what is wrong. ``sip_domains``: where a ``sip:`` endpoint may point."""
        if not _ID.match(self.id):
            raise ValueError(f"agent id {self.id!r}: use 1-64 letters, digits, '.', '_' or '-'")
        if not self.endpoint:
            raise ValueError(f"agent {self.id}: an endpoint to ring is required")
        problem = endpoint_problem(self.endpoint, sip_domains)
        if problem:
            raise ValueError(f"agent {self.id}: endpoint {self.endpoint[:140]!r} {problem}")
        if not self.skills:
            raise ValueError(f"agent {self.id}: at least one skill is required")
        for skill, level in self.skills.items():
            if not _SKILL.match(skill) or (known_skills and skill not in known_skills):
                raise ValueError(f"agent {self.id}: unknown skill {skill!r} (known: {', '.join(known_skills)})")
            if not 1 <= int(level) <= 10:
                raise ValueError(f"agent {self.id}: skill {skill} level {level} is not 1-10")
        if not self.languages:
            raise ValueError(f"agent {self.id}: at least one language is required")
        if self.max_calls != 1:
            raise ValueError(f"agent {self.id}: voice agents take one call at a time (max_calls 1)")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "endpoint": self.endpoint, "skills": dict(self.skills),
            "languages": list(self.languages), "max_calls": self.max_calls, "state": self.state,
            "since": self.since, "idle_since": self.idle_since, "calls_today": self.calls_today,
            "call": self.call, "wrap_until": self.wrap_until, "reason": self.reason,
        }


@dataclass(frozen=True)
class AgentCall:
    """The call an agent is offered or on, as the floor view shows it."""

    queue: str
    """``skill:language`` of the queue it was offered from."""
    caller: str
    """Masked, as the channel gave it."""
    state: str
    """``offered`` (ringing) or ``busy`` (talking)."""
    answered_at: float | None


class AgentRegistry:
    def __init__(self, router: Router, known_skills: Sequence[str] = (), sip_domains: Collection[str] = ()) -> None:
        self.router, self.known_skills = router, tuple(known_skills)
        self.sip_domains = tuple(d for d in sip_domains if d)
        """The SIP domains a ``sip:`` endpoint may point at (Twilio rings it as it is)."""

    def put(self, agent: Agent) -> list[Offer]:
        """Create or update (state kept). Raises ValueError for a malformed agent."""
        agent.check(self.known_skills, self.sip_domains)
        skills = ",".join(f"{skill}:{int(level)}" for skill, level in agent.skills.items())
        reply = self.router.scripts.run(
            "agent_put", agent.id, agent.name, agent.endpoint, skills, ",".join(agent.languages), agent.max_calls,
        )
        return _offers(reply)

    def get(self, agent_id: str) -> Agent | None:
        data = self.router.redis.hgetall(self.router.key(f"agent:{agent_id}"))
        return _agent({_text(k): _text(v) for k, v in data.items()}, self.router.scripts) if data else None

    def all(self) -> list[Agent]:
        ids = sorted(_text(i) for i in self.router.redis.smembers(self.router.key("agents")))
        agents: list[Agent] = []
        for chunk in _chunks(ids):
            pipe = self.router.redis.pipeline(transaction=False)
            for agent_id in chunk:
                pipe.hgetall(self.router.key(f"agent:{agent_id}"))
            rows = [{_text(k): _text(v) for k, v in row.items()} for row in pipe.execute()]
            agents += [_agent(row, self.router.scripts) for row in rows if row]
        return agents

    def on_floor(self) -> list[tuple[Agent, AgentCall | None]]:
        """Every agent (as ``all()``) with the call they are offered or on: one more pipeline, of the calls.
        Pipelines, not a Lua script: a script reading 1,000 hashes held Redis (and every router operation)
        for ~9 ms per read at 1,000 agents where the pipelines cost it ~1.7 ms and let other clients in between."""
        agents = self.all()
        on_call = [a for a in agents if a.call and a.state in ("offered", "busy")]
        calls: dict[str, AgentCall] = {}
        for chunk in _chunks(on_call):
            pipe = self.router.redis.pipeline(transaction=False)
            for agent in chunk:
                pipe.hmget(self.router.key(f"call:{agent.call}"),
                           ["skill", "offered_skill", "language", "caller", "answered_at", "state", "agent"])
            for agent, values in zip(chunk, pipe.execute(), strict=True):
                skill, offered_skill, language, caller, answered_at, state, holder = (
                    None if v is None else _text(v) for v in values)
                if state in ("offered", "busy") and holder == agent.id:  # not a call that moved on meanwhile
                    calls[agent.id] = AgentCall(queue=f"{offered_skill or skill}:{language}", caller=caller or "",
                                                state=state,
                                                answered_at=_float(answered_at) if state == "busy" else None)
        return [(agent, calls.get(agent.id)) for agent in agents]

    def remove(self, agent_id: str) -> Ended:
        """Raises NoSuchAgent, or AgentOnCall while they talk. A call ringing them goes back to its place
        in line; ``agent_leg`` is that ring, for the channel to cancel."""
        offers, leg = self.router.scripts.run("agent_remove", agent_id)
        return Ended(_offers(offers), agent_id, _text(leg) or None)


PIPELINE_CHUNK = 100
"""Agents read per pipeline. The reads of a 1,000-agent floor (the dashboard's every snapshot) as one pipeline were
~40 ms of packing and parsing with no wait in between: in a gevent web worker, 40 ms in which no webhook ran. In
chunks, each round trip lets the others in (~4 ms at most), for ~1 ms more in all."""

T = TypeVar("T")


def _chunks(items: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), PIPELINE_CHUNK):
        yield items[start:start + PIPELINE_CHUNK]


def _agent(data: dict[str, str], scripts: RouterScripts) -> Agent:
    skills = {s: int(level) for s, _, level in (p.partition(":") for p in data.get("skills", "").split(",") if p)}
    calls = int(data.get("calls_today") or 0) if data.get("day") == scripts.today() else 0
    return Agent(
        id=data["id"], name=data.get("name", ""), endpoint=data.get("endpoint", ""), skills=skills,
        languages=[lang for lang in data.get("languages", "").split(",") if lang],
        max_calls=int(data.get("max_calls") or 1), state=data.get("state", "offline"),
        since=_float(data.get("since")), idle_since=_float(data.get("idle_since")), calls_today=calls,
        call=data.get("call") or None, wrap_until=_float(data.get("wrap_until")), reason=data.get("reason", ""),
    )


def _float(text: str | None) -> float | None:
    return float(text) if text else None
