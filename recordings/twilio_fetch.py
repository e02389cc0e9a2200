"""Complaint audio recorded by Twilio: kept as a pending fetch until it is stored here and deleted there.

Twilio posts the recording status callback once and, with default webhook settings, retries only when it cannot
connect, never on a 5xx reply (https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides). So the
callback is answered 204 at once and the fetch is ours to finish: a pending entry in Redis (RecordingSid, CallSid)
that a worker job retries until the audio is stored; then Twilio's copy is deleted
(https://www.twilio.com/docs/voice/api/recording#delete-a-recording-resource) so the retention policy covers it.
Before anything is kept, the Recording resource says which call the recording is of (``call_sid``:
https://www.twilio.com/docs/voice/api/recording#fetch-a-recording-resource): a callback naming another call links
nothing and leaves Twilio's copy alone, for the call it belongs to.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import redis
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from recordings.conversation_audio import caller_left
from recordings.store import CONVERSATIONS, RecordingStore, StoredAudio

log = logging.getLogger(__name__)

MAX_AUDIO_BYTES = 64 * 1024 * 1024
PENDING_KEY = "hotline:recordings:pending"
"""Hash: RecordingSid -> the pending fetch as JSON."""


class RecordingFetchFailed(RuntimeError):
    """Twilio's media URL could not be fetched; the pending fetch is tried again later."""


class RecordingOfAnotherCall(ValueError):
    """Twilio says the recording is of another call than the callback named: refused, not retried."""


@dataclass(frozen=True)
class PendingFetch:
    sid: str
    call_id: str
    duration_s: float
    since: float
    stored: bool = False
    """The audio is kept here; only deleting Twilio's copy is left."""
    conversation: str = ""
    """A conversation recording (the agent leg's dual-channel recording): the caller's call it belongs to;
    ``call_id`` is then the agent leg Twilio recorded. Empty: a complaint message."""
    agent_id: str = ""
    pauses: list[list[float]] = field(default_factory=list)
    """Where the agent paused the recording (seconds into it), taken when the callback came."""


class PendingFetches:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def keep(self, fetch: PendingFetch) -> None:
        self._redis.hsetnx(PENDING_KEY, fetch.sid, json.dumps(asdict(fetch)))

    def get(self, sid: str) -> PendingFetch | None:
        raw = self._redis.hget(PENDING_KEY, sid)
        return PendingFetch(**json.loads(raw)) if raw else None

    def stored(self, fetch: PendingFetch) -> None:
        self._redis.hset(PENDING_KEY, fetch.sid, json.dumps({**asdict(fetch), "stored": True}))

    def done(self, sid: str) -> None:
        self._redis.hdel(PENDING_KEY, sid)

    def older_than(self, seconds: float) -> list[str]:
        cutoff = time.time() - seconds
        return [PendingFetch(**json.loads(raw)).sid for raw in self._redis.hvals(PENDING_KEY)
                if json.loads(raw)["since"] < cutoff]


