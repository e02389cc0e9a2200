"""The Redis keys of calls in the menus: sessions, published menus, "try it" calls, work-order numbers given
while the database was away. Each is touched one key at a time: no hash tag, they spread over a cluster
(the router's keys, which Lua scripts touch together, are in ``routing.keys``)."""

from __future__ import annotations

IVR_CALLS = "hotline:ivr_calls"
"""Sorted set: call id -> epoch seconds of its last IVR step, for calls in the menus (not queued, not ended)."""


def session_key(call_id: str) -> str:
    """One string per call: the session JSON and the last answer (see ``routing.sessions``)."""
    return f"hotline:session:{call_id}"


def simulation_key(sim_id: str) -> str:
    """A menu-editor "try it" call: the draft it runs and its engine session (see ``admin.try_it``)."""
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


def tombstone_key(call_id: str) -> str:
    """A finished Twilio call's last session, kept a while for the requests Twilio sends after the end."""
    return f"hotline:tombstone:{call_id}"


def ending_key(call_id: str) -> str:
    """Set by a Twilio call's status callback before it takes the session: the call is being ended, and its
    tombstone is on its way."""
    return f"hotline:ending:{call_id}"


def answered_by_key(call_id: str) -> str:
    """How an outbound call was answered when it was not a person (``voicemail``), kept for its status callback."""
    return f"hotline:answered_by:{call_id}"


def held_key(call_id: str) -> str:
    """Set once Twilio holds the caller in their own queue (its first waitUrl request): agents may dial it."""
    return f"hotline:held:{call_id}"


def talked_key(call_id: str) -> str:
    """Set once a Twilio caller is sent into the conference with their agent: however the call then ends (the agent
    leaving first, a warm transfer completed), the menu's wait for an agent ended as ``bridged``."""
    return f"hotline:talked:{call_id}"


def pin_key(card_key: str) -> str:
    """A card's PIN-failure counter or lock (see ``calls.pin_locks``), named by the card's keyed hash."""
    return f"hotline:pin:{card_key}"
