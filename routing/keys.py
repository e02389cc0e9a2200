"""The router's Redis keys and the events stream, defined once (the calls' keys are in ``calls.keys``).

Redis Cluster places a key by the part between its first ``{`` and ``}`` (the hash tag). Everything a
Lua script or transaction touches together must share one: the router's keys and the events stream
(every router script appends to it) carry the hotline's name as their tag. The calls' own keys
(sessions, menu versions, ...) are touched one key at a time, so they carry none and spread over the cluster.
"""

from __future__ import annotations

DEFAULT_HOTLINE = "hotline"
EVENTS_MAXLEN = 1_000_000


def router_prefix(hotline: str) -> str:
    """Every router key of one hotline starts with this; the ``{...}`` hash tag keeps them in one
    Redis Cluster slot, so the Lua scripts may touch any of them."""
    return f"hotline:{{{hotline}}}:"


def events_stream(hotline: str = DEFAULT_HOTLINE) -> str:
    """The hotline's call events. Under the router's hash tag: each router script appends its events
    in the same atomic step as it changes the router's keys."""
    return router_prefix(hotline) + "events"


EVENTS_STREAM = events_stream(DEFAULT_HOTLINE)
"""The events stream of the default hotline (``HOTLINE_NAME`` unset)."""
