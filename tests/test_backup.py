"""``hotline backup`` while a hotline runs, ``hotline restore`` into a fresh folder: the same work orders,
recordings (checksums verified), secrets and Redis data come back, and a hotline starts on them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from routing.keys import EVENTS_STREAM
from softphone.agi_peer import AsteriskPeer
from store.backup import BackupError, Sources, backup, restore
from store.db import connect
from store.models import Recording, WorkOrder
from tests.conftest import AUTH_TOKEN, free_port
from tests.test_cli_up import _assert_stopped, _retry

REPO = Path(__file__).resolve().parents[1]


def _env(data_dir: Path, port: int, agi_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(HOTLINE_DATA_DIR=str(data_dir), HOTLINE_WEB_PORT=str(port), HOTLINE_AGI_PORT=str(agi_port),
               HOTLINE_PUBLIC_URL=f"http://127.0.0.1:{port}", TWILIO_AUTH_TOKEN=AUTH_TOKEN, HOTLINE_WEB_WORKERS="1",
               HOTLINE_BUSINESS_OPENS="00:00", HOTLINE_BUSINESS_CLOSES="23:59:59")
    return env


def _hotline(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("hotline")), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def wait_up(proc: subprocess.Popen[bytes], port: int | str, seconds: float = 90) -> None:
    """Until ``hotline up`` answers on its web port (slow on a busy machine); its output if it never does."""
    def get() -> None:
        if proc.poll() is not None:
            raise AssertionError(f"hotline up exited: {proc.communicate()[0].decode()[-3000:]}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            pass

    try:
        _retry(get, seconds)
    except OSError:
        proc.send_signal(signal.SIGTERM)
        raise AssertionError(f"hotline up did not answer: {proc.communicate(timeout=30)[0].decode()[-3000:]}") from None


def _orders(data_dir: Path) -> dict[str, tuple[str, str, str]]:
    """work order number -> (recording ref, recording path, recording sha256), as the store holds them."""
    sql = connect(f"sqlite:///{data_dir / 'hotline.db'}")
    try:
        with sql() as db:
            rows = db.execute(select(WorkOrder.number, Recording.ref, Recording.path, Recording.sha256)
                              .join(Recording, Recording.ref == WorkOrder.recording_ref)).all()
    finally:
        sql.kw["bind"].dispose()
    return {number: (ref, path, digest) for number, ref, path, digest in rows}


def test_a_backup_made_while_the_hotline_runs_restores_into_a_fresh_folder(tmp_path: Path) -> None:
    port, agi_port = free_port(), free_port()
    var = tmp_path / "var"
    env = _env(var, port, agi_port)
    up = subprocess.Popen([str(Path(sys.executable).with_name("hotline")), "up"], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_up(up, port)
        for _ in range(3):  # complaints left by Asterisk callers: a recording and a work order each
            _retry(lambda: AsteriskPeer(["3", "2", "record:2", ""]).dial("127.0.0.1", agi_port), 60)
        redis_url = (var / "redis" / "url").read_text().strip()
        live = redis.Redis.from_url(redis_url)
        live.set("backup-probe", "kept")
        events = live.xlen(EVENTS_STREAM)
        assert events > 0
        before = _orders(var)
        assert len(before) == 3
        secrets_before = {name: (var / name).read_bytes() for name in ("secret_key", "card_secret")}
        made = _hotline("backup", str(tmp_path), env=env, cwd=tmp_path)
        assert made.returncode == 0, made.stdout + made.stderr
        live.set("after-backup", "not in it")
    finally:
        if up.returncode is None:
            up.send_signal(signal.SIGTERM)
            up.communicate(timeout=30)
    _assert_stopped(redis_url)
    archive = Path(re.search(r"backup written to (\S+)", made.stdout)[1])  # type: ignore[index]
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    assert "database" in made.stdout and "recordings" in made.stdout and "running: AOF rewritten" in made.stdout
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert {"hotline.db", "secrets/secret_key", "secrets/card_secret", "redis/dump.rdb"} <= set(names)
    assert any(n.startswith("redis/appendonlydir/") for n in names)

    fresh = tmp_path / "restored"
    restored_env = _env(fresh, free_port(), free_port())
    done = _hotline("restore", str(archive), env=restored_env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    after = _orders(fresh)
    assert after == before
    for _ref, path, digest in after.values():  # every recording back, byte for byte
        audio = fresh / "recordings" / path
        assert hashlib.sha256(audio.read_bytes()).hexdigest() == digest
        assert json.loads(audio.with_suffix(".json").read_text())["sha256"] == digest
        assert audio.stat().st_mode & 0o077 == 0
    assert {name: (fresh / name).read_bytes() for name in secrets_before} == secrets_before
    assert _hotline("restore", str(archive), env=restored_env, cwd=tmp_path).returncode == 1  # not over data

    # a hotline starts on the restored folder: its Redis has the data, its users are there (no new admin)
    second = subprocess.Popen([str(Path(sys.executable).with_name("hotline")), "up"], cwd=tmp_path,
                              env=restored_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_up(second, restored_env["HOTLINE_WEB_PORT"])
        back = redis.Redis.from_url((fresh / "redis" / "url").read_text().strip())
        assert back.get("backup-probe") == b"kept" and back.get("after-backup") is None
        assert back.xlen(EVENTS_STREAM) >= events  # the call events, as the records were written from them
    finally:
        if second.returncode is None:
            second.send_signal(signal.SIGTERM)
        output = second.communicate(timeout=30)[0].decode() if second.returncode is None else ""
    assert "no users yet" not in output


def test_what_the_backup_leaves_out_is_said(tmp_path: Path) -> None:
    """PostgreSQL and an external Redis are not in the file: the report says so and what to use instead."""
    (tmp_path / "var").mkdir()
    report = backup(tmp_path / "b.tar.gz", Sources(tmp_path / "var", "postgresql+psycopg://h@db.example/hotline",
                                                   "redis://redis.example:6379/0", ("HOTLINE_SECRET_KEY",)))
    left = "\n".join(report.left_out)
    assert "pg_dump" in left and "redis.example" in left and "HOTLINE_SECRET_KEY" in left
    assert (tmp_path / "b.tar.gz").stat().st_mode & 0o777 == 0o600


def test_a_damaged_backup_is_refused_before_anything_is_restored(tmp_path: Path) -> None:
    var = tmp_path / "var"
    (var / "recordings" / "complaints").mkdir(parents=True)
    (var / "recordings" / "complaints" / "a.wav").write_bytes(b"RIFF" + b"\0" * 100)
    (var / "card_secret").write_text("s" * 64)
    archive = backup(tmp_path / "b.tar.gz", Sources(var, f"sqlite:///{var / 'hotline.db'}", None)).archive
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w:gz") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.endswith("a.wav"):
                data = data[:-1] + b"X"
            out.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupError, match="does not match its SHA-256"):
        restore(damaged, tmp_path / "fresh", f"sqlite:///{tmp_path / 'fresh' / 'hotline.db'}")
    assert not (tmp_path / "fresh" / "recordings").exists()
    restored = restore(archive, tmp_path / "fresh", f"sqlite:///{tmp_path / 'fresh' / 'hotline.db'}")
    assert (tmp_path / "fresh" / "card_secret").read_text() == "s" * 64
    assert any("recordings" in line for line in restored.included)
