"""Masking card numbers, PINs and ID digits: the one place that decides what a mask looks like."""

from __future__ import annotations

import hashlib
import logging
import re

_LONG_DIGITS = re.compile(r"(?<!\d)\d{12,19}(?!\d)")


def mask_digits(value: str) -> str:
    """``6222021234563445`` -> ``6222********3445``; short secrets (PIN, ID tail) become all stars."""
    if len(value) >= 12:
        return value[:4] + "*" * (len(value) - 8) + value[-4:]
    return "*" * len(value)


def mask_phone(number: str) -> str:
    """``+8613812345678`` -> ``+86138****5678``: enough to recognise a caller, not to dial."""
    digits = number.lstrip("+")
    plus = "+" if number.startswith("+") else ""
    if len(digits) < 7:
        return mask_digits(digits)
    keep = digits[:-8] if len(digits) >= 11 else ""
    return f"{plus}{keep}****{digits[-4:]}"


def redact(text: str) -> str:
    """Mask every card-length run of digits in free text (log lines, error messages)."""
    return _LONG_DIGITS.sub(lambda m: mask_digits(m.group()), text)


class RedactingFilter(logging.Filter):
    """Last line of defence: no log record leaves with a card-length digit run in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def luhn_ok(digits: str) -> bool:
    """The Luhn check every payment card number passes."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def number_key(number: str) -> str:
    """A stable pseudonym of a phone number (last 11 digits, keyed BLAKE2b): finds repeat callers and
    do-not-call entries without storing the number. Not a secret: phone numbers are few enough to enumerate."""
    digits = "".join(ch for ch in number if ch.isdigit())[-11:]
    if not digits:
        return ""
    return hashlib.blake2b(digits.encode(), key=b"hotline-number", digest_size=8).hexdigest()
