"""Prompt texts filled for one call: ``{var}``, ``{var:digits}`` and ``{var:label}``."""

from __future__ import annotations

import string

from ivr.model import Menu


def fill_prompt(template: str, values: dict[str, str], menu: Menu, language: str) -> str:
    """Fill ``{var}``, ``{var:digits}`` (read one by one) and ``{var:label}`` (a spoken name)."""
    if "{" not in template:
        return template
    out = []
    for literal, name, spec, _ in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        value = values.get(name, "")
        if spec == "label":
            value = menu.labels.get(name, {}).get(value, {}).get(language, value)
        elif spec == "digits":
            value = " ".join(value)
        out.append(value)
    return "".join(out)
