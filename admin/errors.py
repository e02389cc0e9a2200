"""One mapping from the hotline's exceptions to HTTP statuses, for every JSON endpoint of the pages and API:
a missing thing is 404, a change the current state does not allow is 409, a malformed request is 400."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response

from admin.agents.roster import AlreadyActive
from admin.console.desk import ConsoleRefused, NoAgent
from admin.json_replies import json_error
from admin.menus.lifecycle import NothingToPublish, StaleDraft
from admin.menus.try_it import NoSimulation
from admin.users.accounts import NoSuchUser, UserExists
from calls.menus import MenuNotFound
from complaints.work_orders import BadTransition, NoSuchWorkOrder
from ivr.engine import EngineError
from routing.exceptions import AgentOnCall, BadState, NoSuchAgent

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
        return json_error(status, str(exc))
    return handler
