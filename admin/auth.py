"""The bearer-token guard every ``/api`` blueprint shares, and the JSON error shape."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request

log = logging.getLogger(__name__)


def require_token(blueprint: Blueprint, token: str | None) -> None:
    """Refuse every request of ``blueprint`` with 401 unless it carries ``Authorization: Bearer <token>``."""
    if not token:
        log.warning("HOTLINE_API_TOKEN is not set: every %s request is refused with 401", blueprint.url_prefix)

    @blueprint.before_request
    def _authorize() -> Response | None:
        given = request.headers.get("Authorization", "")
        if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return json_error(401, "a valid bearer token is required (Authorization: Bearer <HOTLINE_API_TOKEN>)",
                              {"WWW-Authenticate": 'Bearer realm="hotline"'})[0]
        return None


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    response = jsonify({"error": message})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response, status
