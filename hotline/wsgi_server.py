"""Serving the web app with gunicorn (sync workers; each builds its own clients after fork)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from hotline.settings import Settings


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings, self.options = settings, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from hotline.app import create_app

        return create_app(self.settings)


def serve(settings: Settings, **overrides: Any) -> None:
    options = {
        "bind": f"{settings.web_host}:{settings.web_port}",
        "workers": settings.web_workers,
        "worker_class": "sync",
        "timeout": 30,
        "accesslog": "-",
        # Query strings only (seq, timeout): Twilio posts card digits in the body, never logged.
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',
        **overrides,
    }
    _Gunicorn(settings, options).run()
