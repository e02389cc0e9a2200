"""Keeps the leases of the calls a channel process holds: if the process dies, they lapse and the
reconciler frees the agents and ends the calls, so nobody stays stuck in ``offered`` or ``busy``."""

from __future__ import annotations

import logging
import threading

import redis

from routing.router import Router

log = logging.getLogger(__name__)


class LeaseKeeper:
    """A daemon thread renewing, every third of the lease, every call this process holds."""

    def __init__(self, router: Router, lease_s: float | None = None) -> None:
        self.router = router
        self.lease_s = lease_s or router.lease_s
        self._held: dict[str, int] = {}
        """Call -> how many holders (the whole call, and its time in a queue)."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, call_id: str) -> None:
        with self._lock:
            self._held[call_id] = self._held.get(call_id, 0) + 1
        self._ensure_running()

    def release(self, call_id: str) -> None:
        with self._lock:
            left = self._held.get(call_id, 0) - 1
            if left > 0:
                self._held[call_id] = left
            else:
                self._held.pop(call_id, None)

    def renew_now(self) -> None:
        with self._lock:
            held = list(self._held)
        try:
            self.router.renew(held, self.lease_s)
        except redis.RedisError as exc:  # the lease has slack for a short outage; say so and go on
            log.warning("could not renew %d call leases: %s", len(held), type(exc).__name__)

    def stop(self) -> None:
        self._stop.set()

    def _ensure_running(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            self.renew_now()
