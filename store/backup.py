"""Backing up and restoring the embedded defaults of a data folder: the SQLite database (online, with SQLite's
backup API), the recordings with their metadata files, the installation secrets, and the hotline's own Redis
(its append-only file after a rewrite, and a fresh RDB snapshot).

One ``.tar.gz``, created 600 (it holds the secrets that make the data usable), with a manifest giving every
file's SHA-256; a restore checks each one before anything is put in place. A PostgreSQL database or an external
Redis is not in it: ``left_out`` says so, and what to use instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import redis
from sqlalchemy.engine import make_url

from store.redis_server import running_local_redis

SECRETS = ("secret_key", "card_secret", "agi_secret")
"""Generated into the data folder (``store.secret_files``): without them the cookies, the card hashes (PIN
failure counts, demo bank) and the dialplan's FastAGI secret no longer match the data."""
MANIFEST = "manifest.json"
FORMAT = 1
REDIS_WAIT_S = 60.0


class BackupError(RuntimeError):
    """The backup or restore could not be made (nothing half-done is left in place)."""


@dataclass
class Report:
    archive: Path
    included: list[str] = field(default_factory=list)
    """What the archive holds, one line per part."""
    left_out: list[str] = field(default_factory=list)
    """What it does not hold, and how to keep it instead."""


@dataclass(frozen=True)
class Sources:
    """Where a hotline's data is: its settings, reduced to what a backup needs."""

    data_dir: Path
    sql_url: str
    redis_url: str | None
    """``REDIS_URL`` as configured; None (or the URL of the hotline's own redis-server): the own one."""
    secrets_in_environment: tuple[str, ...] = ()
    """Secrets set in the environment (``HOTLINE_SECRET_KEY``...) rather than generated into the folder."""


def sqlite_path(sql_url: str) -> Path | None:
    url = make_url(sql_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def backup(target: Path, sources: Sources) -> Report:
    """Write the backup to ``target`` (a file, or a folder to put a dated file in); returns what it holds."""
    if target.is_dir():
        target = target / f"hotline-backup-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.tar.gz"
    if target.exists():
        raise BackupError(f"{target} exists: give a new file name or a folder")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a folder: create it first")
    report = Report(target)
    with tempfile.TemporaryDirectory(prefix="hotline-backup-") as scratch:
        staged = Path(scratch)  # mode 700: mkdtemp
        files: dict[str, Path] = {}
        _database(sources, staged, files, report)
        _recordings(sources.data_dir / "recordings", files, report)
        _secrets(sources, files, report)
        _redis(sources, staged, files, report)
        _write_archive(target, files, report)
    return report


def _database(sources: Sources, staged: Path, files: dict[str, Path], report: Report) -> None:
    path = sqlite_path(sources.sql_url)
    if path is None:
        report.left_out.append(f"database {make_url(sources.sql_url).render_as_string()}: not SQLite; back it "
                               "up with its own tools (PostgreSQL: pg_dump -Fc, restored with pg_restore)")
        return
    if not path.exists():
        report.left_out.append(f"database {path}: no such file")
        return
    copy = staged / "hotline.db"
    # The backup API copies a consistent snapshot while the hotline goes on writing (WAL: readers block nobody).
    with _closing(sqlite3.connect(path, timeout=30)) as source, \
            _closing(sqlite3.connect(copy)) as dest:
        source.backup(dest)  # in one step: a read snapshot, never restarted by the hotline's writes
    files["hotline.db"] = copy
    report.included.append(f"database {path} (SQLite online backup)")


def _recordings(root: Path, files: dict[str, Path], report: Report) -> None:
    count = 0
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
            files[f"recordings/{path.relative_to(root).as_posix()}"] = path
            count += 1
    report.included.append(f"recordings {root}: {count} files (audio, metadata with SHA-256, prompts)")


def _secrets(sources: Sources, files: dict[str, Path], report: Report) -> None:
    found = [name for name in SECRETS if (sources.data_dir / name).is_file()]
    for name in found:
        files[f"secrets/{name}"] = sources.data_dir / name
    report.included.append(f"secrets: {', '.join(found) or 'none generated yet'}")
    for name in sources.secrets_in_environment:
        report.left_out.append(f"{name}: set in the environment, keep it with the hotline's configuration")


def _redis(sources: Sources, staged: Path, files: dict[str, Path], report: Report) -> None:
    folder = sources.data_dir / "redis"
    own = running_local_redis(sources.data_dir)
    if sources.redis_url and sources.redis_url != own:
        report.left_out.append(f"Redis {sources.redis_url.split('@')[-1]}: not the hotline's own; rely on its own "
                               "persistence (AOF/RDB copies, replicas)")
        return
    if own:
        _flush_redis(redis.Redis.from_url(own, socket_timeout=30))
    dest = staged / "redis"
    copied = _copy_redis_files(folder, dest)
    for path in sorted(dest.rglob("*")):
        if path.is_file():
            files[f"redis/{path.relative_to(dest).as_posix()}"] = path
    state = "running: AOF rewritten and RDB saved first" if own else "stopped: its files as they are"
    report.included.append(f"Redis {folder} ({state}): {', '.join(copied) or 'no data files'}")


def _flush_redis(client: redis.Redis) -> None:
    """A fresh RDB snapshot and a rewritten AOF, each finished before its files are copied."""
    _run_once(client.bgsave, "BGSAVE")
    _wait(client, lambda info: not info["rdb_bgsave_in_progress"] and info["rdb_last_bgsave_status"] == "ok",
          "BGSAVE")
    _run_once(client.bgrewriteaof, "BGREWRITEAOF")
    _wait(client, lambda info: not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]
          and info["aof_last_bgrewrite_status"] == "ok", "BGREWRITEAOF")


