"""The hotline under test, started as a user starts it (``hotline up``), and the faults done to it."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from simulate.phones import SIP_DOMAIN
from simulate.twilio_cloud import ACCOUNT_SID, HOTLINE_NUMBER
from store.redis_server import start_local_redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Hotline:
    """A running ``hotline up`` and what a test harness needs to reach and hurt it."""

    proc: subprocess.Popen[bytes]
    folder: Path
    web_url: str
    agi_port: int
    auth_token: str
    api_token: str
    database_url: str | None
    log_path: Path
    db_proxy: TcpProxy | None = None
    direct_database_url: str | None = None
    """The database itself, not through the proxy the outage cuts: for the checks, also after the stop."""
    agi_secret: str = ""
    """The FastAGI shared secret the simulated Asterisk passes (``HOTLINE_AGI_SECRET``)."""

    @property
    def data_dir(self) -> Path:
        return self.folder / "var"

    @property
    def redis_url(self) -> str:
        return (self.data_dir / "redis" / "url").read_text().strip()

    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'hotline.db'}"

    @property
    def check_url(self) -> str:
        return self.direct_database_url or self.sql_url

    # -- processes ---------------------------------------------------------------------------

    def processes(self) -> dict[str, list[int]]:
        """Live pids by role: master (gunicorn's arbiter), web, agi, router, worker, redis."""
        roles: dict[str, list[int]] = {"master": [self.proc.pid]}
        for child in _children(self.proc.pid):
            argv = _argv(child)
            if b"hotline.cli" in argv:
                command = argv[argv.index(b"hotline.cli") + 1].decode()
                roles.setdefault("web" if command == "up" else command, []).append(child)  # gunicorn's forks
        try:
            roles["redis"] = [int((self.data_dir / "redis" / "redis.pid").read_text())]
        except (FileNotFoundError, ValueError):
            pass
        return roles

    def api(self, method: str, path: str, body: object | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.web_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.api_token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read() or b"null")

    # -- faults --------------------------------------------------------------------------------

    def restart_redis(self, down_s: float = 0.0) -> None:
        """Stop the hotline's redis-server (it writes its append-only file) and start it again, same port."""
        pid = int((self.data_dir / "redis" / "redis.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        _wait_gone(pid)
        time.sleep(down_s)
        start_local_redis((self.data_dir / "redis").resolve(), urlsplit(self.redis_url).port or 6379)

    def kill_one(self, role: str, sig: int = signal.SIGKILL) -> int:
        pid = self.processes()[role][0]
        os.kill(pid, sig)
        return pid

    @contextmanager
    def database_down(self) -> Iterator[None]:
        """The database unreachable: PostgreSQL's connections cut at the proxy (new ones refused); SQLite
        locked by another writer holding ``BEGIN EXCLUSIVE``, as a stuck backup or batch job would."""
        if self.db_proxy is not None:
            with self.db_proxy.cut():
                yield
            return
        db = sqlite3.connect(self.data_dir / "hotline.db", timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN EXCLUSIVE")  # "database is locked" when the hotline kept writing for 30 s
            try:
                yield
            finally:
                db.execute("ROLLBACK")
        finally:
            db.close()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.db_proxy is not None:
            self.db_proxy.close()
        return self.log_path.read_text(errors="replace")


def start_hotline(folder: Path, scale: float, port: int, auth_token: str, twilio_api_base: str,
                  database_url: str | None = None, web_workers: int = 2, rq_workers: int = 2) -> Hotline:
    """``hotline up`` in ``folder`` with its own Redis and SQLite (or ``database_url`` behind a cuttable
    proxy), Twilio's REST API at ``twilio_api_base`` and every timer of the day scaled by ``scale``."""
    folder.mkdir(parents=True, exist_ok=True)
    agi_port, api_token, agi_secret = free_port(), secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    proxy, direct = None, database_url
    if database_url:
        proxy = TcpProxy(database_url)
        database_url = proxy.url
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")
           and not k.startswith(("HOTLINE_", "TWILIO_"))}
    env.update(_environment(folder, port, agi_port, auth_token, api_token, scale, web_workers, rq_workers))
    env["TWILIO_API_BASE"] = twilio_api_base
    env["HOTLINE_AGI_SECRET"] = agi_secret
    if database_url:
        env["DATABASE_URL"] = database_url
    log_path = folder / "hotline-up.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hotline.cli", "up"], cwd=folder, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    hotline = Hotline(proc, folder, f"http://127.0.0.1:{port}", agi_port, auth_token, api_token, database_url,
                      log_path, proxy, direct, agi_secret)
    _wait_for(hotline)
    return hotline


def _environment(folder: Path, port: int, agi_port: int, auth_token: str, api_token: str, scale: float,
                 web_workers: int, rq_workers: int) -> dict[str, str]:
    def scaled(day_s: float, least: float = 0.2) -> str:
        return f"{max(least, day_s / scale):.3f}"

    queue = {"lower_level_after": scaled(30), "overflow_after": scaled(90), "callback_after": scaled(300),
             "offer_timeout": scaled(20, 1.0), "wrap_up": scaled(30)}
    queues = {skill: {k: float(v) for k, v in queue.items()} for skill in ("inquiry", "complaint", "general")}
    queues["loss"] = {**queues["inquiry"], "min_level": 5, "lower_level_after": float(scaled(20)),
                      "overflow_after": float(scaled(45)), "callback_after": 0.0}
    queues["general"]["overflow_after"] = 0.0
    return {
        "HOTLINE_DATA_DIR": str(folder / "var"), "HOTLINE_WEB_PORT": str(port), "HOTLINE_AGI_PORT": str(agi_port),
        "HOTLINE_PUBLIC_URL": f"http://127.0.0.1:{port}", "HOTLINE_WEB_WORKERS": str(web_workers),
        "HOTLINE_WORKERS": str(rq_workers), "HOTLINE_API_TOKEN": api_token,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": auth_token,
        "HOTLINE_TWILIO_NUMBER": HOTLINE_NUMBER, "HOTLINE_TWILIO_SIP_DOMAIN": SIP_DOMAIN,
        # open round the clock, so the path a caller takes does not depend on when the run happens
        "HOTLINE_BUSINESS_OPENS": "00:00", "HOTLINE_BUSINESS_CLOSES": "23:59:59",
        "HOTLINE_CALLING_WINDOW_START": "00:00", "HOTLINE_CALLING_WINDOW_END": "23:59:59",
        "HOTLINE_SERVICE_LEVEL_SECONDS": scaled(20, 0.05), "HOTLINE_VISIT_DELAY": scaled(3600),
        "HOTLINE_VISIT_BACKOFF": json.dumps([float(scaled(1800)), float(scaled(7200)), float(scaled(86400))]),
        "HOTLINE_VISIT_CHANNEL": "twilio", "HOTLINE_RING_TIMEOUT": scaled(30, 2.0).split(".")[0],
        "HOTLINE_QUEUES": json.dumps(queues), "HOTLINE_RECORDS_CLAIM_IDLE": "5",
        "HOTLINE_HOLD_ANNOUNCE_EVERY": scaled(45, 1.0), "HOTLINE_VISIT_STALE_AFTER": scaled(900, 10.0),
        "HOTLINE_AGI_PROCESSES": "2", "HOTLINE_AGI_DRAIN": "30",
    }


def _wait_for(hotline: Hotline, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if hotline.proc.poll() is not None:
            raise RuntimeError(f"hotline up exited with {hotline.proc.returncode}:\n"
                               f"{hotline.log_path.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(hotline.web_url + "/healthz", timeout=1):
                pass
            with socket.create_connection(("127.0.0.1", hotline.agi_port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("hotline up did not answer within 90 s")


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def _argv(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return []


def _wait_gone(pid: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise RuntimeError(f"process {pid} did not stop")


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


@dataclass
class RssSampler:
    """Peak resident memory per role, sampled every second (restarted processes included)."""

    hotline: Hotline
    peaks_kb: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, name="rss", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.sample()

    def sample(self) -> None:
        for role, pids in {**self.hotline.processes(), "simulator": [os.getpid()]}.items():
            for pid in pids:
                self.peaks_kb[role] = max(self.peaks_kb.get(role, 0), rss_kb(pid))

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()


class TcpProxy:
    """A loopback TCP proxy in front of the database (or Redis: any URL with a host and port), whose connections
    can be cut and refused for a while, or slowed: ``hold_replies`` holds back the server's replies on the
    connections open at that moment until ``release_replies`` (connections opened later pass at once)."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        self.target = (url.host or "127.0.0.1", url.port or 5432)
        self._down = threading.Event()
        self._conns: list[socket.socket] = []
        self._gates: list[threading.Event] = []
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = url.set(host="127.0.0.1", port=self.listener.getsockname()[1]).render_as_string(
            hide_password=False)
        threading.Thread(target=self._accept, name="db-proxy", daemon=True).start()

    @property
    def down(self) -> bool:
        return self._down.is_set()

    @contextmanager
    def cut(self) -> Iterator[None]:
        self._down.set()
        with self._lock:
            for conn in self._conns:
                _close(conn)
            self._conns.clear()
        try:
            yield
        finally:
            self._down.clear()

    def hold_replies(self) -> None:
        with self._lock:
            for gate in self._gates:
                gate.clear()

    def release_replies(self) -> None:
        with self._lock:
            for gate in self._gates:
                gate.set()

    def close(self) -> None:
        self.release_replies()
        _close(self.listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._down.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            replies = threading.Event()
            replies.set()
            with self._lock:
                self._conns += [client, upstream]
                self._gates.append(replies)
            threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pipe, args=(upstream, client, replies), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket, gate: threading.Event | None = None) -> None:
    try:
        while data := source.recv(65536):
            if gate is not None:
                gate.wait()
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
