"""Hang-up, hold, transfer and monitor of a connected Asterisk call over AMI (``calls.control.CallControl``).

The caller's channel stays in the FastAGI hold loop's ``Dial`` to the agent for the whole call
(``agi_scripts/hold.py``): the hotline keeps the call's id, its lease and its record. So nothing here moves the
caller out of that Dial; each action works beside it:

- hang-up: AMI ``Hangup`` of the caller's channel (the call id is its uniqueid); the Dial ends, the agent's leg
  with it, and the hold loop ends the call as completed.
- hold: ``Originate`` of ``Local/s@hotline-hold`` (music on hold) running ``ChanSpy(<caller>,qwE)``: the music
  is whispered to the caller, and ``VOLUME(RX)`` keeps the agent's voice from them. The agent still hears the
  caller. Resume: the music's channel is hung up, the agent unmuted.
- cold transfer: the router takes the call from the agent (``Router.transfer``: queued again for a skill, or
  offered to one agent only), then the agent's leg is hung up: the Dial returns to the hold loop, which plays
  music and dials whoever the router offers it to next. Same call id, one call in the reports.
- warm transfer (to an agent or a supervisor): the caller is held as above; the target's phone is rung into
  ``hotline-consult``, ``ChanSpy(<agent>,qwE)``: agent and target talk (the target also hears the caller's side;
  the caller hears only music); the target hanging up first runs ``consult-ended``, which releases them.
  Complete: AMI ``Bridge`` of the caller and the target's channel (the caller leaves the agent's
  bridge, which ends the agent's leg; the hold loop's Dial lasts until the new bridge ends) and the router
  makes the target the call's agent; when the call's queue records, MixMonitor on the caller's channel records the
  target's part from there on. Cancel: the target's channel is hung up, the caller taken off hold.
- monitor: ChanSpy dialled to the supervisor's phone (``workers.monitor``).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

import redis

from calls.control import ControlRefused, MonitorMode, TransferMode, TransferTarget
from calls.conversation_keeper import ConversationKeeper
from calls.conversations import Conversation
from routing.agents import AgentRegistry
from routing.endpoints import asterisk_target
from routing.exceptions import RouterError
from routing.router import CallView, Router
from workers.ami import AmiClient, AmiError, Message, session
from workers.dialers import AmiConfig
from workers.monitor import AmiMonitor, MonitorRefused

log = logging.getLogger(__name__)

HOLD_CONTEXT = "hotline-hold"
"""asterisk_conf/extensions.conf: answers and plays music on hold."""
CONSULT_CONTEXT = "hotline-consult"
"""asterisk_conf/extensions.conf: a warm transfer's target talks with the agent (ChanSpy); their hang-up before the
hand-over runs the ``consult-ended`` script."""
SILENT = -32768
"""``VOLUME(RX)`` that silences what the agent says: func_volume divides each sample by it. (AMI ``MuteAudio``
would say it plainer but needs res_mutestream, which not every Asterisk build has; func_volume is in all.)
A manipulate audiohook runs after ChanSpy's, so a warm transfer's target still hears the agent."""


def hold_channel_id(call_id: str) -> str:
    """The uniqueid given to the call's hold-music channel (so resume finds it without a lookup)."""
    return f"hold-{call_id}"


def consult_channel_id(call_id: str) -> str:
    """The uniqueid given to the warm transfer target's leg."""
    return f"consult-{call_id}"


