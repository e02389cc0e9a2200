"""Controlling a connected Twilio call from the web, through Twilio's REST API (``calls.control.CallControl``).

A Twilio caller talks to their agent in a conference named for the call (``webhooks.conference``): the caller's
call and the agent's leg are its two participants, addressed by their CallSids. So:

- monitor: the supervisor's phone is rung and added as a third participant: ``listen`` muted, ``whisper``
  coaching the agent's leg (heard by the agent only), ``barge`` unmuted;
- hold: the caller's participant ``Hold=true`` with the hotline's hold music, ``false`` to take them back;
- hangup: the caller's call is completed (the conference ends with it: the caller ends it on exit);
- transfer, cold, to a queue: ``Router.transfer`` puts the call in line again for the other skill under the same
  call id, and the caller's call is moved back on hold (``/twilio/caller/resume``) until an agent of that queue
  answers;
- transfer, cold, to an agent or supervisor: ``Router.transfer`` offers the call (same id) to them alone (refused
  at once when they are not available), the caller is moved back on hold and the agent dialer rings the target's
  phone for that offer like any other (back to its own queue if they do not pick up);
- transfer, warm, to an agent or supervisor: the target is reserved (not ready, ``consult <call>``: the router
  offers them nothing else), the caller's participant on hold, the target's phone added as a participant labelled
  ``consult`` (the agent talks to them); complete: ``Router.transfer`` makes the target the call's agent (the
  first goes to wrap-up), the target ends the conference on exit, the caller is taken off hold and the agent's
  participant (no longer ending it) is removed; cancel: the ``consult`` participant is removed, the caller taken
  off hold and the target released.

https://www.twilio.com/docs/voice/api/conference-resource ·
https://www.twilio.com/docs/voice/api/conference-participant-resource ·
https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.rest.api.v2010.account.conference import ConferenceContext

from calls.connector import OfferConnector
from calls.control import ControlRefused, MonitorMode, TransferMode, TransferTarget
from calls.conversations import Conversation, Conversations
from calls.keys import held_key
from routing.agents import AgentRegistry
from routing.endpoints import twilio_target
from routing.exceptions import RouterError
from routing.router import CallView, Offer, Router

log = logging.getLogger(__name__)

CONFERENCE_PREFIX = "hotline-"
"""The conference of a call is ``hotline-<CallSid>`` (``webhooks.conference.conference_name``)."""
CONSULT = "consult"
"""The label of a warm transfer's target in the conference: Twilio addresses a participant by its label too."""


@dataclass(frozen=True)
class TwilioControlConfig:
    public_url: str
    account_sid: str
    auth_token: str
    api_base: str
    caller_id: str
    """The hotline's Twilio number: the caller ID a supervisor's phone shows."""
    hold_music_url: str
    """What a caller on hold hears (``HOTLINE_TWILIO_HOLD_MUSIC`` or the hotline's own slice)."""
    ring_timeout_s: int = 20
    sip_domains: tuple[str, ...] = ()
    request_timeout_s: float = 10.0


