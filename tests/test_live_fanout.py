"""One reader of the event stream per web process wakes the open live pages an event is about (admin.live.fanout)."""

from __future__ import annotations

import itertools

import redis

from admin.live.fanout import EventFanout, Interest
from admin.live.sse import EventTail
from tests.conftest import RedisProcess

STREAM = "hotline:{hotline}:events"
BLOCK_S = 0.5
"""A quiet page's heartbeat comes after this (15 s in service)."""


def fanout_on(url: str) -> tuple[EventFanout, redis.Redis]:
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=20)
    return EventFanout(EventTail(client, STREAM), pace_s=0.01), client


def test_each_page_wakes_for_its_own_events_and_a_quiet_one_gets_heartbeats(redis_url: str) -> None:
    fanout, client = fanout_on(redis_url)
    ann, bob = fanout.subscribe(Interest(agent="ann")), fanout.subscribe(Interest(agent="bob"))
    board = fanout.subscribe(Interest(types=("call", "agent")))
    try:
        assert fanout.pages() == 3
        client.xadd(STREAM, {"type": "agent_state", "agent": "ann", "state": "available"})
        ann_woke, board_woke = next(ann.wait(5)), next(board.wait(5))
        assert ann_woke is not None and board_woke == ann_woke  # one batch: pages may share one snapshot
        assert next(bob.wait(BLOCK_S)) is None  # not about bob: a heartbeat, no snapshot
        client.xadd(STREAM, {"type": "survey_answered", "call_id": "c1"})  # neither a call nor an agent event
        assert next(board.wait(BLOCK_S)) is None
        client.xadd(STREAM, {"type": "call_started", "call_id": "c2"})
        assert next(board.wait(5)) is not None
        assert next(ann.wait(BLOCK_S)) is None
    finally:
        for sub in (ann, bob, board):
            sub.close()
    assert fanout.pages() == 0


def test_a_page_misses_nothing_after_it_subscribed_even_when_the_reader_stopped_meanwhile(redis_url: str) -> None:
    fanout, client = fanout_on(redis_url)
    first = fanout.subscribe(Interest(agent="ann"))
    first.close()  # the last page gone: the reader stops at its next turn
    client.xadd(STREAM, {"type": "agent_state", "agent": "ann"})  # before the next page: its snapshot shows it
    page = fanout.subscribe(Interest(agent="ann"))
    try:
        client.xadd(STREAM, {"type": "agent_state", "agent": "ann"})
        woken = [read_at for read_at in itertools.islice(page.wait(5), 1)]
        assert woken and woken[0] is not None
    finally:
        page.close()


def test_redis_going_away_ends_every_stream(own_redis: RedisProcess) -> None:
    fanout, _ = fanout_on(own_redis.url)
    pages = [fanout.subscribe(Interest(agent=f"a{i}")) for i in range(3)]
    own_redis.stop()
    # Each page's stream ends (its EventSource reconnects in 2 s), instead of sending heartbeats forever.
    assert all(list(itertools.islice(page.wait(30), 5)) == [] for page in pages)
    assert all(page.ended for page in pages)
    assert fanout.pages() == 0


def test_closing_ends_the_pages_and_a_page_opened_after_is_served_by_one_reader(redis_url: str) -> None:
    import time

    fanout, client = fanout_on(redis_url)
    before = fanout.subscribe(Interest(agent="ann"))
    fanout.close()  # a stopping web worker
    assert list(itertools.islice(before.wait(5), 1)) == [] and fanout.pages() == 0
    after = fanout.subscribe(Interest(agent="ann"))
    try:
        client.xadd(STREAM, {"type": "agent_state", "agent": "ann"})
        assert next(after.wait(5)) is not None
        deadline = time.monotonic() + 5
        while fanout.readers() > 1:  # the first reader, woken by the event, sees it was replaced and stops
            assert time.monotonic() < deadline, "two readers of the stream"
            time.sleep(0.05)
        assert fanout.readers() == 1
    finally:
        after.close()


def test_a_dashboard_wakes_at_most_once_per_gap_and_the_later_wake_up_covers_every_event_between(
        redis_url: str) -> None:
    import time

    fanout, client = fanout_on(redis_url)
    board = fanout.subscribe(Interest(types=("call",)))
    try:
        wakes = board.wait(5, gap_s=0.6)
        begun = time.monotonic()
        client.xadd(STREAM, {"type": "call_started", "call_id": "c1"})
        first = next(wakes)
        assert first is not None and time.monotonic() - begun >= 0.6  # the gap counts from the page's snapshot
        shown = time.monotonic()
        for n in range(5):  # a burst in the next gap, read by the fanout in several batches (its pace: 10 ms)
            client.xadd(STREAM, {"type": "call_queued", "call_id": f"c{n}"})
            time.sleep(0.05)
        last_read = board.read_at
        second = next(wakes)
        assert second is not None and second >= last_read  # a snapshot begun after it shows the whole burst
        assert time.monotonic() - shown >= 0.6  # one wake-up for the burst, not one per batch
        assert next(board.wait(0.5, gap_s=0.6)) is None  # nothing folded in is left over to wake it again
    finally:
        board.close()
