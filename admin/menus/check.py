"""Checking a draft the way the engine will: its own parser and validator, each problem tied to a line,
and the graph of nodes and keys a person can read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ivr.loader import MenuError, Problem, node_lines, parse_menu
from ivr.model import Menu, NodeBase
from ivr.services import KNOWN_SKILLS, SERVICE_SIGNATURES
from ivr.validate import edges_of, find_problems

PROMPT_WORDS = 6
"""How much of a prompt the graph shows under a node."""
_QUOTED = re.compile(r"'([^']+)'")
_FIELD = re.compile(r"^([^:\s]+):")
LABEL_CHARS = 32


@dataclass(frozen=True)
class Checked:
    """A draft as the engine sees it: the menu when it parses, and every problem (none: publishable)."""

    menu: Menu | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.menu is not None and not self.problems


def check(source: str) -> Checked:
    """Parse and validate ``source``; every problem carries the line it is about when one can be found."""
    try:
        menu = parse_menu(source)
    except MenuError as exc:
        return Checked(None, _with_lines(source, exc.problems))
    return Checked(menu, _with_lines(source, find_problems(menu, set(SERVICE_SIGNATURES), set(KNOWN_SKILLS))))


def graph(menu: Menu) -> dict[str, list[dict[str, str]]]:
    """Nodes (id, type, label) and edges (source, target, label) for the page's graph."""
    nodes = [{"id": node_id, "type": _type(node), "label": _label(menu, node_id)}
             for node_id, node in menu.nodes.items()]
    edges = [{"source": node_id, "target": target, "label": label, "kind": _kind(label, node)}
             for node_id, node in menu.nodes.items()
             for label, target in edges_of(menu, node).items() if target in menu.nodes]
    return {"nodes": nodes, "edges": edges}


def _kind(label: str, node: NodeBase) -> str:
    """``own`` for what the node says; ``global`` (a global key) and ``fallback`` (the menu's default)
    for what every node inherits, which the page draws faintly."""
    if label in node.edges():
        return "own"
    return "fallback" if label == "fallback" else "global"


def _label(menu: Menu, node_id: str) -> str:
    node = menu.nodes[node_id]
    text = (node.prompt or {}).get(menu.default_language, "")
    words = text.split()
    shown = " ".join(words[:PROMPT_WORDS])
    if len(shown) > LABEL_CHARS:  # Chinese has no spaces between words: cut by characters too
        shown = shown[:LABEL_CHARS]
    if shown != text:
        shown += "…"
    return f"{node_id}\n{_type(node)}" + (f"\n{shown}" if shown else "")


def _type(node: NodeBase) -> str:
    return str(getattr(node, "type", ""))


def _with_lines(source: str, problems: list[Problem]) -> list[Problem]:
    if all(p.line for p in problems):
        return problems  # nothing to look up: spare a second YAML parse
    starts = node_lines(source)
    lines = source.splitlines()
    return [p if p.line else Problem(p.node, p.reason, _line_of(p, starts, lines)) for p in problems]


def _line_of(problem: Problem, starts: dict[str, int], lines: list[str]) -> int | None:
    """The node's line, or better the line inside the node that names what the reason quotes
    (the option pointing at a node that does not exist, the unknown service...)."""
    if problem.node is None or problem.node not in starts:
        return None
    first = starts[problem.node]
    after = sorted(line for line in starts.values() if line > first)
    last = after[0] - 1 if after else len(lines)
    block = range(first + 1, last + 1)
    for quoted in _QUOTED.findall(problem.reason):  # a value: "unknown target 'nowhere' for key 4"
        for number in block:
            if re.search(rf"[:\-\[,\s]\s*['\"]?{re.escape(quoted)}['\"]?\s*(,|\]|$|#)", lines[number - 1]):
                return number
    named = _FIELD.match(problem.reason)  # a field: "options.x: String should match pattern ..."
    for key in reversed(named.group(1).split(".") if named else []):
        for number in block:
            if re.match(rf"\s*['\"]?{re.escape(key)}['\"]?\s*:", lines[number - 1]):
                return number
    return first
