"""Twilio's recording media and Recording resource on loopback: ``<RecordingSid>.wav`` behind basic auth with
the account SID and token (https://www.twilio.com/docs/voice/api/recording#fetch-a-recording-media-file),
``GET .../Recordings/<sid>.json``, the resource that says which call it is of (``call_sid``:
https://www.twilio.com/docs/voice/api/recording#fetch-a-recording-resource), and
``DELETE .../Recordings/<sid>.json`` (https://www.twilio.com/docs/voice/api/recording#delete-a-recording-resource).
"""

from __future__ import annotations

import base64
import io
import re
import wave
from email.utils import formatdate

from tests.fakes.http_server import LocalHttpServer, Reply, SeenRequest

MEDIA_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>[^/]+)/Recordings/(?P<sid>[^/.]+)\.(?P<ext>wav|json)")


def wav_bytes(seconds: float = 0.25, rate: int = 8000) -> bytes:
    """A small, real WAV file whose samples are not all the same."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join((i * 37 % 65536).to_bytes(2, "little") for i in range(int(seconds * rate))))
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
        self.failure: int | None = None
        self.redirect_to: str | None = None
        self.http = LocalHttpServer(self._answer).start()

    @property
    def base(self) -> str:
        return self.http.url

    def recording_url(self, sid: str) -> str:
        """The RecordingUrl Twilio sends: the media without an extension."""
        return f"{self.base}/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"

    def add(self, sid: str, call_sid: str, audio: bytes | None = None) -> bytes:
        """A recording of call ``call_sid``, as Twilio keeps it once it is completed; returns its audio."""
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
            "duration": "30", "sid": sid, "price": None, "price_unit": "USD", "status": "completed", "channels": 1,
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