def _run_once(start: Callable[[], object], command: str) -> None:
    deadline = time.monotonic() + REDIS_WAIT_S
    while True:
        try:
            start()
            return
        except redis.ResponseError as exc:  # another save or rewrite in progress: wait for it, then ours
            busy = "in progress" in str(exc) or "child process is active" in str(exc)  # Redis's own save
            if not busy or time.monotonic() > deadline:
                raise BackupError(f"Redis {command}: {exc}") from exc
            time.sleep(0.1)


def _wait(client: redis.Redis, done: Callable[[dict[str, Any]], bool], what: str) -> None:
    deadline = time.monotonic() + REDIS_WAIT_S
    while not done(client.info("persistence")):
        if time.monotonic() > deadline:
            raise BackupError(f"Redis {what} did not finish in {REDIS_WAIT_S:.0f} s")
        time.sleep(0.05)


def _copy_redis_files(folder: Path, dest: Path) -> list[str]:
    """The RDB and the multi-part AOF (the manifest and the files it names, read in one pass: the rewrite has
    finished, so only the last incremental file grows, and Redis loads a file cut mid-command up to the cut)."""
    dest.mkdir()
    copied: list[str] = []
    if (folder / "dump.rdb").is_file():
        shutil.copy2(folder / "dump.rdb", dest / "dump.rdb")
        copied.append("dump.rdb")
    aof = folder / "appendonlydir"
    manifests = sorted(aof.glob("*.manifest")) if aof.is_dir() else []
    if manifests:
        (dest / "appendonlydir").mkdir()
        text = manifests[0].read_text()
        names = [line.split()[1] for line in text.splitlines() if line.startswith("file ")]
        for name in names:
            shutil.copy2(aof / name, dest / "appendonlydir" / name)
        (dest / "appendonlydir" / manifests[0].name).write_text(text)
        copied.append(f"appendonlydir ({len(names)} files)")
    return copied


def _write_archive(target: Path, files: dict[str, Path], report: Report) -> None:
    manifest = {"format": FORMAT, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "included": report.included, "left_out": report.left_out, "files": {}}
    draft = target.with_name(f".{target.name}.{os.getpid()}.part")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, path in files.items():
                info = tar.gettarinfo(str(path), arcname=name)
                info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
                with path.open("rb") as stream:  # a growing file (the AOF's tail) is cut at the size read here
                    hashing = _Hashing(stream)
                    tar.addfile(info, hashing)
                manifest["files"][name] = hashing.digest.hexdigest()  # type: ignore[index]
            body = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(body))
            raw.flush()
            os.fsync(raw.fileno())
        os.rename(draft, target)
    except BaseException:
        draft.unlink(missing_ok=True)
        raise


