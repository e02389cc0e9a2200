"""The web on gevent (``hotline web``, gunicorn's gevent worker): hundreds of open live pages cost greenlets, not
threads, and neither they nor one request waiting on SQLite hold up Twilio's webhooks.

A real ``hotline web`` process (one worker) on the test's Redis and SQLite. Its live-page cap comes from
``HOTLINE_LIVE_STREAM_MEMORY_MB``; the test opens every page that fits, checks the next one is refused with 503, that
one event reaches them all (one reader of the stream per process fans it out), and that a caller is answered
meanwhile. Then it holds SQLite's write lock while a caller's wrong PIN is to be counted: that webhook waits for the
lock, while another caller walks into the menu and every open page still gets its snapshot. On a worker where the
waiting statement held the hub, the second caller would wait until the first one's statement gave up
(``HOTLINE_DB_TIMEOUT``, set far beyond the bounds below)."""

from __future__ import annotations

import os
import re
import selectors
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import requests

from admin.live.sse import STREAM_KB
from hotline.app import Hotline
from tests.conftest import AUTH_TOKEN, free_port
from tests.fakes.twilio_caller import TwilioCaller
from tests.web import PASSWORD, add_user

REPO = Path(__file__).resolve().parents[1]
CARD, WRONG_PIN = "6228480012345671", "111111"
MEMORY_MB = 30
PAGES = MEMORY_MB * 1024 // STREAM_KB
"""The live pages one worker keeps open with ``HOTLINE_LIVE_STREAM_MEMORY_MB=30``: 307."""
DB_WAIT_S = 60
STALL_S = 10
"""Generous: only a stall (a request waiting for another's SQLite lock, up to DB_WAIT_S) goes past it."""


class _HttpClient:
    """Enough of Flask's test client for TwilioCaller, over a real socket."""

    def __init__(self, base: str) -> None:
        self.base = base

    def post(self, path: str, data: dict[str, str], headers: dict[str, str]) -> object:
        body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(self.base + path, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=DB_WAIT_S + 10) as reply:
            return _Reply(reply.status, reply.read(), reply.headers.get_content_type())


class _Reply:
    def __init__(self, status: int, data: bytes, mimetype: str) -> None:
        self.status_code, self.data, self.mimetype = status, data, mimetype


