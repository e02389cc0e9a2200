"""Serving the web app with gunicorn (threaded workers; each builds its own clients after fork)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from hotline.logs import gunicorn_logger
from hotline.settings import Settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    def __init__(self, load_app: Callable[[], Flask], options: dict[str, Any]) -> None:
        self._load_app, self.options = load_app, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._load_app()


def _freeze_heap(worker: Any) -> None:
    # The app's long-lived objects move out of the collector's sight: no 50 ms full-GC pauses later.
    gc.collect()
    gc.freeze()


def _worker_gone(server: Any, worker: Any) -> None:
    from metrics import process_gone

    process_gone(worker.pid)


def serve(settings: Settings, app_factory: Callable[[Settings], Flask] | None = None, **overrides: Any) -> None:
    """Run gunicorn in the foreground; ``app_factory`` defaults to ``hotline.app.create_app``."""
    if app_factory is None:
        from hotline.app import create_app

        app_factory = create_app
    options = {
        "bind": f"{settings.web_host}:{settings.web_port}",
        "workers": settings.web_workers,
        # Threads, not sync workers: a live dashboard or agent console holds an event stream open.
        "worker_class": "gthread",
        "threads": settings.web_threads,
        "timeout": 30,
        "accesslog": "-",
        # Query strings only (seq, timeout): Twilio posts card digits in the body, never logged.
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',
        "post_worker_init": _freeze_heap,
        "logger_class": gunicorn_logger(settings.log_format),
        # gunicorn 25+ opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl) that lets any
        # process of that user change the workers: two hotlines on one machine would share it, and `hotline up`
        # already supervises the processes.
        "control_socket_disable": True,
        "child_exit": _worker_gone,
        **overrides,
    }
    _Gunicorn(lambda: app_factory(settings), options).run()
