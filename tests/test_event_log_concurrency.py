"""One call's event never waits for another call's: the event log takes no process-wide lock while nothing is
spooled (routing.events.EventLog). Under gevent such a lock queued every call's XADD behind the others'."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import redis

from routing.events import EventLog
from routing.keys import EVENTS_STREAM


class HoldReplies:
    """A loopback TCP hop in front of Redis. ``hold()`` holds back Redis's replies on the connections open at that
    moment (a slow network path for them) until ``release``; connections opened later pass at once."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self._open: list[threading.Event] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        for gate in self._open:
            gate.clear()

    def release(self) -> None:
        for gate in self._open:
            gate.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.redis_port))
            gate = threading.Event()
            gate.set()
            self._open.append(gate)
            threading.Thread(target=_pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=_pipe, args=(upstream, client, gate), daemon=True).start()

    def close(self) -> None:
        self.release()
        self.listener.close()


def _pipe(source: socket.socket, sink: socket.socket, gate: threading.Event | None) -> None:
    try:
        while data := source.recv(65536):
            if gate is not None:
                gate.wait()
            sink.sendall(data)
    except OSError:
        pass
    finally:
        source.close()
        sink.close()


def test_an_event_goes_out_while_another_calls_event_waits_for_its_reply(redis_url: str, tmp_path: Path) -> None:
    direct = redis.Redis.from_url(redis_url)
    hop = HoldReplies(direct.connection_pool.connection_kwargs["port"])
    try:
        client = redis.Redis(host="127.0.0.1", port=hop.port, socket_timeout=30)
        client.ping()  # the pool's one connection, its handshake done: the next command takes it
        hop.hold()
        events = EventLog(client, tmp_path / "spool")
        slow = threading.Thread(target=events.emit, args=("call_started",), kwargs={"call_id": "slow"}, daemon=True)
        slow.start()
        while not direct.xlen(EVENTS_STREAM):  # the slow call's XADD reached Redis; its reply is held
            pass
        quick = threading.Thread(target=events.emit, args=("call_started",), kwargs={"call_id": "quick"}, daemon=True)
        quick.start()
        quick.join(10)
        assert not quick.is_alive(), "the second call's event waited for the first call's reply"
        assert slow.is_alive()  # still waiting: the two were in flight together
        hop.release()
        slow.join(10)
        calls = [fields[b"call_id"] for _, fields in direct.xrange(EVENTS_STREAM)]
        assert calls == [b"slow", b"quick"]
        assert not (tmp_path / "spool").exists()  # nothing spooled: Redis never went away
    finally:
        hop.close()
