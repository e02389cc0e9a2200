"""Reading menu YAML safely: size, depth and node limits, no aliases, duplicate keys caught with their line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ivr.model import Menu

MAX_MENU_BYTES = 256 * 1024
"""A large real menu is ~10 KiB; anything near this is a mistake or an attack, and bounds parse time."""
MAX_YAML_DEPTH = 24
"""The menu schema nests 5 deep; PyYAML composes recursively, so a `[[[[...` document would otherwise
end in a RecursionError (an unexplained crash) instead of a refusal."""
MAX_YAML_NODES = 20_000
"""The default menu is 611 YAML nodes in 9 KiB; at that density MAX_MENU_BYTES holds ~17,000, so 20,000
refuses no real menu while stopping `[1,1,1,...]` filler early (pure-Python composing costs ~20 us a node)."""


@dataclass(frozen=True)
class Problem:
    """One reason a menu is refused, tied to the node it is about (None: the whole menu)."""

    node: str | None
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"node '{self.node}'" if self.node else "menu"
        at = f" (line {self.line})" if self.line else ""
        return f"{where}{at}: {self.reason}"


class MenuError(ValueError):
    """The menu was refused; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def parse_menu(text: str | bytes) -> Menu:
    """Parse and schema-check a menu document (graph rules are in ``validate``)."""
    raw = _load_yaml(text)
    try:
        return Menu.model_validate(raw)
    except ValidationError as exc:
        raise MenuError([_problem_from(err) for err in exc.errors()]) from None


def load_menu_file(path: str | Path) -> Menu:
    """Read, parse and fully validate a menu file."""
    from ivr.validate import validate_menu

    menu = parse_menu(read_menu_bytes(path))
    validate_menu(menu)
    return menu


def read_menu_bytes(path: str | Path) -> bytes:
    """The file's bytes, reading at most one byte past the limit: a huge file is refused, not slurped."""
    with Path(path).open("rb") as file:
        return file.read(MAX_MENU_BYTES + 1)


def node_lines(text: str | bytes) -> dict[str, int]:
    """Line number of each node id in the document, for pointing editors at problems."""
    lines: dict[str, int] = {}
    if _too_big(text):
        return lines
    try:
        root = yaml.compose(text, Loader=_MenuLoader)
    except yaml.YAMLError:
        return lines
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if key.value == "nodes" and isinstance(value, yaml.MappingNode):
            for node_key, _ in value.value:
                lines[str(node_key.value)] = node_key.start_mark.line + 1
    return lines


def _load_yaml(text: str | bytes) -> Any:
    if _too_big(text):
        raise MenuError([Problem(None, f"menu is larger than {MAX_MENU_BYTES // 1024} KiB")])
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MenuError([Problem(None, f"menu is not UTF-8 text (byte {exc.start})")]) from None
    try:
        data = yaml.load(text, Loader=_MenuLoader)  # noqa: S506 - _MenuLoader is a SafeLoader
    except _Refused as exc:
        raise MenuError([Problem(None, exc.reason, exc.line)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise MenuError([Problem(None, f"not valid YAML: {_yaml_reason(exc)}", line)]) from None
    if not isinstance(data, dict):
        raise MenuError([Problem(None, "a menu must be a YAML mapping")])
    return data


def _too_big(text: str | bytes) -> bool:
    # A str of N characters is at least N bytes: encode only when the cheap check cannot decide.
    return len(text) > MAX_MENU_BYTES or (isinstance(text, str) and len(text.encode()) > MAX_MENU_BYTES)


class _Refused(yaml.YAMLError):
    """Well-formed YAML that menus do not allow: aliases, tags, or past a depth or node limit."""

    def __init__(self, reason: str, mark: Any) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, mark.line + 1 if mark else None


def _yaml_reason(exc: yaml.YAMLError) -> str:
    return str(getattr(exc, "problem", None) or getattr(exc, "context", None) or exc).strip()


class _MenuLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (no YAML bombs), duplicate mapping keys, and documents nested
    deeper than MAX_YAML_DEPTH or holding more than MAX_YAML_NODES nodes (checked while composing,
    so a hostile document stops early)."""

    _depth = 0
    _nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _Refused("aliases and anchors are not allowed in menus (no YAML bombs)", event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise _Refused(f"menu has more than {MAX_YAML_NODES} YAML nodes", event.start_mark)
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(f"menu nests deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_undefined(self, node: yaml.Node) -> Any:
        # SafeLoader already refuses them; say why in words an admin understands.
        raise _Refused(f"YAML tag {node.tag!r} is not allowed in menus (plain YAML only)", node.start_mark)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            key = str(self.construct_object(key_node, deep=True))
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key '{key}' (first on line {seen[key]})", key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        mapping = super().construct_mapping(node, deep=deep)
        # Keys such as 1 or 0 are digits the caller presses: keep them as text.
        return {str(k) if isinstance(k, int) else k: v for k, v in mapping.items()}


_MenuLoader.add_constructor(None, _MenuLoader.construct_undefined)  # the table holds SafeLoader's function


def _problem_from(err: Any) -> Problem:
    loc = [str(part) for part in err["loc"]]
    node = None
    if len(loc) >= 2 and loc[0] == "nodes":
        node = loc[1]
        # pydantic puts the union tag after the node id: nodes.<id>.<type>.<field>
        field = loc[3:] if len(loc) > 3 else loc[2:]
    else:
        field = loc
    where = ".".join(field)
    reason = err["msg"]
    if err["type"] == "union_tag_invalid":
        reason = f"unknown node type {err['input'].get('type')!r}" if isinstance(err["input"], dict) else reason
    elif err["type"] == "union_tag_not_found":
        reason = "node has no 'type'"
    return Problem(node, f"{where}: {reason}" if where else reason)
