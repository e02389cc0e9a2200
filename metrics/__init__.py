"""The hotline's Prometheus counters and histograms: what each process counts as it happens.

Why multiprocess mode and one endpoint: ``hotline up`` runs gunicorn workers, several FastAGI processes on one
port (SO_REUSEPORT) and RQ workers. Prometheus cannot scrape one FastAGI process of several sharing a port,
and a per-process endpoint would mean a port per process. So ``hotline up`` sets ``PROMETHEUS_MULTIPROC_DIR``
(``<data dir>/metrics``, emptied at start) before it starts any of them, every process writes its samples
there, and the web's ``/metrics`` sums them. The state every process shares (callers waiting, agents by
state, stream lag, RQ queues) is not counted here at all: ``hotline.metrics_state`` reads it from Redis at
scrape time.

Labels are closed sets (channel, skill, language, outcome, step kind), each value checked against a short
pattern: a caller's number, card digits or a call id can never become a label (``tests/test_metrics.py``).
This room imports nothing of the hotline's, so any room may count.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as _multiprocess

from metrics.ended import fold_ended, reading

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REGISTRY = CollectorRegistry(auto_describe=True)
"""The hotline's own metrics (not the client library's default process/GC collectors)."""

STEP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Few buckets: every one is a value per label set per process, merged at each scrape (``bench/metrics.py``)."""
WAIT_BUCKETS = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
"""Seconds a caller waited for an agent; 20 is ``HOTLINE_SERVICE_LEVEL_SECONDS``' default (the dashboard's and
the alert's service level reads the ``le="20"`` bucket)."""

STEP_SECONDS = Histogram(
    "hotline_step_duration_seconds", "Time the hotline took to answer one step of a call: a Twilio webhook, "
    "or an engine step of a FastAGI call (caller input to the next actions).",
    ["channel", "step"], buckets=STEP_BUCKETS, registry=REGISTRY)
CALLS_STARTED = Counter("hotline_calls_started_total", "Calls that reached the hotline.", ["channel"],
                        registry=REGISTRY)
CALLS_ENDED = Counter("hotline_calls_ended_total", "Calls that ended, by channel and IVR outcome.",
                      ["channel", "outcome"], registry=REGISTRY)
CALLS_QUEUED = Counter("hotline_calls_queued_total", "Calls put in line for an agent.", ["skill", "language"],
                       registry=REGISTRY)
CALLS_ABANDONED = Counter("hotline_calls_abandoned_total", "Callers who hung up before an agent answered, by the "
                          "state the call was in (waiting, offered, callback).", ["state"], registry=REGISTRY)
OFFERS = Counter("hotline_offers_total", "Calls offered to (rung at) an agent.", ["skill"], registry=REGISTRY)
OFFERS_ANSWERED = Counter("hotline_offers_answered_total", "Offers an agent answered.", ["skill"],
                          registry=REGISTRY)
OFFERS_FAILED = Counter("hotline_offers_failed_total", "Offers not answered: timed out or declined.", ["reason"],
                        registry=REGISTRY)
ANSWER_WAIT = Histogram("hotline_answer_wait_seconds", "How long answered callers waited for their agent.",
                        ["skill"], buckets=WAIT_BUCKETS, registry=REGISTRY)
CALLBACKS = Counter("hotline_callbacks_total", "Callbacks offered to waiting callers and requested by them.",
                    ["event"], registry=REGISTRY)
MENU_ERRORS = Counter("hotline_menu_errors_total", "Calls that reached a channel's error boundary.", ["channel"],
                      registry=REGISTRY)
RETURN_VISITS = Counter("hotline_return_visits_total", "Return visits (complaint follow-up calls) due and dialled.",
                        ["event"], registry=REGISTRY)
REDIS_ERRORS = Counter("hotline_redis_errors_total", "Redis commands that failed after their retries, by error.",
                       ["kind"], registry=REGISTRY)
REDIS_RETRIES = Counter("hotline_redis_retries_total", "Redis commands retried after a connection error.",
                        ["kind"], registry=REGISTRY)
DB_ERRORS = Counter("hotline_db_errors_total", "Database statements that failed, by kind (connection lost or "
                    "refused, or the statement itself).", ["kind"], registry=REGISTRY)
