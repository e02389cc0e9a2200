"""Asterisk callers waiting for an agent: music on hold and announcements while the router looks,
then ``Dial`` to the agent it reserved. The agent's pick-up reaches the router through the Dial
``U()`` gosub, which runs the ``agent-answered`` FastAGI script on the agent's channel."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from agi_scripts.agi import HotlineAGI, quote
from agi_scripts.exceptions import AgiHangup, AgiTimeout
from calls import announcements
from calls.connector import OfferConnector
from calls.conversation_keeper import ConversationKeeper
from calls.conversations import Conversation
from ivr import actions as act
from ivr import events as ev
from routing.agents import AgentRegistry
from routing.endpoints import asterisk_target
from routing.exceptions import NotOffered
from routing.leases import LeaseKeeper
from routing.router import CallRequest, CallView, Router

log = logging.getLogger(__name__)

ANSWER_GOSUB = "hotline-agent-answer"
"""asterisk_conf/extensions.conf: runs ``agent-answered`` on the agent's channel when they pick up."""
RECORD_HANDLER = "hotline-agent-record"
"""asterisk_conf/extensions.conf: the pre-dial handler that starts MixMonitor on the agent's channel."""
_DIALPLAN_SAFE = re.compile(r"[A-Za-z0-9_./-]+")
LONGEST_CALL_S = 4 * 3600


@dataclass(frozen=True)
class HoldDeps:
    router: Router
    agents: AgentRegistry
    connector: OfferConnector
    keeper: LeaseKeeper
    waiting: redis.Redis
    """A pooled connection for the blocking wait on offers (the shared one must never block)."""
    announce_every_s: float = 45
    max_wait_s: float = 1800
    poll_s: float = 1.0
    music_class: str = "default"
    recorded: ConversationKeeper | None = None
    """Keeps the agent conversation MixMonitor recorded, once the call is over (None: nothing recorded)."""


