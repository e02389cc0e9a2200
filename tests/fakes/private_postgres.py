"""A private PostgreSQL server (initdb + pg_ctl in a folder of its own) for tests and the day simulator.

It listens on a free loopback port, with its socket in its own folder, trust authentication and
``fsync=off`` (a throwaway database: speed over durability). ``stop`` and ``start`` keep the port and
the data, so a test or the simulator can take the database away for an outage and bring it back.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user (Debian's
package creates it), else as ``nobody``; its folder is made outside any root-only temp folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import psycopg

BIN_GLOB = "/usr/lib/postgresql/*/bin"
NEEDED = ("initdb", "pg_ctl", "postgres")
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed here."""


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb, pg_ctl and postgres, else the
    folder of ``pg_ctl`` on the PATH; None when the server is not installed."""
    found = [Path(p) for p in sorted(glob.glob(BIN_GLOB), key=_version, reverse=True)]
    on_path = shutil.which("pg_ctl")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    return next((d for d in found if all((d / name).is_file() for name in NEEDED)), None)


class PrivatePostgres:
    """One PostgreSQL server: ``start()``, ``url``, ``stop()`` (the outage), ``start()`` again, ``close()``."""

    def __init__(self, database: str = "hotline", user: str = "hotline", bin_dir: Path | None = None) -> None:
        found = bin_dir or postgres_bin_dir()
        if found is None:
            raise PostgresUnavailable(f"no initdb/pg_ctl/postgres under {BIN_GLOB} or on the PATH")
        self.bin_dir, self.database, self.user = found, database, user
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
        self._owner = _server_account()
        if self._owner is not None:
            os.chown(self.folder, self._owner.pw_uid, self._owner.pw_gid)
        self._initialised = False

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the database (TCP on loopback)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def start(self, timeout_s: float = 60) -> None:
        """Initialise the cluster on first use, then start the server and wait until it accepts connections."""
        if not self._initialised:
            self._initdb()
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", str(int(timeout_s)),
                  "start")
        if not self._initialised:
            with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.database}"')  # noqa: S608 - our own constant name
            self._initialised = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: clients are disconnected; ``immediate``: as if it crashed)."""
        if self.running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    @contextlib.contextmanager
    def outage(self, mode: str = "fast") -> Iterator[None]:
        """The database unreachable for the length of the ``with`` block."""
        self.stop(mode)
        try:
            yield
        finally:
            self.start()

    def close(self) -> None:
        """Stop the server and delete its folder."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _initdb(self) -> None:
        self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        settings = {**SERVER_SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self.folder}'"}
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={database} connect_timeout=5"

    def _run(self, program: str, *args: str) -> None:
        owner = self._owner
        # cwd: the server account may not be allowed into the caller's working folder.
        as_owner = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []} if owner else {}
        done = subprocess.run([str(self.bin_dir / program), *args], cwd=self.folder, capture_output=True, text=True,
                              check=False, **as_owner)  # type: ignore[call-overload]
        if done.returncode != 0:
            log_tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise subprocess.CalledProcessError(done.returncode, [program, *args],
                                                done.stdout, f"{done.stderr}\n{log_tail}")


def _server_account() -> pwd.struct_passwd | None:
    """Who runs the server: ourselves, unless we are root (which PostgreSQL refuses)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable("running as root with neither a postgres nor a nobody account to run the server")


def _version(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
