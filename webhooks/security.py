"""``X-Twilio-Signature`` checking against the public URL Twilio actually called."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import abort, current_app, request
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)


def public_request_url(public_url: str) -> str:
    """The URL Twilio signed: behind a proxy ``request.url`` is not it, so rebuild it."""
    url = public_url.rstrip("/") + request.script_root + request.path
    query = request.query_string.decode("latin-1")
    return f"{url}?{query}" if query else url


def twilio_signed(view: Callable[..., Any]) -> Callable[..., Any]:
    """403 for any request whose signature is missing or wrong; nothing else runs."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        config = current_app.extensions["hotline.twilio"]
        if not config.auth_token:
            log.error("refusing Twilio webhook: TWILIO_AUTH_TOKEN is not set")
            abort(403)
        signature = request.headers.get("X-Twilio-Signature", "")
        url = public_request_url(config.public_url)
        if not signature or not RequestValidator(config.auth_token).validate(url, request.form, signature):
            log.warning("refusing Twilio webhook to %s: bad signature", request.path)
            abort(403)
        return view(*args, **kwargs)

    return checked