class AsteriskCallControl:
    channel = "asterisk"

    def __init__(self, config: AmiConfig, router: Router, agents: AgentRegistry, music_class: str = "default",
                 recorded: ConversationKeeper | None = None) -> None:
        """``recorded``: where a warm transfer's target is recorded from the hand-over (None: not recorded)."""
        self.config, self.router, self.agents, self.music_class = config, router, agents, music_class
        self.recorded = recorded
        self._monitor = AmiMonitor(config)

    # -- CallControl ----------------------------------------------------------------------------------
    def hangup(self, call: CallView) -> None:
        _connected(call)
        with self._ami() as ami:
            self._act(ami, "Hangup", [("Channel", call.call_id), ("Cause", 16)])
        log.info("call %s: hung up from the console", call.call_id)

    def hold(self, call: CallView, on: bool) -> None:
        _connected(call)
        with self._ami() as ami:
            if on:
                self._hold_on(ami, call.call_id)
            else:
                self._hold_off(ami, call.call_id)
        log.info("call %s: %s", call.call_id, "on hold" if on else "taken off hold")

    def transfer(self, call: CallView, target: TransferTarget, mode: TransferMode) -> None:
        agent_id = _connected(call)
        if target.kind != "queue":
            to = self.agents.get(target.value)
            if to is None or to.id == agent_id:
                raise ControlRefused(f"no other agent {target.value[:64]!r} to transfer to")
        if mode == "warm":
            self._warm(call, agent_id, target)
            return
        with self._ami() as ami:
            agent_leg = self._variable(ami, call.call_id, "BRIDGEPEER")
            if not agent_leg:
                raise ControlRefused("the caller is not bridged to the agent on Asterisk")
            try:
                if target.kind == "queue":
                    if target.value not in self.router.queues:
                        raise ControlRefused(f"no queue {target.value[:32]!r}")
                    self.router.transfer(call.call_id, agent_id, "queue", skill=target.value, kind="queue")
                else:
                    self.router.transfer(call.call_id, agent_id, "pinned", to_agent=target.value, kind=target.kind)
            except RouterError as exc:
                raise ControlRefused(str(exc)) from None
            self._act(ami, "Hangup", [("Channel", agent_leg), ("Cause", 16)])
        log.info("call %s: %s moved it to %s %s (cold)", call.call_id, agent_id, target.kind, target.value[:64])

    def complete_transfer(self, call: CallView) -> None:
        agent_id = _connected(call)
        target = call.fields.get("consult_agent", "")
        if not target:
            raise ControlRefused("no warm transfer is in progress on this call")
        with self._ami() as ami:
            # Bridge finds its channels by *prefix* (features.c: ast_channel_get_by_name_prefix, names then
            # uniqueids): an id is the prefix of others (a Local target's other side is '<id>;2', a caller
            # '1733.12' of '1733.123'), so it is given the channels' full names, looked up exactly here.
            target_leg = self._variable(ami, consult_channel_id(call.call_id), "CHANNEL")
            caller = self._variable(ami, call.call_id, "CHANNEL")
            if not target_leg:
                raise ControlRefused("the transfer target is no longer on the line")
            if not caller:
                raise ControlRefused("the caller is no longer on the line")
            try:
                self.router.transfer(call.call_id, agent_id, "joined", to_agent=target, mode="warm",
                                     kind=call.fields.get("consult_kind", "agent"))
            except RouterError as exc:
                raise ControlRefused(str(exc)) from None
            self._act(ami, "Bridge", [("Channel1", caller), ("Channel2", target_leg), ("Tone", "no")])
            self._end_music(ami, call.call_id)
            self._record_hand_over(ami, call, target, caller)
        self.router.release_consult(call.call_id)
        log.info("call %s: warm transfer from %s to %s completed", call.call_id, agent_id, target)

    def cancel_transfer(self, call: CallView) -> None:
        _connected(call)
        target = call.fields.get("consult_agent", "")
        if not target:
            raise ControlRefused("no warm transfer is in progress on this call")
        with self._ami() as ami:
            self._quiet_hangup(ami, consult_channel_id(call.call_id))
            self._hold_off(ami, call.call_id)
        self.router.release_consult(call.call_id)
        log.info("call %s: warm transfer to %s cancelled", call.call_id, target)

    def monitor(self, call: CallView, agent_endpoint: str, supervisor_endpoint: str, mode: MonitorMode) -> None:
        try:
            self._monitor.spy(agent_endpoint, supervisor_endpoint, mode)
        except MonitorRefused as exc:
            raise ControlRefused(str(exc)) from None

    # -- the steps ---------------------------------------------------------------------------------------
    def _hold_on(self, ami: AmiClient, call_id: str) -> None:
        if self._variable(ami, hold_channel_id(call_id), "CHANNEL"):
            return  # already on hold (a second click, or a warm transfer from hold): one music leg is enough
        caller = self._variable(ami, call_id, "CHANNEL")
        agent_leg = self._variable(ami, call_id, "BRIDGEPEER")
        if not caller or not agent_leg:
            raise ControlRefused("the caller is not bridged to the agent on Asterisk")
        self._act(ami, "Setvar", [("Channel", agent_leg), ("Variable", "VOLUME(RX)"), ("Value", SILENT)])
        self._act(ami, "Originate", [
            ("Channel", f"Local/s@{HOLD_CONTEXT}/n"), ("Application", "ChanSpy"), ("Data", f"{caller},qwE"),
            ("Variable", f"HOTLINE_MOH={self.music_class}"), ("ChannelId", hold_channel_id(call_id)),
            ("OtherChannelId", f"{hold_channel_id(call_id)}-music"), ("CallerID", '"hold" <hold>'),
            ("Async", "true"),
        ])

    def _hold_off(self, ami: AmiClient, call_id: str) -> None:
        agent_leg = self._variable(ami, call_id, "BRIDGEPEER")
        self._end_music(ami, call_id)
        if agent_leg:
            self._act(ami, "Setvar", [("Channel", agent_leg), ("Variable", "VOLUME(RX)"), ("Value", 0)])

    def _warm(self, call: CallView, agent_id: str, target: TransferTarget) -> None:
        if target.kind == "queue":
            raise ControlRefused("a warm transfer goes to an agent or a supervisor; send a queue the call cold")
        if call.fields.get("consult_agent"):
            raise ControlRefused("a warm transfer is already in progress on this call")
        to = self.agents.get(target.value)
        phone = asterisk_target(to.endpoint) if to is not None else None
        if to is None or phone is None:
            raise ControlRefused(f"agent {target.value[:64]!r} has no Asterisk phone to ring")
        if to.state != "available":
            raise ControlRefused(f"agent {to.id} is not available (now {to.state})")
        try:
            self.router.reserve_consult(call.call_id, to.id, target.kind)
        except RouterError as exc:
            raise ControlRefused(str(exc)) from None
        try:
            with self._ami() as ami:
                agent_leg = self._variable(ami, call.call_id, "BRIDGEPEER")
                if not agent_leg:
                    raise ControlRefused("the caller is not bridged to the agent on Asterisk")
                self._hold_on(ami, call.call_id)
                self._act(ami, "Originate", [
                    ("Channel", phone), ("Context", CONSULT_CONTEXT), ("Exten", "s"), ("Priority", 1),
                    ("Variable", f"HOTLINE_SPY={agent_leg}"), ("Variable", f"HOTLINE_CALL={call.call_id}"),
                    ("ChannelId", consult_channel_id(call.call_id)), ("CallerID", f'"transfer" <{agent_id}>'),
                    ("Timeout", self.config.ring_timeout_s * 1000), ("Async", "true"),
                ])
        except ControlRefused:
            self.router.release_consult(call.call_id)
            raise
        log.info("call %s: %s consults %s before a transfer (warm)", call.call_id, agent_id, to.id)

    def _record_hand_over(self, ami: AmiClient, call: CallView, target: str, caller: str) -> None:
        """Record the target's talk with the caller, when the call's queue records: MixMonitor on the *caller's*
        channel, which ``Bridge`` only moved from one bridge to the other, and which lasts as long as the talk. (The
        target's channel was running ChanSpy, so ``Bridge`` swapped it for a copy, ast_channel_yank.) The hold loop
        stops and keeps the recording when its Dial returns (``HoldLoop._keep_handed_over``)."""
        keeper = self.recorded
        skill = call.fields.get("offered_skill") or call.fields.get("skill", "")
        if keeper is None or not keeper.wanted(self.router.queues, skill, call.call_id):
            return
        started = time.time()
        path = keeper.spool_path(call.call_id, target, started)
        try:
            keeper.conversations.start(Conversation(call.call_id, "asterisk", target, caller, started, path,
                                                    on_caller=True))
            self._act(ami, "MixMonitor", [("Channel", call.call_id), ("File", f"{path}.raw"), ("Options", "D")])
        except (redis.RedisError, ControlRefused) as exc:  # the transfer is done; only its recording is lost
            log.warning("call %s: %s's part after the hand-over not recorded: %s", call.call_id, target, exc)
            with suppress(redis.RedisError):
                keeper.conversations.end(call.call_id, target)

    # -- AMI ---------------------------------------------------------------------------------------------
    @contextmanager
    def _ami(self) -> Iterator[AmiClient]:
        cfg = self.config
        try:
            with session(cfg.host, cfg.port, cfg.username, cfg.secret, cfg.connect_timeout_s) as ami:
                yield ami
        except AmiError as exc:
            raise ControlRefused(f"Asterisk could not be asked: {exc}") from None

    def _act(self, ami: AmiClient, action: str, headers: Sequence[tuple[str, object]]) -> Message:
        reply = ami.request(action, headers, action_id=f"hotline-ctl-{secrets.token_hex(4)}",
                            timeout_s=self.config.connect_timeout_s)
        if reply.get("response", "").lower() != "success":
            raise ControlRefused(f"Asterisk refused {action}: {reply.get('message') or 'no reason given'}")
        return reply

    def _variable(self, ami: AmiClient, channel: str, name: str) -> str:
        """A channel variable ('' when the channel or the variable does not exist)."""
        reply = ami.request("Getvar", [("Channel", channel), ("Variable", name)],
                            action_id=f"hotline-ctl-{secrets.token_hex(4)}", timeout_s=self.config.connect_timeout_s)
        return reply.get("value", "") if reply.get("response", "").lower() == "success" else ""

    def _end_music(self, ami: AmiClient, call_id: str) -> None:
        """Hang up the hold music's Local channel from its music side: ChanSpy on the other side sees the
        hang-up as a frame and ends at once (a soft hang-up of the spying side was seen to wait for the caller)."""
        self._quiet_hangup(ami, f"{hold_channel_id(call_id)}-music")
        self._quiet_hangup(ami, hold_channel_id(call_id))

    def _quiet_hangup(self, ami: AmiClient, channel: str) -> None:
        """Hang up a helper channel that may already be gone (that is not an error)."""
        ami.request("Hangup", [("Channel", channel)], action_id=f"hotline-ctl-{secrets.token_hex(4)}",
                    timeout_s=self.config.connect_timeout_s)


def _connected(call: CallView) -> str:
    """The agent the call is connected to; refused when it is not (ringing, waiting, over)."""
    if call.state != "busy" or not call.agent:
        raise ControlRefused(f"call {call.call_id[:64]} is not connected to an agent")
    return call.agent

