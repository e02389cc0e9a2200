"""What `./scripts/up` installs is enough to run: every module the hotline ships imports with only the packages of
requirements.lock (the run lock; the tests' venv has more, so a module needing a test-only package passes every
other test and fails on a user's machine: gunicorn's gevent worker importing `packaging` did)."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.test_lock import ROOT, _pins

# A fresh interpreter imports every module of the shipped packages, refusing third-party top-level modules that
# no distribution pinned in the run lock provides, and prints each shipped module that failed for it.
PROBE = r"""
import importlib, importlib.abc, importlib.metadata, pkgutil, re, sys
allowed = set(sys.argv[1].split(","))
ours = set(sys.argv[2].split(","))
providers = importlib.metadata.packages_distributions()
failed = set()

def canonicalize_name(name):  # PEP 503, as packaging.utils does (packaging itself must not be imported first)
    return re.sub(r"[-_.]+", "-", name).lower()

class RunLockOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if path is not None or top in sys.stdlib_module_names or top in ours or top not in providers:
            return None
        if not any(canonicalize_name(d) in allowed for d in providers[top]):
            raise ModuleNotFoundError(f"{name}: not in requirements.lock", name=name)
        return None

sys.meta_path.insert(0, RunLockOnly())
for package in sorted(ours):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + ".", onerror=lambda name: None):
        if info.name.endswith(("__main__", ".migrations.env")):
            continue  # run as programs (alembic's env.py needs alembic's context), not imported
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if "not in requirements.lock" in str(exc):  # an optional import that catches the refusal is fine
                failed.add(f"{info.name}: {exc}")
        except Exception:
            pass  # other failures are other tests' business
print("\n".join(sorted(failed)))
"""


def _shipped_packages() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]


def test_every_shipped_module_imports_with_only_the_run_lock() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(_pins("requirements.lock")), ",".join(_shipped_packages())],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "PYTHONPATH": str(ROOT)},
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert probe.stdout.strip() == "", "modules needing packages `./scripts/up` does not install:\n" + probe.stdout
