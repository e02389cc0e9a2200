"""``agent-login``: an agent dials *1 / *2 from their desk phone to start or end taking calls."""

from __future__ import annotations

import logging

from agi_scripts.agi import HotlineAGI
from routing.agents import AgentRegistry
from routing.exceptions import RouterError
from routing.router import Router

log = logging.getLogger(__name__)

STATES = {"login": "available", "logout": "offline", "pause": "not_ready"}


def agent_login(agi: HotlineAGI, agents: AgentRegistry, router: Router, query: dict[str, list[str]]) -> None:
    """Finds the agent by the phone they call from (``PJSIP/1001``) and sets their state.
    Sets ``HOTLINE_AGENT_STATUS`` to the new state, or to why it was refused, for the dialplan to play."""
    action = (query.get("action") or ["login"])[0]
    endpoint = _endpoint(agi.env.get("agi_channel", ""))
    agent = next((a for a in agents.all() if a.endpoint.lower() == endpoint.lower()), None)
    if agent is None or action not in STATES:
        log.warning("agent-login: no agent at %s (action %s)", endpoint, action)
        agi.command("SET VARIABLE", "HOTLINE_AGENT_STATUS", "unknown")
        return
    try:
        router.set_agent_state(agent.id, STATES[action], f"phone {action}")
        status = STATES[action]
    except RouterError as exc:
        log.info("agent-login: %s %s refused: %s", agent.id, action, exc)
        status = "refused"
    agi.command("SET VARIABLE", "HOTLINE_AGENT_STATUS", status)


def _endpoint(channel: str) -> str:
    """``PJSIP/1001-0000002a`` -> ``PJSIP/1001``, ``Local/1001@agents-0000001f;1`` -> ``Local/1001@agents``:
    the channel name without Asterisk's sequence suffix (and a Local channel's ``;1``/``;2`` half)."""
    channel = channel.split(";", 1)[0]
    name, _, suffix = channel.rpartition("-")
    return name if name and suffix and all(c in "0123456789abcdef" for c in suffix) else channel
