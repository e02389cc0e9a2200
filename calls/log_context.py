"""Which call a log line is about: set where a call's handling begins, read by the log formatter.

A context variable, not an argument threaded through every function: the FastAGI server runs each call
in a thread of its own (a new thread starts with an empty context) and gunicorn's threads serve one
webhook at a time, so each line carries the call it was written for and nothing leaks into the next.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass

FIELDS = ("call_id", "channel", "step")
"""What every log line about a call carries (``HOTLINE_LOG_FORMAT=json``)."""


@dataclass
class CallContext:
    call_id: str
    channel: str
    step: str = ""
    """Where in its handling the call is: the menu node, or the phase (``hold``, a webhook's name)."""


_current: ContextVar[CallContext | None] = ContextVar("hotline_call", default=None)


@contextmanager
def about_call(call_id: str, channel: str, step: str = "") -> Iterator[None]:
    """Log lines written inside are about this call; the context before it comes back after."""
    token = enter_call(call_id, channel, step)
    try:
        yield
    finally:
        leave_call(token)


def enter_call(call_id: str, channel: str, step: str = "") -> Token[CallContext | None]:
    """``about_call`` split in two, for frameworks that begin and end a request in two hooks."""
    return _current.set(CallContext(call_id[:64], channel, step[:64]))


def leave_call(token: Token[CallContext | None]) -> None:
    _current.reset(token)


def at_step(step: str) -> None:
    """The call being handled moved on to ``step`` (no call being handled: nothing happens)."""
    context = _current.get()
    if context is not None:
        context.step = step[:64]


def current_call() -> CallContext | None:
    return _current.get()


class CallContextFilter(logging.Filter):
    """Puts ``call_id``, ``channel`` and ``step`` on each record written inside ``about_call``."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        if context is not None:
            for name in FIELDS:
                setattr(record, name, getattr(context, name))
        return True
