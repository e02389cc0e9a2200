"""JSON API under ``/api`` for agents, queues and calls, behind a bearer token."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from flask import Blueprint, Response, jsonify
from flask_babel import gettext as _

from admin.access import allow, current
from admin.api_models import API_CALL_FIELDS, AgentBody, AgentList, AgentStateBody, AgentView, CallView, QueueList
from admin.audit import AuditLog
from admin.errors import answer_errors_as_json
from admin.json_replies import json_body, json_error
from admin.openapi import ErrorBody, doc
from calls.connector import OfferConnector
from routing.agents import Agent, AgentRegistry
from routing.exceptions import NoSuchAgent
from routing.live import queue_summaries
from routing.router import Router

log = logging.getLogger(__name__)


def create_api(router: Router, agents: AgentRegistry, connector: OfferConnector, audit: AuditLog,
               spoken: Callable[[], Sequence[str]] = lambda: ()) -> Blueprint:
    """``spoken()``: the languages the published menus speak (an agent's must be among them)."""
    api = Blueprint("api", __name__, url_prefix="/api")

    @api.get("/agents")
    @allow("admin", "supervisor")
    @doc({200: AgentList}, tags=("agents",))
    def list_agents() -> Response:
        """Every agent with their skills and live state."""
        return jsonify([a.to_json() for a in agents.all()])

    @api.put("/agents/<agent_id>")
    @allow("admin")
    @doc({200: AgentView, 201: AgentView, 400: ErrorBody}, json=AgentBody, tags=("agents",))
    def put_agent(agent_id: str) -> tuple[Response, int]:
        """Create (201) or update (200) an agent; the state is kept."""
        body = json_body()
        existed = agents.get(agent_id) is not None
        agent = Agent(
            id=agent_id, name=str(body.get("name") or agent_id), endpoint=str(body.get("endpoint") or ""),
            skills=_skills(body.get("skills")), languages=_languages(body.get("languages")),
            max_calls=_max_calls(body.get("max_calls")),
        )
        speaks_a_menu_language(agent, spoken())
        connector.connect(agents.put(agent))
        who = current()
        audit.write(who.name, who.role, "agent_updated" if existed else "agent_created", agent_id,
                    skills=dict(agent.skills), languages=list(agent.languages), endpoint=agent.endpoint)
        return jsonify(agents.get(agent_id).to_json()), 200 if existed else 201  # type: ignore[union-attr]

    @api.get("/agents/<agent_id>")
    @allow("admin", "supervisor")
    @doc({200: AgentView, 404: ErrorBody}, tags=("agents",))
    def get_agent(agent_id: str) -> Response:
        agent = agents.get(agent_id)
        if agent is None:
            raise NoSuchAgent(f"agent {agent_id} does not exist")
        return jsonify(agent.to_json())

    @api.delete("/agents/<agent_id>")
    @allow("admin")
    @doc({204: None, 404: ErrorBody, 409: ErrorBody}, tags=("agents",))
    def delete_agent(agent_id: str) -> Response:
        """Remove an agent (refused with 409 while they are on a call)."""
        connector.settle(agents.remove(agent_id))
        who = current()
        audit.write(who.name, who.role, "agent_removed", agent_id)
        return Response(status=204)

    @api.post("/agents/<agent_id>/state")
    @allow("admin", "supervisor")
    @doc({200: AgentView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody}, json=AgentStateBody, tags=("agents",))
    def set_state(agent_id: str) -> Response:
        """Set an agent available, not ready (a reason is required) or offline; 409 while they talk."""
        body = json_body()
        state, reason = str(body.get("state") or ""), str(body.get("reason") or "").strip()[:64]
        if state == "not_ready" and not reason:
            raise ValueError(_("not ready needs a reason (break, lunch, meeting, training, coaching, ...)"))
        before = agents.get(agent_id)
        who = current()
        connector.connect(router.set_agent_state(agent_id, state, reason or f"set by {who.name}"))
        audit.write(who.name, who.role, "agent_state_set", agent_id, state=state, reason=reason,
                    previous=before.state if before is not None else "")
        return jsonify(agents.get(agent_id).to_json())  # type: ignore[union-attr]

    @api.get("/queues")
    @allow("admin", "supervisor")
    @doc({200: QueueList}, tags=("queues",))
    def queues() -> Response:
        """Every queue: callers waiting, longest wait, agents by state, expected wait."""
        return jsonify([q.to_json() for q in queue_summaries(router, agents.all())])

    @api.get("/calls/<call_id>")
    @allow("admin", "supervisor")
    @doc({200: CallView, 404: ErrorBody}, tags=("queues",))
    def call(call_id: str) -> Response | tuple[Response, int]:
        view = router.call(call_id)
        if view is None:
            return json_error(404, _("call %(call_id)s is not waiting or connected", call_id=call_id))
        return jsonify({name: getattr(view, name) for name in API_CALL_FIELDS})

    answer_errors_as_json(api)
    return api


def _skills(value: object) -> dict[str, int]:
    if not isinstance(value, dict) or not all(isinstance(v, int) for v in value.values()):
        raise ValueError('skills must be an object of skill -> level 1-10, e.g. {"loss": 9}')
    return {str(k): int(v) for k, v in value.items()}


def _max_calls(value: object) -> int:
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(_("max_calls must be a whole number (1 for voice agents)"))
    return value


def _languages(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('languages must be a list, e.g. ["zh-CN", "en-US"]')
    return list(value)


def speaks_a_menu_language(agent: Agent, spoken: Sequence[str]) -> None:
    """Raises ValueError for a language no published menu speaks: a caller is matched on the menu's language
    code, so ``zh`` never meets a ``zh-CN`` caller. (Also ``hotline agents add``'s check.)"""
    unknown = [lang for lang in agent.languages if spoken and lang not in spoken]
    if unknown:
        raise ValueError(_("agent %(agent)s: language %(language)r is spoken by no published menu (the menus speak "
                           "%(spoken)s)", agent=agent.id, language=unknown[0][:20], spoken=", ".join(spoken)))
