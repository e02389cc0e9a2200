"""Every agent an admin manages: the active ones live in the router, deactivated ones only in SQL.

Deactivating takes an agent out of the router (no more offers, gone from every queue) but keeps their
profile, so reactivating puts back the same name, endpoint, skills and languages. The profile is
committed before the router lets go of the agent: a crash in between leaves the agent active with a
stale profile, which the roster ignores and the next deactivation overwrites, never a lost profile.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from calls.connector import OfferConnector
from routing.agents import Agent, AgentRegistry
from routing.exceptions import NoSuchAgent
from store.models import AgentProfile

DEACTIVATED = "deactivated"


class AlreadyActive(Exception):
    """The agent to reactivate is in the router already."""


class AgentRoster:
    def __init__(self, agents: AgentRegistry, connector: OfferConnector, sql: sessionmaker[Session]) -> None:
        self.agents, self.connector, self.sql = agents, connector, sql

    def entries(self) -> list[dict[str, Any]]:
        """Active agents, then deactivated ones, each sorted by id."""
        active = [_active(agent) for agent in self.agents.all()]
        ids = {entry["id"] for entry in active}
        with self.sql() as db:
            profiles = db.scalars(select(AgentProfile).order_by(AgentProfile.agent_id)).all()
            return active + [_deactivated(p) for p in profiles if p.agent_id not in ids]

    def deactivate(self, agent_id: str, by: str) -> dict[str, Any]:
        """Raises NoSuchAgent, or AgentOnCall while they talk (the profile is then left as it was)."""
        agent = self.agents.get(agent_id)
        if agent is None:
            raise NoSuchAgent(f"agent {agent_id} does not exist")
        with self.sql() as db:
            before = db.get(AgentProfile, agent_id)
            previous = _columns(before) if before else None
        profile = AgentProfile(agent_id=agent.id, name=agent.name, endpoint=agent.endpoint, skills=dict(agent.skills),
                               languages=list(agent.languages), deactivated_by=by,
                               deactivated_at=dt.datetime.now(dt.UTC))
        self._store(agent_id, profile)
        try:
            ended = self.agents.remove(agent_id)
        except Exception:
            self._store(agent_id, AgentProfile(**previous) if previous else None)
            raise
        self.connector.settle(ended)
        return self.entry(agent_id)

    def reactivate(self, agent_id: str) -> dict[str, Any]:
        """Raises NoSuchAgent (no deactivated profile), AlreadyActive, or ValueError when the profile no
        longer passes ``Agent.check`` (a skill taken out of the menu since)."""
        if self.agents.get(agent_id) is not None:
            raise AlreadyActive(f"agent {agent_id} is active already")
        with self.sql() as db:
            profile = db.get(AgentProfile, agent_id)
            if profile is None:
                raise NoSuchAgent(f"agent {agent_id} has no deactivated profile")
            agent = Agent(id=profile.agent_id, name=profile.name, endpoint=profile.endpoint,
                          skills=dict(profile.skills), languages=list(profile.languages))
        self.connector.connect(self.agents.put(agent))
        self._store(agent_id, None)
        return self.entry(agent_id)

    def entry(self, agent_id: str) -> dict[str, Any]:
        """One agent as the roster lists them; raises NoSuchAgent."""
        agent = self.agents.get(agent_id)
        if agent is not None:
            return _active(agent)
        with self.sql() as db:
            profile = db.get(AgentProfile, agent_id)
            if profile is None:
                raise NoSuchAgent(f"agent {agent_id} does not exist")
            return _deactivated(profile)

    def _store(self, agent_id: str, profile: AgentProfile | None) -> None:
        """Replace the stored profile of the agent (None: delete it)."""
        with self.sql.begin() as db:
            db.execute(delete(AgentProfile).where(AgentProfile.agent_id == agent_id))
            if profile is not None:
                db.add(profile)


def _columns(profile: AgentProfile) -> dict[str, Any]:
    return {c.key: getattr(profile, c.key) for c in AgentProfile.__table__.columns}


def _active(agent: Agent) -> dict[str, Any]:
    return {**agent.to_json(), "active": True, "deactivated_at": None, "deactivated_by": None}


def _deactivated(profile: AgentProfile) -> dict[str, Any]:
    at = profile.deactivated_at if profile.deactivated_at.tzinfo else profile.deactivated_at.replace(tzinfo=dt.UTC)
    return {
        "id": profile.agent_id, "name": profile.name, "endpoint": profile.endpoint, "skills": dict(profile.skills),
        "languages": list(profile.languages), "max_calls": 1, "state": DEACTIVATED, "since": at.timestamp(),
        "idle_since": None, "calls_today": 0, "call": None, "wrap_until": None, "reason": "", "active": False,
        "deactivated_at": at.isoformat(), "deactivated_by": profile.deactivated_by,
    }