@contextmanager
def web_process(hotline: Hotline, redis_url: str, log: Path) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    """``hotline web`` with one gevent worker; yields its base URL, the worker's pid and gunicorn's master once it
    answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "TWILIO_"))},
           "REDIS_URL": redis_url, "DATABASE_URL": hotline.settings.sql_url,
           "HOTLINE_DATA_DIR": str(hotline.settings.data_dir), "HOTLINE_WEB_PORT": str(port),
           "HOTLINE_PUBLIC_URL": base, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HOTLINE_WEB_WORKERS": "1",
           "HOTLINE_LIVE_STREAM_MEMORY_MB": str(MEMORY_MB), "HOTLINE_LIVE_STREAMS_PER_PERSON": "1000",
           "HOTLINE_DB_TIMEOUT": str(DB_WAIT_S), "HOTLINE_BUSINESS_OPENS": "00:00",
           "HOTLINE_BUSINESS_CLOSES": "23:59:59"}
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "hotline.cli", "web"], env=env, cwd=REPO,
                                  stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    break
            except OSError:
                assert server.poll() is None, f"hotline web died at start: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "hotline web did not answer"
                time.sleep(0.1)
        (worker,) = psutil.Process(server.pid).children()
        yield base, worker.pid, server
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


def session_cookie(base: str, name: str) -> str:
    browser = requests.Session()
    token = re.search(r'name="csrf-token" content="([^"]+)"', browser.get(f"{base}/login", timeout=10).text)
    assert token is not None
    browser.post(f"{base}/login", data={"name": name, "password": PASSWORD, "csrf_token": token.group(1)},
                 allow_redirects=False, timeout=10)
    return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


class Pages:
    """Open dashboards, each a raw socket reading ``/api/live/stream`` (no thread per page in the test either)."""

    def __init__(self, base: str, cookie: str) -> None:
        self.address = urllib.parse.urlsplit(base)
        self.cookie = cookie
        self.socks: list[socket.socket] = []
        self.seen: dict[socket.socket, bytes] = {}
        self.counted: dict[socket.socket, int] = {}

    def open(self) -> tuple[int, bytes, socket.socket]:
        sock = socket.create_connection((self.address.hostname, self.address.port), timeout=STALL_S)
        sock.sendall(f"GET /api/live/stream HTTP/1.1\r\nHost: {self.address.netloc}\r\nCookie: {self.cookie}\r\n"
                     "Accept: text/event-stream\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, "the server closed the page's connection"
            head += chunk
        status = int(head.split(b" ", 2)[1])
        head, self.seen[sock] = head.split(b"\r\n\r\n", 1)
        self.counted[sock] = 0
        self.socks.append(sock)
        return status, head, sock

    def snapshots_by(self, deadline: float) -> int:
        """Reads every page until each has one more ``snapshot`` event than already counted, or ``deadline``;
        returns how many pages got it."""
        for sock in self.socks:
            self.counted[sock] += 1
        want = self.counted
        pending = {s for s in self.socks if self.seen[s].count(b"event: snapshot") < want[s]}
        with selectors.DefaultSelector() as sel:
            for sock in pending:
                sel.register(sock, selectors.EVENT_READ)
            while pending and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    self.seen[sock] += sock.recv(65536)
                    if self.seen[sock].count(b"event: snapshot") >= want[sock]:
                        pending.discard(sock)
                        sel.unregister(sock)
        return len(self.socks) - len(pending)

    def ended_by(self, deadline: float) -> int:
        """Reads every page until the server closes it, or ``deadline``; returns how many it closed."""
        ended = 0
        with selectors.DefaultSelector() as sel:
            for sock in self.socks:
                sel.register(sock, selectors.EVENT_READ)
            while ended < len(self.socks) and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if not sock.recv(65536):
                        ended += 1
                        sel.unregister(sock)
        return ended

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's write lock is what one caller waits on
def test_hundreds_of_open_pages_and_a_request_waiting_on_sqlite_do_not_hold_up_twilio(
    hotline: Hotline, redis_url: str, tmp_path: Path,
) -> None:
    add_user(hotline, "sue", "supervisor")
    with web_process(hotline, redis_url, tmp_path / "web.log") as (base, worker, server):
        assert "gevent" in Path(f"/proc/{worker}/maps").read_text(), "the web worker is not running on gevent"
        pages = Pages(base, session_cookie(base, "sue"))
        try:
            # Every page that fits in HOTLINE_LIVE_STREAM_MEMORY_MB opens, and gets its first snapshot ...
            statuses = [pages.open()[0] for _ in range(PAGES)]
            assert statuses == [200] * PAGES
            assert pages.snapshots_by(time.monotonic() + STALL_S * 3) == PAGES
            # ... in greenlets: the worker runs a handful of threads (gevent's pool), not one per page.
            assert psutil.Process(worker).num_threads() < 30
            # The next is refused with 503 and Retry-After: the page retries by itself.
            status, head, refused = pages.open()
            assert status == 503 and b"Retry-After: 5" in head, head
            pages.socks.remove(refused)
            refused.close()

            # A caller is answered meanwhile, and the call's start reaches every open page as a snapshot.
            caller = TwilioCaller(_HttpClient(base), AUTH_TOKEN, base)
            caller.dial()
            caller.press("1")
            assert caller.said() == ["请输入您的卡号，以井号键结束。"]
            assert pages.snapshots_by(time.monotonic() + STALL_S) == PAGES

            # One caller's wrong PIN waits for SQLite's write lock, held here as a long write elsewhere would.
            database = hotline.settings.sql_url.removeprefix("sqlite:///")
            lock = sqlite3.connect(database, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            waiting = TwilioCaller(_HttpClient(base), AUTH_TOKEN, base)
            waiting.dial()
            waiting.press("1")
            waiting.press(CARD + "#")
            heard: list[list[str]] = []
            first = threading.Thread(target=lambda: (waiting.press(WRONG_PIN), heard.append(waiting.said())))
            first.start()
            try:
                time.sleep(1)  # the PIN is checked (scrypt) and its failure reaches the database's lock
                assert first.is_alive(), "the wrong PIN was answered at once: the test proved nothing"
                began = time.monotonic()
                second = TwilioCaller(_HttpClient(base), AUTH_TOKEN, base)
                second.dial()
                second.press("1")
                assert second.said() == ["请输入您的卡号，以井号键结束。"]
                assert time.monotonic() - began < STALL_S, "a webhook waited behind another's SQLite lock"
                assert pages.snapshots_by(time.monotonic() + STALL_S) == PAGES  # the pages go on too
                assert first.is_alive(), "the wrong PIN went on without its database write"
            finally:
                lock.execute("ROLLBACK")
                lock.close()
                first.join(DB_WAIT_S + 10)
            # Once the lock went, the wrong PIN was counted and the caller asked again.
            assert heard and "卡号或密码不正确。" in heard[0], heard

            # Stopping, the worker ends every open page's stream at once (the browsers reconnect to a worker that
            # stays), rather than keeping them until its graceful timeout (30 s) and being killed.
            server.terminate()
            assert pages.ended_by(time.monotonic() + STALL_S) == PAGES
            assert server.wait(STALL_S) == 0
        finally:
            pages.close()


def test_the_runtime_setting_chooses_the_worker_and_its_live_page_cap() -> None:
    from hotline.settings import Settings
    from hotline.wsgi_server import WEBHOOK_CONNECTIONS, runtime_options

    gevent = runtime_options(Settings(_env_file=None, live_stream_memory_mb=128))  # type: ignore[call-arg]
    # 128 MB at 100 KB a page: 1,310 pages, and 1,000 connections more that pages never hold
    assert gevent == {"worker_class": "hotline.web_gevent.Worker", "worker_connections": 1310 + WEBHOOK_CONNECTIONS}
    threads = runtime_options(Settings(_env_file=None, web_runtime="threads", web_threads=32))  # type: ignore[call-arg]
    assert threads == {"worker_class": "gthread", "threads": 32}
