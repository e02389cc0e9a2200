"""The FastAGI process's runtime: a greenlet per call (gevent), or (``HOTLINE_AGI_RUNTIME=threads``) a thread per call.

Under gevent ``hotline agi`` serves each call in a greenlet, not an OS thread: pyst2, the blocking AGI adapter and
the call code stay as they are, and gevent's monkey patching makes every socket wait (Asterisk, Redis, PostgreSQL
through psycopg 3, the bank's HTTP), ``time.sleep``, locks and ``subprocess`` (espeak-ng) yield to the other calls.
SQLite does not wait on a socket: ``store.cooperative`` runs its writes in gevent's pool of native threads, and
the PIN's scrypt runs there too. Figures (threads, gevent, the asyncio echo floor): docs/performance.md.

Patching replaces the standard library's blocking primitives, so it must happen first in the process, before
anything imports ``socket``, ``ssl`` or ``threading`` (``hotline/cli.py`` calls ``patch_process`` at its top
when the command is ``agi``), and only there: the workers and pytest itself stay unpatched. The web's gevent
workers are patched by gunicorn after the fork (``hotline/web_gevent.py``, ``HOTLINE_WEB_RUNTIME``).
"""

from __future__ import annotations

import os
from collections.abc import Callable

RUNTIME_VARIABLE = "HOTLINE_AGI_RUNTIME"
"""``gevent`` (the default: a greenlet per call) or ``threads`` (a thread per call, as before issue 20: kept to
compare and as a way back)."""
RUNTIMES = ("gevent", "threads")


def agi_runtime(environ: dict[str, str] | None = None) -> str:
    value = (os.environ if environ is None else environ).get(RUNTIME_VARIABLE, "gevent").strip().lower() or "gevent"
    if value not in RUNTIMES:
        raise SystemExit(f"{RUNTIME_VARIABLE}={value!r}: expected one of {', '.join(RUNTIMES)}")
    return value


def patch_process(runtime: str | None = None) -> bool:
    """Monkey-patch this process for gevent when ``runtime`` (default: ``HOTLINE_AGI_RUNTIME``) says so."""
    if (runtime or agi_runtime()) != "gevent":
        return False
    from gevent import monkey

    monkey.patch_all()
    return True


def on_signal(signum: int, action: Callable[[], object]) -> None:
    """Run ``action`` in a thread of its own (a greenlet under gevent) when ``signum`` arrives. Under gevent a
    Python signal handler runs inside the event loop, where nothing may block, not even starting a thread."""
    import signal
    import threading

    from store.cooperative import gevent_patched

    if gevent_patched():
        import gevent

        gevent.signal_handler(signum, action)
        return
    signal.signal(signum, lambda *_: threading.Thread(target=action, daemon=True).start())
