"""The skill router: calls wait in per-skill queues in Redis and are offered to the best agent.

Every state change is one Lua script (``routing/lua``): atomic, so a call is never offered to two
agents and an agent never holds two calls, whichever process runs it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.client import Pipeline

from routing.batch import Reader, replies, run_alone
from routing.config import DEFAULT_QUEUES, QueueConfig
from routing.estimates import WaitEstimate, WaitEstimator
from routing.exceptions import NotWaiting
from routing.keys import events_stream, router_prefix
from routing.scripts import Clock, RouterScripts, register_lua

CALL_STATES = ("waiting", "offered", "busy", "callback")


@dataclass(frozen=True)
class Offer:
    """The router reserved ``agent_id`` for ``call_id``: the channel now rings the agent."""

    call_id: str
    agent_id: str
    endpoint: str
    channel: str
    kind: str
    """``live`` (a caller on hold) or ``callback`` (dial the agent, then the customer)."""


@dataclass(frozen=True)
class CallRequest:
    """A call asking for an agent."""

    call_id: str
    skill: str
    language: str
    priority: int
    channel: str
    caller: str = ""
    """Masked: for screens and records only."""
    ivr_path: Sequence[Mapping[str, str]] = ()
    intent: str = ""
    vip: bool = False
    enqueued_at: float | None = None
    """Keep an earlier place in line (a callback retried, a re-entry)."""
    callback_number: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ended:
    offers: list[Offer]
    freed_agent: str | None = None
    """The agent the call was ringing, free again: the channel cancels that ring."""
    agent_leg: str | None = None
    state: str = ""
    """The state the call was in when it ended (busy = it had been answered); '' if nothing ended."""


@dataclass(frozen=True)
class Released:
    """A warm transfer's target freed from the consultation, and the offers that made (the channel rings them)."""

    agent_id: str
    offers: list[Offer]


@dataclass(frozen=True)
class Answered:
    wait_s: float
    predicted_wait_s: float | None
    channel: str
    callback_number: str | None


@dataclass(frozen=True)
class CallView:
    call_id: str
    state: str
    queue: str
    position: int | None
    expected_wait_s: float | None
    estimate_confident: bool
    agent: str | None
    waited_s: float
    channel: str | None
    intent: str | None
    priority: int
    callback_offer: bool = False
    fields: dict[str, str] = field(default_factory=dict)
    """Everything the router keeps of the call (the channels read their own entries)."""


@dataclass(frozen=True)
class TickResult:
    offers: list[Offer]
    ended: list[Ended]


_NOTE_CALL = Path(__file__).parent / "lua" / "note_call.lua"


