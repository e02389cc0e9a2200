"""Where a page may send someone after a form (login, the language switch): only a path of this site."""

from __future__ import annotations

from urllib.parse import urlsplit


def same_site_path(target: str) -> str:
    """``target`` when it is a path on this site, else "". Browsers drop tabs and line breaks from a URL
    (``/\\t/evil`` becomes ``//evil``) and read ``\\`` as ``/``: any control character, a second leading slash or
    a backslash is refused, so no form of ours is an open redirect."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return ""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return ""
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else ""
