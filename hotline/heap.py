"""Python's cyclic garbage collector in the long-running servers (web workers, FastAGI).

A full collection walks every tracked object and holds the whole process meanwhile: under gevent every call and
webhook of the worker waits for it. With 1,000 live pages open in a web worker (a greenlet, its frames, request
and subscription each) one took 56-138 ms, and the default thresholds ran 7-8 of them per worker in a
three-minute bench (`bench/webhooks.py --streams 2000`, docs/performance.md). What the app built at start is
frozen out of the collector's sight, and full collections are made ten times rarer: the young generations still
collect a request's cycles as before, so only cyclic garbage that outlived two collections waits longer."""

from __future__ import annotations

import gc

FULL_COLLECTION_EVERY = 100
"""Collections of the middle generation between two full ones (Python's default: 10)."""


def settle_heap() -> None:
    """Once the app is built: collect, freeze what is left (it lives as long as the process), and make full
    collections rare."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
