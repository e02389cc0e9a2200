"""The reconciler loop: ``Router.tick`` every interval, offers handed to the channels to ring."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from routing.router import Ended, Offer, Router

log = logging.getLogger(__name__)


def run_ticker(
    router: Router, connect: Callable[[list[Offer]], None], cancel: Callable[[Ended], None],
    interval_s: float = 0.5, stop: threading.Event | None = None,
) -> None:
    """Runs until ``stop`` is set. Several tickers may run at once: every tick is atomic."""
    stop = stop or threading.Event()
    while not stop.wait(interval_s):
        try:
            result = router.tick()
        except redis.RedisError as exc:
            log.warning("router tick skipped: redis unavailable (%s)", type(exc).__name__)
            continue
        for ended in result.ended:
            if ended.freed_agent:
                cancel(ended)
        if result.offers:
            connect(result.offers)
