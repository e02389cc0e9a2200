"""One mapping from the hotline's exceptions to HTTP statuses, for every JSON endpoint of the pages and API:
a missing thing is 404, a change the current state does not allow is 409, a malformed request is 400."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from flask import Blueprint, Flask, Response, request

from admin.agents.roster import AlreadyActive
from admin.console.desk import ConsoleRefused, NoAgent
from admin.i18n import refusal
from admin.json_replies import json_error
from admin.menus.lifecycle import NothingToPublish, StaleDraft
from admin.menus.try_it import NoSimulation
from admin.users.accounts import NoSuchUser, UserExists
from calls.menus import MenuNotFound
from complaints.work_orders import BadTransition, NoSuchWorkOrder
from ivr.engine import EngineError
from routing.exceptions import AgentOnCall, BadState, NoSuchAgent
from store.db import UNAVAILABLE

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
"""What a 503 asks the page or client to wait: the usual database failover or Redis restart is shorter."""

OUTAGES: tuple[tuple[tuple[type[Exception], ...], str], ...] = (
    (UNAVAILABLE, "database unavailable"),
    ((redis.ConnectionError, redis.TimeoutError), "redis unavailable"),
)

STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (NoSuchAgent, 404), (NoSuchWorkOrder, 404), (NoAgent, 404), (MenuNotFound, 404), (NoSimulation, 404),
    (NoSuchUser, 404),
    (AgentOnCall, 409), (AlreadyActive, 409), (BadTransition, 409), (ConsoleRefused, 409), (StaleDraft, 409),
    (UserExists, 409),
    (BadState, 400), (NothingToPublish, 400), (EngineError, 400), (ValueError, 400),
)
"""Flask picks the handler of the raised exception's most specific class."""


def answer_errors_as_json(bp: Blueprint) -> None:
    """Registers the mapping on ``bp``: ``{"error": <the exception's message>}`` with its status."""
    for kind, status in STATUS_OF:
        bp.register_error_handler(kind, _answer(status))


def _answer(status: int) -> Callable[[Exception], tuple[Response, int]]:
    def handler(exc: Exception) -> tuple[Response, int]:
        return json_error(status, refusal(str(exc)))
    return handler


def answer_outages(app: Flask) -> None:
    """A store that is away is a 503 with its reason on every page and API route, never a 500: the
    back office retries, and the pages say what is wrong (zh-CN first, like every page)."""
    for kinds, reason in OUTAGES:
        for kind in kinds:
            app.register_error_handler(kind, _outage(reason))


def _outage(reason: str) -> Callable[[Exception], tuple[Response, int]]:
    def handler(exc: Exception) -> tuple[Response, int]:
        # The driver's message names hosts and ports: logged for the operator, not shown to the client.
        log.warning("%s %s: %s (%s)", request.method, request.path, reason, type(exc).__name__)
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            return json_error(503, reason, headers)
        text = f"服务暂时不可用（{_ZH[reason]}），请稍后重试。\nTemporarily unavailable ({reason}): try again shortly."
        return Response(text, status=503, mimetype="text/plain", headers=headers), 503
    return handler


_ZH = {"database unavailable": "数据库不可用", "redis unavailable": "Redis 不可用"}