class AgiHold:
    def __init__(self, agi: HotlineAGI, deps: HoldDeps, play: Callable[[act.Say], None]) -> None:
        self.agi, self.deps, self.play = agi, deps, play
        self._transferred = False

    def wait_for_agent(self, request: CallRequest) -> ev.QueueResult:
        """Queue the caller and hold them until an agent took the call (bridged) or the wait is over."""
        router = self.deps.router
        self.deps.connector.connect(router.enqueue(request))
        self.deps.keeper.hold(request.call_id)
        try:
            return self._hold(request)
        except (AgiHangup, AgiTimeout):
            self.deps.connector.settle(router.end_call(request.call_id, "caller_hangup"))
            raise
        except Exception:
            # Garbage from Asterisk: the server's error boundary apologises and hangs up, so the call is over.
            self.deps.connector.settle(router.end_call(request.call_id, "channel_error"))
            raise
        finally:
            self.deps.keeper.release(request.call_id)

    def _hold(self, request: CallRequest) -> ev.QueueResult:
        started = time.monotonic()
        next_announcement = started
        self._music(True)
        while True:
            agent_id = self._next_offer(request.call_id)
            if agent_id is not None:
                if self._ring(request.call_id, agent_id):
                    return ev.QueueResult("bridged")
                if self._transferred:  # waiting again after a talk: the longest wait counts from now
                    self._transferred = False
                    started = next_announcement = time.monotonic()
                self._music(True)
                continue
            self.agi.command("NOOP")  # a caller who hung up shows here as HANGUP
            self._still_there()
            now = time.monotonic()
            if now - started >= self.deps.max_wait_s:
                self.deps.connector.settle(self.deps.router.end_call(request.call_id, "timeout"))
                self._music(False)
                return ev.QueueResult("timeout")
            if now >= next_announcement:
                next_announcement = now + self.deps.announce_every_s
                self._announce(request)

    def _still_there(self) -> None:
        # NOOP and GET VARIABLE still answer 200 on a dead channel: the HANGUP line may be all we get.
        if self.agi.hangup_noticed:
            raise AgiHangup("the caller hung up on hold")

    def _next_offer(self, call_id: str) -> str | None:
        try:
            got = self.deps.waiting.blpop([self.deps.router.offer_list(call_id)], timeout=self.deps.poll_s)
        except redis.RedisError as exc:  # keep the caller on hold; routing resumes when Redis is back
            log.warning("call %s: waiting for an agent without redis (%s)", call_id, type(exc).__name__)
            time.sleep(self.deps.poll_s)
            return None
        return _text(got[1]) if got else None

    def _ring(self, call_id: str, agent_id: str) -> bool:
        """Dial the reserved agent; True once they talked to the caller."""
        router = self.deps.router
        view, agent = router.call(call_id), self.deps.agents.get(agent_id)
        if view is None or agent is None or view.state != "offered" or view.agent != agent_id:
            return False  # a stale notice: the offer moved on
        skill = view.fields.get("offered_skill") or view.fields["skill"]
        timeout = int(router.queues[skill].offer_timeout if skill in router.queues else 20)
        self._music(False)
        channel = asterisk_target(agent.endpoint)
        if channel is None:  # stored before endpoints were checked, or edited behind the hotline's back
            log.error("call %s: agent %s not dialled: endpoint %r is not a channel the hotline dials",
                      call_id, agent_id, agent.endpoint[:80])
            self.deps.connector.connect(router.reject(call_id, agent_id, "failed"))
            return False
        record = self._recording(call_id, agent_id, skill)
        target = f"{channel},{timeout},{record}U({ANSWER_GOSUB}^{call_id}^{agent_id})"
        dial_status, after = None, None
        try:
            self.agi.command("EXEC", "Dial", quote(target), timeout_s=LONGEST_CALL_S)
            status = self.agi.command("GET VARIABLE", "DIALSTATUS")
            dial_status = status.data.upper() if status.result == "1" else ""
            after = router.call(call_id)
        finally:
            if record and self.deps.recorded is not None:  # the agent's channel is gone: MixMonitor closes the file
                # the agent's channel as the router noted it at the answer; handed on since: the phone dialled
                leg = (after.fields.get("answered_leg", "") if after is not None else "") or channel
                self.deps.recorded.keep_later(call_id, agent_id, answered=None if dial_status is None else
                                              dial_status == "ANSWER", leg=leg)
            self._keep_handed_over(call_id, agent_id, caller_there=dial_status is not None)
        if after is not None and after.state == "busy" and after.agent == agent_id:
            self.deps.connector.settle(router.end_call(call_id, "completed", agent=agent_id))
            return True
        if after is not None and after.fields.get("transferred_from") == agent_id and after.agent != agent_id:
            return self._after_transfer(call_id, after)
        if dial_status == "CANCEL":
            raise AgiHangup("the caller hung up while the agent was ringing")
        reason = (dial_status or "noanswer").lower()
        self.deps.connector.connect(router.reject(call_id, agent_id, reason))
        return False

    def _recording(self, call_id: str, agent_id: str, skill: str) -> str:
        """The Dial option that records this leg when its queue records the call: a pre-dial handler on the
        agent's channel (``b()``, asterisk_conf/extensions.conf ``hotline-agent-record``) starts MixMonitor while
        it rings, so the pick-up runs the same script, recorded or not. MixMonitor writes nothing before the
        bridge brings audio, so the file starts at the answer (``ConversationKeeper`` corrects the offsets)."""
        keeper = self.deps.recorded
        if keeper is None or not keeper.wanted(self.deps.router.queues, skill, call_id):
            return ""
        started = time.time()
        path = keeper.spool_path(call_id, agent_id, started)
        if not _DIALPLAN_SAFE.fullmatch(path):
            log.error("call %s not recorded: the spool path %r has characters a Dial option cannot carry",
                      call_id, path)
            return ""
        try:
            keeper.conversations.start(Conversation(call_id, "asterisk", agent_id, "", started, path))
        except redis.RedisError as exc:  # the caller still reaches the agent; only the recording is lost
            log.warning("call %s not recorded: redis %s", call_id, type(exc).__name__)
            return ""
        return f"b({RECORD_HANDLER}^s^1({path}))"

    def _keep_handed_over(self, call_id: str, agent_id: str, caller_there: bool) -> None:
        """A warm transfer's target is recorded on the caller's channel from the hand-over on
        (``AsteriskCallControl``); the Dial returning means the caller's bridge with them is over: stop that
        MixMonitor (when the caller is still there; a hung-up channel closes the file itself) and keep it."""
        keeper = self.deps.recorded
        if keeper is None:
            return
        try:
            newest = keeper.conversations.get(call_id)
        except redis.RedisError:
            return  # the file stays in the spool, as when the agent's own recording could not be kept
        if newest is None or not newest.on_caller or newest.agent_id == agent_id:
            return
        if caller_there:
            try:
                self.agi.command("EXEC", "StopMixMonitor")
            except (AgiHangup, AgiTimeout):
                pass  # the caller hung up meanwhile: the channel's end closes the file
        keeper.keep_later(call_id, newest.agent_id, answered=True)

    def _after_transfer(self, call_id: str, after: CallView) -> bool:
        """The agent handed the call on while it was bridged (``AsteriskCallControl``). Cold: the call waits
        again (or rings the one agent it was handed to); the hold loop goes on with the same caller. Warm,
        completed: the caller talked to the new agent in a bridge of their own, which has now ended."""
        if after.state == "busy" and after.agent:
            self.deps.connector.settle(self.deps.router.end_call(call_id, "completed", agent=after.agent))
            return True
        log.info("call %s: transferred, waiting for %s", call_id, after.queue)
        self._transferred = True
        return False

    def _announce(self, request: CallRequest) -> None:
        router = self.deps.router
        view = router.call(request.call_id)
        if view is None:  # the router lost the call (Redis restarted without it): queue it again, same place
            log.warning("call %s: not in the router any more, queued again", request.call_id)
            self.deps.connector.connect(router.enqueue(request))
            return
        if view.state != "waiting":
            return
        text = announcements.position_announcement(request.language, router.estimator.for_call(
            view.fields["skill"], request.language, request.call_id))
        if text:
            self._music(False)
            self.play(act.Say(text, request.language, "hold.position"))
            self._music(True)

    def _music(self, on: bool) -> None:
        self.agi.command("SET MUSIC", "on" if on else "off", self.deps.music_class)


def agent_answered(agi: HotlineAGI, router: Router, query: dict[str, list[str]], lease_s: float) -> None:
    """The ``agent-answered`` script, run by the Dial ``U()`` gosub on the agent's channel at pick-up.
    When the offer is gone (timed out, caller left), the agent's leg is hung up and the caller's goes on.
    The router notes the agent's channel with the answer (pausing a recording mutes MixMonitor there); the
    recording itself was decided when the hold loop dialled, so recorded or not this is the same work."""
    call_id, agent_id = (query.get("call") or [""])[0], (query.get("agent") or [""])[0]
    try:
        router.answer(call_id, agent_id, lease_s, leg=agi.env.get("agi_channel", ""))
    except NotOffered:
        log.info("agent %s picked up call %s after the offer ended", agent_id, call_id)
        agi.command("SET VARIABLE", "GOSUB_RESULT", "CONTINUE")


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
