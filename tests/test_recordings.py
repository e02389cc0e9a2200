"""Twilio's recording status callback: the complaint audio is fetched once, with the account's
credentials, from the configured Twilio API only, and kept on disk and in SQL beside its work order."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from hotline.app import Hotline
from hotline.settings import Settings
from recordings.twilio_fetch import PENDING_KEY, PendingFetch
from store.models import Recording, WorkOrder
from tests.conftest import ACCOUNT_SID, PUBLIC_URL
from tests.fakes.http_server import LocalHttpServer, Reply, SeenRequest
from tests.fakes.twilio_caller import TwilioCaller
from tests.fakes.twilio_media import MediaServer, wav_bytes
from workers import jobs
from workers.runner import JobWorker

SID = "RE0123456789abcdef0123456789abcdef"
OTHER_SID, OTHER_CALL = "RE" + "e" * 32, "CA" + "e" * 32
"""A recording Twilio made on another call (another caller's complaint)."""


class Storage:
    """Where Twilio's media URL may redirect to: serves audio to anyone, remembers who asked how."""

    def __init__(self, audio: dict[str, bytes]) -> None:
        self.audio = audio
        self.http = LocalHttpServer(self._answer).start()

    def _answer(self, request: SeenRequest) -> Reply:
        sid = request.path.strip("/").removesuffix(".wav")
        return Reply(200, self.audio[sid]) if sid in self.audio else Reply(404)


@pytest.fixture
def elsewhere() -> Iterator[LocalHttpServer]:
    """A server that is not the configured Twilio API; it must never be asked for anything."""
    server = LocalHttpServer(lambda request: Reply(200, wav_bytes())).start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings: Settings, media: MediaServer) -> Settings:
    return settings.model_copy(update={"twilio_api_base": media.base})


# -- helpers -----------------------------------------------------------------------------------

def complain(caller: TwilioCaller, media: MediaServer, sid: str = SID) -> str:
    """A whole complaint call up to the work order; returns the number the caller heard."""
    caller.dial()
    caller.press("3")
    caller.press("2")
    record = caller.verb("Record")
    assert record.attrib["recordingStatusCallback"] == f"{PUBLIC_URL}/twilio/recording"
    caller.record(sid, 30, url=media.recording_url(sid))
    heard = re.search(r"工单号：([0-9 ]+)。", " ".join(caller.said()))
    assert heard, caller.said()
    return heard[1].replace(" ", "")


def recording_callback(caller: TwilioCaller, url: str, sid: str = SID, signature: str | None = None,
                       status: str = "completed") -> Any:
    return caller.post_raw("/twilio/recording", signature=signature, RecordingSid=sid, RecordingUrl=url,
                           RecordingStatus=status, RecordingDuration="30")


def recording_rows(hotline: Hotline) -> list[Recording]:
    with hotline.sql() as db:
        return list(db.scalars(select(Recording)))


def stored_files(settings: Settings) -> list[Path]:
    root = settings.recordings_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- the callback ------------------------------------------------------------------------------

