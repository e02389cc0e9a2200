"""Twilio's REST API on loopback, for the calls the hotline places to agents."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from tests.fakes.http_server import LocalHttpServer, Reply, SeenRequest

HOTLINE_NUMBER = "+861095555"


class TwilioApi:
    """Twilio's REST API on loopback: answers calls.create with a new call sid, keeps every request."""

    def __init__(self) -> None:
        self.server = LocalHttpServer(self._answer)
        self._legs = 0

    def _answer(self, request: SeenRequest) -> Reply:
        self._legs += 1
        return Reply.json(201, {"sid": f"CAagentleg{self._legs:022d}", "status": "queued"})

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
