"""``/metrics``: behind its token, moving with the calls, and never carrying a caller's number, card or call id."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

import metrics
from hotline.app import Hotline, create_app
from routing.agents import Agent
from routing.keys import EVENTS_STREAM
from routing.router import CallRequest
from tests.conftest import API_TOKEN, AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_caller import TwilioCaller
from workers.records import RecordWriter
from workers.runner import counted
from workers.stream import RECORDS_GROUP, ConsumerConfig, StreamConsumer

CARD, PIN, CALLER = "6222021234567894", "123456", "+8613800001111"
SCRAPE_TOKEN = "scrape-token-0123456789"


def scrape(app: Any, token: str = API_TOKEN) -> str:
    reply = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return str(reply.get_data(as_text=True))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def write_records(hotline: Hotline) -> None:
    """What a ``hotline worker`` does with the events: write the records, then count them."""
    consumer = StreamConsumer(redis.Redis.from_url(hotline.redis_url),
                              ConsumerConfig(EVENTS_STREAM, RECORDS_GROUP, "w1", block_ms=10),
                              counted(RecordWriter(hotline.sql).write))
    consumer.ensure_group()
    while consumer.step():
        pass


def test_metrics_need_the_scrape_token_or_the_api_token(hotline: Hotline, token_app: Any) -> None:
    client = token_app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {API_TOKEN}x"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 200
    hotline.settings = hotline.settings.model_copy(update={"metrics_token": SCRAPE_TOKEN, "api_token": None})
    scrape_only = create_app(hotline=hotline).test_client()
    assert scrape_only.get("/metrics").status_code == 401
    reply = scrape_only.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert reply.status_code == 200 and reply.content_type.startswith("text/plain")
    # the scrape token is no API token: it opens /metrics only
    assert scrape_only.get("/api/agents", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"}).status_code == 401


def test_no_caller_number_card_or_call_id_reaches_the_exposition(hotline: Hotline, token_app: Any) -> None:
    hotline.agents.put(Agent("li", "Li", "PJSIP/1001", {"general": 5}, ["zh-CN"]))
    hotline.router.set_agent_state("li", "not_ready")
    callers = []
    for caller_number in (CALLER, "+8613912345678"):
        caller = TwilioCaller(token_app.test_client(), AUTH_TOKEN, PUBLIC_URL, caller=caller_number)
        caller.dial()
        caller.press("1")
        caller.press(CARD + "#")
        caller.press(PIN)
        caller.press("0")  # and on to an agent: waits in line, nobody available
        callers.append(caller)
    write_records(hotline)
    text = scrape(token_app)
    # the scrape shows the calls ...
    assert value(text, "hotline_calls_started_total", channel="twilio") == 2
    assert sum(value(text, "hotline_queue_waiting_calls", skill=s, language="zh-CN")
               for s in ("general", "inquiry")) == 2
    assert value(text, "hotline_queue_agents", skill="general", language="zh-CN", state="not_ready") == 1
    assert value(text, "hotline_agents", state="not_ready") == 1
    assert value(text, "hotline_step_duration_seconds_count", channel="twilio", step="voice") >= 8
    # ... and nothing of who made them
    for secret in (CARD, CARD[-4:] + "\"", CALLER, CALLER[1:], CALLER[-8:], "13912345678",
                   *(c.call_sid for c in callers)):
        assert secret not in text, secret
    labels = [v for family in text_string_to_metric_families(text) for s in family.samples for v in s.labels.values()]
    assert [v for v in labels if re.search(r"\d{4,}", v) and not re.fullmatch(r"[\d.e+]+|\+Inf", v)] == []


def test_events_are_counted_by_channel_outcome_and_queue(hotline: Hotline, token_app: Any, caller: Any) -> None:
    before = scrape(token_app)
    caller.dial()
    caller.press("1")
    caller.press(CARD + "#")
    caller.press(PIN)
    caller.post_raw("/twilio/status", CallStatus="completed", CallDuration="30")
    write_records(hotline)
    after = scrape(token_app)
    started = "hotline_calls_started_total"
    assert value(after, started, channel="twilio") - value(before, started, channel="twilio") == 1
    ended = [k for k, v in samples(after).items() if k[0] == "hotline_calls_ended_total" and v]
    assert ended and all(dict(labels)["channel"] == "twilio" for _, labels in ended)
    assert value(after, "hotline_record_writer_unwritten_events") == 0


def test_longest_wait_is_the_oldest_caller_whatever_the_priorities(hotline: Hotline, token_app: Any) -> None:
    now = time.time()
    for n, (priority, waited) in enumerate([(9, 30), (0, 300), (5, 120), (0, 10), (9, 5)]):
        hotline.router.enqueue(CallRequest(f"CA-w{n}", "loss", "en-US", priority, "twilio", caller="138****0000",
                                           enqueued_at=now - waited))
    text = scrape(token_app)
    assert value(text, "hotline_queue_waiting_calls", skill="loss", language="en-US") == 5
    assert 299 < value(text, "hotline_queue_longest_wait_seconds", skill="loss", language="en-US") < 310
    assert value(text, "hotline_queue_longest_wait_seconds", skill="general", language="zh-CN") == 0


COUNT_IN_A_PROCESS = """
import sys
import threading
import store.db, metrics  # imported first, as `hotline up` does before it knows its data folder
metrics.use_multiprocess_dir(sys.argv[1])
metrics.CALLS_STARTED.labels("asterisk").inc(3)
metrics.DB_ERRORS.labels("connection").inc()
"""


def test_every_process_counts_into_the_one_exposition(tmp_path: Path) -> None:
    """`hotline up`'s processes (gunicorn workers, FastAGI, workers) each count into the folder; one scrape sums them."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    for _ in range(2):
        subprocess.run([sys.executable, "-c", COUNT_IN_A_PROCESS, str(folder)], check=True, timeout=60)
    scraped = subprocess.run(
        [sys.executable, "-c", "import metrics, sys; sys.stdout.write(metrics.exposition().decode())"],
        check=True, timeout=60, capture_output=True, text=True,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}).stdout
    assert value(scraped, "hotline_calls_started_total", channel="asterisk") == 6
    assert value(scraped, "hotline_db_errors_total", kind="connection") == 2


