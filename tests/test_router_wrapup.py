"""Wrap-up in the router against a real redis-server, the clock moved by hand: a console agent's wrap-up lasts
until they submit it (nothing is offered to them meanwhile), a phone-only agent's ends after the queue's time,
the countdown's extensions stop at the cap, and the release setting ends a forgotten one there."""

from __future__ import annotations

import pytest
import redis

from routing.agents import Agent, AgentRegistry
from routing.config import QueueConfig
from routing.exceptions import BadState
from routing.router import CallRequest, Router
from tests.fakes.clock import Clock

WRAP_S = 10


def make_router(redis_url: str, clock: Clock, **settings: object) -> Router:
    queue = QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, wrap_up=WRAP_S)
    router = Router(redis.Redis.from_url(redis_url), queues={"inquiry": queue}, clock=clock, lease_s=3600,
                    **settings)  # type: ignore[arg-type]
    router.configure()
    return router


def one_call_then_wrap_up(router: Router, clock: Clock, console: bool = True) -> AgentRegistry:
    """ann (from the console, or a desk phone only) takes one call and hangs up: she is in wrap-up."""
    registry = AgentRegistry(router, ("inquiry",))
    registry.put(Agent("ann", "Ann", "PJSIP/ann", {"inquiry": 5}, ["zh-CN"]))
    if console:
        router.mark_console_agent("ann")
    router.set_agent_state("ann", "available")
    assert [o.agent_id for o in router.enqueue(request("first"))] == ["ann"]
    router.answer("first", "ann")
    clock.advance(30)
    router.end_call("first", "completed")
    assert registry.get("ann").state == "wrap_up"  # type: ignore[union-attr]
    return registry


def request(call_id: str) -> CallRequest:
    return CallRequest(call_id, "inquiry", "zh-CN", 5, "asterisk")


def test_a_console_agents_wrap_up_outlasts_the_queues_time_and_nothing_is_offered_until_submitted(
    redis_url: str,
) -> None:
    clock = Clock()
    router = make_router(redis_url, clock)
    registry = one_call_then_wrap_up(router, clock)
    clock.advance(WRAP_S + 1)
    assert router.tick().offers == []
    assert router.enqueue(request("second")) == []  # the only agent is in wrap-up: the caller waits
    clock.advance(1800)  # half an hour on, past the 600 s cap: still nothing (the release setting is off)
    assert router.tick().offers == []
    ann = registry.get("ann")
    assert ann.state == "wrap_up" and router.call("second").state == "waiting"  # type: ignore[union-attr]
    # submitting the wrap-up (the console then makes her available) offers her the waiting call
    assert [(o.call_id, o.agent_id) for o in router.set_agent_state("ann", "available")] == [("second", "ann")]


def test_a_phone_only_agents_wrap_up_still_ends_after_the_queues_time(redis_url: str) -> None:
    clock = Clock()
    router = make_router(redis_url, clock)
    registry = one_call_then_wrap_up(router, clock, console=False)  # Asterisk *1/*2/*3, no form to submit
    assert router.enqueue(request("second")) == []
    clock.advance(WRAP_S - 1)
    assert router.tick().offers == []
    clock.advance(1)
    assert [(o.call_id, o.agent_id) for o in router.tick().offers] == [("second", "ann")]
    assert registry.get("ann").state == "offered"  # type: ignore[union-attr]


def test_the_release_setting_makes_a_forgotten_wrap_up_available_at_the_cap(redis_url: str) -> None:
    clock = Clock()
    router = make_router(redis_url, clock, wrapup_max_s=60, wrapup_release=True)
    registry = one_call_then_wrap_up(router, clock)
    router.enqueue(request("second"))
    clock.advance(59)
    assert router.tick().offers == [] and registry.get("ann").state == "wrap_up"  # type: ignore[union-attr]
    clock.advance(1)
    assert [o.agent_id for o in router.tick().offers] == ["ann"]


def test_the_countdown_extends_up_to_the_cap_and_only_in_wrap_up(redis_url: str) -> None:
    clock = Clock()
    router = make_router(redis_url, clock, wrapup_max_s=120)
    registry = one_call_then_wrap_up(router, clock)
    started = clock()
    assert registry.get("ann").wrap_until == pytest.approx(started + WRAP_S)  # type: ignore[union-attr]
    assert router.extend_wrap_up("ann", 60) == pytest.approx(started + WRAP_S + 60)
    clock.advance(100)  # past the countdown: an extension counts from now
    assert router.extend_wrap_up("ann", 10) == pytest.approx(started + 110)
    assert router.extend_wrap_up("ann", 600) == pytest.approx(started + 120)  # the cap, from the wrap-up's start
    assert registry.get("ann").wrap_until == pytest.approx(started + 120)  # type: ignore[union-attr]
    router.set_agent_state("ann", "available")
    with pytest.raises(BadState):
        router.extend_wrap_up("ann", 60)