def read_manifest(archive: Path) -> dict[str, object]:
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile(MANIFEST)
        if member is None:
            raise BackupError(f"{archive}: no {MANIFEST}, not a hotline backup")
        manifest: dict[str, object] = json.loads(member.read())
    return manifest


def restore(archive: Path, data_dir: Path, sql_url: str, force: bool = False) -> Report:
    """Put the backup's files into ``data_dir`` (and the SQLite file of ``sql_url``); every file is checked
    against the manifest first. Refused where a hotline's data already is, unless ``force``."""
    report = Report(archive)
    manifest = read_manifest(archive)
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: backup format {manifest.get('format')}, this hotline reads {FORMAT}")
    digests: dict[str, str] = manifest["files"]  # type: ignore[assignment]
    db_path = sqlite_path(sql_url)
    existing = [p for p in (db_path, *(data_dir / n for n in (*SECRETS, "redis", "recordings")))
                if p is not None and p.exists()]
    if existing and not force:
        raise BackupError(f"{data_dir} already holds a hotline's data ({', '.join(str(p) for p in existing)}): "
                          "restore into an empty folder, or give --force to replace it (stop the hotline first)")
    with tempfile.TemporaryDirectory(prefix="hotline-restore-", dir=_parent(data_dir)) as scratch:
        staged = Path(scratch)
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                if member.name == MANIFEST:
                    continue
                if member.name not in digests or not member.isfile():
                    raise BackupError(f"{archive}: {member.name} is not in the manifest")
                source = tar.extractfile(member)
                assert source is not None
                if _write_private(staged / _safe(member.name), _Hashing(source)) != digests[member.name]:
                    raise BackupError(f"{archive}: {member.name} does not match its SHA-256: the backup is damaged")
        missing = set(digests) - {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
        if missing:
            raise BackupError(f"{archive}: missing {', '.join(sorted(missing))}")
        _place(staged, data_dir, db_path, report)
    report.left_out.extend(str(line) for line in manifest.get("left_out", []))  # type: ignore[attr-defined]
    return report


def _place(staged: Path, data_dir: Path, db_path: Path | None, report: Report) -> None:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (staged / "hotline.db").exists():
        if db_path is None:
            report.left_out.append("the SQLite database in the backup: DATABASE_URL here is not SQLite")
        else:
            db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            for stale in (db_path.with_name(db_path.name + "-wal"), db_path.with_name(db_path.name + "-shm")):
                stale.unlink(missing_ok=True)
            os.replace(staged / "hotline.db", db_path)
            report.included.append(f"database {db_path}")
    for part in ("recordings", "redis"):
        if (staged / part).exists():
            _replace_folder(staged / part, data_dir / part)
            count = sum(1 for p in (data_dir / part).rglob("*") if p.is_file())
            report.included.append(f"{part} {data_dir / part}: {count} files")
    for name in SECRETS:
        if (staged / "secrets" / name).exists():
            os.replace(staged / "secrets" / name, data_dir / name)
            report.included.append(f"secret {name}")


def _replace_folder(source: Path, target: Path) -> None:
    if target.exists():
        old = target.with_name(f".{target.name}.replaced")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        shutil.rmtree(old)
    os.replace(source, target)


def _safe(name: str) -> str:
    """A member name that stays inside the folder it is extracted to."""
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or not parts:
        raise BackupError(f"refusing archive member {name!r}")
    return name


def _write_private(path: Path, source: _Hashing) -> str:
    """Copy ``source`` into a new 600 file; returns its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out)
    return source.digest.hexdigest()


class _Hashing:
    """A file read through, hashing what it reads (archives of recordings and AOFs are streamed, not held)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.digest = stream, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.digest.update(data)
        return data


def _parent(data_dir: Path) -> Path:
    """Staged next to the data folder: the final moves are renames on one file system."""
    parent = data_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


@contextmanager
def _closing(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield conn
    finally:
        conn.close()
