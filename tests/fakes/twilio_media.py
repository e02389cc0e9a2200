"""Twilio's recording media and Recording resource on loopback: ``<RecordingSid>.wav`` behind basic auth with
the account SID and token (https://www.twilio.com/docs/voice/api/recording#fetch-a-recording-media-file),
``GET .../Recordings/<sid>.json``, the resource that says which call it is of (``call_sid``:
https://www.twilio.com/docs/voice/api/recording#fetch-a-recording-resource), and
``DELETE .../Recordings/<sid>.json`` (https://www.twilio.com/docs/voice/api/recording#delete-a-recording-resource),
and the update of a call's running recording, ``POST .../Calls/<CallSid>/Recordings/<sid or Twilio.CURRENT>.json``
with ``Status=paused|in-progress`` (https://www.twilio.com/docs/voice/api/recording#update-a-recording-resource),
and the start of a call's recording, ``POST .../Calls/<CallSid>/Recordings.json``
(https://www.twilio.com/docs/voice/api/recording#create-a-recording-resource; ``TwilioApi`` refuses a call that is
not in progress before it gets here): ``complete`` ends it as the call ends and gives the status callback Twilio
posts then.
"""

from __future__ import annotations

import base64
import io
import re
import time
import wave
from email.utils import formatdate
from urllib.parse import parse_qs

from tests.fakes.http_server import LocalHttpServer, Reply, SeenRequest

CALL_RECORDINGS_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>[^/]+)/Calls/(?P<call>[^/]+)/Recordings\.json")
CALL_RECORDING_PATH = re.compile(
    r"/2010-04-01/Accounts/(?P<account>[^/]+)/Calls/(?P<call>[^/]+)/Recordings/(?P<sid>[^/.]+(?:\.CURRENT)?)\.json")
MEDIA_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>[^/]+)/Recordings/(?P<sid>[^/.]+)\.(?P<ext>wav|json)")


