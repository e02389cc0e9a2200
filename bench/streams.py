"""Open live pages for the benchmarks: many event streams (agent consoles, dashboards) held open against a running
hotline web by one process of raw sockets, as that many browsers would hold them.

Used by ``bench/webhooks.py --streams N``. A refused page (503: the process's cap; 429: the person's) tries again a
little later, as the page's script does; every page's frames are read as they come (a page that stops reading
would fill the server's socket buffer)."""

from __future__ import annotations

import multiprocessing as mp
import re
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import requests

RETRY_S = 2.0
"""A refused page tries again this long after (the page's script waits Retry-After, 5 s: shorter here)."""


def log_in(base: str, name: str, password: str) -> str:
    """The ``Cookie`` header of a fresh session of ``name``."""
    browser = requests.Session()
    token = re.search(r'name="csrf-token" content="([^"]+)"', browser.get(f"{base}/login", timeout=30).text)
    if token is None:
        raise RuntimeError("no CSRF token on /login")
    reply = browser.post(f"{base}/login", data={"name": name, "password": password, "csrf_token": token.group(1)},
                         allow_redirects=False, timeout=30)
    if reply.status_code != 302:
        raise RuntimeError(f"login of {name} answered {reply.status_code}")
    return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


@dataclass
class Page:
    path: str
    cookie: str
    sock: socket.socket | None = None
    head: bytes = b""
    status: int = 0
    frames: int = 0
    retry_at: float = 0.0


@dataclass
class Tally:
    open: int = 0
    waiting: int = 0
    refused_503: int = 0
    refused_429: int = 0
    frames: int = 0
    dropped: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class Holder:
    """The pages, driven by one selector: ``step`` opens what is due and reads what arrived."""

    def __init__(self, host: str, port: int, pages: list[tuple[str, str]]) -> None:
        self.address = (host, port)
        self.pages = [Page(path, cookie) for path, cookie in pages]
        self.sel = selectors.DefaultSelector()
        self.tally = Tally()
        self.closed, self.next_due = len(self.pages), 0.0

    def _connect(self, page: Page) -> None:
        sock = socket.create_connection(self.address, timeout=10)
        sock.sendall(f"GET {page.path} HTTP/1.1\r\nHost: {self.address[0]}:{self.address[1]}\r\n"
                     f"Cookie: {page.cookie}\r\nAccept: text/event-stream\r\n\r\n".encode())
        sock.setblocking(False)
        page.sock, page.head, page.status = sock, b"", 0
        self.sel.register(sock, selectors.EVENT_READ, page)

    def _drop(self, page: Page, retry: bool) -> None:
        if page.sock is not None:
            self.sel.unregister(page.sock)
            page.sock.close()
            page.sock = None
        page.retry_at = time.monotonic() + RETRY_S if retry else float("inf")
        self.closed += 1

    def step(self, timeout: float, opening: int = 50) -> None:
        now = time.monotonic()
        if self.closed and now >= self.next_due:  # pages to (re)open: scanned only then, the list is long
            due = [p for p in self.pages if p.sock is None and p.retry_at <= now][:opening]
            for page in due:
                self._connect(page)
            self.closed = sum(p.sock is None for p in self.pages)
            self.next_due = now if len(due) == opening else now + 0.2
        for key, _ in self.sel.select(timeout=timeout):
            page = key.data
            try:
                data = page.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:  # the server ended the stream: the page reconnects
                self.tally.dropped += 1
                self._drop(page, retry=True)
                continue
            if not page.status:
                page.head += data
                if b"\r\n\r\n" not in page.head:
                    continue
                page.status = int(page.head.split(b" ", 2)[1])
                self.tally.statuses[page.status] = self.tally.statuses.get(page.status, 0) + 1
                if page.status != 200:
                    if page.status == 503:
                        self.tally.refused_503 += 1
                    elif page.status == 429:
                        self.tally.refused_429 += 1
                    self._drop(page, retry=True)
                    continue
                data = page.head.split(b"\r\n\r\n", 1)[1]
            page.frames += data.count(b"\nevent: ") + data.startswith(b"event: ")

    def count(self) -> Tally:
        t = self.tally
        t.open = sum(p.sock is not None and p.status == 200 for p in self.pages)
        t.waiting = len(self.pages) - t.open
        t.frames = sum(p.frames for p in self.pages)
        return t

    def close(self) -> None:
        for page in self.pages:
            self._drop(page, retry=False)


def holder_process(host: str, port: int, pages: list[tuple[str, str]], conn: Any) -> None:
    """Holds ``pages`` open until told ``stop``; answers ``count`` with a ``Tally``."""
    holder = Holder(host, port, pages)
    try:
        while True:
            holder.step(0.05)
            if conn.poll():
                order = conn.recv()
                if order == "stop":
                    conn.send(holder.count())
                    return
                conn.send(holder.count())
    finally:
        holder.close()


class Streams:
    """``pages`` held open by a process of their own while the benchmark runs."""

    def __init__(self, host: str, port: int, pages: list[tuple[str, str]]) -> None:
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=holder_process, args=(host, port, pages, child), daemon=True)
        self.proc.start()
        self.total = len(pages)

    def count(self) -> Tally:
        self.conn.send("count")
        tally: Tally = self.conn.recv()
        return tally

    def wait_open(self, seconds: float) -> Tally:
        """Until every page has its stream (refused ones retry) or ``seconds`` passed."""
        deadline = time.monotonic() + seconds
        while True:
            tally = self.count()
            if tally.open >= self.total or time.monotonic() > deadline:
                return tally
            time.sleep(0.5)

    def stop(self) -> Tally:
        self.conn.send("stop")
        tally: Tally = self.conn.recv()
        self.proc.join(10)
        return tally
