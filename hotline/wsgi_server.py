"""Serving the web app with gunicorn: gevent workers (a greenlet per request and per open live page) or, with
``HOTLINE_WEB_RUNTIME=threads``, threaded ones; each worker builds its own clients after the fork.

gunicorn's gevent worker (``hotline.web_gevent``) monkey-patches the standard library in the worker, after the fork
and before the app is loaded, so everything the app opens (Redis, SQL, sockets, locks) is gevent's. SQLite and the
password and PIN hashes do not yield by themselves: ``store.cooperative`` runs them in gevent's native thread
pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from hotline.heap import settle_heap
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


def _settle_heap(worker: Any) -> None:
    settle_heap()


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
        **runtime_options(settings),
        "timeout": 30,
        "accesslog": "-",
        # Query strings only (seq, timeout): Twilio posts card digits in the body, never logged.
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',
        "post_worker_init": _settle_heap,
        "logger_class": gunicorn_logger(settings.log_format),
        # gunicorn 25+ opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl) that lets any
        # process of that user change the workers: two hotlines on one machine would share it, and `hotline up`
        # already supervises the processes.
        "control_socket_disable": True,
        "child_exit": _worker_gone,
        **overrides,
    }
    _Gunicorn(lambda: app_factory(settings), options).run()


WEBHOOK_CONNECTIONS = 1000
"""gevent: connections a worker serves at once beyond its live pages' cap. A worker takes no new connection while
it serves ``worker_connections``: this many are never held by pages, so a webhook is accepted whatever they do."""


def runtime_options(settings: Settings) -> dict[str, Any]:
    """gunicorn's worker class and its size for ``HOTLINE_WEB_RUNTIME``."""
    if settings.web_runtime == "threads":
        # Threads, not sync workers: a live dashboard or agent console holds an event stream open.
        return {"worker_class": "gthread", "threads": settings.web_threads}
    from admin.live.sse import stream_limit

    pages = stream_limit(settings.web_runtime, settings.live_stream_memory_mb, settings.web_threads)
    return {"worker_class": "hotline.web_gevent.Worker", "worker_connections": pages + WEBHOOK_CONNECTIONS}
