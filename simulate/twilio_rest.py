"""Twilio's REST API as the day simulator serves it on loopback: ``Calls.json`` (create, update), recordings
started on a live call, the recording resource (its call) and media (``<RecordingSid>.wav``), and the deletes of
recordings and queues the hotline makes once it is done with them
(https://www.twilio.com/docs/voice/api/recording#delete-a-recording-resource,
https://www.twilio.com/docs/voice/api/queue-resource#delete-a-queue-resource)."""

from __future__ import annotations

import io
import json
import wave
from http.server import BaseHTTPRequestHandler
from typing import Protocol
from urllib.parse import parse_qs, urlsplit


class RestSide(Protocol):
    def create_call(self, form: dict[str, str]) -> dict[str, str] | None: ...
    def update_call(self, sid: str, form: dict[str, str]) -> tuple[int, dict[str, str]]: ...
    def start_recording(self, call_sid: str, form: dict[str, str]) -> tuple[int, dict[str, str]]: ...
    def recording(self, rec: str) -> dict[str, str] | None: ...


def rest_handler(cloud: RestSide) -> type[BaseHTTPRequestHandler]:
    """The HTTP handler of Twilio's REST API on loopback: calls created and updated, recording media, deletes."""
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            path = urlsplit(self.path).path
            if path.endswith("/Calls.json"):
                created = cloud.create_call(form)
                self._json(201, created) if created else self._json(503, {"message": "the day is over"})
            elif "/Calls/" in path and path.endswith("/Recordings.json"):
                self._json(*cloud.start_recording(path.rsplit("/", 2)[1], form))
            elif "/Calls/" in path:
                self._json(*cloud.update_call(path.rsplit("/", 1)[1].removesuffix(".json"), form))
            else:
                self._json(404, {"message": "not found"})

        def do_DELETE(self) -> None:  # noqa: N802 - a fetched recording, an ended caller's queue
            if "/Recordings/" in self.path or "/Queues/" in self.path:
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._json(404, {"message": "not found"})

        def do_GET(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            if "/Recordings/" in path and path.endswith(".json"):  # the resource: which call it is of
                found = cloud.recording(path.rsplit("/", 1)[1].removesuffix(".json"))
                self._json(200, found) if found else self._json(404, {"code": "20404", "message": "not found"})
            elif "/Recordings/" in path:
                self._send(200, "audio/wav", _SILENCE)
            else:
                self._json(404, {"message": "not found"})

        def _json(self, status: int, body: dict[str, str]) -> None:
            self._send(status, "application/json", json.dumps(body).encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _silence(seconds: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(seconds * 16000))
    return out.getvalue()


_SILENCE = _silence()
