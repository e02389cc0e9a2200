"""Twilio's REST API on loopback, for the calls the hotline places to agents."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qs

from tests.fakes.http_server import LocalHttpServer, Reply, SeenRequest

HOTLINE_NUMBER = "+861095555"


class TwilioApi:
    """Twilio's REST API on loopback: answers calls.create with a new call sid, lists and deletes queues
    (https://www.twilio.com/docs/voice/api/queue-resource), keeps every request."""

    def __init__(self) -> None:
        self.server = LocalHttpServer(self._answer)
        self._legs = 0
        self.queues: dict[str, dict[str, object]] = {}
        self.recordings: Callable[[SeenRequest], Reply] | None = None
        """Who answers ``.../Recordings/...`` on this API (``MediaServer._answer``): one base URL, as at Twilio."""
        """Queue sid -> its resource (friendly_name, current_size, date_updated), as a test sets them up."""

    def _answer(self, request: SeenRequest) -> Reply:
        if self.recordings is not None and "/Recordings/" in request.path:
            return self.recordings(request)
        if request.path.endswith("/Queues.json") and request.method == "GET":
            # One page, with the paging block the 2010 API sends.
            return Reply.json(200, {"queues": list(self.queues.values()),
                                    "meta": {"key": "queues", "next_page_url": None, "page": 0}})
        if "/Queues/" in request.path and request.method == "DELETE":
            sid = request.path.rsplit("/", 1)[1].removesuffix(".json")
            queue = self.queues.get(sid)
            if queue is None:
                return Reply.json(404, {"code": 20404, "message": "not found", "status": 404})
            if queue.get("current_size"):  # a queue with callers in it cannot go
                return Reply.json(400, {"code": 20001, "message": "queue is not empty", "status": 400})
            del self.queues[sid]
            return Reply(204)
        if request.method == "DELETE":
            return Reply(204)
        self._legs += 1
        return Reply.json(201, {"sid": f"CAagentleg{self._legs:022d}", "status": "queued"})

    def deletes(self) -> list[str]:
        return [r.path for r in self.server.requests if r.method == "DELETE"]

    def created(self, count: int, timeout_s: float = 5) -> list[dict[str, str]]:
        """The form of each calls.create, once ``count`` have arrived (the dialer works off-thread)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            creates = [r for r in self.server.requests if r.path.endswith("/Calls.json")]
            if len(creates) >= count:
                return [{k: v[0] for k, v in parse_qs(r.body.decode()).items()} for r in creates]
            time.sleep(0.01)
        raise AssertionError(f"expected {count} agent calls, Twilio got {self.server.requests}")

    def updates(self) -> list[tuple[str, dict[str, str]]]:
        return [(r.path, {k: v[0] for k, v in parse_qs(r.body.decode()).items()})
                for r in self.server.requests if not r.path.endswith("/Calls.json")]
