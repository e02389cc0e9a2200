"""One call's event never waits for another call's: the event log takes no process-wide lock while nothing is
spooled (routing.events.EventLog). Under gevent such a lock queued every call's XADD behind the others'."""

from __future__ import annotations

import threading
from pathlib import Path

import redis

from routing.events import EventLog
from routing.keys import EVENTS_STREAM
from simulate.stack import TcpProxy


def test_an_event_goes_out_while_another_calls_event_waits_for_its_reply(redis_url: str, tmp_path: Path) -> None:
    direct = redis.Redis.from_url(redis_url)
    hop = TcpProxy(redis_url)  # a slow network path for the connections open when it holds their replies
    try:
        client = redis.Redis.from_url(hop.url, socket_timeout=30)
        client.ping()  # the pool's one connection, its handshake done: the next command takes it
        hop.hold_replies()
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
        hop.release_replies()
        slow.join(10)
        calls = [fields[b"call_id"] for _, fields in direct.xrange(EVENTS_STREAM)]
        assert calls == [b"slow", b"quick"]
        assert not (tmp_path / "spool").exists()  # nothing spooled: Redis never went away
    finally:
        hop.close()
