"""RQ job functions: thin and idempotent, found by dotted path (``workers.jobs.dial_visit``).

They run in ``hotline worker`` processes, which install the hotline they serve; a worker started some
other way (``rq worker``) builds one from the settings on its first job.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

import redis
from rq import Queue, Retry

from complaints.return_visits import ReturnVisits, apply_outcome
from complaints.work_orders import WorkOrderDesk
from metrics import RETURN_VISITS
from quality.sampling import Sampler
from recordings.twilio_fetch import RecordingFetcher, RecordingOfAnotherCall
from workers.retention import Retention
from workers.twilio_queues import TwilioQueues

log = logging.getLogger(__name__)

QUEUE = "hotline"
DIAL_RETRY = Retry(max=3, interval=[30, 120, 600])
FETCH_RETRY = Retry(max=5, interval=[10, 60, 300, 900, 3600])
OUTCOME_RETRY = Retry(max=8, interval=[5, 10, 20, 40, 60, 120, 300, 600])
"""Well inside the sweep's grace (15 min) for the usual outage of seconds to minutes."""
"""A recording Twilio keeps: the media may lag the callback, a disk or the database may be away a while."""
RECORDING_STALE_S = 2 * 3600
RECORDING_GIVE_UP_S = 7 * 86400
"""A dial job killed with its worker, or failing on a database outage, runs again; ``dial`` is idempotent."""


class JobContext(Protocol):
    desk: WorkOrderDesk
    visits: ReturnVisits
    retention: Retention
    recording_fetcher: RecordingFetcher
    twilio_queues: TwilioQueues | None
    sampler: Sampler


_context: JobContext | None = None


def install(context: JobContext) -> None:
    global _context
    _context = context


def _ctx() -> JobContext:
    if _context is None:
        raise RuntimeError("no job context: run the hotline's jobs in `hotline worker` (it installs one)")
    return _context


def dial_visit(visit_id: int, attempt: int) -> str:
    RETURN_VISITS.labels("due").inc()
    result = _ctx().visits.dial(visit_id, attempt)
    if result.startswith(f"attempt {attempt}:"):  # placed (whatever the callee did), not skipped or deferred
        RETURN_VISITS.labels("dialled").inc()
    return result


def visit_outcome(visit_id: int, attempt: int, disposition: str) -> str:
    """An outcome the status callback could not write (database away): RQ retries it until it is back."""
    apply_outcome(_ctx().visits, visit_id, attempt, disposition)
    return f"return visit {visit_id} attempt {attempt}: {disposition}"


def flag_overdue() -> int:
    return len(_ctx().desk.flag_overdue())


def sweep_visits() -> int:
    return _ctx().visits.sweep()


def fetch_recording(sid: str) -> str:
    """One pending Twilio recording: stored and deleted at Twilio, or an exception (RQ retries it)."""
    try:
        _ctx().recording_fetcher.fetch(sid)
    except RecordingOfAnotherCall as exc:  # logged and dropped by the fetcher: nothing to retry
        return f"recording {sid} refused: {exc}"
    return f"recording {sid} stored"


