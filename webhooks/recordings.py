"""Twilio's recording status callback: fetch the audio with the account's credentials and keep it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import requests

from recordings.store import RecordingStore, StoredAudio

log = logging.getLogger(__name__)

MAX_AUDIO_BYTES = 64 * 1024 * 1024


class RecordingFetchFailed(RuntimeError):
    """Twilio's media URL could not be fetched; Twilio may retry the callback."""


class RecordingFetcher:
    def __init__(
        self, store: RecordingStore, account_sid: str | None, auth_token: str | None, api_base: str,
        known: Callable[[str], bool], work_order_for: Callable[[str], str | None],
        on_saved: Callable[[StoredAudio], None], timeout_s: float = 10.0,
    ) -> None:
        self._store, self._known, self._on_saved = store, known, on_saved
        self._work_order_for = work_order_for
        self._auth = (account_sid or "", auth_token or "")
        self._api_base = api_base.rstrip("/") + "/"
        self._timeout = timeout_s

    def handle(self, form: Mapping[str, str]) -> StoredAudio | None:
        """Store a completed recording once; later callbacks for the same one change nothing."""
        if form.get("RecordingStatus", "completed") != "completed":
            return None
        ref, url = form.get("RecordingSid", ""), form.get("RecordingUrl", "")
        call_id = form.get("CallSid", "")
        if not ref or not call_id:
            raise ValueError("RecordingSid and CallSid are required")
        if not url.startswith(self._api_base):
            # Only ever send our credentials to the Twilio API we are configured for.
            raise ValueError("RecordingUrl is not on the configured Twilio API")
        if self._known(ref):
            return None
        audio = self._download(url + ".wav")
        duration = float(form.get("RecordingDuration") or 0)
        meta = self._store.save(ref, call_id, audio, duration, work_order=self._work_order_for(ref))
        self._on_saved(meta)
        log.info("recording %s of call %s stored (%d bytes)", ref, call_id, meta.size_bytes)
        return meta

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
