"""``X-Twilio-Signature`` checking against the public URL Twilio actually called."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from flask import abort, current_app, request
from twilio.request_validator import RequestValidator, get_signature_algorithm

log = logging.getLogger(__name__)

SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


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
        # A Webhook Setting signing with a shared key names it and its algorithm in this header
        # (https://www.twilio.com/docs/usage/webhooks/webhook-shared-keys); without it: the auth token, HMAC-SHA1.
        settings = request.headers.get(SETTINGS_HEADER, "")
        secret = config.shared_key_secret if settings else config.auth_token
        if not secret:
            log.error("refusing Twilio webhook: %s is not set", "HOTLINE_TWILIO_WEBHOOK_KEY_SECRET (the request is "
                      "signed with a shared key)" if settings else "TWILIO_AUTH_TOKEN")
            abort(403)
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not _valid(secret, public_request_url(config.public_url), signature,
                                       get_signature_algorithm(settings)):
            log.warning("refusing Twilio webhook to %s: bad signature", request.path)
            abort(403)
        return view(*args, **kwargs)

    return checked


def _valid(secret: str, url: str, signature: str, algorithm: str) -> bool:
    validator = RequestValidator(secret)
    # validate() always signs the URL twice (with and without the port); the exact URL is
    # what Twilio signs, so try it alone first and fall back to the library for the variants.
    try:
        exact = validator.compute_signature(url, request.form, algorithm)
    except ValueError:  # an algorithm the library does not know: not a request we can trust
        return False
    # As bytes: compare_digest raises TypeError on a str with non-ASCII characters, which a forger may send.
    return hmac.compare_digest(exact.encode(), signature.encode()) or validator.validate(
        url, request.form, signature, algorithm)
