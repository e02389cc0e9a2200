"""The JSON body and error shapes every ``/api`` blueprint shares (who may call what: ``admin.access``)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from flask_babel import gettext as _


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValueError(_("the body must be a JSON object"))
    return body


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> tuple[Response, int]:
    response = jsonify({"error": message})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response, status