RECORD_WRITER_RETRIES = Counter("hotline_record_writer_retries_total", "Batches of call events the record writer "
                                "had to retry, by error (Redis or the database away).", ["kind"], registry=REGISTRY)
# Every metric has labels: its values are made at the first ``labels()``, after ``hotline up`` has named the
# multiprocess folder (``use_multiprocess_dir``), even though this module was imported before.

_CHANNELS = frozenset({"asterisk", "twilio"})
_OUTCOMES = frozenset({"routed", "self_served", "failed", "abandoned", "survey_completed", "error", "hangup",
                       "transferred", "queued", "unanswered", "completed", ""})
_WORD = re.compile(r"[a-z][a-z_]{0,31}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z]{2,4})?")


def word(value: str | None) -> str:
    """A label value that is a short lower-case word (skill, step kind, reason), else ``other``: never digits."""
    return value if value and _WORD.fullmatch(value) else "other"


def channel(value: str | None) -> str:
    return value if value in _CHANNELS else "other"


def language(value: str | None) -> str:
    return value if value and _LANGUAGE.fullmatch(value) else "other"


def outcome(value: str | None) -> str:
    return (value or "none") if value in _OUTCOMES else "other"


@contextmanager
def timed_step(channel_name: str, step: str) -> Iterator[None]:
    """Observe how long the block took as one step of ``channel_name`` of kind ``step``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        STEP_SECONDS.labels(channel(channel_name), word(step)).observe(time.perf_counter() - started)


def count_events(events: Iterable[Mapping[str, str]]) -> None:
    """Count call events from the events stream (called by the record writer once a batch is written: each
    event is read by one writer of the consumer group, so each is counted once, whichever process made it)."""
    for event in events:
        kind = event.get("type", "")
        if kind == "call_started":
            CALLS_STARTED.labels(channel(event.get("channel"))).inc()
        elif kind == "call_ended":
            CALLS_ENDED.labels(channel(event.get("channel")), outcome(event.get("outcome"))).inc()
        elif kind == "call_queued":
            CALLS_QUEUED.labels(word(event.get("skill")), language(event.get("language"))).inc()
        elif kind == "call_offered":
            OFFERS.labels(word(event.get("skill"))).inc()
        elif kind == "call_answered":
            skill = word(event.get("skill"))
            OFFERS_ANSWERED.labels(skill).inc()
            wait = _seconds(event.get("wait_s"))
            if wait is not None:
                ANSWER_WAIT.labels(skill).observe(wait)
        elif kind == "call_offer_failed":
            OFFERS_FAILED.labels("timeout" if event.get("reason") == "offer_timeout" else "declined").inc()
        elif kind == "call_abandoned":
            CALLS_ABANDONED.labels(word(event.get("state"))).inc()
        elif kind in ("callback_offered", "callback_requested"):
            CALLBACKS.labels(kind.removeprefix("callback_")).inc()


def _seconds(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def error_kind(exc: BaseException) -> str:
    """A label for an exception: its class name (``ConnectionError``, ``OperationalError``), a closed set."""
    name = type(exc).__name__
    return name if re.fullmatch(r"[A-Za-z_]{1,40}", name) else "other"


def use_multiprocess_dir(folder: str) -> None:
    """Count into files in ``folder`` from now on, in this process and the processes it starts or forks.

    prometheus_client picks its value store when it is imported; ``hotline up`` imports it (through the
    modules that count) before it knows its data folder. No value exists yet then (every metric has labels),
    so choosing the store again is enough."""
    from prometheus_client import values

    os.environ[MULTIPROC_ENV] = folder
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition() -> bytes:
    """The text format of every process's counters: summed over the processes in multiprocess mode."""
    folder = multiprocess_dir()
    if folder is None:
        return generate_latest(REGISTRY)
    merged = CollectorRegistry()
    _multiprocess.MultiProcessCollector(merged, path=folder)  # type: ignore[no-untyped-call]
    with reading(folder):
        return generate_latest(merged)


def process_gone(pid: int) -> None:
    """A process that counted has ended (a restarted FastAGI or worker, a gunicorn worker): its counts stay in
    the sums, folded into the archive files (``metrics.ended``); its live-only files are dropped
    (``prometheus_client.multiprocess.mark_process_dead``)."""
    folder = multiprocess_dir()
    if folder is not None:
        _multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
        fold_ended(folder, pid)