class Router:
    """Typed front of the router scripts. ``clock`` is injectable: tests move time by hand."""

    def __init__(
        self, client: redis.Redis, hotline: str = "hotline", queues: Mapping[str, QueueConfig] | None = None,
        clock: Clock = time.time, lease_s: float = 30, vip_boost: int = 3, utc_offset_s: int = 0,
        wrapup_max_s: float = 600, wrapup_release: bool = False,
    ) -> None:
        """``wrapup_max_s``: the longest a wrap-up's countdown runs, extensions included; ``wrapup_release``:
        whether the reconciler makes an agent still in wrap-up then available (off: they stay until they submit)."""
        self.redis, self.prefix, self.clock = client, router_prefix(hotline), clock
        self.events_stream = events_stream(hotline)  # under the prefix's hash tag: the scripts append to it
        self.queues = dict(DEFAULT_QUEUES if queues is None else queues)
        self.lease_s, self.vip_boost = lease_s, vip_boost
        self.wrapup_max_s, self.wrapup_release = wrapup_max_s, wrapup_release
        self.scripts = RouterScripts(client, self.prefix, self.events_stream, clock, utc_offset_s)
        self.estimator = WaitEstimator(client, self.prefix)
        self._note_call = register_lua(client, _NOTE_CALL)

    def configure(self) -> None:
        """Store the queue settings where the scripts read them (every process may do it: same values)."""
        pipe = self.redis.pipeline(transaction=False)
        for skill, config in self.queues.items():
            for name, value in config.as_redis().items():
                pipe.hset(self.key(f"qconf:{skill}"), name, value)
        pipe.hset(self.key("router_conf"), mapping={"wrapup_max": repr(float(self.wrapup_max_s)),
                                                    "wrapup_release": "1" if self.wrapup_release else "0"})
        pipe.execute()

    def key(self, suffix: str) -> str:
        return self.prefix + suffix

    def staffed(self, skill: str, language: str) -> bool:
        """Whether an agent of ``skill`` (or of the queue it overflows to) speaking ``language`` is logged in
        (available, on a call, in wrap-up or on a break). Without Redis: assume so, the hold loop copes."""
        return self.answering_queue(skill, language) is not None

    def answering_queue(self, skill: str, language: str) -> str | None:
        """The queue whose logged-in agents would take a ``skill`` call now: the skill's own, else the queue it
        overflows to (``overflow_to``); None when neither has an agent speaking ``language``. Without Redis:
        the skill's own (the hold loop copes)."""
        config = self.queues.get(skill)
        skills = [skill]
        if config is not None and config.overflow_to and config.overflow_to != skill:
            skills.append(config.overflow_to)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for name in skills:
                pipe.scard(self.key(f"staffed:{name}:{language}"))
            counts = pipe.execute()
        except redis.RedisError:
            return skill
        return next((name for name, n in zip(skills, counts, strict=True) if int(n) > 0), None)

    def offers_callback(self, skill: str) -> bool:
        """The queue's escalation ends in a callback offer (``callback_after`` > 0)."""
        config = self.queues.get(skill)
        return config is not None and config.callback_after > 0

    def offer_callback_now(self, call_id: str) -> None:
        """Nobody can answer the waiting call: its callback offer is due at once, not after ``callback_after``."""
        self.redis.hset(self.key(f"call:{call_id}"), mapping={"callback_offer": "1", "callback_now": "1"})

    def enqueue(self, request: CallRequest, lease_s: float | None = None) -> list[Offer]:
        """Put the call in line; returns the offers this made (possibly for this very call)."""
        priority = request.priority + (self.vip_boost if request.vip else 0)
        at = request.enqueued_at or self.clock()
        fields: dict[str, str] = {
            "caller": request.caller, "intent": request.intent, "vip": "1" if request.vip else "",
            "ivr_path": json.dumps(list(request.ivr_path), ensure_ascii=False, separators=(",", ":")),
            **request.extra,
        }
        if request.callback_number:
            fields["callback_number"] = request.callback_number
        flat = [item for pair in fields.items() for item in pair]
        reply = self.scripts.run(
            "enqueue", request.call_id, request.skill, request.language, priority, request.channel,
            repr(at), lease_s or self.lease_s, *flat,
        )
        return _offers(reply)

    def set_agent_state(self, agent_id: str, state: str, reason: str = "") -> list[Offer]:
        """available / not_ready / offline. Raises NoSuchAgent, AgentOnCall, BadState."""
        return _offers(self.scripts.run("agent_state", agent_id, state, reason))

    def answer(self, call_id: str, agent_id: str, lease_s: float | None = None, leg: str = "") -> Answered:
        """The agent picked up (on ``leg``, their channel, kept as ``answered_leg`` for the call's controls).
        Raises NotOffered when the offer is gone (the agent must be hung up)."""
        wait, predicted, channel, number = self.scripts.run("answer", call_id, agent_id, lease_s or self.lease_s,
                                                            leg)
        return Answered(float(wait), float(predicted) if predicted else None, _text(channel), _text(number) or None)

    def accept(self, call_id: str, agent_id: str, ring_s: float) -> None:
        """The agent took the offer on screen: it stops timing out for ``ring_s``; the phone's pick-up
        answers it. Raises NotOffered when the offer is gone."""
        self.scripts.run("accept", call_id, agent_id, ring_s)

    def mark_console_agent(self, agent_id: str) -> None:
        """The agent works from the console: their wrap-ups last until they submit them there (a phone-only
        agent's end after the queue's ``wrap_up`` time). Nothing for an agent that does not exist."""
        self.scripts.run("console_seen", agent_id)

    def extend_wrap_up(self, agent_id: str, seconds: float) -> float:
        """More time on the agent's wrap-up countdown, up to ``wrapup_max_s`` from its start; returns the new
        end of the countdown. Raises NoSuchAgent, or BadState when the agent is not in wrap-up."""
        return float(_text(self.scripts.run("wrap_extend", agent_id, seconds)))

    def reject(self, call_id: str, agent_id: str, reason: str) -> list[Offer]:
        """The agent did not take the call: agent not_ready, call offered again at its place."""
        return _offers(self.scripts.run("reject", call_id, agent_id, reason))

    def end_call(self, call_id: str, reason: str, cancel_callback: bool = False, agent: str = "") -> Ended:
        """The call is over (talked, or abandoned). A pending callback stands unless cancelled.
        With ``agent``, only while the call is with that agent (a late report changes nothing)."""
        return _ended(self.scripts.run("end_call", call_id, reason, "1" if cancel_callback else "", agent))

    def end_call_in(self, pipe: Pipeline, call_id: str, reason: str) -> Reader[Ended]:
        """``end_call`` in a batch (``routing.batch``)."""
        read = self.scripts.queue(pipe, "end_call", call_id, reason, "", "")
        return lambda outcome: _ended(read(outcome))

    def transfer(self, call_id: str, from_agent: str, how: str, *, skill: str = "", to_agent: str = "",
                 mode: str = "cold", kind: str = "queue") -> list[Offer]:
        """The agent on the call hands it on; the call keeps its id (one call in the reports, its legs in the
        record). ``how``: ``queue`` (waits again in ``skill``'s queue, at its old place), ``pinned`` (offered to
        ``to_agent`` only, back to its own queue if they do not take it) or ``joined`` (``to_agent`` already
        talks to the caller: a warm transfer completed). The first agent goes to wrap-up.
        Raises NotBusy (the call is not with ``from_agent``) or TargetUnavailable (``to_agent`` is not free)."""
        return _offers(self.scripts.run("transfer", call_id, from_agent, how, skill, to_agent, mode, kind))

    def tick(self, limit: int = 500) -> TickResult:
        """Reconcile: expired offers, wrap-ups past the cap (release on), lost calls, escalation steps due."""
        offers, ended = self.scripts.run("tick", limit)
        return TickResult(_offers(offers), [Ended([], _text(a) or None, _text(leg) or None) for _, a, leg in ended])

    def request_callback(self, call_id: str, number: str, lifetime_s: float = 4 * 3600) -> None:
        """The waiting caller leaves the line but keeps their place; raises NotWaiting if too late."""
        self.scripts.run("callback", call_id, number, caller_key(number), lifetime_s)

    def cancel_callback_of(self, number: str) -> Ended | None:
        """A caller who asked for a callback calls again: the callback is cancelled."""
        return self.cancel_callback(run_alone(self.redis, self.callback_of_in, number))

    def callback_of_in(self, pipe: Pipeline, number: str) -> Reader[str | None]:
        """In a batch (``routing.batch``): the call whose callback ``number`` asked for, if any."""
        pipe.get(self.key(f"callback_by:{caller_key(number)}"))
        return lambda outcome: None if (found := replies(outcome)[0]) is None else _text(found)

    def cancel_callback(self, call_id: str | None) -> Ended | None:
        """The callback of ``call_id`` (from ``callback_of_in``) is cancelled: its caller called again."""
        return None if call_id is None else self.end_call(call_id, "callback_cancelled", cancel_callback=True)

    def renew(self, call_ids: Iterable[str], lease_s: float | None = None) -> None:
        """The channel still holds these calls: push their leases out (never shortening one)."""
        until = self.clock() + (lease_s or self.lease_s)
        mapping = {call_id: until for call_id in call_ids}
        if mapping:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zadd(self.key("leases"), mapping, xx=True, gt=True)
            pipe.zadd(self.key("channel_leases"), mapping, xx=True, gt=True)
            pipe.execute()

    def track_channel_call(self, call_id: str, channel: str, lease_s: float | None = None) -> None:
        """A channel process holds this call from start to end (menus included): if the process dies and
        stops renewing it (``renew``), the reconciler ends the call's record after the lease."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.key("channel_leases"), {call_id: self.clock() + (lease_s or self.lease_s)})
        pipe.hset(self.key("channel_of"), call_id, channel)
        pipe.execute()

    def untrack_channel_call(self, call_id: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(self.key("channel_leases"), call_id)
        pipe.hdel(self.key("channel_of"), call_id)
        pipe.execute()

    def wait_for_offer(self, call_id: str, timeout_s: float) -> str | None:
        """Block up to ``timeout_s`` for an agent to be reserved for the call; returns the agent id."""
        got = self.redis.blpop([self.offer_list(call_id)], timeout=timeout_s)
        return _text(got[1]) if got else None

    def offer_list(self, call_id: str) -> str:
        """The list a waiting call's channel blocks on (BLPOP): the router pushes the reserved agent's id.
        For a channel that blocks with a client of its own (no socket timeout shorter than the wait)."""
        return self.key(f"notify:{call_id}")

    def note_announced(self, call_id: str, at: float) -> None:
        """The caller was last told their place and expected wait at ``at`` (the hold loops pace it)."""
        self._note_call(keys=[self.key(f"call:{call_id}")], args=["announced_at", f"{at:.3f}"])

    def note_agent_leg(self, call_id: str, leg: str) -> None:
        """The channel's id of the call ringing the agent, so it can be cancelled."""
        self._note_call(keys=[self.key(f"call:{call_id}")], args=["agent_leg", leg])

    def reserve_consult(self, call_id: str, agent_id: str, kind: str) -> None:
        """A warm transfer's target (``kind``: agent or supervisor) is reserved for the consultation on ``call_id``:
        not ready (``consult <call>``), so the router offers them nothing else meanwhile, and noted on the call.
        Raises NoSuchAgent, AgentOnCall, BadState (nothing noted then)."""
        self.set_agent_state(agent_id, "not_ready", f"consult {call_id}")
        self.redis.hset(self.key(f"call:{call_id}"), mapping={"consult_agent": agent_id, "consult_kind": kind})

    def release_consult(self, call_id: str, leg: str | None = None) -> Released | None:
        """A warm transfer's consultation is over without a hand-over to wait for (cancelled, failed, completed,
        or the target's call ended): the call forgets it and the target, if still reserved for it (not ready,
        ``consult <call>``), is available again. With ``leg``: only when that is the consultation's call.
        Returns the target with the offers their release made, for the channel to ring (None: no consultation
        on the call, or ``leg`` is not its call). One script: atomic, one round trip."""
        target, offers = self.scripts.run("release_consult", call_id, "" if leg is None else "1", leg or "")
        return Released(_text(target), _offers(offers)) if _text(target) else None

    def note_hold(self, call_id: str, on: bool) -> None:
        """The caller was put on hold (or taken back): kept on the call so a console reloaded shows it."""
        self._note_call(keys=[self.key(f"call:{call_id}")], args=["on_hold", "1" if on else "0"])

    def call(self, call_id: str) -> CallView | None:
        """Where a call stands: state, queue, position, expected wait, agent."""
        data = {_text(k): _text(v) for k, v in self.redis.hgetall(self.key(f"call:{call_id}")).items()}
        if "state" not in data or "skill" not in data:
            return None  # never queued, ended, or a stub an older hotline left behind
        now, queue = self.clock(), f"{data['skill']}:{data['language']}"
        estimate = WaitEstimate(0, None, False)
        if data["state"] in ("waiting", "callback"):
            estimate = self.estimator.for_call(data["skill"], data["language"], call_id)
        return CallView(
            call_id=call_id, state=data["state"], queue=queue,
            position=estimate.position or None, expected_wait_s=estimate.seconds,
            estimate_confident=estimate.confident, agent=data.get("agent"),
            waited_s=round(now - float(data["enqueued_at"]), 3), channel=data.get("channel"),
            intent=data.get("intent"), priority=int(data.get("priority") or 0),
            callback_offer=data.get("callback_offer") == "1", fields=data,
        )

    def waiting_call(self, call_id: str) -> CallView:
        view = self.call(call_id)
        if view is None or view.state != "waiting":
            raise NotWaiting(f"call {call_id} is not waiting")
        return view


def caller_key(number: str) -> str:
    """Index key for a caller's number, without keeping the number in the key name."""
    return hashlib.sha256(number.encode()).hexdigest()[:32]


def _ended(reply: Any) -> Ended:
    offers, freed, leg, state = reply
    return Ended(_offers(offers), _text(freed) or None, _text(leg) or None, _text(state))


def _offers(reply: Any) -> list[Offer]:
    return [Offer(*(_text(part) for part in row)) for row in reply]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
