"""The rooms of the code base and the arrows allowed between them (docs/architecture.md): a runtime import
that breaks them fails here. Imports under ``if TYPE_CHECKING:`` are types only and do not count."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ALLOWED: dict[str, set[str]] = {
    # the product, from the pure core outwards
    "ivr": set(),
    # the Prometheus counters (prometheus-client only): every room that counts something imports it
    "metrics": set(),
    "routing": set(),
    "store": {"metrics"},
    "recordings": {"ivr"},
    "bank": {"ivr", "store"},
    "calls": {"ivr", "routing", "store", "recordings"},
    "complaints": {"ivr", "routing", "store", "recordings", "calls"},
    "reports": {"store", "complaints"},
    "quality": {"store"},
    "agi_scripts": {"ivr", "routing", "recordings", "calls", "metrics"},
    "webhooks": {"ivr", "routing", "recordings", "calls", "metrics"},
    "workers": {"ivr", "routing", "store", "recordings", "calls", "complaints", "reports", "quality", "metrics"},
    "admin": {"ivr", "routing", "store", "recordings", "calls", "complaints", "reports", "quality", "bank",
              "workers"},
    "softphone": set(),
    # the wiring: settings, the app factory, the CLI, serving; imports anything, imported by nothing
    "hotline": {"ivr", "routing", "store", "recordings", "bank", "calls", "complaints", "reports", "quality",
                "agi_scripts",
                "webhooks", "workers", "admin", "softphone", "simulate", "metrics"},
    # the day simulator: runs whole hotlines as processes (tests/ and bench/ may import anything)
    "simulate": {"ivr", "routing", "store", "recordings", "bank", "calls", "complaints", "workers", "softphone"},
}


def runtime_imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
                   for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def arrows() -> dict[tuple[str, str], list[str]]:
    """(from room, to room) -> the files and modules that make the arrow."""
    found: dict[tuple[str, str], list[str]] = {}
    for room in ALLOWED:
        for path in sorted((ROOT / room).rglob("*.py")):
            for module in runtime_imports(path):
                target = module.split(".")[0]
                if target in ALLOWED and target != room:
                    found.setdefault((room, target), []).append(f"{path.relative_to(ROOT)} imports {module}")
    return found


def test_every_room_exists() -> None:
    assert [room for room in ALLOWED if not (ROOT / room / "__init__.py").exists()] == []


def test_imports_follow_the_allowed_arrows() -> None:
    broken = [line for (room, target), lines in arrows().items() if target not in ALLOWED[room] for line in lines]
    assert broken == []


def test_the_allowed_arrows_have_no_cycle() -> None:
    """Checked on the table itself, so no future import can close a circle the table allows."""
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in ALLOWED[start])
    assert [room for room in ALLOWED if reaches(room, room, {room})] == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hotline.app import Hotline\n"
                      "import routing.router\nfrom ivr import engine\n")
    assert list(runtime_imports(module)) == ["typing", "routing.router", "ivr"]
