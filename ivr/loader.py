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
"""The menu schema nests 5 deep; YAML composers recurse, so a `[[[[...` document would otherwise end in a
RecursionError (pure Python) or a stack overflow (libyaml) instead of a refusal."""
MAX_YAML_NODES = 30_000
"""The default menu is 611 YAML nodes; a 1,200-node menu filling MAX_MENU_BYTES one key per line is ~24,000.
30,000 refuses no such menu and stops dense filler (`[1,1,...]` packs 130,000 into 256 KiB) before anything
is built from it; building costs ~6 us a node (bench/hostile_menus.py)."""
MAX_PROBLEMS = 50
"""Problems listed per refusal: a flood of broken nodes would otherwise give an error larger than the menu."""


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
        if len(problems) > MAX_PROBLEMS + 1:  # + 1: a capped list passed on again stays as it is
            more = len(problems) - MAX_PROBLEMS
            problems = [*problems[:MAX_PROBLEMS], Problem(None, f"and {more} more problems")]
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
    try:
        document = _checked_bytes(text)
        root = yaml.compose(document, Loader=_MenuLoader)
    except (MenuError, yaml.YAMLError):
        return lines
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if key.value == "nodes" and isinstance(value, yaml.MappingNode):
            for node_key, _ in value.value:
                lines[str(node_key.value)] = node_key.start_mark.line + 1
    return lines


def _load_yaml(text: str | bytes) -> Any:
    try:
        data = yaml.load(_checked_bytes(text), Loader=_MenuLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise MenuError([_yaml_problem(exc)]) from None
    if not isinstance(data, dict):
        raise MenuError([Problem(None, "a menu must be a YAML mapping")])
    return data


def _checked_bytes(text: str | bytes) -> bytes:
    """The document as UTF-8, once it passed every limit: nothing is built from it before that."""
    # A str of N characters is at least N bytes: the cheap check first.
    if len(text) > MAX_MENU_BYTES:
        raise MenuError([Problem(None, f"menu is larger than {MAX_MENU_BYTES // 1024} KiB")])
    try:
        document = text.encode() if isinstance(text, str) else text
        document.decode()
    except (UnicodeEncodeError, UnicodeDecodeError) as exc:
        at = "character" if isinstance(text, str) else "byte"
        raise MenuError([Problem(None, f"menu is not UTF-8 text ({at} {exc.start})")]) from None
    if len(document) > MAX_MENU_BYTES:
        raise MenuError([Problem(None, f"menu is larger than {MAX_MENU_BYTES // 1024} KiB")])
    try:
        _check_shape(document)
    except yaml.YAMLError as exc:
        raise MenuError([_yaml_problem(exc)]) from None
    return document


def _check_shape(document: bytes) -> None:
    """One flat pass over the parse events, before any node is built: libyaml's composer recurses
    (in C, unguarded), and aliases are how a few bytes become a billion nodes."""
    depth = nodes = 0
    parser = _Base(document)
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, yaml.AliasEvent):
                raise _Refused("aliases and anchors are not allowed in menus (no YAML bombs)", event.start_mark)
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > MAX_YAML_NODES:
                    raise _Refused(f"menu has more than {MAX_YAML_NODES} YAML nodes", event.start_mark)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise _Refused(f"menu nests deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        parser.dispose()


class _Refused(yaml.YAMLError):
    """Well-formed YAML that menus do not allow: aliases, tags, or past a depth or node limit."""

    def __init__(self, reason: str, mark: Any) -> None:
        super().__init__(reason)
        self.reason, self.problem_mark = reason, mark


def _yaml_problem(exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark else None
    if isinstance(exc, _Refused):
        return Problem(None, exc.reason, line)
    reason = str(getattr(exc, "problem", None) or getattr(exc, "context", None) or exc).strip()
    if reason == "exceeded maximum nesting depth":  # libyaml >= 0.2.5 scans ahead and stops at 1,000 levels
        return Problem(None, f"menu nests deeper than {MAX_YAML_DEPTH} levels", line)
    return Problem(None, f"not valid YAML: {reason}", line)


_Base: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
"""libyaml when installed: parses the default menu ~5x faster than pure Python."""


class _MenuLoader(_Base):  # type: ignore[misc]
    """A safe loader that also refuses unknown tags in words and duplicate mapping keys with their line.
    Aliases, depth and size were refused before by ``_check_shape``."""

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
    if "[key]" in field:  # a mapping key refused (a node id, a prompt's language): the reason names it
        field = field[:field.index("[key]") - 1]
    where = ".".join(field)
    reason = err["msg"]
    if err["type"] == "union_tag_invalid":
        reason = f"unknown node type {err['input'].get('type')!r}" if isinstance(err["input"], dict) else reason
    elif err["type"] == "union_tag_not_found":
        reason = "node has no 'type'"
    return Problem(node, f"{where}: {reason}" if where else reason)
