"""The skill router against a real redis-server, with the clock moved by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from routing.agents import Agent, AgentRegistry
from routing.config import QueueConfig
from routing.exceptions import AgentOnCall, NotOffered
from routing.keys import EVENTS_STREAM
from routing.router import CallRequest, Offer, Router
from tests.fakes.clock import Clock

SKILLS = ("loss", "complaint", "inquiry", "general", "survey")


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_router(redis_url: str, clock: Clock, lease_s: float = 3600, **queues: QueueConfig) -> Router:
    plain = QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, wrap_up=0)
    configs = {skill: queues.get(skill, plain) for skill in SKILLS}
    router = Router(redis.Redis.from_url(redis_url), queues=configs, clock=clock, lease_s=lease_s)
    router.configure()
    return router


@pytest.fixture
def router(redis_url: str, clock: Clock) -> Iterator[Router]:
    yield make_router(redis_url, clock)


def staff(router: Router, clock: Clock, *agents: tuple[str, dict[str, int]], languages: tuple[str, ...] = ("zh-CN",),
          available: bool = True) -> AgentRegistry:
    """Agents in the order given become available one second apart (first = idle longest)."""
    registry = AgentRegistry(router, SKILLS)
    for agent_id, skills in agents:
        registry.put(Agent(agent_id, agent_id.title(), f"PJSIP/{agent_id}", skills, list(languages)))
        if available:
            router.set_agent_state(agent_id, "available")
        clock.advance(1)
    return registry


def call(call_id: str, skill: str = "inquiry", priority: int = 5, language: str = "zh-CN", **kw: object) -> CallRequest:
    return CallRequest(call_id, skill, language, priority, "asterisk", **kw)  # type: ignore[arg-type]


def offered_to(router: Router, request: CallRequest) -> str | None:
    offers = router.enqueue(request)
    return offers[0].agent_id if offers else None


def talk(router: Router, clock: Clock, call_id: str, agent_id: str, seconds: float = 60) -> list[Offer]:
    """Answer, talk, hang up; returns the offers made when the agent came free (wrap-up 0)."""
    router.answer(call_id, agent_id)
    clock.advance(seconds)
    return router.end_call(call_id, "completed").offers


def events(router: Router, kind: str) -> list[dict[str, str]]:
    rows = router.redis.xrange(EVENTS_STREAM)
    decoded = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in rows]
    return [e for e in decoded if e["type"] == kind]


# -- strategies ---------------------------------------------------------------------------------

def test_longest_idle_agent_gets_the_call(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 9}), ("cat", {"inquiry": 7}))
    assert offered_to(router, call("c1")) == "ann"
    assert offered_to(router, call("c2")) == "bob"


def test_most_skilled_agent_gets_the_call(redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, inquiry=QueueConfig(strategy="most_skilled", lower_level_after=0,
                                                               overflow_after=0, callback_after=0))
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 9}), ("cat", {"inquiry": 7}))
    assert offered_to(router, call("c1")) == "bob"
    assert offered_to(router, call("c2")) == "cat"


def test_fewest_calls_agent_gets_the_call(redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, inquiry=QueueConfig(strategy="fewest_calls", lower_level_after=0,
                                                               overflow_after=0, callback_after=0, wrap_up=0))
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 5}))
    for n in range(2):  # ann takes two calls while bob is away
        router.set_agent_state("bob", "not_ready")
        assert offered_to(router, call(f"warm{n}")) == "ann"
        talk(router, clock, f"warm{n}", "ann")
        router.set_agent_state("bob", "available")
    # bob has been idle longer than ann, and has taken fewer calls: both strategies agree; make
    # ann the longest idle and fewest-calls must still pick bob.
    router.set_agent_state("bob", "not_ready")
    clock.advance(5)
    router.set_agent_state("bob", "available")
    assert offered_to(router, call("c1")) == "bob"


def test_round_robin_takes_turns(redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, inquiry=QueueConfig(strategy="round_robin", lower_level_after=0,
                                                               overflow_after=0, callback_after=0, wrap_up=0))
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 5}), ("cat", {"inquiry": 5}))
    picked = []
    for n in range(6):
        agent = offered_to(router, call(f"c{n}"))
        assert agent is not None
        picked.append(agent)
        talk(router, clock, f"c{n}", agent, 1)
    assert picked == ["ann", "bob", "cat", "ann", "bob", "cat"]


# -- order and filters ------------------------------------------------------------------------

def test_higher_priority_first_then_oldest(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5, "loss": 9}), available=False)
    for call_id, priority in (("old", 5), ("urgent", 10), ("new", 5)):
        router.enqueue(call(call_id, priority=priority))
        clock.advance(1)
    offers = router.set_agent_state("ann", "available")
    served = []
    while offers:
        served.append(offers[0].call_id)
        offers = talk(router, clock, offers[0].call_id, "ann", 1)
    assert served == ["urgent", "old", "new"]


def test_agent_serving_two_queues_takes_the_loss_report_first(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5, "loss": 9}), available=False)
    router.enqueue(call("inquiry-old", skill="inquiry", priority=5))
    clock.advance(30)
    router.enqueue(call("lost-card", skill="loss", priority=10))
    assert router.set_agent_state("ann", "available")[0].call_id == "lost-card"


def test_vip_caller_goes_ahead_of_equal_priority(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), available=False)
    router.enqueue(call("plain"))
    clock.advance(10)
    router.enqueue(call("vip", vip=True))
    assert router.set_agent_state("ann", "available")[0].call_id == "vip"


def test_language_filter(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), languages=("zh-CN",))
    assert offered_to(router, call("english", language="en-US")) is None
    staff(router, clock, ("eve", {"inquiry": 5}), languages=("en-US", "zh-CN"))
    assert router.call("english").agent == "eve"  # type: ignore[union-attr]


def test_skill_level_floor_then_lowered_after_the_wait(redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, loss=QueueConfig(min_level=5, lower_level_after=20, overflow_after=0,
                                                            callback_after=0))
    staff(router, clock, ("junior", {"loss": 3}))
    assert offered_to(router, call("c1", skill="loss")) is None
    clock.advance(19)
    assert router.tick().offers == []
    clock.advance(1)
    offers = router.tick().offers
    assert [(o.call_id, o.agent_id) for o in offers] == [("c1", "junior")]


# -- an agent freed by the call that ends (end_call offers them the next caller in the same script) --------

def test_an_agent_freed_by_their_call_ending_takes_the_caller_a_less_skilled_agent_idle_longer_may_not(
        redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, loss=QueueConfig(min_level=5, lower_level_after=0, overflow_after=0,
                                                            callback_after=0, wrap_up=0))
    registry = staff(router, clock, ("junior", {"loss": 3}), ("senior", {"loss": 8}))
    assert offered_to(router, call("c1", skill="loss")) == "senior"
    router.enqueue(call("c2", skill="loss"))  # only senior may take it
    offers = talk(router, clock, "c1", "senior")
    assert [(o.call_id, o.agent_id) for o in offers] == [("c2", "senior")]
    assert registry.get("junior").state == "available"  # type: ignore[union-attr]
    assert offered_to(router, call("c3", skill="loss")) is None  # senior rings for c2: nobody for c3


def test_once_the_floor_is_lowered_the_agent_idle_longest_takes_the_call_whoever_came_free(
        redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, loss=QueueConfig(min_level=5, lower_level_after=20, overflow_after=0,
                                                            callback_after=0, wrap_up=0))
    registry = staff(router, clock, ("junior", {"loss": 3}), ("senior", {"loss": 8}))
    assert offered_to(router, call("c1", skill="loss")) == "senior"
    router.answer("c1", "senior")
    assert offered_to(router, call("c2", skill="loss")) is None
    clock.advance(25)  # c2 may go to any level now; the reconciler has not run yet
    ended = router.end_call("c1", "completed")
    assert [(o.call_id, o.agent_id) for o in ended.offers] == [("c2", "junior")]
    assert registry.get("senior").state == "available"  # type: ignore[union-attr]
    assert offered_to(router, call("c3", skill="loss")) == "senior"  # in the pool, as if they had waited there


def test_wrap_ups_ending_together_offer_the_callers_waiting_in_the_pools_order(redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, inquiry=QueueConfig(lower_level_after=0, overflow_after=0,
                                                               callback_after=0, wrap_up=10))
    staff(router, clock, ("amy", {"inquiry": 5}), ("Zed", {"inquiry": 5}))
    for call_id in ("c1", "c2"):
        offered = offered_to(router, call(call_id))
        assert offered is not None
        router.answer(call_id, offered)
    for call_id in ("c1", "c2"):
        router.end_call(call_id, "completed")  # both in wrap-up until the same moment
    router.enqueue(call("c3"))
    clock.advance(1)
    router.enqueue(call("c4"))
    clock.advance(9)
    offers = router.tick().offers
    # both come free with the same idle time: ties go in the sorted set's (bytewise) order, "Z" before "a"
    assert [(o.call_id, o.agent_id) for o in offers] == [("c3", "Zed"), ("c4", "amy")]


def test_overflow_to_general_after_the_wait(redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, complaint=QueueConfig(lower_level_after=0, overflow_after=60,
                                                                 callback_after=0))
    staff(router, clock, ("gen", {"general": 5}))
    assert offered_to(router, call("c1", skill="complaint")) is None
    clock.advance(59)
    assert router.tick().offers == []
    clock.advance(1)
    assert [o.agent_id for o in router.tick().offers] == ["gen"]
    assert events(router, "call_overflowed")[0]["to"] == "general:zh-CN"


def test_callback_offered_after_the_wait(redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, inquiry=QueueConfig(lower_level_after=0, overflow_after=0,
                                                               callback_after=120))
    router.enqueue(call("c1"))
    clock.advance(119)
    router.tick()
    assert not router.call("c1").callback_offer  # type: ignore[union-attr]
    clock.advance(1)
    router.tick()
    assert router.call("c1").callback_offer  # type: ignore[union-attr]
    assert [e["call_id"] for e in events(router, "callback_offered")] == ["c1"]


# -- offers, wrap-up, leaving -------------------------------------------------------------------

def test_unanswered_offer_sends_agent_not_ready_and_reoffers_at_its_place(router: Router, clock: Clock) -> None:
    registry = staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 5}), available=False)
    router.set_agent_state("ann", "available")
    router.enqueue(call("first"))  # rings ann
    clock.advance(5)
    router.enqueue(call("second"))
    clock.advance(14)  # offer_timeout is 20 s
    assert router.tick().offers == [] and router.call("first").agent == "ann"  # type: ignore[union-attr]
    clock.advance(1)  # 20 s since the offer
    router.tick()
    assert registry.get("ann").state == "not_ready"  # type: ignore[union-attr]
    assert router.call("first").position == 1  # type: ignore[union-attr]  # back ahead of "second"
    assert [o.call_id for o in router.set_agent_state("bob", "available")] == ["first"]
    with pytest.raises(NotOffered):
        router.answer("first", "ann")  # too late: the call went to bob
    assert events(router, "call_offer_failed")[0]["reason"] == "offer_timeout"


def test_an_offer_accepted_on_screen_rings_on_past_its_timeout_then_runs_out_like_any_offer(
    router: Router, clock: Clock,
) -> None:
    registry = staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 5}), available=False)
    router.set_agent_state("ann", "available")
    router.enqueue(call("first"))
    clock.advance(15)
    with pytest.raises(NotOffered):
        router.accept("first", "bob", ring_s=30)  # not offered to bob
    router.accept("first", "ann", ring_s=30)  # ann clicks accept: her phone may ring 30 s more
    assert events(router, "call_accepted")[0]["agent"] == "ann"
    clock.advance(10)  # 25 s since the offer: past the 20 s offer timeout
    router.tick()
    assert router.call("first").state == "offered"  # type: ignore[union-attr]
    router.answer("first", "ann")  # the phone picks up: answered as without a console
    assert registry.get("ann").state == "busy"  # type: ignore[union-attr]
    router.end_call("first", "completed")
    assert offered_to(router, call("second")) == "ann"  # free again at once (no wrap-up here)
    router.accept("second", "ann", ring_s=30)
    clock.advance(31)  # accepted, but the phone never picks up: back in line, ann not ready
    router.tick()
    assert router.call("second").state == "waiting" and "accepted_at" not in router.call("second").fields  # type: ignore[union-attr]
    assert registry.get("ann").state == "not_ready"  # type: ignore[union-attr]


def test_agent_reporting_no_answer_goes_not_ready_and_the_call_goes_on(router: Router, clock: Clock) -> None:
    registry = staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 5}))
    assert offered_to(router, call("c1")) == "ann"
    offers = router.reject("c1", "ann", "no-answer")
    assert [(o.call_id, o.agent_id) for o in offers] == [("c1", "bob")]
    assert registry.get("ann").state == "not_ready"  # type: ignore[union-attr]
    assert router.reject("c1", "ann", "no-answer") == []  # a repeated report changes nothing


def test_wrap_up_keeps_the_agent_out_until_it_is_over(redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, inquiry=QueueConfig(lower_level_after=0, overflow_after=0,
                                                               callback_after=0, wrap_up=15))
    registry = staff(router, clock, ("ann", {"inquiry": 5}))
    assert offered_to(router, call("c1")) == "ann"
    talk(router, clock, "c1", "ann", 30)
    assert registry.get("ann").state == "wrap_up"  # type: ignore[union-attr]
    assert offered_to(router, call("c2")) is None
    clock.advance(14)
    assert router.tick().offers == []
    clock.advance(1)
    assert [o.agent_id for o in router.tick().offers] == ["ann"]


def test_agent_going_offline_mid_offer_requeues_the_call_at_its_place(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 5}), available=False)
    router.set_agent_state("ann", "available")
    router.enqueue(call("first"))
    clock.advance(1)
    router.enqueue(call("second"))
    router.set_agent_state("ann", "offline")
    offers = router.set_agent_state("bob", "available")
    assert [o.call_id for o in offers] == ["first"]
    assert events(router, "call_requeued")[0]["call_id"] == "first"


def test_agent_on_a_call_cannot_log_out(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}))
    router.enqueue(call("c1"))
    router.answer("c1", "ann")
    with pytest.raises(AgentOnCall):
        router.set_agent_state("ann", "offline")


def test_caller_hanging_up_while_ringing_frees_the_agent(router: Router, clock: Clock) -> None:
    registry = staff(router, clock, ("ann", {"inquiry": 5}))
    router.enqueue(call("c1"))
    router.note_agent_leg("c1", "CA-agent-leg")
    ended = router.end_call("c1", "caller_hangup")
    assert (ended.freed_agent, ended.agent_leg) == ("ann", "CA-agent-leg")
    assert registry.get("ann").state == "available"  # type: ignore[union-attr]
    assert events(router, "call_abandoned")[0]["state"] == "offered"


def test_a_channel_that_stops_renewing_frees_the_agent_after_the_lease(redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, lease_s=30)
    registry = staff(router, clock, ("ann", {"inquiry": 5}))
    router.enqueue(call("c1"))
    router.answer("c1", "ann")
    clock.advance(20)
    router.renew(["c1"])  # renewed: still alive at 30 s after answering
    clock.advance(20)
    assert router.tick().ended == []
    assert registry.get("ann").state == "busy"  # type: ignore[union-attr]
    clock.advance(11)  # 31 s since the last renewal: the channel is gone
    assert len(router.tick().ended) == 1
    assert registry.get("ann").state == "available"  # type: ignore[union-attr]  # wrap_up 0
    assert router.call("c1") is None


# -- callbacks and estimates ------------------------------------------------------------------

def test_callback_keeps_its_place_and_does_not_jump_ahead(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), available=False)
    router.enqueue(call("oldest"))
    clock.advance(10)
    router.enqueue(call("middle"))
    clock.advance(10)
    router.enqueue(call("newest"))
    router.request_callback("middle", "+8613800000000")
    router.end_call("middle", "caller_hangup")  # the caller hangs up after choosing the callback: it stands
    offers = router.set_agent_state("ann", "available")
    served = []
    while offers:
        served.append((offers[0].call_id, offers[0].kind))
        offers = talk(router, clock, offers[0].call_id, "ann", 1)
    assert served == [("oldest", "live"), ("middle", "callback"), ("newest", "live")]


def test_calling_again_cancels_the_callback(router: Router, clock: Clock) -> None:
    router.enqueue(call("c1"))
    router.request_callback("c1", "+8613800000000")
    assert router.cancel_callback_of("+8613900000000") is None
    assert router.cancel_callback_of("+8613800000000") is not None
    assert router.call("c1") is None
    assert events(router, "call_abandoned")[0]["reason"] == "callback_cancelled"


def test_expected_wait_from_handle_times_and_agents_staffed(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}), ("bob", {"inquiry": 5}))
    for n in range(6):  # six calls handled in 120 s each (wrap-up 0)
        agent = offered_to(router, call(f"h{n}"))
        talk(router, clock, f"h{n}", agent, 120)  # type: ignore[arg-type]
    router.set_agent_state("ann", "not_ready")
    router.set_agent_state("bob", "not_ready")
    router.set_agent_state("ann", "available")
    router.enqueue(call("taken"))  # ann busy now
    router.answer("taken", "ann")
    for n in range(3):
        router.enqueue(call(f"w{n}"))
    view = router.call("w2")
    assert view is not None and view.position == 3
    # one agent staffed (ann; bob is not ready), 120 s per call: third in line waits ~360 s
    assert view.expected_wait_s == 360.0 and view.estimate_confident


def test_no_confident_estimate_without_history(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}))
    router.enqueue(call("c0"))
    router.enqueue(call("c1"))
    view = router.call("c1")
    assert view is not None and view.position == 1 and not view.estimate_confident


def test_every_transition_is_on_the_events_stream(router: Router, clock: Clock) -> None:
    staff(router, clock, ("ann", {"inquiry": 5}))
    router.enqueue(call("c1"))
    clock.advance(4)
    talk(router, clock, "c1", "ann", 30)
    kinds = [f[b"type"].decode() for _, f in router.redis.xrange(EVENTS_STREAM)]
    assert kinds == ["agent_state", "call_queued", "agent_state", "call_offered", "agent_state", "call_answered",
                     "call_completed", "agent_state"]
    answered = events(router, "call_answered")[0]
    assert (answered["agent"], answered["wait_s"]) == ("ann", "4.000")
    assert events(router, "call_completed")[0]["talk_s"] == "30.000"
    states = [(e["previous"], e["state"]) for e in events(router, "agent_state")]
    assert states == [("offline", "available"), ("available", "offered"), ("offered", "busy"), ("busy", "available")]


def test_skill_floor_finds_the_expert_behind_hundreds_of_juniors(redis_url: str, clock: Clock) -> None:
    router = make_router(redis_url, clock, loss=QueueConfig(min_level=5, lower_level_after=0, overflow_after=0,
                                                            callback_after=0))
    registry = AgentRegistry(router, SKILLS)
    for n in range(300):
        registry.put(Agent(f"junior{n}", "J", f"PJSIP/{n}", {"loss": 4}, ["zh-CN"]))
        router.set_agent_state(f"junior{n}", "available")
    clock.advance(1)
    registry.put(Agent("expert", "E", "PJSIP/999", {"loss": 9}, ["zh-CN"]))
    router.set_agent_state("expert", "available")  # idle the shortest time of all
    assert offered_to(router, call("c1", skill="loss")) == "expert"


def test_removing_a_ringing_agent_puts_the_call_back_and_says_so(router: Router, clock: Clock) -> None:
    registry = staff(router, clock, ("ann", {"inquiry": 5}))
    router.enqueue(call("c1"))
    router.note_agent_leg("c1", "CA-ring")
    removed = registry.remove("ann")
    assert removed.agent_leg == "CA-ring"  # the channel cancels that ring
    assert router.call("c1").state == "waiting"  # type: ignore[union-attr]
    assert events(router, "call_requeued")[0]["reason"] == "agent removed"
    assert registry.get("ann") is None


def test_a_hold_loop_or_agent_leg_noting_a_call_just_after_it_ended_brings_nothing_back(
        router: Router, clock: Clock) -> None:
    router.enqueue(call("c1"))
    router.note_announced("c1", clock())
    assert router.call("c1") is not None
    router.end_call("c1", "caller_hangup")
    router.note_announced("c1", clock())  # the hold loop's late request
    router.note_agent_leg("c1", "CA-agent")  # the agent leg's late request
    assert router.call("c1") is None  # no stub without skill or state (it made /twilio/agent/connect fail)
    assert not router.redis.exists(router.key("call:c1"))
