"""Transfers in the router (issue 18): the call keeps its id, the first agent is freed, the call goes on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from routing.exceptions import NotBusy, TargetUnavailable
from routing.router import Router
from tests.fakes.clock import Clock
from tests.test_router import call, events, make_router, offered_to, staff


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


def test_only_the_agent_on_the_call_can_hand_it_on(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"loss": 5}))
    assert offered_to(router, call("c1")) == "ann"
    with pytest.raises(NotBusy):
        router.transfer("c1", "ann", "queue", skill="loss")  # ringing, not answered yet
    router.answer("c1", "ann")
    with pytest.raises(NotBusy):
        router.transfer("c1", "bob", "queue", skill="loss")
