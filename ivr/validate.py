"""Graph and content rules a menu must pass before it can be published."""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator

from ivr.loader import MenuError, Problem
from ivr.model import ActionNode, InputNode, LanguageNode, Menu, MenuNode, NodeBase, QueueNode, SayNode
from ivr.services import KNOWN_SKILLS, SERVICE_SIGNATURES

_NEEDS_PROMPT = ("menu", "input", "record", "survey", "say")


def validate_menu(
    menu: Menu,
    services: Iterable[str] = SERVICE_SIGNATURES,
    skills: Iterable[str] = KNOWN_SKILLS,
) -> None:
    """Raise ``MenuError`` listing every problem (node and reason); return quietly when valid."""
    problems = find_problems(menu, set(services), set(skills))
    if problems:
        raise MenuError(problems)


def find_problems(menu: Menu, services: set[str], skills: set[str]) -> list[Problem]:
    """All problems in ``menu``, in node order."""
    problems = list(_targets(menu))
    problems += _prompts(menu)
    problems += _node_rules(menu, services, skills)
    if not any(p.reason.startswith("unknown target") for p in problems):
        problems += _unreachable(menu)
        problems += _silent_loops(menu)
    return problems


def edges_of(menu: Menu, node: NodeBase) -> dict[str, str]:
    """Where a node can lead, including the menu's global keys and default fallback."""
    out = dict(node.edges())
    if isinstance(node, MenuNode):
        out.update({f"key {k}": t for k, t in menu.options_of(node).items()})
    fallback = menu.fallback_of(node)
    if fallback:
        out.setdefault("fallback", fallback)
    return out


def _targets(menu: Menu) -> Iterator[Problem]:
    if menu.start not in menu.nodes:
        yield Problem(None, f"unknown target '{menu.start}' for start")
    for key, target in menu.global_keys.items():
        if target not in menu.nodes:
            yield Problem(None, f"unknown target '{target}' for global key {key}")
    for node_id, node in menu.nodes.items():
        for label, target in node.edges().items():
            if target not in menu.nodes:
                yield Problem(node_id, f"unknown target '{target}' for {label}")
    if menu.defaults.fallback and menu.defaults.fallback not in menu.nodes:
        yield Problem(None, f"unknown target '{menu.defaults.fallback}' for defaults.fallback")


def _prompts(menu: Menu) -> Iterator[Problem]:
    for name in ("invalid_prompt", "no_input_prompt"):
        yield from _check_prompt(menu, None, f"defaults.{name}", getattr(menu.defaults, name))
    for var, names in menu.labels.items():
        for value, prompt in names.items():
            yield from _check_prompt(menu, None, f"labels.{var}.{value}", prompt)
    for node_id, node in menu.nodes.items():
        if node.prompt is None and getattr(node, "type", "") in _NEEDS_PROMPT:
            yield Problem(node_id, "prompt is missing")
        yield from _check_prompt(menu, node_id, "prompt", node.prompt)
        yield from _check_prompt(menu, node_id, "invalid_prompt", getattr(node, "invalid_prompt", None))


def _check_prompt(menu: Menu, node: str | None, field: str, prompt: dict[str, str] | None) -> Iterator[Problem]:
    if prompt is None:
        return
    for lang in menu.languages:
        if not prompt.get(lang, "").strip():
            yield Problem(node, f"{field} has no text for language '{lang}'")
    for lang in prompt.keys() - set(menu.languages):
        yield Problem(node, f"{field} is in language '{lang}', which the menu does not declare")
    for lang, text in prompt.items():
        reason = _template_problem(menu, text)
        if reason:
            yield Problem(node, f"{field} [{lang}]: {reason}")


def _template_problem(menu: Menu, text: str) -> str | None:
    try:
        fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        return f"bad placeholder: {exc}"
    for name, spec in fields:
        if not name.isidentifier():
            return f"bad placeholder '{{{name}}}'"
        if spec not in ("", "digits", "label"):
            return f"placeholder '{{{name}:{spec}}}' has an unknown format (use digits or label)"
        if spec == "label" and name not in menu.labels:
            return f"placeholder '{{{name}:label}}' has no entry in labels"
    return None


def _node_rules(menu: Menu, services: set[str], skills: set[str]) -> Iterator[Problem]:
    for node_id, node in menu.nodes.items():
        if isinstance(node, ActionNode) and node.service not in services:
            yield Problem(node_id, f"unknown service '{node.service}'")
        if isinstance(node, QueueNode):
            for skill in node.skills:
                if skill not in skills:
                    yield Problem(node_id, f"unknown skill '{skill}'")
        if isinstance(node, LanguageNode) and node.language and node.language not in menu.languages:
            yield Problem(node_id, f"language '{node.language}' is not declared by the menu")
        if isinstance(node, InputNode):
            yield from _input_rules(menu, node_id, node)
        if isinstance(node, MenuNode):
            for key in node.values.keys() - node.options.keys():
                yield Problem(node_id, f"values has key {key}, which is not an option")
        if bool(node.max_visits) != bool(node.on_max_visits):
            yield Problem(node_id, "max_visits and on_max_visits go together")


def _input_rules(menu: Menu, node_id: str, node: InputNode) -> Iterator[Problem]:
    if node.min_digits > node.max_digits:
        yield Problem(node_id, "min_digits is larger than max_digits")
    if node.sensitive:
        # Sensitive digits are never stored: they must be used by the very next action.
        following = menu.nodes.get(node.next)
        if not isinstance(following, ActionNode) or node.store not in following.args:
            yield Problem(node_id, f"sensitive input must lead straight to an action that uses '{node.store}'")


def _unreachable(menu: Menu) -> Iterator[Problem]:
    seen = {menu.start}
    todo = [menu.start]
    while todo:
        for target in edges_of(menu, menu.nodes[todo.pop()]).values():
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for node_id in menu.nodes:
        if node_id not in seen:
            yield Problem(node_id, f"unreachable from start node '{menu.start}'")


def _silent_loops(menu: Menu) -> Iterator[Problem]:
    """Cycles made only of nodes that never wait for the caller would spin forever."""
    silent = [nid for nid, node in menu.nodes.items() if not node.waits_for_caller()]  # document order
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    reported: set[str] = set()

    def visit(nid: str, trail: list[str]) -> Iterator[Problem]:
        state[nid] = 1
        for target in _auto_edges(menu.nodes[nid]):
            if target not in silent:
                continue
            if state.get(target) == 1 and target not in reported:
                cycle = trail[trail.index(target):] + [target]
                reported.add(target)
                yield Problem(target, f"loop without caller input: {' -> '.join(cycle)}")
            elif target not in state:
                yield from visit(target, trail + [target])
        state[nid] = 2

    for nid in silent:
        if nid not in state:
            yield from visit(nid, [nid])


def _auto_edges(node: NodeBase) -> list[str]:
    if isinstance(node, SayNode | LanguageNode):
        return [node.next]
    if isinstance(node, ActionNode):
        return list(node.results.values())
    return []