class RecordingFetcher:
    def __init__(
        self, store: RecordingStore, account_sid: str | None, auth_token: str | None, api_base: str,
        known: Callable[[str], bool], work_order_for: Callable[[str], str | None],
        on_saved: Callable[[StoredAudio], None], pending: PendingFetches, retry_later: Callable[[str], None],
        timeout_s: float = 10.0, work_order_for_call: Callable[[str], str | None] = lambda call_id: None,
        conversation_pauses: Callable[[str, str], list[list[float]]] = lambda call_id, agent_id: [],
    ) -> None:
        self._store, self._known, self._on_saved = store, known, on_saved
        self._work_order_for, self.pending, self.retry_later = work_order_for, pending, retry_later
        self._work_order_for_call, self._conversation_pauses = work_order_for_call, conversation_pauses
        self._auth = (account_sid or "", auth_token or "")
        self._api_base = api_base.rstrip("/") + "/"
        self._timeout = timeout_s
        self._client: Client | None = None

    def handle(self, form: Mapping[str, str], query: Mapping[str, str] | None = None) -> StoredAudio | None:
        """The recording status callback: keep the fetch, try it now, leave it to a job when that fails.
        ``query``: the callback URL's own query (signed with it): ``conversation=<call>&agent=<id>`` for the
        recording of an agent leg (``webhooks.conversation_recording``)."""
        if form.get("RecordingStatus", "completed") != "completed":
            return None
        ref, url, call_id = form.get("RecordingSid", ""), form.get("RecordingUrl", ""), form.get("CallSid", "")
        if not ref or not call_id or len(ref) > 64 or "/" in ref:
            raise ValueError("RecordingSid and CallSid are required")
        if not url.startswith(self._api_base):
            # Only ever send our credentials to the Twilio API we are configured for.
            raise ValueError("RecordingUrl is not on the configured Twilio API")
        conversation, agent = (query or {}).get("conversation", "")[:64], (query or {}).get("agent", "")[:64]
        pauses = self._conversation_pauses(conversation, agent) if conversation else []
        self.pending.keep(PendingFetch(ref, call_id[:64], _seconds(form.get("RecordingDuration")), time.time(),
                                       conversation=conversation, agent_id=agent, pauses=pauses))
        try:
            return self.fetch(ref)
        except RecordingOfAnotherCall:
            raise
        except Exception as exc:  # noqa: BLE001 - media, disk or SQL: the job tries again, Twilio never will
            log.warning("recording %s not stored yet (%s): retried by a job", ref, type(exc).__name__)
            self.retry_later(ref)
            return None

    def fetch(self, ref: str) -> StoredAudio | None:
        """Finish one pending fetch (store, then delete Twilio's copy); raises while it cannot."""
        job = self.pending.get(ref)
        if job is None:
            return None  # done already (a repeated callback or job)
        meta = None
        if not job.stored:
            if not self._known(ref):
                self._check_call(job)
                meta = self._save(job)
            self.pending.stored(job)
        self._delete_at_twilio(ref)
        self.pending.done(ref)
        return meta

    def _save(self, job: PendingFetch) -> StoredAudio:
        account = self._auth[0]
        audio = self._download(f"{self._api_base}2010-04-01/Accounts/{account}/Recordings/{job.sid}.wav")
        if job.conversation:  # dual-channel: the agent leg first as Twilio records it; kept with the caller left
            meta = self._store.save(
                job.sid, job.conversation, caller_left(audio), job.duration_s, kind=CONVERSATIONS,
                work_order=self._work_order_for_call(job.conversation), agent_id=job.agent_id or None,
                leg=job.call_id, pauses=tuple((a, b) for a, b in job.pauses))
        else:
            meta = self._store.save(job.sid, job.call_id, audio, job.duration_s,
                                    work_order=self._work_order_for(job.sid))
        self._on_saved(meta)
        log.info("recording %s of call %s stored (%d bytes)", job.sid, job.call_id, meta.size_bytes)
        return meta

    def _check_call(self, job: PendingFetch) -> None:
        """Raises ``RecordingOfAnotherCall`` (the pending fetch dropped) unless Twilio says the recording is of
        the call the callback named; a Twilio API that cannot answer raises as a failed download does."""
        recorded_on = self._rest().recordings(job.sid).fetch().call_sid
        if recorded_on != job.call_id:
            self.pending.done(job.sid)  # never stored nor deleted here: Twilio keeps it for the call it is of
            log.error("recording %s is of call %s, not %s as its callback said: not linked, left at Twilio",
                      job.sid, recorded_on, job.call_id)
            raise RecordingOfAnotherCall(f"recording {job.sid} is of another call than {job.call_id}")

    def _rest(self) -> Client:
        if self._client is None:  # made on first use: a hotline without a Twilio account has no recordings
            self._client = Client(*self._auth, http_client=TwilioHttpClient(timeout=self._timeout))
            self._client.api.base_url = self._api_base.rstrip("/")
        return self._client

    def _delete_at_twilio(self, ref: str) -> None:
        try:
            self._rest().recordings(ref).delete()
        except TwilioRestException as exc:
            if exc.status != 404:  # 404: deleted already
                raise

    def _download(self, url: str) -> bytes:
        try:
            reply = requests.get(url, auth=self._auth, timeout=self._timeout, stream=True)
            reply.raise_for_status()
            audio = reply.raw.read(MAX_AUDIO_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise RecordingFetchFailed(f"fetching {url}: {exc}") from None
        if len(audio) > MAX_AUDIO_BYTES:
            raise RecordingFetchFailed(f"{url} is larger than {MAX_AUDIO_BYTES} bytes")
        return audio


def _seconds(text: str | None) -> float:
    try:
        return max(0.0, float(text or 0))
    except ValueError:
        return 0.0