COUNT_AND_TIME = COUNT_IN_A_PROCESS + """
metrics.STEP_SECONDS.labels("twilio", "voice").observe(0.02)
metrics.STEP_SECONDS.labels("twilio", "voice").observe(3.0)
"""


def _processes_that_counted(folder: Path, n: int) -> list[int]:
    pids = []
    for _ in range(n):
        child = subprocess.Popen([sys.executable, "-c", COUNT_AND_TIME, str(folder)])
        assert child.wait(timeout=60) == 0
        pids.append(child.pid)
    return pids


def _samples(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line and not line.startswith("#"))


def test_processes_that_ended_are_folded_into_one_archive_and_their_counts_stay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Restarted FastAGI processes and workers, recycled gunicorn workers: their counts stay in every sum, but
    each scrape reads the live processes' files and one archive per type, not a file per process ever run."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    pids = _processes_that_counted(folder, 4)
    before = _samples(metrics.exposition().decode())
    assert value("\n".join(before), "hotline_calls_started_total", channel="asterisk") == 12
    for pid in pids[:3]:
        metrics.process_gone(pid)
    after = metrics.exposition().decode()
    assert _samples(after) == before  # every counter, bucket, sum and count as it was
    assert value(after, "hotline_step_duration_seconds_bucket", channel="twilio", step="voice", le="0.025") == 4
    assert sorted(f.name for f in folder.glob("*.db")) == sorted(
        [f"counter_{pids[3]}.db", f"histogram_{pids[3]}.db", "counter_archive.db", "histogram_archive.db"])
    _processes_that_counted(folder, 1)  # a new process counts on top
    assert value(metrics.exposition().decode(), "hotline_calls_started_total", channel="asterisk") == 15


def test_a_scrape_during_folds_never_counts_an_ended_process_twice_or_not_at_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    pids = _processes_that_counted(folder, 12)
    seen: list[float] = []
    done = threading.Event()

    def scrape_all_along() -> None:
        while not done.is_set():
            seen.append(value(metrics.exposition().decode(), "hotline_calls_started_total", channel="asterisk"))

    scraper = threading.Thread(target=scrape_all_along)
    scraper.start()
    try:
        for pid in pids:
            metrics.process_gone(pid)
            time.sleep(0.01)
    finally:
        done.set()
        scraper.join()
    assert len(seen) > 10 and set(seen) == {36}
    assert sorted(f.name for f in folder.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]


def test_record_writer_lag_counts_what_no_writer_has_written_yet(hotline: Hotline, token_app: Any) -> None:
    assert value(scrape(token_app), "hotline_record_writer_unwritten_events") == 0  # no stream yet
    for n in range(3):
        hotline.events.emit("call_started", call_id=f"CA-lag{n}", channel="asterisk")
    time.sleep(1.1)
    text = scrape(token_app)
    assert value(text, "hotline_record_writer_unwritten_events") == 3  # before any writer made its group
    assert value(text, "hotline_record_writer_oldest_unwritten_seconds") >= 1
    write_records(hotline)
    hotline.events.emit("call_started", call_id="CA-lag9", channel="asterisk")
    time.sleep(1.1)
    text = scrape(token_app)
    assert value(text, "hotline_record_writer_unwritten_events") == 1  # read by no writer yet
    assert value(text, "hotline_record_writer_oldest_unwritten_seconds") >= 1
    write_records(hotline)
    text = scrape(token_app)
    assert value(text, "hotline_record_writer_unwritten_events") == 0
    assert value(text, "hotline_record_writer_oldest_unwritten_seconds") == 0
    assert value(text, "hotline_calls_started_total", channel="asterisk") == 4
