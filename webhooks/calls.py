"""The Twilio channel's work: form fields -> engine event -> TwiML, with the session in Redis."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlencode

from redis.client import Pipeline
from twilio.twiml.voice_response import VoiceResponse

from calls.answered_by import AnsweredByNotes, is_machine
from calls.call_events import call_ended_in, call_started_in, emit_call_failed, queue_request
from calls.keys import talked_key
from calls.log_context import at_step
from calls.menus import MenuRepository
from calls.sessions import SessionStore
from calls.tombstones import Finished, Tombstones
from ivr import actions as act
from ivr import events as ev
from ivr.engine import Engine
from ivr.model import Menu
from ivr.session import Session
from routing.batch import Batch, Reader, replies
from routing.events import EventLog
from routing.router import Ended
from webhooks.conference import join_conference
from webhooks.hold import TWILIO_MAX_CALL_S, TwilioHold
from webhooks.twiml import StepUrls, enqueue, render, speak

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
_KEYS = re.compile(r"[^0-9*#]")
MAX_DIGITS_FIELD = 64
REQUEUE_RESULTS = frozenset({"error", "system-error"})
"""Twilio could not hold the caller (https://www.twilio.com/docs/voice/twiml/enqueue#attributes-action-parameters):
an error of the moment, not the caller leaving, so they are put back in their queue."""
MAX_REQUEUES = 3
HELD_STATES = frozenset({"waiting", "offered"})
"""Router states of a call whose caller belongs on hold (in their Twilio queue), not with an agent."""


class BadRequest(ValueError):
    """A webhook without the fields Twilio always sends."""


@dataclass(frozen=True)
class ChannelConfig:
    public_url: str
    menu_name: str
    survey_menu: str = "survey"
    machine_message: str = ""
    """What a return visit leaves on an answering machine (no details: anyone may play it back); empty: nothing."""
    unknown_answer: Literal["human", "machine"] = "machine"
    """How a return visit treats ``AnsweredBy=unknown``: a voicemail box must never hear the work order."""


@dataclass(frozen=True)
class OutboundStart:
    """The first webhook of a call the hotline placed: which menu, about which return visit."""

    menu: str
    visit: str
    language: str | None = None


class TwilioCalls:
    def __init__(
        self, config: ChannelConfig, engine: Engine, menus: MenuRepository,
        sessions: SessionStore, events: EventLog, hold: TwilioHold, tombstones: Tombstones,
        answered_by: AnsweredByNotes,
    ) -> None:
        self.config, self.engine, self.menus = config, engine, menus
        self.sessions, self.events, self.hold, self.tombstones = sessions, events, hold, tombstones
        self.answered_by = answered_by
        self.router, self.connector = hold.router, hold.connector

    def voice(self, form: Mapping[str, str], seq: int | None, timed_out: bool,
              outbound: OutboundStart | None = None, language: str | None = None, requeue: int = 0,
              joined: bool = False) -> str:
        """Answer one voice webhook: the first of a call, or one caller event. ``joined``: the action of the
        caller's ``<Dial><Conference>`` (the conversation with the agent is over, or the caller was moved)."""
        call_id = _required(form, "CallSid")
        live: Callable[[], Menu] | None = None
        if seq is None and outbound is None:
            # A call's first webhook (or Twilio's retry of it): its menu's live version in the same round trip.
            batch = Batch(self.router.redis)
            loaded = batch.add(self.sessions.load_in, call_id)
            live = batch.add(self.menus.live_in, self.config.menu_name)
            batch.send()
            stored = loaded()
        else:
            stored = self.sessions.load(call_id)
        at_step(stored.session.node if stored else "start")
        if stored is not None and seq != stored.session.seq:
            return stored.last_answer  # a replayed or out-of-date step: answer as before
        if stored is not None and (joined or form.get("QueueResult") == "redirected"):
            # The caller was moved by REST (into their agent's conference, or back on hold after a transfer): the
            # Enqueue action comes "right away" (https://www.twilio.com/docs/voice/twiml/enqueue#attributes-action)
            # and the Dial action when the move takes them out of a conference; neither ends the wait in the menu.
            view = self.router.call(call_id)
            if form.get("QueueResult") == "redirected" or (view is not None and view.state in HELD_STATES):
                return self.resume(call_id)
            form = {**form, "QueueResult": "bridged"}  # the conversation with the agent is over
        if (stored is not None and form.get("QueueResult") in REQUEUE_RESULTS and requeue < MAX_REQUEUES
                and self.router.call(call_id) is not None):
            return self._requeue(stored.session, requeue + 1)
        if stored is None and seq is not None:
            finished = self.tombstones.claim_when_buried(call_id)
            if finished is not None:
                return self._late(finished, form, timed_out)
            log.warning("call %s: step %s for an unknown session, starting over", call_id, seq)
        if stored is None and outbound is not None and is_machine(form.get("AnsweredBy", ""),
                                                                  self.config.unknown_answer):
            return self._machine(call_id, outbound)
        if stored is None:
            menu, call = self._start(call_id, form, outbound, language, live)
            session, actions = self.engine.start(menu, call)
        else:
            menu = self.menus.version(stored.session.menu, stored.session.menu_version)
            session, actions = self.engine.step(menu, stored.session, _event(form, timed_out))
        twiml = render(actions, self._urls(session))
        if not self.sessions.save(session, twiml):
            # The same step was served twice at once (a retried webhook): answer as the winner did.
            winner = self.sessions.load(call_id)
            return winner.last_answer if winner else twiml
        if stored is None:
            self._started(session, form.get("Direction", "inbound"), outbound)
        self._enqueue(session, actions)
        return twiml

    def resume(self, call_id: str) -> str:
        """Where the caller belongs now, for a call moved by REST (``TwilioHold.resume_url``): with their agent
        (the conference named for the call), back on hold (a transfer to a queue), or nowhere (it is over)."""
        stored = self.sessions.load(call_id)
        view = self.router.call(call_id)
        response = VoiceResponse()
        if stored is None or view is None:
            response.hangup()
            return str(response)
        urls = self._urls(stored.session)
        if view.state in HELD_STATES:
            self.router.redis.delete(talked_key(call_id))  # transferred: waiting again, for another queue
            enqueue(response, urls)
            return str(response)
        self.router.redis.set(talked_key(call_id), "1", ex=TWILIO_MAX_CALL_S)
        dial = response.dial(action=f"{urls.step}&joined=1", method="POST")
        join_conference(dial, call_id, role="caller", public_url=self.config.public_url)
        return str(response)

    def _started(self, session: Session, direction: str, outbound: OutboundStart | None) -> None:
        """The call's record starts; a callback the caller asked for earlier is cancelled (they called again; the
        hotline calling the customer is not them calling again). One round trip for both."""
        batch = Batch(self.router.redis)
        started = batch.add(call_started_in, self.events, session, direction)
        callback = batch.add(self.router.callback_of_in, session.caller) if session.caller and outbound is None \
            else None
        batch.send()
        started()
        if callback is not None:
            self._settle(self.router.cancel_callback(callback()))

    def failed(self, form: Mapping[str, str]) -> None:
        """A voice webhook the hotline could not serve (the caller hears the apology): the call still gets
        its record. The events are spooled to disk when Redis is what failed, and sent once it is back."""
        call_id = form.get("CallSid", "")[:64]
        if call_id:
            emit_call_failed(self.events, call_id, "twilio", form.get("From", ""), form.get("To", ""),
                             form.get("Direction", "inbound"))

    def status(self, form: Mapping[str, str]) -> None:
        """A status callback: a final status ends the session and emits ``call_ended`` once."""
        call_id = _required(form, "CallSid")
        status = form.get("CallStatus", "")
        if status not in FINAL_STATUSES:
            return
        # What the call leaves in the router, on hold and in the menus goes in one round trip.
        batch = Batch(self.router.redis)
        router_ended = batch.add(self.router.end_call_in, call_id, "caller_hangup")
        queue_dropped = batch.add(self.hold.call_ended_in, call_id)
        was_talked = batch.add(_deleted_in, talked_key(call_id))
        batch.add(self.tombstones.ending_in, call_id)  # before the take: see ``claim_when_buried``
        taken = batch.add(self.sessions.take_in, call_id)
        batch.send()
        ended = router_ended()
        self._settle(ended)
        queue_dropped()
        talked = was_talked()
        stored = taken()
        if stored is None:
            return
        session = last = stored.session
        if not session.ended:
            # With an agent when the caller hung up (or after: the agent left first, or handed the caller on): the
            # Dial action of their conference may come after this, or not at all.
            event = ev.QueueResult("bridged") if ended.state == "busy" or talked else ev.Hangup()
            last, _ = self.engine.step(self.menus.version(session.menu, session.menu_version), session, event)
        # The tombstone (the session as the last step left it, for a Record or Enqueue action still on its way:
        # ``Tombstones.claim_when_buried``) and the call's record go in one round trip.
        batch = Batch(self.router.redis)
        buried = batch.add(self.tombstones.bury_in, session)
        recorded = batch.add(call_ended_in, self.events, last, status, form.get("CallDuration", ""))
        batch.send()
        recorded()  # spooled if the round trip failed, before the tombstone's error is raised
        buried()

    def _machine(self, call_id: str, outbound: OutboundStart) -> str:
        """A return visit reached a machine: no survey (it would read the complaint into a mailbox); the
        attempt is a voicemail, retried later."""
        self.answered_by.note_machine(call_id)
        response = VoiceResponse()
        if self.config.machine_message:
            speak(response, act.Say(self.config.machine_message, outbound.language or "zh-CN"))
        response.hangup()
        return str(response)

    def _requeue(self, session: Session, attempt: int) -> str:
        log.warning("call %s: Twilio could not hold the caller, enqueued again (%d)", session.call_id, attempt)
        urls = self._urls(session)
        response = VoiceResponse()
        enqueue(response, replace(urls, step=f"{urls.step}&{urlencode({'requeue': attempt})}"))
        return str(response)

    def _late(self, finished: Finished, form: Mapping[str, str], timed_out: bool) -> str:
        """A step of a call whose status callback came first: do what the step is for (a recording left by
        hanging up still opens its complaint), with no caller to answer, no queue, no second record."""
        event = _event(form, timed_out)
        if finished.session is not None and not finished.session.ended and isinstance(event, ev.RecordingSaved):
            session = finished.session
            self.engine.step(self.menus.version(session.menu, session.menu_version), session, event)
        hangup = VoiceResponse()
        hangup.hangup()
        return str(hangup)

    def _start(
        self, call_id: str, form: Mapping[str, str], outbound: OutboundStart | None, language: str | None = None,
        live: Callable[[], Menu] | None = None,
    ) -> tuple[Menu, ev.CallStarted]:
        """``live``: the inbound menu's live version, when it was read with the session."""
        if outbound is None:
            menu = live() if live is not None else self.menus.live(self.config.menu_name)
            return menu, ev.CallStarted(call_id, form.get("From", ""), form.get("To", ""), "twilio",
                                        language if language in menu.languages else None)
        if outbound.menu != self.config.survey_menu or not outbound.visit.isdigit():
            raise BadRequest(f"no outbound menu {outbound.menu!r} for visit {outbound.visit!r}")
        # The hotline called the customer: they are "To", and the survey needs the visit it is about.
        return self.menus.live(outbound.menu), ev.CallStarted(
            call_id, form.get("To", ""), form.get("From", ""), "twilio", outbound.language,
            vars=(("visit", outbound.visit),))

    def _urls(self, session: Session) -> StepUrls:
        base = self.config.public_url.rstrip("/")
        step = f"{base}/twilio/voice?{urlencode({'seq': session.seq})}"
        return StepUrls(
            step=step, timeout=step + "&timeout=1", recording_status=f"{base}/twilio/recording",
            queue_name=self.hold.queue_name(session.call_id), wait=self.hold.wait_url(session.call_id),
        )

    def _enqueue(self, session: Session, actions: list[act.Action]) -> None:
        for action in actions:
            if isinstance(action, act.Enqueue):
                self.connector.connect(self.router.enqueue(queue_request(session, action, "twilio")))
                if action.offer_callback:  # nobody of the queue is in: the hold's first words offer a callback
                    self.router.offer_callback_now(session.call_id)

    def _settle(self, ended: Ended | None) -> None:
        if ended is not None:
            self.connector.settle(ended)


def _deleted_in(pipe: Pipeline, key: str) -> Reader[bool]:
    """In a batch (``routing.batch``): ``key`` is deleted; whether it was there."""
    pipe.delete(key)
    return lambda outcome: bool(replies(outcome)[0])


def _event(form: Mapping[str, str], timed_out: bool) -> ev.Event:
    if "QueueResult" in form:
        return ev.QueueResult(form["QueueResult"])
    if "RecordingSid" in form:
        seconds = _number(form.get("RecordingDuration", "0"))
        return ev.RecordingSaved(form["RecordingSid"], seconds)
    if "DialCallStatus" in form:
        return ev.Hangup()
    if form.get("Digits") and not timed_out:
        # Keys only; anything else Twilio would never send is dropped, leaving an invalid entry.
        return ev.Digits(_KEYS.sub("", form["Digits"][:MAX_DIGITS_FIELD]))
    return ev.Timeout()


def _number(text: str) -> float:
    try:
        return max(0.0, float(text))
    except ValueError:
        return 0.0


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value or len(value) > 64:
        raise BadRequest(f"missing or malformed {name}")
    return value
