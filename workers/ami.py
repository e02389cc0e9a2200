"""A small synchronous Asterisk Manager Interface client: one session per dial, no reconnects.

Why not panoramisk: when Asterisk drops the connection its action futures stay pending (the caller
learns nothing until its own timeout), and it reconnects by itself and re-sends actions that had no
reply yet, which for ``Originate`` means ringing the customer a second time. A return-visit job needs
the opposite: one session, every failure reported at once, nothing left running after ``close()``.
"""

from __future__ import annotations

import itertools
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType

Message = dict[str, str]
"""One AMI response or event; keys in lower case (AMI keys are case-insensitive). A repeated key keeps
its last value: the dialer reads none that repeat."""

_BACKLOG_LIMIT = 200
_ids = itertools.count(1)


class AmiError(Exception):
    """The session failed: refused, timed out, closed by Asterisk, or not an AMI server."""


class AmiLoginError(AmiError):
    """Asterisk refused the username or secret."""


def parse_message(block: str) -> Message:
    out: Message = {}
    for line in block.split("\r\n"):
        key, sep, val = line.partition(":")
        if sep:
            out[key.strip().lower()] = val.strip()
    return out


class AmiClient:
    """``connect``, ``login``, ``request``/``wait_for``, ``logoff``; every wait has a deadline.

    Messages that carry an ActionID but are not the one awaited are kept, so an ``OriginateResponse``
    that overtakes the ``Originate`` acknowledgement (Asterisk sends them from different threads) is
    not lost. Events without an ActionID are not for us and are dropped.
    """

    def __init__(self, host: str, port: int, connect_timeout_s: float = 5.0) -> None:
        self.host, self.port, self.connect_timeout_s = host, port, connect_timeout_s
        self.version = ""
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._backlog: list[Message] = []

    def __enter__(self) -> AmiClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def connect(self) -> str:
        """Open the TCP session and read the ``Asterisk Call Manager/x.y.z`` greeting; returns x.y.z."""
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        except TimeoutError as exc:
            raise AmiError(f"no answer from {self.host}:{self.port} within {self.connect_timeout_s:g} s") from exc
        except OSError as exc:
            raise AmiError(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from exc
        line = self._read_until(b"\r\n", time.monotonic() + self.connect_timeout_s, "the AMI greeting")
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith("Asterisk Call Manager/"):
            raise AmiError(f"{self.host}:{self.port} is not an Asterisk Manager Interface (greeting {text[:60]!r})")
        self.version = text.partition("/")[2]
        return self.version

    def login(self, username: str, secret: str, events: str = "call") -> None:
        """``events``: the event classes to receive; ``call`` carries ``OriginateResponse``."""
        reply = self.request("Login", [("Username", username), ("Secret", secret), ("Events", events)],
                             timeout_s=self.connect_timeout_s)
        if reply.get("response", "").lower() != "success":
            raise AmiLoginError(f"AMI login refused for user {username!r}: {reply.get('message') or 'no reason given'}")

    def send(self, action: str, headers: Iterable[tuple[str, object]] = (), action_id: str = "") -> str:
        """Write one action; returns its ActionID. Repeated keys (``Variable``) are sent as given."""
        action_id = action_id or f"hotline-{next(_ids)}"
        lines = [("Action", action), ("ActionID", action_id), *headers]
        for key, val in lines:
            if any(ch in f"{key}{val}" for ch in "\r\n"):
                raise ValueError(f"AMI header {key!r} contains a line break")  # would inject headers
        data = "".join(f"{key}: {val}\r\n" for key, val in lines) + "\r\n"
        try:
            self._connected().sendall(data.encode("utf-8"))
        except OSError as exc:
            raise AmiError(f"connection to Asterisk lost while sending {action} ({exc})") from exc
        return action_id

    def request(self, action: str, headers: Iterable[tuple[str, object]] = (), *, timeout_s: float,
                action_id: str = "") -> Message:
        """Send an action and return its ``Response`` message."""
        sent = self.send(action, headers, action_id)
        return self.wait_for(lambda m: "response" in m and "event" not in m and m.get("actionid") == sent,
                             timeout_s, f"the reply to {action}")

    def wait_for(self, wanted: Callable[[Message], bool], timeout_s: float, what: str) -> Message:
        """The first message (kept or new) that ``wanted`` accepts, or AmiError after ``timeout_s``."""
        for i, kept in enumerate(self._backlog):
            if wanted(kept):
                return self._backlog.pop(i)
        deadline = time.monotonic() + timeout_s
        while True:
            block = self._read_until(b"\r\n\r\n", deadline, what)
            message = parse_message(block.decode("utf-8", "replace"))
            if wanted(message):
                return message
            if message.get("actionid"):
                self._backlog = [*self._backlog, message][-_BACKLOG_LIMIT:]

    def logoff(self) -> None:
        """Say goodbye if the session is still up; a session that is already gone is not an error."""
        if self._sock is None:
            return
        try:
            self.request("Logoff", timeout_s=min(self.connect_timeout_s, 2.0))
        except AmiError:
            pass

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connected(self) -> socket.socket:
        if self._sock is None:
            raise AmiError("not connected to Asterisk")
        return self._sock

    def _read_until(self, end: bytes, deadline: float, what: str) -> bytes:
        """Bytes up to ``end`` (consumed, not returned), reading from the socket until the deadline."""
        sock = self._connected()
        while end not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AmiError(f"timed out waiting for {what}")
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError as exc:
                raise AmiError(f"timed out waiting for {what}") from exc
            except OSError as exc:
                raise AmiError(f"connection to Asterisk lost while waiting for {what} ({exc})") from exc
            if not chunk:
                raise AmiError(f"Asterisk closed the connection while we waited for {what}")
            self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(end)
        return head


@contextmanager
def session(host: str, port: int, username: str, secret: str, connect_timeout_s: float = 5.0,
            events: str = "off") -> Iterator[AmiClient]:
    """One AMI session for a few actions: connected, logged in, logged off at the end (failures: ``AmiError``)."""
    with AmiClient(host, port, connect_timeout_s) as ami:
        ami.connect()
        ami.login(username, secret, events=events)
        try:
            yield ami
        finally:
            ami.logoff()


def one_action(host: str, port: int, username: str, secret: str, action: str,
               headers: Iterable[tuple[str, object]], *, timeout_s: float, id_prefix: str) -> Message:
    """One action in a session of its own, its response returned as Asterisk gave it (``response`` tells
    success); the session could not be had or answered: ``AmiError``."""
    with session(host, port, username, secret, timeout_s) as ami:
        return ami.request(action, headers, action_id=f"{id_prefix}-{secrets.token_hex(4)}", timeout_s=timeout_s)
