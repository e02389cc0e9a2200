"""Secrets generated once per installation and kept in the data folder (mode 600), shared by every process."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def installation_secret(data_dir: Path, name: str, nbytes: int = 48) -> str:
    """The secret in ``data_dir/name``, generated on first use (see ``made_installation_secret``)."""
    return made_installation_secret(data_dir, name, nbytes)[0]


def made_installation_secret(data_dir: Path, name: str, nbytes: int = 48) -> tuple[str, bool]:
    """The secret in ``data_dir/name`` (URL- and dialplan-safe characters), and whether this call made it.
    Two processes starting at once agree: each writes a draft and links it into place; the first link wins,
    the others read it."""
    path = data_dir / name
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{name}.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(nbytes), encoding="ascii")
        draft.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
            created = True
        draft.unlink()
    return path.read_text(encoding="ascii").strip(), created
