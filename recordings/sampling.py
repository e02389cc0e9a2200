"""Which agent conversations a queue records: all, none, or a share picked by the call id.

The share is picked by a hash of the call id, not at random: every process (the FastAGI server, the web app)
asked about the same call answers the same, and a test can say which calls are in the sample.
"""

from __future__ import annotations

import hashlib


def records(policy: str, call_id: str) -> bool:
    """``policy``: ``all``, ``none`` or ``N%`` (0-100); unknown text records (a recording too many is the
    safer mistake for a complaint desk than one too few)."""
    if policy == "none":
        return False
    if not policy.endswith("%"):
        return True
    try:
        share = float(policy[:-1])
    except ValueError:
        return True
    bucket = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big") % 10000
    return bucket < share * 100
