"""gunicorn's gevent worker for the web (``HOTLINE_WEB_RUNTIME=gevent``), patched completely.

gunicorn's worker monkey-patches the standard library after the fork, but the master (``hotline up``,
``hotline web``) had already imported the whole app: a module that took a name out of ``ssl``, ``socket``,
``threading`` or ``time`` with ``from ... import`` still holds the blocking original (gevent warns about ssl:
urllib3, which the Twilio REST calls use, builds its TLS contexts from its own copy of ``ssl.SSLContext``, and a
blocking TLS read would hold every greenlet of the worker). After patching, this worker points such names at
gevent's versions. It also sends the worker's SQLite reads to gevent's thread pool (``store.cooperative``), and ends
its live pages' streams when it stops."""

from __future__ import annotations

import sys
import types
import warnings

from gevent.monkey import MonkeyPatchWarning
from gunicorn.workers.ggevent import GeventWorker


class Worker(GeventWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    def patch(self) -> None:
        from store.cooperative import move_reads_off_hub

        with warnings.catch_warnings():  # the warning about ssl imported before patching: fixed just below
            warnings.simplefilter("ignore", MonkeyPatchWarning)
            super().patch()
        rebound = rebind_early_imports()
        if rebound:
            self.log.debug("gevent: rebound names imported before patching: %s", ", ".join(sorted(rebound)))
        move_reads_off_hub()  # before the app is loaded and opens its database

    def handle_exit(self, sig: int, frame: object) -> None:
        """Stopping: the open live pages' streams end now, so their browsers reconnect to a worker that stays, and
        this one is done as soon as its requests are (a stream would otherwise keep it for the graceful timeout)."""
        import gevent

        from admin.live.fanout import EVENT_FANOUT

        super().handle_exit(sig, frame)
        fanout = getattr(self.wsgi, "extensions", {}).get(EVENT_FANOUT)
        if fanout is not None:
            gevent.spawn(fanout.close)  # out of the signal handler, which runs in the hub and must not block


def rebind_early_imports() -> set[str]:
    """Names other modules imported from a patched module before gevent patched it, pointed at gevent's versions;
    returns ``module.name`` of each name rebound."""
    from gevent import monkey

    swaps: dict[tuple[int, str], object] = {}  # (id of the original, its name) -> gevent's
    for patched_name, originals in monkey.saved.items():
        patched = sys.modules.get(patched_name)
        for name, original in originals.items():
            replacement = getattr(patched, name, original)
            if replacement is not original:
                swaps[id(original), name] = replacement
    rebound: set[str] = set()
    for module in list(sys.modules.values()):
        if not isinstance(module, types.ModuleType) or _keeps_originals(module.__name__):
            continue
        namespace = vars(module)
        for attr, value in list(namespace.items()):
            replacement = swaps.get((id(value), attr))
            if replacement is not None:
                namespace[attr] = replacement
                rebound.add(f"{module.__name__}.{attr}")
    return rebound


def _keeps_originals(module: str) -> bool:
    """gevent itself, and the standard library's own modules, which gevent patched or means to leave alone."""
    return module.startswith(("gevent", "greenlet", "_")) or module in sys.stdlib_module_names or \
        module.split(".", 1)[0] in sys.stdlib_module_names
