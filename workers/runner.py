"""``hotline worker``: an RQ worker with its scheduler, plus the call-record writer and the job clock.

Four loops in one process: RQ's work loop (main thread: it owns the signal handlers), RQ's scheduler,
the stream consumer that writes call records, and a clock that enqueues the periodic jobs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis
from rq import Queue, SimpleWorker
from rq.scheduler import RQScheduler

from metrics import count_events
from routing.keys import EVENTS_STREAM
from workers.jobs import PERIODIC, QUEUE, JobContext, install
from workers.records import RecordWriter
from workers.stream import RECORDS_GROUP, ConsumerConfig, Handler, StreamConsumer

log = logging.getLogger(__name__)

CRON_KEY = "hotline:cron:{}"


@dataclass(frozen=True)
class WorkerConfig:
    events_stream: str = EVENTS_STREAM
    claim_idle_s: float = 30.0
    clock_every_s: float = 5.0
    name: str = ""

    @property
    def worker_name(self) -> str:
        return self.name or f"{socket.gethostname()}-{os.getpid()}"


def run_worker(config: WorkerConfig, writer: RecordWriter, context: JobContext, connection: redis.Redis,
               reader: redis.Redis, burst: bool = False, flush_spool: Callable[[], int] | None = None) -> None:
    """Serve until SIGTERM (or, with ``burst``, until the queue is empty).

    ``connection`` is RQ's (no socket timeout: its dequeue blocks); ``reader`` reads the events stream
    (a socket timeout above its block time, ``ConsumerConfig.block_ms``). They may be different Redis
    deployments: RQ cannot run on a Redis Cluster, the events stream can. ``flush_spool`` sends the events
    this machine's processes kept on disk while Redis was away, on the clock: a quiet hotline emits nothing
    that would carry them."""
    install(context)
    queue = Queue(QUEUE, connection=connection)
    consumer = StreamConsumer(reader, ConsumerConfig(
        config.events_stream, RECORDS_GROUP, config.worker_name, claim_idle_s=config.claim_idle_s),
        counted(writer.write))
    scheduler = _ThreadScheduler([queue], connection=connection, logging_level="WARNING")
    stop = threading.Event()
    loops = [
        threading.Thread(target=_keep_scheduling, args=(scheduler, stop), name="rq-scheduler", daemon=True),
        threading.Thread(target=consumer.run, args=(stop,), name="record-writer", daemon=True),
        threading.Thread(target=_job_clock, args=(connection, queue, config.clock_every_s, stop, flush_spool),
                         name="job-clock", daemon=True),
    ]
    for loop in loops:
        loop.start()
    log.info("worker %s: call records from %s, jobs from queue %r", config.worker_name, config.events_stream, QUEUE)
    try:
        JobWorker([queue], connection=connection, name=config.worker_name).work(
            with_scheduler=False, burst=burst, logging_level="WARNING")
    finally:
        stop.set()
        scheduler.request_stop()  # type: ignore[no-untyped-call]
        for loop in loops:
            loop.join(timeout=5)


class JobWorker(SimpleWorker):
    """RQ's SimpleWorker whose command channel (``rq`` suspend/stop commands over pub/sub) is read in 0.25 s polls.

    RQ 3.0 reads it with ``run_in_thread(sleep_time=60)`` and, on teardown, unsubscribes, then stops the thread;
    redis-py 8.2's ``PubSubWorkerThread.stop()`` now waits for the thread, which, unsubscribed, sleeps out the
    full 60 s in ``get_message`` about one time in thirty: a worker's shutdown (and every burst) took a minute."""

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=0.25, daemon=True, exception_handler=self._pubsub_exception_handler)  # type: ignore[assignment]


def counted(write: Handler) -> Handler:
    """The record writer's handler, counting each batch's events (``metrics.count_events``) once it is written."""
    def write_and_count(events: list[Mapping[str, str]]) -> object:
        written = write(events)
        count_events(events)
        return written
    return write_and_count


class _ThreadScheduler(RQScheduler):
    """RQ's scheduler (moves ``enqueue_at`` jobs to the queue when due) in a thread of the worker.

    RQ forks it into a process of its own, which outlives a SIGKILLed worker and goes on scheduling,
    unseen, against whatever Redis it knew. In a thread it lives and dies with its worker; the
    worker's signal handlers stay the only ones.
    """

    def _install_signal_handlers(self) -> None:
        pass


def _keep_scheduling(scheduler: RQScheduler, stop: threading.Event, pause_s: float = 1.0) -> None:
    """RQ's scheduler loop, started again when Redis goes away under it: left alone its thread dies with
    the first ConnectionError, and every ``enqueue_at`` job (return visits) would wait for a worker restart."""
    while not stop.is_set():
        try:
            scheduler.work()  # type: ignore[no-untyped-call]
            return
        except redis.RedisError as exc:
            log.warning("rq scheduler: redis unavailable (%s); starting again in %.0f s", type(exc).__name__, pause_s)
            stop.wait(pause_s)


def _job_clock(connection: redis.Redis, queue: Queue, every_s: float, stop: threading.Event,
               flush_spool: Callable[[], int] | None = None) -> None:
    """Enqueue each periodic job once per period across all workers (the first to take its lock does)."""
    while not stop.wait(every_s):
        if flush_spool is not None:
            try:
                if sent := flush_spool():
                    log.info("sent %d call events kept on disk while Redis was away", sent)
            except redis.RedisError as exc:
                log.debug("event spool not sent yet: %s", type(exc).__name__)
        for name, (job, period_s) in PERIODIC.items():
            try:
                if connection.set(CRON_KEY.format(name), os.getpid(), nx=True, ex=max(1, int(period_s))):
                    queue.enqueue(job, result_ttl=3600, failure_ttl=7 * 86400)
            except redis.RedisError as exc:
                log.warning("periodic job %s not enqueued: %s", name, type(exc).__name__)
                break
