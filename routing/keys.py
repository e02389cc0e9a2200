"""Every Redis key and stream name the hotline uses, defined once.

Redis Cluster places a key by the part between its first ``{`` and ``}`` (the hash tag). Everything a
Lua script or transaction touches together must share one: the router's keys and the events stream
(every router script appends to it) carry the hotline's name as their tag. Sessions, menu versions and
the menu editor's calls are touched one key at a time, so they carry none and spread over the cluster.
"""

from __future__ import annotations

DEFAULT_HOTLINE = "hotline"
EVENTS_MAXLEN = 1_000_000
IVR_CALLS = "hotline:ivr_calls"
"""Sorted set: call id -> epoch seconds of its last IVR step, for calls in the menus (not queued, not ended)."""


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


def session_key(call_id: str) -> str:
    """One string per call: the session JSON and the last answer (see ``routing.sessions``)."""
    return f"hotline:session:{call_id}"


def simulation_key(sim_id: str) -> str:
    """A menu-editor "try it" call: the draft it runs and its engine session (see ``admin.simulator``)."""
    return f"hotline:sim:{sim_id}"


def live_menu_key(menu: str) -> str:
    """The version number of ``menu`` that new calls start on."""
    return f"hotline:menu:{menu}:live"


def menu_source_key(menu: str, version: int) -> str:
    """The YAML of a published menu version, copied from SQL: calls start while the database is away."""
    return f"hotline:menu:{menu}:source:{version}"


def pending_work_order_seq_key(day: str) -> str:
    """The day's (``yymmdd``) sequence of work-order numbers given while the database was away."""
    return f"hotline:work_orders:pending_seq:{day}"


def pending_work_order_key(call_id: str) -> str:
    """The pending work-order number a call was given (a replayed step gets the same one)."""
    return f"hotline:work_orders:pending:{call_id}"