def retry_recordings() -> int:
    """Pending recordings whose job was lost or gave up: enqueued again."""
    fetcher = _ctx().recording_fetcher
    given_up = set(fetcher.pending.older_than(RECORDING_GIVE_UP_S))
    for sid in given_up:  # Twilio's retention may have deleted it by now: say so, once, and stop
        log.error("recording %s could not be fetched for %d days: given up", sid, RECORDING_GIVE_UP_S // 86400)
        fetcher.pending.done(sid)
    stale = [sid for sid in fetcher.pending.older_than(RECORDING_STALE_S) if sid not in given_up]
    for sid in stale:
        fetcher.retry_later(sid)
    return len(stale)


def delete_twilio_queue(queue_sid: str) -> bool:
    queues = _ctx().twilio_queues
    return queues.delete(queue_sid) if queues else False


def sweep_twilio_queues() -> int:
    queues = _ctx().twilio_queues
    return queues.sweep() if queues else 0


def sample_calls() -> str:
    """The quality sampling rules over last week (its last hour's calls, and the share of the whole week) and this
    week: the new picks go to the reviewers' queues (re-runs add none)."""
    sampler, now = _ctx().sampler, dt.datetime.now(dt.UTC)
    results = [sampler.run(now=now - dt.timedelta(days=7)), sampler.run(now=now)]
    return "; ".join(f"quality sampling {r.week}: {r.picked} picked, {r.added} queued" for r in results)


def purge_old_records() -> tuple[int, int]:
    return _ctx().retention.purge()


class PromptContext(Protocol):
    settings: Any
    menus: Any


def render_menu_prompts(menu: str, version: int) -> dict[str, int]:
    """After a publish: render the prompts of ``menu`` that changed. Renders the live version, not
    ``version``: the audio files are per prompt, not per version, so a job that runs late (after a
    newer publish) must not put older words back."""
    from recordings.prompts import PromptRenderer  # espeak-ng and sox only for this job

    context = cast(PromptContext, _ctx())
    report = PromptRenderer(context.settings.recordings_dir / "prompts").build(context.menus.live(menu))
    log.info("prompts of %s (published as version %d, live %d): rendered %d, unchanged %d, failed %d",
             menu, version, report.version, report.count("rendered"), report.count("unchanged"),
             report.count("failed"))
    return {kind: report.count(kind) for kind in ("rendered", "unchanged", "dynamic", "failed")}


PERIODIC: dict[str, tuple[Callable[[], Any], float]] = {
    "flag_overdue": (flag_overdue, 60.0),
    "sweep_visits": (sweep_visits, 60.0),
    "purge_old_records": (purge_old_records, 3600.0),
    "retry_recordings": (retry_recordings, 3600.0),
    "sweep_twilio_queues": (sweep_twilio_queues, 3600.0),
    "sample_calls": (sample_calls, 3600.0),
}
"""Jobs every worker offers to enqueue on their period; a Redis lock lets only one of them do it."""


def visit_enqueuer(queue: Queue) -> Callable[[dt.datetime, int, int], None]:
    """``enqueue(when, visit, attempt)`` for ``ReturnVisits``: one RQ job per attempt, at its time."""

    def enqueue(when: dt.datetime, visit_id: int, attempt: int) -> None:
        try:
            queue.enqueue_at(when, dial_visit, visit_id, attempt, job_id=f"visit-{visit_id}-{attempt}",
                             retry=DIAL_RETRY, result_ttl=7 * 86400, failure_ttl=30 * 86400)
        except redis.RedisError as exc:  # the visit is in SQL: the sweep job enqueues it once Redis is back
            log.warning("return visit %d attempt %d not enqueued (%s): the sweep will", visit_id, attempt,
                        type(exc).__name__)

    return enqueue


def outcome_enqueuer(queue: Queue) -> Callable[[int, int, str], None]:
    """``later(visit, attempt, disposition)`` for ``OutcomesLater``: written by a job once the database is back.
    A Redis error here reaches the webhook's error boundary: the sweep settles the attempt then."""

    def enqueue(visit_id: int, attempt: int, disposition: str) -> None:
        queue.enqueue_in(dt.timedelta(seconds=OUTCOME_RETRY.intervals[0]), visit_outcome, visit_id, attempt,
                         disposition, job_id=f"visit-outcome-{visit_id}-{attempt}", retry=OUTCOME_RETRY,
                         failure_ttl=30 * 86400)

    return enqueue


def recording_enqueuer(queue: Queue) -> Callable[[str], None]:
    """``retry_later(sid)`` for ``RecordingFetcher``: one RQ job per pending recording, retried with backoff."""

    def enqueue(sid: str) -> None:
        try:
            queue.enqueue_in(dt.timedelta(seconds=FETCH_RETRY.intervals[0]), fetch_recording, sid,
                             job_id=f"recording-{sid}", retry=FETCH_RETRY, failure_ttl=30 * 86400)
        except redis.RedisError as exc:  # the pending entry stays: retry_recordings enqueues it later
            log.warning("recording %s: retry not enqueued (%s)", sid, type(exc).__name__)

    return enqueue


def queue_deleter(queue: Queue) -> Callable[[str], None]:
    """``forget_queue(queue_sid)`` for the Twilio channel: the per-caller queue deleted off the request thread."""

    def enqueue(queue_sid: str) -> None:
        try:
            queue.enqueue(delete_twilio_queue, queue_sid, job_id=f"twilio-queue-{queue_sid}", result_ttl=600)
        except redis.RedisError as exc:  # the sweep deletes it later
            log.info("Twilio queue %s: deletion not enqueued (%s)", queue_sid, type(exc).__name__)

    return enqueue
