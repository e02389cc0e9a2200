"""The pinned installs: requirements.lock and requirements-test.lock must satisfy pyproject.toml, or the scripts install something
other than what the project declares (and CI tests)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

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


KNOWN_FIXED = {
    # package: (first fixed version, the advisories it fixes). The floor in pyproject.toml must be at or above it
    # for a direct dependency (pip may otherwise keep an older install), and every lock must pin at or above it.
    "requests": ("2.32.4", "CVE-2024-35195 (fixed in 2.32.0), CVE-2024-47081 (.netrc credential leak)"),
    "gunicorn": ("22.0.0", "CVE-2024-1135, CVE-2024-6827 (request smuggling)"),
    "flask": ("2.3.2", "CVE-2023-30861 (session cookie cached by proxies)"),
    "werkzeug": ("3.0.6", "CVE-2024-34069 (debugger), CVE-2024-49766, CVE-2024-49767 (multipart exhaustion)"),
    "jinja2": ("3.1.6", "CVE-2024-56201, CVE-2024-56326, CVE-2025-27516 (sandbox escapes)"),
    "urllib3": ("2.5.0", "CVE-2024-37891, CVE-2025-50181, CVE-2025-50182 (redirect handling)"),
    "idna": ("3.7", "CVE-2024-3651 (quadratic decode)"),
}


def _floor(req: Requirement) -> Version | None:
    """The lowest version ``req`` admits, as far as its lower bounds say (None: no lower bound)."""
    bounds = [Version(spec.version) for spec in req.specifier if spec.operator in (">=", ">", "==", "~=", "===")]
    return max(bounds, default=None)


def test_every_dependency_floor_is_at_or_above_its_known_fixed_version() -> None:
    too_low = []
    for req in {str(r): r for r in _declared("test") + _declared("postgres")}.values():
        fixed = KNOWN_FIXED.get(canonicalize_name(req.name))
        if fixed is None:
            continue
        floor = _floor(req)
        if floor is None or floor < Version(fixed[0]):
            too_low.append(f"pyproject.toml: {req} admits versions before {fixed[0]}: {fixed[1]}")
    assert too_low == [], "raise the floor in pyproject.toml (and run ./scripts/lock)"


def test_every_lock_pins_at_or_above_the_known_fixed_versions() -> None:
    too_low = [f"{lock}: {name}=={pin} is before {KNOWN_FIXED[name][0]}: {KNOWN_FIXED[name][1]}"
               for lock in ("requirements.lock", "requirements-test.lock")
               for name, pin in _pins(lock).items()
               if name in KNOWN_FIXED and Version(pin) < Version(KNOWN_FIXED[name][0])]
    assert too_low == [], "run ./scripts/lock"
