"""The live dashboard's snapshot: queues, a row per agent, calls in the menus, today's service level.

A snapshot is a handful of Redis round trips (every agent in one pipeline, the calls of those ringing or
talking in another, every queue in a third, one estimate per queue, one count of calls in the menus)
and, at most every ``TODAY_REFRESH_S``, one grouped SQL query over today's call records. Pages following
the event stream share snapshots: a snapshot begun after a page's batch of events arrived serves that page
too, so a burst costs one snapshot per process, however many pages are open.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from admin.live.models import LiveSnapshot, QueueRow, Today
from calls.sessions import SessionStore
from reports.queries import queue_figures_of_day
from routing.agents import AGENT_STATES, Agent, AgentCall, AgentRegistry
from routing.live import queue_summaries
from routing.router import Router

TODAY_REFRESH_S = 5.0
"""Today's figures are read again at most this often: a call record lands about a second after its
call ends anyway, and a burst of events must not turn into a burst of report queries."""


@dataclass
class _Taken:
    began: float
    """``time.monotonic()`` when the snapshot began: it reflects every event read before then."""
    body: dict[str, Any]


class LiveBoard:
    def __init__(self, router: Router, agents: AgentRegistry, sessions: SessionStore, sql: sessionmaker[Session],
                 timezone: str, service_level_s: float, wall: Callable[[], float] = time.time) -> None:
        self.router, self.agents, self.sessions, self.sql = router, agents, sessions, sql
        self.zone, self.service_level_s, self.wall = ZoneInfo(timezone), service_level_s, wall
        self._lock = threading.Lock()
        self._last: _Taken | None = None
        self._today: tuple[float, Today] | None = None

    def snapshot(self, not_before: float | None = None) -> dict[str, Any]:
        """The live picture as JSON. A snapshot that began at or after ``not_before`` (``time.monotonic()``,
        e.g. when a batch of events was read) is reused instead of taking another."""
        not_before = time.monotonic() if not_before is None else not_before
        with self._lock:
            if self._last is None or self._last.began < not_before:
                began = time.monotonic()
                self._last = _Taken(began, self._take())
            return self._last.body

    def _take(self) -> dict[str, Any]:
        """``LiveSnapshot`` as JSON; the agent rows (1,000 at a large hotline) are built as plain dicts of
        ``AgentRow``'s shape: a pydantic model per row would add to every snapshot's time."""
        floor = self.agents.on_floor()
        agents = [agent for agent, _ in floor]
        queues = queue_summaries(self.router, agents)
        states = Counter(a.state for a in agents)
        now = self.router.clock()
        body = LiveSnapshot(
            at=round(now, 3), waiting=sum(q.waiting for q in queues),
            longest_wait_s=max((q.longest_wait_s for q in queues), default=0.0),
            in_ivr=self.sessions.in_ivr(self.wall()),
            agents={state: states.get(state, 0) for state in (*AGENT_STATES, *sorted(set(states) - set(AGENT_STATES)))},
            agents_total=len(agents), queues=[QueueRow(**q.to_json()) for q in queues], today=self._today_figures(),
            agent_rows=[],
        ).model_dump()
        body["agent_rows"] = [_row(agent, call, now) for agent, call in floor]
        return body

    def _today_figures(self) -> Today:
        now = self.wall()
        day = dt.datetime.fromtimestamp(now, self.zone).date()
        cached = self._today
        if cached is not None and cached[1].day == day.isoformat() and time.monotonic() - cached[0] < TODAY_REFRESH_S:
            return cached[1]
        queue = queue_figures_of_day(self.sql, day, self.zone, self.service_level_s)
        today = Today(
            day=day.isoformat(), service_level_s=self.service_level_s, queued=queue.queued, answered=queue.answered,
            answered_within_sl=queue.answered_within_sl, service_level=queue.service_level,
            abandoned=queue.abandoned, abandonment_rate=queue.abandonment_rate, as_of=round(now, 3),
        )
        self._today = (time.monotonic(), today)
        return today


def _row(agent: Agent, call: AgentCall | None, now: float) -> dict[str, Any]:
    """One ``AgentRow``."""
    current = None
    if call is not None:
        talk = round(max(0.0, now - call.answered_at), 1) if call.answered_at is not None else None
        current = {"id": agent.call, "queue": call.queue, "caller": call.caller, "state": call.state, "talk_s": talk}
    return {
        "id": agent.id, "name": agent.name, "state": agent.state,
        "reason": agent.reason if agent.state == "not_ready" else "",
        "in_state_s": round(max(0.0, now - agent.since), 1) if agent.since is not None else None,
        "calls_today": agent.calls_today, "call": current,
    }
