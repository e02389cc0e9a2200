"""Secrets generated once per installation and kept in the data folder (mode 600), shared by every process."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def installation_secret(data_dir: Path, name: str) -> str:
    """The secret in ``data_dir/name``, generated on first use. Two processes starting at once agree:
    each writes a draft and links it into place; the first link wins, the others read it."""
    path = data_dir / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{name}.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(48), encoding="ascii")
        draft.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text(encoding="ascii").strip()
