"""Log lines for people (``text``) or for a log system (``json``, one object per line), in every process.

Both forms pass the redaction filter (card-length digit runs masked, tracebacks included); the JSON form
masks the whole line once more, extra fields and all, and carries ``call_id``, ``channel`` and ``step`` on
each line written while a call is being handled (``calls.log_context``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from gunicorn.glogging import Logger as GunicornLogger
from pythonjsonlogger.json import JsonFormatter

from calls.log_context import CallContextFilter
from ivr.masking import RedactingFilter, redact

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _RedactedJson(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return _RedactedJson("{levelname}{name}{message}", style="{", json_ensure_ascii=False, timestamp="time",
                             rename_fields={"levelname": "level", "name": "logger"})
    return logging.Formatter(TEXT_FORMAT)


def guard(handler: logging.Handler, log_format: LogFormat) -> logging.Handler:
    """``handler`` with the hotline's formatter, the redaction filter and the call's fields."""
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RedactingFilter())
    handler.addFilter(CallContextFilter())
    return handler


def configure_logging(level: int = logging.INFO, log_format: LogFormat = "text") -> None:
    """The process's root handler (on stderr)."""
    logging.basicConfig(level=level, handlers=[guard(logging.StreamHandler(), log_format)], force=True)
    # The twilio library logs each REST request's method, URL and every header at INFO: ten lines a request,
    # half of a busy day's log (and its CPU). The hotline logs the outcomes it acts on itself.
    logging.getLogger("twilio.http_client").setLevel(max(level, logging.WARNING))


def gunicorn_logger(log_format: LogFormat) -> type[Any]:
    """gunicorn's ``logger_class``: its error and access logs in the same form and through the same filters."""

    class HotlineGunicornLogger(GunicornLogger):  # type: ignore[misc]  # gunicorn ships no type hints
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    if log is self.error_log or log_format == "json":  # text access lines keep their own form
                        handler.setFormatter(formatter(log_format))
                    handler.addFilter(RedactingFilter())
                    handler.addFilter(CallContextFilter())

    return HotlineGunicornLogger
