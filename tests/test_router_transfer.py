"""Transfers in the router (issue 18): the call keeps its id, the first agent is freed, the call goes on."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from reports.queries import build_report
from routing.exceptions import NotBusy, TargetUnavailable
from routing.keys import EVENTS_STREAM
from routing.router import Router
from store.models import CallRecord
from tests.fakes.clock import Clock
from tests.test_router import call, events, make_router, offered_to, staff
from workers.records import RecordWriter


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def router(redis_url: str, clock: Clock) -> Iterator[Router]:
    yield make_router(redis_url, clock)


def test_cold_transfer_to_a_queue_requeues_the_same_call_for_that_skill(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"loss": 5}))
    assert offered_to(router, call("c1", "inquiry")) == "ann"
    router.answer("c1", "ann")
    clock.advance(30)
    offers = router.transfer("c1", "ann", "queue", skill="loss", kind="queue")
    assert [(o.call_id, o.agent_id) for o in offers] == [("c1", "bob")]
    view = router.call("c1")
    assert view is not None and view.state == "offered" and view.agent == "bob" and view.queue == "loss:zh-CN"
    assert router.redis.hget(router.key("agent:ann"), "state") == b"available"  # wrap-up 0 in these queues
    (moved,) = events(router, "call_transferred")
    assert (moved["agent"], moved["to"], moved["to_kind"], moved["mode"]) == ("ann", "loss", "queue", "cold")
    assert float(moved["talk_s"]) == pytest.approx(30)
    router.answer("c1", "bob")
    assert [e["agent"] for e in events(router, "call_answered")] == ["ann", "bob"]


def test_a_transferred_call_waits_ahead_of_callers_who_came_later(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}))
    assert offered_to(router, call("c1", "inquiry")) == "ann"
    router.answer("c1", "ann")
    clock.advance(5)
    router.enqueue(call("later", "loss"))
    router.transfer("c1", "ann", "queue", skill="loss")
    staff(router, clock, ("bob", {"loss": 5}))
    view = router.call("c1")
    assert view is not None and view.agent == "bob"


def test_pinned_to_an_agent_who_is_not_free_is_refused_at_once(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 5}))
    assert offered_to(router, call("c1")) == "ann"
    assert offered_to(router, call("c2")) == "bob"
    router.answer("c1", "ann")
    with pytest.raises(TargetUnavailable, match="bob is offered"):
        router.transfer("c1", "ann", "pinned", to_agent="bob", kind="agent")
    view = router.call("c1")
    assert view is not None and view.state == "busy" and view.agent == "ann"  # nothing changed


def test_pinned_offer_not_taken_goes_back_to_the_calls_queue(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), ("sue", {"general": 5}))
    assert offered_to(router, call("c1")) == "ann"
    router.answer("c1", "ann")
    offers = router.transfer("c1", "ann", "pinned", to_agent="sue", kind="supervisor")
    assert [(o.call_id, o.agent_id) for o in offers] == [("c1", "sue")]  # sue has no inquiry skill: pinned all the same
    offers = router.reject("c1", "sue", "noanswer")
    assert [(o.call_id, o.agent_id) for o in offers] == [("c1", "ann")]  # back in inquiry's line: ann is free again


def test_warm_transfer_joined_makes_the_target_the_agent_at_once(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 5}))
    assert offered_to(router, call("c1")) == "ann"
    router.answer("c1", "ann")
    router.set_agent_state("bob", "not_ready", "consult c1")
    router.transfer("c1", "ann", "joined", to_agent="bob", mode="warm", kind="agent")
    view = router.call("c1")
    assert view is not None and view.state == "busy" and view.agent == "bob"
    assert router.redis.hget(router.key("agent:bob"), "state") == b"busy"
    clock.advance(10)
    ended = router.end_call("c1", "completed")
    assert ended.state == "busy"
    assert [e["agent"] for e in events(router, "call_completed")] == ["bob"]


def test_a_caller_hanging_up_during_a_warm_consult_frees_the_agent_reserved_for_it(
    router: Router, clock: Clock,
) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 5}), ("sue", {"loss": 5}))
    assert offered_to(router, call("c1")) == "ann"
    router.answer("c1", "ann")
    router.reserve_consult("c1", "bob", "agent")  # the target of ann's warm transfer
    router.set_agent_state("sue", "not_ready", "consult c9")  # reserved for another call: left alone
    clock.advance(20)
    router.end_call("c1", "caller_hangup", agent="ann")
    assert router.redis.hget(router.key("agent:bob"), "state") == b"available"
    assert router.redis.hget(router.key("agent:sue"), "state") == b"not_ready"
    assert offered_to(router, call("c2")) == "bob"  # and takes the next caller (ann is in wrap-up)


def test_a_released_consultation_offers_its_target_the_caller_waiting_for_them(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 5}))
    assert offered_to(router, call("c1")) == "ann"
    router.answer("c1", "ann")
    router.reserve_consult("c1", "bob", "agent")
    assert offered_to(router, call("c2")) is None  # ann talks, bob is reserved: c2 waits
    assert router.release_consult("c1", leg="someone-else") is None  # not the consultation's leg: nothing
    released = router.release_consult("c1")
    assert released is not None and released.agent_id == "bob"
    assert [(o.call_id, o.agent_id) for o in released.offers] == [("c2", "bob")]  # for the channel to ring
    assert router.release_consult("c1") is None  # over already
    view = router.call("c1")
    assert view is not None and "consult_agent" not in view.fields and view.agent == "ann"


def test_only_the_agent_on_the_call_can_hand_it_on(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"loss": 5}))
    assert offered_to(router, call("c1")) == "ann"
    with pytest.raises(NotBusy):
        router.transfer("c1", "ann", "queue", skill="loss")  # ringing, not answered yet
    router.answer("c1", "ann")
    with pytest.raises(NotBusy):
        router.transfer("c1", "bob", "queue", skill="loss")


# -- the record and the report ---------------------------------------------------------------------


def test_a_transferred_call_is_one_queued_call_in_the_report_and_two_legs_in_its_record(
    router: Router, clock: Clock, sql: sessionmaker,
) -> None:
    clock.now = time.time() - 600  # today in the report
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"loss": 5}))
    start = clock.now
    router.redis.xadd(EVENTS_STREAM, {"type": "call_started", "ts": f"{start:.3f}", "call_id": "c1",
                                      "channel": "asterisk", "direction": "inbound", "language": "zh-CN"})
    assert offered_to(router, call("c1", "inquiry")) == "ann"
    clock.advance(4)
    router.answer("c1", "ann")
    clock.advance(30)
    router.transfer("c1", "ann", "queue", skill="loss", kind="queue")
    clock.advance(3)
    router.answer("c1", "bob")
    clock.advance(50)
    router.end_call("c1", "completed", agent="bob")
    path = [{"node": "main", "input": "key 0", "at": "2027-01-15T08:00:08Z"}]
    router.redis.xadd(EVENTS_STREAM, {"type": "call_ended", "ts": f"{clock.now + 0.2:.3f}", "call_id": "c1",
                                      "channel": "asterisk", "status": "completed", "outcome": "queued",
                                      "ivr_path": json.dumps(path)})
    stream = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in router.redis.xrange(EVENTS_STREAM)]
    writer = RecordWriter(sql)
    writer.write(stream[:-3])
    writer.write(stream[-4:])  # split over two batches, one event twice

    with sql() as db:
        (row,) = db.scalars(select(CallRecord)).all()
    legs = [step for step in row.ivr_path if step["node"] == "agent_leg"]
    assert [(leg["agent"], leg["talk_s"]) for leg in legs] == [("ann", 30.0), ("bob", 50.0)]
    assert (legs[0]["to_kind"], legs[0]["to"], legs[0]["mode"]) == ("queue", "loss", "cold")
    assert row.ivr_path[0]["node"] == "main"  # the IVR steps stay first
    assert (row.agent_id, row.queue, row.wait_s, row.talk_s, row.outcome) == ("bob", "inquiry", 4.0, 80.0, "routed")
    today = dt.datetime.fromtimestamp(start, dt.UTC).date()
    figures = build_report(sql, today, today, "UTC").queue
    assert (figures.inbound_calls, figures.queued, figures.answered, figures.handled) == (1, 1, 1, 1)
