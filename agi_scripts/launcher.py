"""The plain-AGI launcher: Asterisk runs scripts from its agi-bin with its own ``python3`` and environment,
which know neither the hotline's virtual environment nor its settings. ``hotline agi-script install``
writes this small shell script there instead: it enters the hotline's folder (so ``.env`` and a relative
``HOTLINE_DATA_DIR`` mean what they mean for ``hotline up``) and runs the call with the hotline's Python."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

LAUNCHER_NAME = "hotline-agi"
PASSED_ON = ("REDIS_URL", "DATABASE_URL")
"""Besides every ``HOTLINE_*`` setting: the ones set where the command runs are written into the script."""


def launcher_text(project: Path, python: str = sys.executable, environ: dict[str, str] | None = None) -> str:
    environ = dict(os.environ if environ is None else environ)
    settings = {k: v for k, v in sorted(environ.items()) if k.startswith("HOTLINE_") or k in PASSED_ON}
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in settings.items())
    return (
        "#!/bin/sh\n"
        "# Written by `hotline agi-script install`: one hotline call over plain AGI, e.g.\n"
        f"#   exten => 95555,n,AGI({LAUNCHER_NAME}[,<menu>])\n"
        "# Run that command again after moving the hotline or changing its settings.\n"
        f"cd {shlex.quote(str(project))} || exit 1\n"
        f"{exports}"
        f"exec {shlex.quote(python)} -m hotline.plain_agi \"$@\"\n"
    )


def install_launcher(agi_bin: Path, project: Path) -> Path:
    """Writes the launcher into Asterisk's agi-bin (readable by its owner and group only: it may hold
    the database URL)."""
    agi_bin.mkdir(parents=True, exist_ok=True)
    target = agi_bin / LAUNCHER_NAME
    target.write_text(launcher_text(project))
    target.chmod(0o750)
    return target
