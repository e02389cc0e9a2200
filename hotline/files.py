"""Who may read the data folder: the hotline's own user only (the database, recordings, Redis's files,
the secret key), except what Asterisk must reach when it runs as another user in ``HOTLINE_ASTERISK_GROUP``.

``hotline up`` calls ``secure_data_dir`` first: the umask makes every file a process creates from then on
(and the FastAGI, router and worker processes it starts inherit it) 600 and every folder 700, and files an
older version left readable to all are closed once.
"""

from __future__ import annotations

import grp
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
SHARED_UMASK = 0o027
"""With an Asterisk group: new prompt files are readable by the group (through the setgid prompts folder)."""
SHARED_FOLDERS = ("recordings/prompts", "recordings/spool")
"""What Asterisk reads (prompts, played by path) and writes (complaint messages, ``RECORD FILE``)."""


def secure_data_dir(data_dir: Path, asterisk_group: str | None = None) -> None:
    os.umask(SHARED_UMASK if asterisk_group else PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True)
    shared = {(data_dir / name).resolve() for name in SHARED_FOLDERS} if asterisk_group else set()
    opened = _close_up(data_dir, shared)
    if opened:
        log.warning("data folder %s: %d files or folders were readable by other users; now only by this one",
                    data_dir, opened)
    if asterisk_group:
        _share_with(data_dir, grp.getgrnam(asterisk_group).gr_gid)


def _close_up(root: Path, shared: set[Path]) -> int:
    """Folders 700 and files 600 under ``root`` (symlinks are left alone); the number that were wider."""
    changed = 0
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if here.resolve() in shared:
            dirs[:] = []
            continue
        changed += _narrow(here, 0o700)
        for name in files:
            changed += _narrow(here / name, 0o600)
    return changed


def _narrow(path: Path, mode: int) -> int:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) & ~mode == 0:
        return 0
    path.chmod(stat.S_IMODE(info.st_mode) & mode)
    return 1


def _share_with(data_dir: Path, gid: int) -> None:
    """The group may pass through the data and recordings folders (not list them), read the prompts and
    write the spool; setgid folders give what is created in them the same group."""
    for folder in (data_dir, data_dir / "recordings"):
        folder.mkdir(exist_ok=True)
        os.chown(folder, -1, gid)
        folder.chmod(0o710)
    prompts, spool = data_dir / "recordings" / "prompts", data_dir / "recordings" / "spool"
    for folder in (prompts, spool):
        folder.mkdir(exist_ok=True)
    for top, _, files in os.walk(prompts):
        os.chown(top, -1, gid)
        Path(top).chmod(0o2750)
        for name in files:
            file = Path(top) / name
            if not file.is_symlink():
                os.chown(file, -1, gid)
                file.chmod(0o640)
    os.chown(spool, -1, gid)
    spool.chmod(0o2770)