def wav_bytes(seconds: float = 0.25, rate: int = 8000, channels: int = 1) -> bytes:
    """A small, real WAV file whose samples are not all the same (``channels=2``: a dual-channel recording)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join((i * 37 % 65536).to_bytes(2, "little") for i in range(int(seconds * rate) * channels)))
    return out.getvalue()


class MediaServer:
    """Twilio's media endpoint and Recording resource for one account."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.basic_auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.audio: dict[str, bytes] = {}
        self.calls: dict[str, str] = {}
        """RecordingSid -> the CallSid it was recorded on (what the Recording resource answers as ``call_sid``)."""
        self.deleted: list[str] = []
        self.channels: dict[str, int] = {}
        self.running: dict[str, str] = {}
        """CallSid -> the RecordingSid being recorded on it now (a ``<Dial record>`` in progress)."""
        self.status: dict[str, str] = {}
        self.status_updates: list[tuple[str, str, dict[str, str]]] = []
        """(CallSid, RecordingSid, the form) of every update of a running recording."""
        self.created: dict[str, dict[str, str]] = {}
        """RecordingSid -> the form of the request that started it by REST (its RecordingChannels, its callback)."""
        self.began: dict[str, float] = {}
        """RecordingSid -> when (``time.time()``) a REST-started recording began: its audio's second 0."""
        self.failure: int | None = None
        self.redirect_to: str | None = None
        self.http = LocalHttpServer(self._answer).start()

    @property
    def base(self) -> str:
        return self.http.url

    def recording_url(self, sid: str) -> str:
        """The RecordingUrl Twilio sends: the media without an extension."""
        return f"{self.base}/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"

    def start(self, sid: str, call_sid: str) -> None:
        """A recording running on ``call_sid`` (in-progress): it can be paused and resumed until it completes."""
        self.running[call_sid], self.calls[sid], self.status[sid] = sid, call_sid, "in-progress"

    def add(self, sid: str, call_sid: str, audio: bytes | None = None, channels: int = 1) -> bytes:
        """A recording of call ``call_sid``, as Twilio keeps it once it is completed; returns its audio."""
        self.running.pop(call_sid, None)
        self.channels[sid], self.status[sid] = channels, "completed"
        self.calls[sid] = call_sid
        self.audio[sid] = audio if audio is not None else wav_bytes()
        return self.audio[sid]

    def fetches(self) -> int:
        """Downloads of the media (not look-ups of the resource)."""
        return sum(1 for r in self.http.requests if r.method == "GET" and r.path.endswith(".wav"))

    def resource(self, sid: str) -> dict[str, object]:
        """The Recording resource as Twilio's API answers it (its properties as documented on the page above)."""
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"
        created = formatdate(usegmt=True).replace("GMT", "+0000")  # RFC 2822, as Twilio writes dates
        return {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "call_sid": self.calls[sid],
            "conference_sid": None, "date_created": created, "date_updated": created, "start_time": created,
            "duration": "30", "sid": sid, "price": None, "price_unit": "USD", "status": self.status.get(sid, "completed"), "channels": self.channels.get(sid, 1),
            "source": "RecordVerb", "error_code": None, "uri": f"{uri}.json", "encryption_details": None,
            "media_url": f"https://api.twilio.com{uri}", "track": "both",
            "subresource_uris": {"add_on_results": f"{uri}/AddOnResults.json",
                                 "transcriptions": f"{uri}/Transcriptions.json"},
        }

    def _answer(self, request: SeenRequest) -> Reply:
        if request.headers.get("authorization") != self.basic_auth:
            return Reply(401, b"authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if self.failure:
            return Reply(self.failure, b"media not available")
        create = CALL_RECORDINGS_PATH.fullmatch(request.path)
        if create and request.method == "POST" and create["account"] == self.account_sid:
            return self._create(create["call"], request)
        running = CALL_RECORDING_PATH.fullmatch(request.path)
        if running and request.method == "POST" and running["account"] == self.account_sid:
            return self._update(running["call"], running["sid"], request)
        match = MEDIA_PATH.fullmatch(request.path)
        if not match or match["account"] != self.account_sid or match["sid"] not in self.audio:
            return Reply(404)
        if request.method == "DELETE" and match["ext"] == "json":
            del self.audio[match["sid"]]  # a deleted recording is gone: its media answers 404 from now on
            self.deleted.append(match["sid"])
            return Reply(204)
        if request.method == "GET" and match["ext"] == "json" and match["sid"] in self.calls:
            return Reply.json(200, self.resource(match["sid"]))
        if request.method != "GET" or match["ext"] != "wav":
            return Reply(404)
        if self.redirect_to:
            return Reply(302, headers={"Location": f"{self.redirect_to}/{match['sid']}.wav"})
        return Reply(200, self.audio[match["sid"]], {"Content-Type": "audio/x-wav"})

    def _create(self, call_sid: str, request: SeenRequest) -> Reply:
        """A recording of the call starts now (201 and the Recording resource, ``status`` in-progress);
        ``RecordingChannels`` is ``mono`` (the default) or ``dual``, anything else is refused (the page above)."""
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        channels = form.get("RecordingChannels", "mono")
        if channels not in ("mono", "dual"):
            return Reply.json(400, {"code": 21220, "message": "Invalid RecordingChannels", "status": 400})
        sid = f"RE{len(self.created) + 1:032d}"
        self.created[sid] = form
        self.began[sid] = time.time()
        self.start(sid, call_sid)
        self.channels[sid] = 2 if channels == "dual" else 1
        return Reply.json(201, {**self.resource(sid), "source": "StartCallRecordingAPI"})

    def complete(self, call_sid: str, audio: bytes | None = None, api_base: str = "") -> tuple[str, dict[str, str]]:
        """The call ended: its REST-started recording is completed (dual: a two-channel file) and Twilio posts
        the recording status callback it was created with (``RecordingStatusCallbackEvent=completed``, the
        parameters of https://www.twilio.com/docs/voice/api/recording#recordingstatuscallback). Returns the URL
        and form of that callback, for the call's stand-in to post as Twilio would; ``api_base``: the API these
        recordings are served behind (``TwilioApi.recordings``), where ``RecordingUrl`` points."""
        sid = self.running[call_sid]
        form = self.created[sid]
        assert "completed" in form.get("RecordingStatusCallbackEvent", "completed").split()
        channels = self.channels[sid]
        self.add(sid, call_sid, audio if audio is not None else wav_bytes(1.0, channels=channels), channels)
        return form["RecordingStatusCallback"], {
            "AccountSid": self.account_sid, "CallSid": call_sid, "RecordingSid": sid,
            "RecordingUrl": self.recording_url(sid).replace(self.base, api_base or self.base, 1), "RecordingStatus": "completed", "RecordingDuration": "1",
            "RecordingChannels": str(channels), "RecordingSource": "StartCallRecordingAPI",
        }

    def _update(self, call_sid: str, sid: str, request: SeenRequest) -> Reply:
        """Pause or resume: ``Twilio.CURRENT`` is the call's running recording; a call recording nothing, or a
        recording already completed, is 404 (Twilio: "not found" / cannot be updated once completed)."""
        sid = self.running.get(call_sid, "") if sid == "Twilio.CURRENT" else sid
        if not sid or self.calls.get(sid) != call_sid or self.status.get(sid) == "completed":
            return Reply.json(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("Status") not in ("paused", "in-progress", "stopped"):
            return Reply.json(400, {"code": 21220, "message": "Invalid Status", "status": 400})
        self.status[sid] = form["Status"]
        self.status_updates.append((call_sid, sid, form))
        return Reply.json(200, self.resource(sid))