class TwilioCallControl:
    """``CallControl`` for ``channel == "twilio"``; each method returns once Twilio accepted the request."""

    channel = "twilio"

    def __init__(self, config: TwilioControlConfig, router: Router, connector: OfferConnector,
                 agents: AgentRegistry, conversations: Conversations | None = None,
                 start_recording: Callable[[str, str, str], bool] | None = None) -> None:
        self.config, self.router, self.connector, self.agents = config, router, connector, agents
        self.conversations, self.start_recording = conversations, start_recording
        """Conversation recording: ``start_recording(leg, call_id, agent_id)`` records a completed warm transfer's
        new leg as the first one was (``hotline.app`` builds it on the Recording resource)."""
        self.client = Client(config.account_sid, config.auth_token,
                             http_client=TwilioHttpClient(timeout=config.request_timeout_s))
        self.client.api.base_url = config.api_base.rstrip("/")

    # -- moving the caller's call ----------------------------------------------------------------

    def redirect(self, call_sid: str, url: str) -> bool:
        """Move a call to the TwiML at ``url``; False when Twilio refused (the call is over: 404, or not in
        progress: 400 with code 21220) or could not be asked."""
        try:
            self.client.calls(call_sid).update(url=url, method="POST")
        except (TwilioException, OSError) as exc:
            log.info("call %s not moved to %s: %s", call_sid, url.split("?", 1)[0], _reason(exc))
            return False
        return True

    # -- CallControl -------------------------------------------------------------------------------

    def hangup(self, call: CallView) -> None:
        self._rest(lambda: self.client.calls(call.call_id).update(status="completed"), "hang up the caller")

    def hold(self, call: CallView, on: bool) -> None:
        conference = self._conference(call)
        participant = self.client.conferences(conference).participants(call.call_id)
        if on:
            self._rest(lambda: participant.update(hold=True, hold_url=self.config.hold_music_url, hold_method="GET"),
                       "hold the caller")
        else:
            self._rest(lambda: participant.update(hold=False), "take the caller back")

    def transfer(self, call: CallView, target: TransferTarget, mode: TransferMode) -> None:
        if mode == "cold" and target.kind == "queue":
            self._to_queue(call, target.value)
        elif mode == "cold":
            self._to_person(call, target)
        elif target.kind in ("agent", "supervisor"):
            self._consult(call, target)
        else:
            raise ControlRefused("a warm transfer goes to a person: an agent or a supervisor")

    def complete_transfer(self, call: CallView) -> None:
        agent_id = _connected(call)
        target = call.fields.get("consult_agent", "")
        if not target:
            raise ControlRefused("no warm transfer is in progress on this call")
        agent_leg = call.fields.get("agent_leg", "")
        if not agent_leg:
            raise ControlRefused("the agent's leg of this call is not known")
        conference = self._conference(call)
        room = self.client.conferences(conference)
        # The target now ends the conference on leaving (the caller is not left alone); the agent no longer does,
        # so removing them leaves the caller with the target. First, as it fails when the target has left.
        self._rest(lambda: room.participants(CONSULT).update(end_conference_on_exit=True),
                   "hand the caller to the consulted party (are they still on the line?)")
        try:  # the target is the call's agent from now on (the same call, one in the reports); the agent wraps up
            self.router.transfer(call.call_id, agent_id, "joined", to_agent=target, mode="warm",
                                 kind=call.fields.get("consult_kind", "agent"))
        except RouterError as exc:
            raise ControlRefused(str(exc)) from None
        consult_leg = call.fields.get("consult_leg", "")
        if consult_leg:  # the target's call, for a supervisor who coaches them (whisper) and the recordings
            self.router.note_agent_leg(call.call_id, consult_leg)
            self._record_joined(call.call_id, agent_id, target, consult_leg)
        self._release_consult(call.call_id)
        # The router has moved on: what is left is Twilio's side, and the agent's Dial action changes nothing now.
        self._rest(lambda: room.participants(agent_leg).update(end_conference_on_exit=False), "let the agent go")
        self._rest(lambda: room.participants(call.call_id).update(hold=False), "take the caller off hold")
        self._rest(lambda: room.participants(agent_leg).delete(), "remove the agent from the call")
        log.info("warm transfer of Twilio call %s from %s to %s completed", call.call_id, agent_id, target)

    def _record_joined(self, call_id: str, agent_id: str, target: str, leg: str) -> None:
        """The target's talk with the caller is a leg of its own, recorded when the first one was (the same call,
        the same queue's setting), dual-channel on the target's call by REST, fetched by the recording callback."""
        talks, start = self.conversations, self.start_recording
        if talks is None or start is None or talks.get(call_id, agent_id) is None:
            return
        talks.start(Conversation(call_id, "twilio", target, leg, time.time()))
        if not start(leg, call_id, target):
            talks.end(call_id, target)
            log.error("call %s: the conversation with %s after the transfer is not recorded", call_id, target)

    def cancel_transfer(self, call: CallView) -> None:
        _connected(call)
        target = call.fields.get("consult_agent", "")
        if not target:
            raise ControlRefused("no warm transfer is in progress on this call")
        conference = self._conference(call)
        room = self.client.conferences(conference)
        try:  # the target may have hung up or never answered: they are released all the same
            room.participants(CONSULT).delete()
        except (TwilioException, OSError) as exc:
            log.info("call %s: the consulted party was not removed (%s): gone already", call.call_id, _reason(exc))
        self._rest(lambda: room.participants(call.call_id).update(hold=False), "take the caller off hold")
        self._release_consult(call.call_id)
        log.info("warm transfer of Twilio call %s to %s cancelled", call.call_id, target)

    def monitor(self, call: CallView, agent_endpoint: str, supervisor_endpoint: str, mode: MonitorMode) -> None:
        to = twilio_target(supervisor_endpoint, self.config.sip_domains)
        if to is None:
            raise ControlRefused(f"{supervisor_endpoint[:64]!r} cannot be rung through Twilio: use client:<name>, "
                                 "a +number or a sip: address of an allowed domain")
        agent_leg = call.fields.get("agent_leg", "")
        if mode == "whisper" and not agent_leg:
            raise ControlRefused("the agent's leg of this call is not known: it cannot be coached")
        conference = self._conference(call)
        extra: dict[str, object] = {"muted": mode == "listen"}
        if mode == "whisper":
            # Coaching: heard by the participant named in CallSidToCoach only (the agent), not by the caller.
            extra.update(coaching=True, call_sid_to_coach=agent_leg)
        self._rest(lambda: self.client.conferences(conference).participants.create(
            from_=self.config.caller_id, to=to, beep="false", end_conference_on_exit=False,
            early_media=False, timeout=self.config.ring_timeout_s, label=f"supervisor-{mode}", **extra,
        ), f"ring the supervisor ({mode})")
        log.info("%s on Twilio call %s: ringing %s", mode, call.call_id, supervisor_endpoint)

    # -- the parts ---------------------------------------------------------------------------------

    def _to_queue(self, call: CallView, skill: str) -> None:
        """Cold transfer to a queue: ``Router.transfer`` puts the call in line again for ``skill`` under the same
        call id (its record keeps each agent's leg, the reports count it once), the agent wraps up, and the
        caller goes back on hold."""
        agent_id = _connected(call)
        if skill not in self.router.queues:
            raise ControlRefused(f"no queue {skill[:32]!r}")
        try:
            offers = self.router.transfer(call.call_id, agent_id, "queue", skill=skill, kind="queue")
        except RouterError as exc:
            raise ControlRefused(str(exc)) from None
        # No agent of the new queue may take the caller before they are back on hold (the wait URL sets it).
        self.router.redis.delete(held_key(call.call_id))
        self._ring_after_move(call.call_id, offers)
        log.info("Twilio call %s: %s moved it to queue %s (cold)", call.call_id, agent_id, skill[:32])

    def _to_person(self, call: CallView, target: TransferTarget) -> None:
        """Cold transfer to a named agent or supervisor: the router offers the call (same id) to them alone, the
        agent is freed to wrap up, and the caller goes back on hold, where the target's ring reaches them as any
        offer's does (``webhooks.hold.TwilioHold.agent_connect`` waits for the caller to be on hold)."""
        agent_id = _connected(call)
        to = self.agents.get(target.value)
        if to is None or to.id == agent_id:
            raise ControlRefused(f"no other agent {target.value[:64]!r} to transfer to")
        try:
            offers = self.router.transfer(call.call_id, agent_id, "pinned", to_agent=to.id, kind=target.kind)
        except RouterError as exc:
            raise ControlRefused(str(exc)) from None
        # Not taken by the target before the caller is back on hold (the wait URL sets it again).
        self.router.redis.delete(held_key(call.call_id))
        self._ring_after_move(call.call_id, offers)
        log.info("Twilio call %s: %s moved it to %s %s (cold)", call.call_id, agent_id, target.kind, to.id)

    def _release_consult(self, call_id: str) -> None:
        """The consultation is over: its target, free again, is rung for a caller waiting for them."""
        released = self.router.release_consult(call_id)
        if released is not None:
            self.connector.connect(released.offers)

    def _ring_after_move(self, call_id: str, offers: list[Offer]) -> None:
        """Ring the agents the router offered the moved call to, and move the caller out of the conference back
        on hold (``/twilio/caller/resume``); a caller who is gone ends the call."""
        self.connector.connect(offers)
        if not self.redirect(call_id, self._url("/twilio/caller/resume", call=call_id)):
            self.connector.settle(self.router.end_call(call_id, "caller_hangup"))
            raise ControlRefused("Twilio did not move the caller: the call has ended")

    def _consult(self, call: CallView, transfer_to: TransferTarget) -> None:
        """Warm transfer, first part: the target reserved for it in the router (not ready, ``consult <call>``),
        the caller on hold, the target rung into the conference to talk with the agent (a participant labelled
        ``consult``; the caller hears the hold music, not them)."""
        agent_id = _connected(call)
        target_id = transfer_to.value
        if call.fields.get("consult_agent"):
            raise ControlRefused("a warm transfer is already in progress on this call")
        target = self.agents.get(target_id)
        if target is None or target_id == agent_id:
            raise ControlRefused(f"no other agent or supervisor {target_id[:64]!r} to transfer to")
        to = twilio_target(target.endpoint, self.config.sip_domains)
        if to is None:
            raise ControlRefused(f"Twilio cannot ring {target_id[:64]!r} at their endpoint")
        if target.state != "available":
            raise ControlRefused(f"agent {target.id} is not available (now {target.state})")
        conference = self._conference(call)
        room = self.client.conferences(conference)
        try:
            self.router.reserve_consult(call.call_id, target.id, transfer_to.kind)
        except RouterError as exc:
            raise ControlRefused(str(exc)) from None
        try:
            self._rest(lambda: room.participants(call.call_id).update(
                hold=True, hold_url=self.config.hold_music_url, hold_method="GET"), "hold the caller")
            try:
                self._rest(lambda: self._ring_consult(room, call.call_id, to), f"ring {target_id[:64]}")
            except ControlRefused:
                self._rest(lambda: room.participants(call.call_id).update(hold=False), "take the caller off hold")
                raise
        except ControlRefused:
            self._release_consult(call.call_id)
            raise
        log.info("warm transfer of Twilio call %s: %s consults %s", call.call_id, agent_id, target_id)

    def _ring_consult(self, room: ConferenceContext, call_id: str, to: str) -> None:
        participant = room.participants.create(
            from_=self.config.caller_id, to=to, label=CONSULT, beep="false", end_conference_on_exit=False,
            early_media=False, timeout=self.config.ring_timeout_s,
        )
        if participant.call_sid:  # the target's call: their agent leg once the transfer completes
            self.router.redis.hset(self.router.key(f"call:{call_id}"), "consult_leg", participant.call_sid)

    def _conference(self, call: CallView) -> str:
        """The sid of the call's conference in progress (Twilio addresses participants under it)."""
        name = f"{CONFERENCE_PREFIX}{call.call_id}"
        try:
            found = self.client.conferences.list(friendly_name=name, status="in-progress", limit=1)
        except (TwilioException, OSError) as exc:
            raise ControlRefused(f"Twilio could not be asked for the call's conference: {_reason(exc)}") from None
        if not found or not found[0].sid:
            raise ControlRefused("the call is not in a conference (not connected yet, or over)")
        return str(found[0].sid)

    def _rest(self, request: Callable[[], object], what: str) -> None:
        try:
            request()
        except (TwilioException, OSError) as exc:
            raise ControlRefused(f"Twilio did not {what}: {_reason(exc)}") from None

    def _url(self, path: str, **query: str) -> str:
        return f"{self.config.public_url.rstrip('/')}{path}?{urlencode(query)}"


def _connected(call: CallView) -> str:
    """The agent the call is connected to; refused when it is not (ringing, waiting, over)."""
    if call.state != "busy" or not call.agent:
        raise ControlRefused("the call is not connected to an agent")
    return call.agent


def _reason(exc: Exception) -> str:
    if isinstance(exc, TwilioRestException):
        return f"HTTP {exc.status} ({exc.msg})"[:200]
    return type(exc).__name__
