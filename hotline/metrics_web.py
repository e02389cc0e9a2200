"""``GET /metrics`` for Prometheus, and the Twilio webhooks timed as steps of their calls.

The scrape token (``HOTLINE_METRICS_TOKEN``) rather than only the API token: Prometheus's configuration (and
whoever reads it) then holds a credential that reads numbers, not one that acts as an admin. The API token is
accepted too, so a hotline with only that set can be scraped at once. With neither set, nobody: 401.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST

import metrics
from admin.access import public
from hotline.metrics_state import SharedState, scrape

if TYPE_CHECKING:
    from hotline.app import Hotline

TWILIO_BLUEPRINT = "twilio"


def add_metrics(app: Flask, hotline: Hotline) -> None:
    tokens = [t for t in (hotline.settings.metrics_token, hotline.settings.api_token) if t]
    state = SharedState(hotline)

    bp = Blueprint("metrics", __name__)  # exempt from the login guard (admin.web): the token is checked here

    @bp.get("/metrics")
    @public
    def metrics_view() -> Response:
        given = request.headers.get("Authorization", "").encode()
        if not any(hmac.compare_digest(given, f"Bearer {t}".encode()) for t in tokens):
            return Response("send Authorization: Bearer <HOTLINE_METRICS_TOKEN>\n", status=401,
                            mimetype="text/plain", headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return Response(scrape(state), mimetype=CONTENT_TYPE_LATEST)

    app.register_blueprint(bp)

    @app.before_request
    def _start_clock() -> None:
        g.metrics_started = time.perf_counter()

    @app.teardown_request
    def _time_webhook(_exc: BaseException | None) -> None:
        started = g.get("metrics_started")
        if started is None or request.blueprint != TWILIO_BLUEPRINT or request.endpoint is None:
            return
        step = request.endpoint.partition(".")[2]  # the route's name (voice, gather, hold, ...): a closed set
        metrics.STEP_SECONDS.labels("twilio", metrics.word(step)).observe(time.perf_counter() - started)