def test_completed_recording_is_kept_beside_its_work_order(
    caller: TwilioCaller, media: MediaServer, hotline: Hotline, settings: Settings,
) -> None:
    audio = media.add(SID, caller.call_sid)
    number = complain(caller, media)

    reply = recording_callback(caller, media.recording_url(SID))

    assert reply.status_code == 204
    [row] = recording_rows(hotline)
    assert (row.ref, row.call_id, row.work_order) == (SID, caller.call_sid, number)
    assert row.duration_s == 30.0 and row.size_bytes == len(audio)
    assert row.sha256 == hashlib.sha256(audio).hexdigest()
    wav = settings.recordings_dir / row.path
    assert wav.name == f"{SID}.wav"
    assert wav.read_bytes() == audio
    meta = json.loads(wav.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["ref"] == SID and meta["call_id"] == caller.call_sid and meta["work_order"] == number
    assert meta["duration_s"] == 30.0 and meta["sha256"] == hashlib.sha256(audio).hexdigest()
    assert stored_files(settings) == sorted([wav, wav.with_suffix(".json")])
    with hotline.sql() as db:
        order = db.scalar(select(WorkOrder).where(WorkOrder.number == row.work_order))
    assert order is not None and order.recording_ref == SID and order.call_id == caller.call_sid
    check, fetch, delete = media.http.requests  # which call the recording is of, its audio, then Twilio's copy
    assert check.method == "GET" and check.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{SID}.json"
    assert check.headers["authorization"] == media.basic_auth
    assert delete.method == "DELETE" and delete.path.endswith(f"/Recordings/{SID}.json")
    assert fetch.method == "GET"
    assert fetch.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{SID}.wav"
    assert fetch.headers["authorization"] == media.basic_auth


def test_repeated_callback_downloads_and_records_once(
    caller: TwilioCaller, media: MediaServer, hotline: Hotline, settings: Settings,
) -> None:
    audio = media.add(SID, caller.call_sid)
    complain(caller, media)

    first = recording_callback(caller, media.recording_url(SID))
    media.audio[SID] = b"RIFF-something-else"
    again = recording_callback(caller, media.recording_url(SID))

    assert (first.status_code, again.status_code) == (204, 204)
    assert media.fetches() == 1
    [row] = recording_rows(hotline)
    assert (settings.recordings_dir / row.path).read_bytes() == audio
    assert len(stored_files(settings)) == 2


@pytest.mark.parametrize("where", [
    "https://evil.example.com/2010-04-01/Accounts/{account}/Recordings/{sid}",
    "{elsewhere}/2010-04-01/Accounts/{account}/Recordings/{sid}",
    "{media}@evil.example.com/2010-04-01/Accounts/{account}/Recordings/{sid}",
    "https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{sid}",
])
def test_recording_url_off_the_configured_api_is_refused_without_a_request(
    where: str, caller: TwilioCaller, media: MediaServer, elsewhere: LocalHttpServer,
    hotline: Hotline, settings: Settings,
) -> None:
    media.add(SID, caller.call_sid)
    complain(caller, media)
    url = where.format(account=ACCOUNT_SID, sid=SID, elsewhere=elsewhere.url, media=media.base)

    reply = recording_callback(caller, url)

    assert reply.status_code == 400
    assert media.http.requests == [] and elsewhere.requests == []
    assert recording_rows(hotline) == [] and stored_files(settings) == []


def run_jobs(hotline: Hotline, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `hotline worker` does with the jobs due now (a retry's backoff is skipped: it is due by then)."""
    monkeypatch.setattr(jobs, "_context", hotline)
    for job_id in ScheduledJobRegistry(queue=hotline.jobs).get_job_ids():
        job = hotline.jobs.fetch_job(job_id)
        assert job is not None
        hotline.jobs.enqueue_job(job)
    JobWorker([hotline.jobs], connection=hotline.jobs.connection).work(burst=True)


@pytest.mark.parametrize("failure", [404, 500])
def test_a_failed_fetch_is_kept_and_a_job_fetches_it_though_twilio_never_retries(
    failure: int, caller: TwilioCaller, media: MediaServer, hotline: Hotline, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    audio = media.add(SID, caller.call_sid)
    complain(caller, media)
    media.failure = failure

    # Twilio posts the callback once and does not retry a 5xx
    # (https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides): so nothing here posts it again.
    assert recording_callback(caller, media.recording_url(SID)).status_code == 204
    assert recording_rows(hotline) == [] and stored_files(settings) == []
    run_jobs(hotline, monkeypatch)  # still failing: the job keeps it
    assert recording_rows(hotline) == []

    media.failure = None
    run_jobs(hotline, monkeypatch)
    [row] = recording_rows(hotline)
    assert (settings.recordings_dir / row.path).read_bytes() == audio
    assert media.deleted == [SID]  # Twilio's copy goes: the retention policy covers it too
    assert hotline.recording_fetcher.pending.get(SID) is None


def test_a_stored_recording_is_deleted_at_twilio(caller: TwilioCaller, media: MediaServer, hotline: Hotline) -> None:
    media.add(SID, caller.call_sid)
    complain(caller, media)
    assert recording_callback(caller, media.recording_url(SID)).status_code == 204
    assert media.deleted == [SID]
    assert recording_callback(caller, media.recording_url(SID)).status_code == 204  # a duplicate: nothing again
    assert len(recording_rows(hotline)) == 1 and media.fetches() == 1


def test_a_recording_whose_media_lags_is_kept_until_it_is_there(
    caller: TwilioCaller, media: MediaServer, hotline: Hotline, settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    complain(caller, media)  # media.audio has no such recording yet: the media URL answers 404

    assert recording_callback(caller, media.recording_url(SID)).status_code == 204
    assert recording_rows(hotline) == [] and stored_files(settings) == []
    media.add(SID, caller.call_sid)
    run_jobs(hotline, monkeypatch)
    assert len(recording_rows(hotline)) == 1


@pytest.mark.parametrize("signature", ["", "bm90LXRoZS1yaWdodC1zaWduYXR1cmU="])
def test_unsigned_or_forged_callback_is_403_and_fetches_nothing(
    signature: str, caller: TwilioCaller, media: MediaServer, hotline: Hotline, settings: Settings,
) -> None:
    media.add(SID, caller.call_sid)
    complain(caller, media)

    reply = recording_callback(caller, media.recording_url(SID), signature=signature)

    assert reply.status_code == 403
    assert media.http.requests == []
    assert recording_rows(hotline) == [] and stored_files(settings) == []


@pytest.mark.parametrize("status", ["absent", "failed"])
def test_recording_that_did_not_complete_fetches_nothing(
    status: str, caller: TwilioCaller, media: MediaServer, hotline: Hotline, settings: Settings,
) -> None:
    media.add(SID, caller.call_sid)
    complain(caller, media)

    reply = recording_callback(caller, media.recording_url(SID), status=status)

    assert reply.status_code == 204
    assert media.http.requests == []
    assert recording_rows(hotline) == [] and stored_files(settings) == []


def test_redirect_to_storage_keeps_the_audio_without_handing_over_credentials(
    caller: TwilioCaller, media: MediaServer, hotline: Hotline, settings: Settings,
) -> None:
    audio = media.add(SID, caller.call_sid)
    storage = Storage(media.audio)
    try:
        media.redirect_to = storage.http.url
        complain(caller, media)

        assert recording_callback(caller, media.recording_url(SID)).status_code == 204

        [row] = recording_rows(hotline)
        assert (settings.recordings_dir / row.path).read_bytes() == audio
        [fetch] = storage.http.requests
        assert "authorization" not in fetch.headers
    finally:
        storage.http.stop()


def test_a_full_disk_keeps_the_fetch_pending_and_the_job_keeps_the_audio_once_it_is_back(
    caller: TwilioCaller, media: MediaServer, hotline: Hotline, settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    audio = media.add(SID, caller.call_sid)
    complain(caller, media)
    blocker = settings.recordings_dir  # a file where the folder should be: the disk refuses to write
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")

    assert recording_callback(caller, media.recording_url(SID)).status_code == 204
    assert recording_rows(hotline) == [] and media.deleted == []  # Twilio's copy is all there is: kept
    blocker.unlink()
    run_jobs(hotline, monkeypatch)
    [row] = recording_rows(hotline)
    assert (settings.recordings_dir / row.path).read_bytes() == audio
    assert media.deleted == [SID]


def test_the_sweep_enqueues_a_pending_fetch_whose_job_was_lost(
    caller: TwilioCaller, media: MediaServer, hotline: Hotline, monkeypatch: pytest.MonkeyPatch,
) -> None:
    complain(caller, media)
    assert recording_callback(caller, media.recording_url(SID)).status_code == 204
    registry = ScheduledJobRegistry(queue=hotline.jobs)
    for job_id in registry.get_job_ids():  # the retry job is lost (a Redis failover, a job past its retries)
        registry.remove(job_id, delete_job=True)
    hotline.redis.hdel(PENDING_KEY, SID)  # and its entry is old
    hotline.recording_fetcher.pending.keep(PendingFetch(SID, caller.call_sid, 30, time.time() - 3 * 3600))
    media.add(SID, caller.call_sid)
    monkeypatch.setattr(jobs, "_context", hotline)
    assert jobs.retry_recordings() == 1
    run_jobs(hotline, monkeypatch)
    assert len(recording_rows(hotline)) == 1 and media.deleted == [SID]


def test_callback_before_the_record_step_is_linked_when_the_work_order_opens(
    caller: TwilioCaller, media: MediaServer, hotline: Hotline,
) -> None:
    media.add(SID, caller.call_sid)
    caller.dial()
    caller.press("3")
    caller.press("1")
    assert recording_callback(caller, media.recording_url(SID)).status_code == 204
    assert recording_rows(hotline)[0].work_order is None
    caller.record(SID, 30, url=media.recording_url(SID))
    heard = re.search(r"工单号：([0-9 ]+)。", " ".join(caller.said()))
    assert heard
    assert recording_rows(hotline)[0].work_order == heard[1].replace(" ", "")


def test_a_recording_that_cannot_be_fetched_for_a_week_is_given_up_with_an_error(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    hotline.recording_fetcher.pending.keep(PendingFetch(SID, "CA1", 30, 0.0))  # pending since 1970
    monkeypatch.setattr(jobs, "_context", hotline)
    assert jobs.retry_recordings() == 0
    assert hotline.recording_fetcher.pending.get(SID) is None
    assert any("given up" in r.getMessage() and SID in r.getMessage() for r in caplog.records)


# -- a recording and the call it is of --------------------------------------------------------------

def test_a_recording_of_another_call_is_not_linked_logged_and_left_at_twilio(
    caller: TwilioCaller, media: MediaServer, hotline: Hotline, settings: Settings, caplog: pytest.LogCaptureFixture,
) -> None:
    theirs = media.add(OTHER_SID, OTHER_CALL)
    ours = media.add(SID, caller.call_sid)
    number = complain(caller, media)

    # A callback (signed: a bug, a misrouted callback or someone holding the token) that says this call made it.
    claimed = recording_callback(caller, media.recording_url(OTHER_SID), sid=OTHER_SID)

    assert claimed.status_code == 400 and "is of another call" in claimed.get_data(as_text=True)
    assert recording_rows(hotline) == [] and stored_files(settings) == [] and media.fetches() == 0
    assert media.deleted == [] and media.audio[OTHER_SID] == theirs  # left at Twilio for the call it is of
    assert hotline.recording_fetcher.pending.get(OTHER_SID) is None
    assert f"recording {OTHER_SID} is of call {OTHER_CALL}, not {caller.call_sid}" in caplog.text
    with hotline.sql() as db:
        order = db.scalar(select(WorkOrder).where(WorkOrder.number == number))
    assert order is not None and order.recording_ref == SID  # the caller's own recording stays theirs

    assert recording_callback(caller, media.recording_url(SID)).status_code == 204
    [row] = recording_rows(hotline)
    assert (row.ref, row.call_id, row.work_order) == (SID, caller.call_sid, number)
    assert (settings.recordings_dir / row.path).read_bytes() == ours and media.deleted == [SID]


def test_a_pending_fetch_of_another_call_is_dropped_by_the_job_without_a_failure(
    caller: TwilioCaller, media: MediaServer, hotline: Hotline, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    media.add(OTHER_SID, OTHER_CALL)
    hotline.recording_fetcher.pending.keep(PendingFetch(OTHER_SID, caller.call_sid, 30, time.time()))
    monkeypatch.setattr(jobs, "_context", hotline)
    assert "refused" in jobs.fetch_recording(OTHER_SID)
    assert recording_rows(hotline) == [] and media.deleted == [] and media.fetches() == 0
    assert hotline.recording_fetcher.pending.get(OTHER_SID) is None
    assert f"recording {OTHER_SID} is of call {OTHER_CALL}" in caplog.text
