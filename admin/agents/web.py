"""The agents and skills page, and the roster API behind it (deactivate, reactivate).

Admins edit; supervisors see the same list read-only (who is on shift, with which skills, how many
calls today), as they already may through ``GET /api/agents``. Creating and editing go through the
existing ``PUT /api/agents/<id>`` (admin.api), so its validation and audit rows are the only ones.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template
from pydantic import BaseModel, RootModel
from sqlalchemy.orm import Session, sessionmaker

from admin.access import allow, current
from admin.agents.roster import AgentRoster
from admin.audit import AuditLog
from admin.errors import answer_errors_as_json
from admin.openapi import ErrorBody, doc
from calls.connector import OfferConnector
from routing.agents import AgentRegistry


class RosterAgent(BaseModel):
    """An agent as the roster lists them: the router's view, or the kept profile of a deactivated one."""

    id: str
    name: str
    endpoint: str
    skills: dict[str, int]
    languages: list[str]
    max_calls: int
    state: str
    """A router state, or ``deactivated``."""
    since: float | None
    idle_since: float | None
    calls_today: int
    call: str | None
    wrap_until: float | None
    reason: str = ""
    active: bool
    deactivated_at: str | None
    deactivated_by: str | None


class Roster(RootModel[list[RosterAgent]]):
    pass


def create_agents_web(agents: AgentRegistry, connector: OfferConnector, sql: sessionmaker[Session],
                      audit: AuditLog) -> Blueprint:
    web = Blueprint("agents_web", __name__)
    roster = AgentRoster(agents, connector, sql)

    @web.get("/admin/agents")
    @allow("admin", "supervisor")
    def agents_page() -> str:
        return render_template("agents.html", known_skills=agents.known_skills,
                               can_edit=current().role == "admin")

    @web.get("/api/roster")
    @allow("admin", "supervisor")
    @doc({200: Roster}, tags=("agents",))
    def list_roster() -> Response:
        """Every agent: active ones from the router, then deactivated ones with their kept profile."""
        return jsonify(roster.entries())

    @web.post("/api/agents/<agent_id>/deactivate")
    @allow("admin")
    @doc({200: RosterAgent, 404: ErrorBody, 409: ErrorBody}, tags=("agents",))
    def deactivate(agent_id: str) -> Response:
        """Take the agent out of the router, keeping their profile; 409 while they are on a call."""
        who = current()
        entry = roster.deactivate(agent_id, who.name)
        audit.write(who.name, who.role, "agent_deactivated", agent_id, skills=entry["skills"],
                            languages=entry["languages"], endpoint=entry["endpoint"])
        return jsonify(entry)

    @web.post("/api/agents/<agent_id>/reactivate")
    @allow("admin")
    @doc({200: RosterAgent, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody}, tags=("agents",))
    def reactivate(agent_id: str) -> Response:
        """Put a deactivated agent back in the router (offline) with their kept profile."""
        entry = roster.reactivate(agent_id)
        who = current()
        audit.write(who.name, who.role, "agent_reactivated", agent_id, skills=entry["skills"],
                            languages=entry["languages"], endpoint=entry["endpoint"])
        return jsonify(entry)

    answer_errors_as_json(web)
    return web
