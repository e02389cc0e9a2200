"""``X-Twilio-Signature`` checking against the public URL Twilio actually called."""

from __future__ import annotations

import functools
import hmac
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
        if not signature or not _valid(config.auth_token, public_request_url(config.public_url), signature):
            log.warning("refusing Twilio webhook to %s: bad signature", request.path)
            abort(403)
        return view(*args, **kwargs)

    return checked


def _valid(auth_token: str, url: str, signature: str) -> bool:
    validator = RequestValidator(auth_token)
    # validate() always signs the URL twice (with and without the port); the exact URL is
    # what Twilio signs, so try it alone first and fall back to the library for the variants.
    exact = validator.compute_signature(url, request.form)
    # As bytes: compare_digest raises TypeError on a str with non-ASCII characters, which a forger may send.
    return hmac.compare_digest(exact.encode(), signature.encode()) or validator.validate(url, request.form, signature)
