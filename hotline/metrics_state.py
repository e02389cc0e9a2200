"""What all processes share, read from Redis at scrape time for ``/metrics``: callers waiting and the longest
wait per queue, agents by state, the record writers' lag, RQ's queues and workers.

These are facts of the router's shared state, not counts of one process: computed when Prometheus asks, in one
Lua round trip for the router (1,000 agents and 5,000 callers in a few ms: ``bench/metrics.py``) and a handful
of commands for the stream and RQ. Labels are queue names (skill:language) and states: no call or caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from rq import Queue, Worker

import metrics
from routing.keys import events_stream
from routing.scripts import register_lua
from workers.jobs import QUEUE
from workers.records_lag import records_lag

if TYPE_CHECKING:
    from hotline.app import Hotline

log = logging.getLogger(__name__)

_SCRIPT = Path(__file__).parent / "lua" / "metrics_state.lua"
_SCORE_BAND = "10000000000000"
"""Queue scores are ``(100 - priority) * 1e13 + enqueued ms`` (``routing.live``)."""
AGENT_STATES = ("available", "offered", "busy", "wrap_up", "not_ready", "offline")


class SharedState(Collector):
    """Gauges computed from Redis each time the registry is collected."""

    def __init__(self, hotline: Hotline) -> None:
        self._router, self._jobs = hotline.router, hotline.jobs
        self._stream = events_stream(hotline.settings.hotline_name)
        self._script = register_lua(hotline.redis, _SCRIPT)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._router_state()
        yield from self._records()
        yield from self._rq()

    def _router_state(self) -> Iterator[GaugeMetricFamily]:
        waiting = GaugeMetricFamily("hotline_queue_waiting_calls", "Callers waiting for an agent.",
                                    labels=["skill", "language"])
        longest = GaugeMetricFamily("hotline_queue_longest_wait_seconds", "How long the longest-waiting caller "
                                    "of the queue has waited (0 when nobody waits).", labels=["skill", "language"])
        serving = GaugeMetricFamily("hotline_queue_agents", "Agents serving the queue, by state (an agent of two "
                                    "queues counts in both).", labels=["skill", "language", "state"])
        agents = GaugeMetricFamily("hotline_agents", "Agents by state.", labels=["state"])
        queues, rows, states = self._script(keys=[self._router.events_stream],
                                    args=[self._router.prefix, _SCORE_BAND])
        now_ms = self._router.clock() * 1000
        for i in range(0, len(queues), 3):
            skill, language = _queue(queues[i])
            waiting.add_metric([skill, language], int(queues[i + 1]))
            oldest = _text(queues[i + 2])
            longest.add_metric([skill, language], max(0.0, (now_ms - float(oldest)) / 1000) if oldest else 0.0)
        totals = dict.fromkeys(AGENT_STATES, 0)
        for i in range(0, len(rows), 3):
            skill, language = _queue(rows[i])
            serving.add_metric([skill, language, metrics.word(_text(rows[i + 1]))], int(rows[i + 2]))
        for i in range(0, len(states), 2):
            state = metrics.word(_text(states[i]))
            totals[state] = totals.get(state, 0) + int(states[i + 1])
        for state, count in sorted(totals.items()):
            agents.add_metric([state], count)
        yield from (waiting, longest, serving, agents)

    def _records(self) -> Iterator[GaugeMetricFamily]:
        lag = records_lag(self._router.redis, self._stream)
        if lag.unwritten is not None:  # a Redis before 7.0 does not count a group's unread entries
            yield GaugeMetricFamily("hotline_record_writer_unwritten_events", "Call events on the stream not yet "
                                    "written as call records (pending or not yet read).", value=lag.unwritten)
        yield GaugeMetricFamily("hotline_record_writer_oldest_unwritten_seconds", "Age of the oldest call event "
                                "not yet written as a call record.", value=lag.oldest_age_s)

    def _rq(self) -> Iterator[GaugeMetricFamily]:
        queued = GaugeMetricFamily("hotline_rq_jobs", "RQ jobs by registry (queued, scheduled, started, failed).",
                                   labels=["queue", "state"])
        workers = GaugeMetricFamily("hotline_rq_workers", "RQ workers alive (each `hotline worker` process also "
                                    "runs a call-record writer).", labels=["queue"])
        try:
            queue = Queue(QUEUE, connection=self._jobs.connection)
            queued.add_metric([QUEUE, "queued"], queue.count)
            # Counted without RQ's clean-up (``.count`` runs it): a scrape reads, the workers tidy.
            for state, registry in (("scheduled", queue.scheduled_job_registry),
                                    ("started", queue.started_job_registry), ("failed", queue.failed_job_registry)):
                queued.add_metric([QUEUE, state], registry.get_job_count(cleanup=False))
            workers.add_metric([QUEUE], Worker.count(queue=queue))
        except redis.RedisError as exc:  # RQ may live on another Redis: the router's gauges still answer
            log.warning("metrics: RQ's Redis unavailable (%s)", type(exc).__name__)
            return
        yield from (queued, workers)


def _queue(name: Any) -> tuple[str, str]:
    skill, _, language = _text(name).partition(":")
    return metrics.word(skill), metrics.language(language)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def scrape(state: SharedState) -> bytes:
    """The whole exposition: every process's counters, then the shared state as it is now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(state)
    try:
        shared = generate_latest(registry)
    except redis.RedisError as exc:
        metrics.REDIS_ERRORS.labels(metrics.error_kind(exc)).inc()
        log.warning("metrics: router state not read, redis unavailable (%s)", type(exc).__name__)
        shared = b""
    return metrics.exposition() + shared
