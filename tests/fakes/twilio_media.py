"""Twilio's recording media and Recording resource on loopback: ``<RecordingSid>.wav`` behind basic auth with
the account SID and token (https://www.twilio.com/docs/voice/api/recording#fetch-a-recording-media-file), and
``DELETE .../Recordings/<sid>.json`` (https://www.twilio.com/docs/voice/api/recording#delete-a-recording-resource).
"""

from __future__ import annotations

import base64
import io
import re
import wave

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

    def fetches(self) -> int:
        return sum(1 for r in self.http.requests if r.method == "GET")

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
        if request.method != "GET" or match["ext"] != "wav":
            return Reply(404)
        if self.redirect_to:
            return Reply(302, headers={"Location": f"{self.redirect_to}/{match['sid']}.wav"})
        return Reply(200, self.audio[match["sid"]], {"Content-Type": "audio/x-wav"})
