"""A real Asterisk Manager Interface server on a free loopback port, run in a thread, for dialer tests.

It speaks the AMI wire protocol (greeting line, ``Key: Value`` actions ended by a blank line) and
answers Login, Ping, Logoff and Originate the way Asterisk does; what each dialled number does
(answered, no answer, busy, ...) is chosen by the test. Every action received is kept, in order.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field

GREETING = b"Asterisk Call Manager/7.0.0\r\n"
ANSWERED = ("Success", 4)
"""Asterisk's OriginateResponse for an answered call: Response Success, Reason 4 (AST_CONTROL_ANSWER)."""

Action = dict[str, str | list[str]]


def parse_action(block: str) -> Action:
    """``Key: Value`` lines into a dict; a repeated key (``Variable``) becomes a list, in order."""
    action: Action = {}
    for line in block.split("\r\n"):
        if ":" not in line:
            continue
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key in action:
            before = action[key]
            action[key] = [*before, val] if isinstance(before, list) else [before, val]
        else:
            action[key] = val
    return action


def message(*lines: tuple[str, object]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in lines) + "\r\n").encode()


def dialled_number(channel: str) -> str:
    """``PJSIP/+8613812345678@hotline-trunk`` -> ``+8613812345678``."""
    match = re.match(r"^[^/]+/([^@]+)", channel)
    return match.group(1) if match else channel


@dataclass
class FakeAmiServer:
    """Answers AMI on ``127.0.0.1:port``; ``outcomes`` maps a dialled number to (Response, Reason)."""

    outcomes: dict[str, tuple[str, int]] = field(default_factory=dict)
    username: str = "hotline"
    secret: str = "test-ami-secret"
    close_after_originate: bool = False
    """Drop the connection right after queueing the Originate, before its OriginateResponse."""
    send_originate_response: bool = True
    """False: queue the Originate and never report how it went (a dialer timing out)."""
    event_before_ack: bool = False
    """Send the OriginateResponse before the acknowledgement: Asterisk sends them from two threads."""
    refuse_originate: str = ""
    """Answer every Originate with ``Response: Error`` and this message (say, ``Permission denied``)."""
    channels: dict[str, dict[str, str]] = field(default_factory=dict)
    """Channels up on the PBX (by name or uniqueid) and their variables, for the call controls: ``Getvar``
    reads them, ``Hangup`` ends one; an unknown channel gets Asterisk's ``No such channel``."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._actions: list[Action] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept_loop, name=f"ami-{self.port}", daemon=True)

    @property
    def actions(self) -> list[Action]:
        with self._lock:
            return list(self._actions)

    def named(self, name: str) -> list[Action]:
        """The actions called ``name`` (case-insensitive, as Asterisk reads them)."""
        return [a for a in self.actions if str(a.get("Action", "")).lower() == name.lower()]

    def start(self) -> FakeAmiServer:
        self._accepting.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _close(conn)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FakeAmiServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        buffer, authenticated = "", False
        try:
            conn.sendall(GREETING)
            while not self._stopping.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                buffer += chunk.decode("utf-8", "replace")
                while "\r\n\r\n" in buffer:
                    block, buffer = buffer.split("\r\n\r\n", 1)
                    action = parse_action(block)
                    with self._lock:
                        self._actions.append(action)
                    outcome = self._answer(conn, action, authenticated)
                    if outcome == "close":
                        return
                    authenticated = authenticated or outcome == "authenticated"
        except OSError:
            return
        finally:
            _close(conn)

    def _answer(self, conn: socket.socket, action: Action, authenticated: bool) -> str:
        """Reply to one action; says ``close`` when Asterisk would end the session."""
        name = str(action.get("Action", "")).lower()
        action_id = action.get("ActionID", "")
        head = [("ActionID", action_id)] if action_id else []
        if name == "login":
            if action.get("Username") == self.username and action.get("Secret") == self.secret:
                conn.sendall(message(("Response", "Success"), *head, ("Message", "Authentication accepted")))
                conn.sendall(message(("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted")))
                return "authenticated"
            # Asterisk answers and then ends the session after a failed login.
            conn.sendall(message(("Response", "Error"), *head, ("Message", "Authentication failed")))
            return "close"
        if name == "logoff":
            conn.sendall(message(("Response", "Goodbye"), *head, ("Message", "Thanks for all the fish.")))
            return "close"
        if not authenticated:
            conn.sendall(message(("Response", "Error"), *head, ("Message", "Permission denied")))
            return ""
        if name == "ping":
            conn.sendall(message(("Response", "Success"), *head, ("Ping", "Pong"), ("Timestamp", "1700000000.000000")))
            return ""
        if name == "originate":
            return self._originate(conn, action, head)
        if name in ("getvar", "hangup"):
            conn.sendall(self._channel_action(name, action, head))
            return ""
        conn.sendall(message(("Response", "Error"), *head, ("Message", "Invalid/unknown command")))
        return ""

    def _channel_action(self, name: str, action: Action, head: list[tuple[str, object]]) -> bytes:
        channel, variable = str(action.get("Channel", "")), str(action.get("Variable", ""))
        with self._lock:
            found = self.channels.get(channel)
            if found is not None and name == "hangup":
                del self.channels[channel]
        if found is None or (name == "getvar" and variable not in found):
            return message(("Response", "Error"), *head, ("Message", "No such channel"))
        if name == "hangup":
            return message(("Response", "Success"), *head, ("Message", "Channel Hungup"))
        return message(("Response", "Success"), *head, ("Variable", variable), ("Value", found[variable]))

    def _originate(self, conn: socket.socket, action: Action, head: list[tuple[str, object]]) -> str:
        if self.refuse_originate:
            conn.sendall(message(("Response", "Error"), *head, ("Message", self.refuse_originate)))
            return ""
        ack = message(("Response", "Success"), *head, ("Message", "Originate successfully queued"))
        if not self.event_before_ack:
            conn.sendall(ack)
        if self.close_after_originate:
            return "close"
        if self.send_originate_response:
            conn.sendall(self._originate_response(action, head))
        if self.event_before_ack:
            conn.sendall(ack)
        return ""

    def _originate_response(self, action: Action, head: list[tuple[str, object]]) -> bytes:
        channel = str(action.get("Channel", ""))
        response, reason = self.outcomes.get(dialled_number(channel), ANSWERED)
        return message(
            ("Event", "OriginateResponse"), ("Privilege", "call,all"), *head, ("Response", response),
            ("Channel", channel), ("Context", action.get("Context", "")), ("Exten", action.get("Exten", "")),
            ("Application", ""), ("Data", ""), ("Reason", reason), ("Uniqueid", "1700000000.42"),
            ("CallerIDNum", "<unknown>"), ("CallerIDName", "<unknown>"),
        )


def _close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()
