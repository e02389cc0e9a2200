"""What a caller typed into an ``input`` node: one entry cut off the keys, and whether it is acceptable."""

from __future__ import annotations

from ivr.masking import luhn_ok
from ivr.model import InputNode


def split_entry(digits: str, node: InputNode) -> tuple[str, str]:
    """Cut one entry off the typed digits: up to the finish key or max_digits; keep the rest."""
    digits = "".join(ch for ch in digits if ch.isdigit() or ch in "*#")
    if node.finish_on_key and node.finish_on_key in digits[: node.max_digits + 1]:
        value, _, rest = digits.partition(node.finish_on_key)
        return value, rest
    return digits[: node.max_digits], digits[node.max_digits:]


def entry_ok(value: str, node: InputNode) -> bool:
    allowed = "0123456789*" if node.allow_star else "0123456789"
    if not node.min_digits <= len(value) <= node.max_digits or value.strip(allowed):
        return False
    return node.check != "luhn" or luhn_ok(value)
