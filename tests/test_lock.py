"""The pinned installs: requirements.lock and requirements-test.lock must satisfy pyproject.toml, or the scripts install something
other than what the project declares (and CI tests)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.M)


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def _declared(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    if extra:
        requirements += project["project"]["optional-dependencies"][extra]
    return [Requirement(r) for r in requirements]


def _mismatches(lock: str, extra: str | None, pins: dict[str, str] | None = None) -> list[str]:
    pins = _pins(lock) if pins is None else pins
    problems = []
    for req in _declared(extra):
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{lock}: {req.name} is declared in pyproject.toml but not pinned")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{lock}: {req.name}=={version} is outside pyproject.toml's '{req.specifier}'")
        else:
            for wanted in req.extras:  # e.g. redis[hiredis]: the extra's packages must be pinned too
                if wanted == "hiredis" and "hiredis" not in pins:
                    problems.append(f"{lock}: {req.name}[{wanted}] without hiredis pinned")
    return problems


def test_run_lock_satisfies_pyproject() -> None:
    assert _mismatches("requirements.lock", None) == [], "run ./scripts/lock"


def test_test_lock_satisfies_pyproject_with_the_test_tools() -> None:
    assert _mismatches("requirements-test.lock", "test") == [], "run ./scripts/lock"


def test_both_locks_pin_the_same_versions() -> None:
    """What `up` runs is what the tests tested."""
    run, test = _pins("requirements.lock"), _pins("requirements-test.lock")
    assert {name: (v, test.get(name)) for name, v in run.items() if test.get(name) != v} == {}


def test_every_pin_has_a_hash() -> None:
    for lock in ("requirements.lock", "requirements-test.lock"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text())
        unhashed = [e.split()[0] for e in entries if "==" in e.split("\n")[0] and "--hash=sha256:" not in e]
        assert unhashed == [], f"{lock}: pins without hashes"


def test_the_checker_notices_a_disagreement() -> None:
    """A pin outside its range, or a missing one, is reported (the checks above can fail)."""
    pins = _pins("requirements.lock")
    pins["flask"] = "2.0.0"
    del pins["rq"]
    problems = _mismatches("requirements.lock", None, pins)
    assert len(problems) == 2
    assert "flask==2.0.0 is outside" in problems[0] + problems[1]
    assert any("rq is declared" in p for p in problems)
