"""The hotline side of the real-Asterisk tests and bench: its settings, and ``hotline agi`` + ``hotline router``
in processes of their own (as ``hotline up`` runs them), which a test may pause."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hotline.app import Hotline
from hotline.settings import Settings
from tests.asterisk_pbx import HOTLINE_AGI_SECRET, HOTLINE_AMI_SECRET, RealAsterisk, free_port

REPO = Path(__file__).resolve().parents[1]


def stack_settings(folder: Path, redis_url: str, pbx: RealAsterisk) -> Settings:
    return Settings(
        redis_url=redis_url, database_url=f"sqlite:///{folder / 'hotline.db'}", data_dir=folder / "var",
        agi_port=pbx.agi_port, business_opens="00:00", business_closes="23:59:59",
        calling_window_start="00:00", calling_window_end="23:59:59",
        # the return-visit dialer: the project's AMI user, customers answering on Local channels
        ami_port=pbx.ami_port, ami_secret=HOTLINE_AMI_SECRET, ami_channel="Local/{number}@test-customers",
        agi_secret=HOTLINE_AGI_SECRET,  # what RealAsterisk wrote into extensions.conf's [globals]
    )


def agi_environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "TWILIO_"))}
    env.update({
        "REDIS_URL": settings.redis_url or "", "DATABASE_URL": settings.sql_url,
        "HOTLINE_DATA_DIR": str(settings.data_dir), "HOTLINE_AGI_PORT": str(settings.agi_port),
        "HOTLINE_BUSINESS_OPENS": "00:00", "HOTLINE_BUSINESS_CLOSES": "23:59:59", **extra,
    })
    if settings.agi_secret:
        env["HOTLINE_AGI_SECRET"] = settings.agi_secret
    return env


QUEUES = {"general": {"offer_timeout": 4, "wrap_up": 2}, "loss": {"offer_timeout": 4, "wrap_up": 2},
          "complaint": {"offer_timeout": 4, "wrap_up": 2}}
"""Short rings and wrap-ups, so a test sees the whole cycle."""


class AgiProcess:
    """``hotline agi`` as Asterisk's FastAGI server (a process of its own, which a test may pause), and
    ``hotline router``, the reconciler that ends wrap-ups and offers."""

    def __init__(self, settings: Settings, log: Path, **env: str) -> None:
        """``env``: more settings for the processes (``HOTLINE_HOLD_MAX_WAIT="8"``)."""
        self.settings, self.log, self.env = settings, log, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.router: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        seen = self.log.stat().st_size if self.log.exists() else 0  # a restart: only what this start logs counts
        out = self.log.open("ab")
        env = agi_environment(self.settings, HOTLINE_QUEUES=json.dumps(QUEUES), **self.env)
        self.proc = subprocess.Popen([sys.executable, "-m", "hotline.cli", "agi"], env=env, stdout=out, stderr=out)
        self.router = subprocess.Popen([sys.executable, "-m", "hotline.cli", "router"], env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if f"FastAGI on 127.0.0.1:{self.settings.agi_port}".encode() in self.log.read_bytes()[seen:]:
                return  # listening (a probe connection would log a dropped call)
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            time.sleep(0.1)
        raise RuntimeError("hotline agi did not listen")

    def stop(self) -> None:
        for proc in (self.proc, self.router):
            if proc is not None:
                proc.kill()
                proc.wait()


@contextmanager
def fastagi_process(hotline: Hotline, redis_url: str, log: Path | None = None,
                    **extra_env: str) -> Iterator[tuple[int, int]]:
    """``hotline agi`` in a process of its own on the hotline's Redis, database and data folder, open all day,
    callers held when nobody works; yields (port, pid) once it listens. ``extra_env``: more settings."""
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": hotline.settings.sql_url,
           "HOTLINE_DATA_DIR": str(hotline.settings.data_dir), "HOTLINE_AGI_PORT": str(port),
           "HOTLINE_BUSINESS_OPENS": "00:00", "HOTLINE_BUSINESS_CLOSES": "23:59:59", "HOTLINE_UNSTAFFED_QUEUES": "hold",
           **extra_env}
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    try:
        server = subprocess.Popen([sys.executable, "-m", "hotline.cli", "agi"], env=env, cwd=REPO,
                                  stdout=out, stderr=out)
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                said = log.read_text()[-2000:] if log is not None else ""
                assert server.poll() is None, f"the FastAGI process died at start: {said}"
                assert time.monotonic() < deadline, "the FastAGI process did not start listening"
                time.sleep(0.05)
        yield port, server.pid
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
