"""Twilio callers waiting for an agent: the wait URL, the callback choice, and the agent's leg."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from redis.client import Pipeline
from twilio.twiml.voice_response import VoiceResponse

from calls import announcements as say
from calls.connector import OfferConnector
from calls.conversations import Conversation, Conversations
from calls.keys import held_key
from ivr import actions as act
from routing.batch import Outcome, Reader, replies
from routing.exceptions import NotOffered, NotWaiting
from routing.router import CallRequest, CallView, Router
from webhooks.conference import JOIN_EVENT, conference_name, join_conference
from webhooks.conversation_recording import StartRecording, recording_attributes, recording_params
from webhooks.hold_music import SLICE_S, loops_until
from webhooks.twiml import speak

log = logging.getLogger(__name__)

FINAL_AGENT_STATUSES = frozenset({"no-answer", "busy", "failed", "canceled"})
TWILIO_MAX_CALL_S = 4 * 3600
"""Twilio ends any call after four hours: the longest a connected call's lease needs to be."""
CALLBACK_ATTEMPTS = 3
RECORDING_START_TRIES = 3
RECORDING_START_RETRY_S = 1.0
"""Twilio records only a call in progress: the agent's leg is (its TwiML is asked for once it is answered), but a
refusal is tried again a couple of times before the conversation is given up as unrecorded."""
JOIN_WAIT_S = 15.0
"""How long after the connect an agent leg's recording waits for its participant-join callback before it is started
anyway (logged as a warning). Twilio documents no retry of a status callback, so one lost (or refused by a hotline
restarting) must not leave the conversation unrecorded; but starting early records the end of the whisper, what
the join exists to leave out. The whisper is one sentence (a few seconds of speech) and the callback follows the
join within a second or so: 15 s is well past both, and a lost callback then costs the conversation's first
seconds at most, not the conversation."""
HELD_WAITS = 10
"""Seconds an agent who picked up waits for the caller to reach their queue (the caller may still hear the
<Say> before <Enqueue>): only a caller on hold is moved into the agent's conference, never one mid-menu."""


@dataclass(frozen=True)
class HoldConfig:
    public_url: str
    caller_id: str
    hold_music_url: str
    announce_every_s: float = 45
    hold_music_s: float = SLICE_S
    """The length of the file at ``hold_music_url`` (0: unknown, played once a document)."""
    wait_lease_s: float = 600
    """Twilio fetches the wait URL again when its TwiML ends: a call not seen for this long is gone."""
    callback_lifetime_s: float = 4 * 3600


Redirect = Callable[[str, str], bool]
"""Move a call (its sid) to the TwiML at a URL, through Twilio's REST API; False when Twilio refused
(the call is over, or not in progress)."""


def _nowhere(call_sid: str, url: str) -> bool:
    log.error("call %s: no Twilio account to move the caller to their agent (TWILIO_ACCOUNT_SID)", call_sid)
    return False


def _unrecordable(leg: str, params: Mapping[str, str]) -> bool:
    log.error("call leg %s: no Twilio account to record the conversation on (TWILIO_ACCOUNT_SID)", leg)
    return False


class TwilioHold:
    def __init__(self, config: HoldConfig, router: Router, connector: OfferConnector,
                 forget_queue: Callable[[str], None] = lambda sid: None,
                 conversations: Conversations | None = None, redirect: Redirect = _nowhere) -> None:
        self.config, self.router, self.connector = config, router, connector
        self._forget_queue = forget_queue
        self.conversations = conversations
        """Agent conversations being recorded (None: none are)."""
        self.start_recording: StartRecording = _unrecordable
        """Starts the REST recording of an agent's leg (the Twilio account's, set by the app)."""
        self._redirect = redirect
        self._overdue: dict[str, threading.Timer] = {}
        """Agent leg -> its fallback start (``_join_overdue``), cancelled when this process hears its join."""

    def queue_name(self, call_id: str) -> str:
        """One Twilio queue per caller: its hold, until the agent who answered takes them into a conference."""
        return f"hotline-{call_id}"

    def resume_url(self, call_id: str) -> str:
        """Where a caller's call is sent (REST) when their place changes: into the agent's conference once an
        agent answered, back on hold after a transfer to a queue (``TwilioCalls.resume``)."""
        return self._url("/twilio/caller/resume", call=call_id)

    def wait_url(self, call_id: str) -> str:
        return self._url("/twilio/queue/wait", call=call_id)

    def wait(self, call_id: str, queue_sid: str = "") -> str:
        """TwiML played on hold, fetched again by Twilio each time it ends."""
        response = VoiceResponse()
        view = self.router.call(call_id)
        if view is None:
            response.leave()  # the router no longer has the call: back to the menu's next node
            return str(response)
        self.router.renew([call_id], self.config.wait_lease_s)
        # Twilio asks the waitUrl once the caller is in the queue (https://www.twilio.com/docs/voice/twiml/enqueue#waiturl):
        # from now on they are on hold, and an agent who answers may take them into the conference.
        self.router.redis.set(held_key(call_id), queue_sid or "-", ex=TWILIO_MAX_CALL_S)
        language = view.fields["language"]
        due_in = self.config.announce_every_s
        if view.state == "waiting":
            due_in = self._announce(response, view.fields, language, call_id)
            if view.callback_offer:
                choice = self._url("/twilio/queue/choice", call=call_id)
                gather = response.gather(num_digits=1, timeout=5, action=choice, method="POST")
                offer = say.NO_AGENT_CALLBACK if view.fields.get("callback_now") else say.CALLBACK_OFFER
                speak(gather, act.Say(say.text(offer, language), language))
        # The document ends when the next announcement is due, well inside the hold lease.
        loops = loops_until(due_in, self.config.hold_music_s, self.config.wait_lease_s / 2)
        response.play(self.config.hold_music_url, loop=loops if loops > 1 else None)
        return str(response)

    def call_ended_in(self, pipe: Pipeline, call_id: str) -> Reader[None]:
        """In a batch (``routing.batch``): the caller's call is over, their Twilio queue goes (it would stay
        forever otherwise)."""
        pipe.getdel(held_key(call_id))

        def read(outcome: Outcome) -> None:
            queue_sid = replies(outcome)[0]
            if queue_sid and queue_sid not in (b"-", "-"):
                self._forget_queue(queue_sid.decode() if isinstance(queue_sid, bytes) else str(queue_sid))

        return read

    def choice(self, call_id: str, form: Mapping[str, str]) -> str:
        """The caller's key after the callback offer: 1 takes it; anything else keeps waiting."""
        response = VoiceResponse()
        if form.get("Digits") == "1" and form.get("From"):
            try:
                self.router.request_callback(call_id, form["From"], self.config.callback_lifetime_s)
            except NotWaiting:
                response.redirect(self.wait_url(call_id), method="POST")  # an agent is ringing already
                return str(response)
            view = self.router.call(call_id)
            language = view.fields.get("language", "zh-CN") if view else "zh-CN"
            speak(response, act.Say(say.text(say.CALLBACK_CONFIRMED, language), language))
            response.hangup()
            return str(response)
        response.redirect(self.wait_url(call_id), method="POST")
        return str(response)

    def agent_connect(self, call_id: str, agent_id: str, waited: int = 0, screen: str = "", leg: str = "") -> str:
        """The agent picked up: connect them to the caller (or dial the customer for a callback). With ``screen``
        the leg is screened first: only a person pressing 1 takes the call, never a voicemail box."""
        response = VoiceResponse()
        view = self.router.call(call_id)
        language = view.fields.get("language", "zh-CN") if view else "zh-CN"
        before = (self._screen(call_id, agent_id, screen) if screen else None) or (
            self._wait_for_caller(view, call_id, agent_id, waited))
        if before is not None:
            return before
        try:
            answered = self.router.answer(call_id, agent_id, TWILIO_MAX_CALL_S)
        except NotOffered:
            speak(response, act.Say(say.text(say.CALL_GONE, language), language))
            response.hangup()
            return str(response)
        done = self._url("/twilio/agent/done", call=call_id, agent=agent_id)
        # A callback's <Dial record> starts with the customer's answer; a conference leg's waits for its join.
        recorded = self._record(view, call_id, agent_id, leg, started=bool(answered.callback_number))
        if answered.callback_number:
            # A two-party <Dial><Number>: its own record attribute records both parties apart.
            record = recording_attributes(self.config.public_url, call_id, agent_id) if recorded else {}
            speak(response, act.Say(say.text(say.CALLBACK_WHISPER, language), language))
            dial = response.dial(action=done, method="POST", caller_id=self.config.caller_id or None, **record)
            dial.number(answered.callback_number)
        else:
            # The router pinned this caller to this agent (answer above): the caller's call is moved into a
            # conference named for it, which only this agent's leg joins. A conference, not <Dial><Queue>, so a
            # supervisor can join it (muted, coaching, barging) and the caller can be held and transferred.
            if not self._redirect(call_id, self.resume_url(call_id)):
                self.connector.settle(self.router.end_call(call_id, "caller_hangup", agent=agent_id))
                speak(response, act.Say(say.text(say.CALL_GONE, language), language))
                response.hangup()
                return str(response)
            intent = view.fields.get("intent", "") if view else ""
            whisper = say.text(say.AGENT_WHISPER, language, intent=say.intent_name(intent, language),
                               seconds=round(answered.wait_s))
            speak(response, act.Say(whisper, language))
            dial = response.dial(action=done, method="POST")
            join_conference(dial, call_id, role="agent", public_url=self.config.public_url)
            if recorded:
                # A <Conference> noun is recorded mixed or not at all: the agent's leg is recorded by REST
                # instead, agent and caller apart (webhooks.conversation_recording), from its participant-join
                # (participant_joined): the whisper above plays first and is not conversation.
                timer = threading.Timer(JOIN_WAIT_S, self._join_overdue, args=(call_id, agent_id, leg))
                timer.name, timer.daemon = f"record-{leg}", True
                self._overdue[leg] = timer
                timer.start()
        return str(response)

    def participant_joined(self, call_id: str, form: Mapping[str, str]) -> None:
        """A participant joined the call's conference (its ``statusCallback``): the agent leg of a conversation
        waiting for it starts being recorded, off this request. The caller, a supervisor (monitor, coach,
        barge), a consulted agent, or a leg recorded already (the fallback came first) start nothing."""
        if (self.conversations is None or form.get("StatusCallbackEvent") != JOIN_EVENT
                or form.get("FriendlyName") != conference_name(call_id)):
            return
        leg = form.get("CallSid", "")[:64]
        conversation = self.conversations.begin(call_id, leg) if leg else None
        if conversation is None:
            return
        if (timer := self._overdue.pop(leg, None)) is not None:
            timer.cancel()
        threading.Thread(target=self._record_leg, args=(call_id, conversation.agent_id, leg),
                         name=f"record-{leg}", daemon=True).start()

    def participant_left(self, call_id: str, form: Mapping[str, str]) -> None:
        """A participant left the call's conference: when it is the call of a warm transfer's target before the
        hand-over (they hung up, or never answered), the consultation is over: the target is released and the
        agent's console shows the caller back on hold with them (complete would only be refused now)."""
        if form.get("FriendlyName") != conference_name(call_id):
            return
        leg = form.get("CallSid", "")[:64]
        released = self.router.release_consult(call_id, leg=leg) if leg else None
        if released is not None:
            self.router.note_hold(call_id, True)  # the caller is still held: the console shows Resume
            log.info("call %s: %s left the consultation before the hand-over: released", call_id, released.agent_id)
            self.connector.connect(released.offers)  # free again: a caller waiting for them rings them now

    def _join_overdue(self, call_id: str, agent_id: str, leg: str) -> None:
        """``JOIN_WAIT_S`` after the connect: a leg still connected whose join was never heard of is recorded
        from now (its callback was lost, or is very late: either way it starts nothing then)."""
        self._overdue.pop(leg, None)
        view = self.router.call(call_id)
        if self.conversations is None or view is None or view.agent != agent_id:
            return  # the call ended (or moved on) before the leg joined: nothing to record
        if self.conversations.begin(call_id, leg) is None:
            return  # the join came: recorded from it
        log.warning("call %s: no participant-join callback for agent leg %s within %.0f s of its connect: "
                    "recording the conversation from now", call_id, leg, JOIN_WAIT_S)
        self._record_leg(call_id, agent_id, leg)

    def _record(self, view: CallView | None, call_id: str, agent_id: str, leg: str, started: bool) -> bool:
        """Whether the call's queue records it (its ``record`` setting); if so, the conversation is noted
        (``started=False``: its recording waits for the leg to join the conference)."""
        if self.conversations is None or not leg:
            return False
        skill = (view.fields.get("offered_skill") or view.fields.get("skill", "")) if view else ""
        policy = self.router.queues[skill].record if skill in self.router.queues else "all"
        if not self.conversations.wanted(policy, call_id):
            return False
        self.conversations.start(Conversation(call_id, "twilio", agent_id, leg, self.conversations.clock(),
                                              started=started))
        return True

    def _record_leg(self, call_id: str, agent_id: str, leg: str) -> None:
        """Start the REST recording of the agent's leg, trying again briefly when Twilio refuses. The audio starts
        when Twilio accepts: pause offsets count from when the accepted start was asked."""
        if self.conversations is None:
            return
        params = recording_params(self.config.public_url, call_id, agent_id)
        for attempt in range(RECORDING_START_TRIES):
            if attempt:
                time.sleep(RECORDING_START_RETRY_S)
            asked = self.conversations.clock()
            if self.start_recording(leg, params):
                self.conversations.recording_since(call_id, leg, asked)
                log.info("call %s: recording the conversation on agent leg %s", call_id, leg)
                return
        log.error("call %s: Twilio refused to record the conversation on agent leg %s %d times: it is not recorded",
                  call_id, leg, RECORDING_START_TRIES)

    def _wait_for_caller(self, view: CallView | None, call_id: str, agent_id: str, waited: int) -> str | None:
        """Pause and ask again while the caller is not in their queue yet (None: they are, or it is no use)."""
        if (view is None or view.agent != agent_id or view.fields.get("callback_number") or waited >= HELD_WAITS
                or self.router.redis.exists(held_key(call_id))):
            return None
        response = VoiceResponse()
        response.pause(length=1)
        response.redirect(self._url("/twilio/agent/connect", call=call_id, agent=agent_id, waited=str(waited + 1)),
                          method="POST")
        return str(response)

    def _screen(self, call_id: str, agent_id: str, step: str) -> str | None:
        """``ask``: the prompt; ``1``: taken (None: go on); anything else (no key, a voicemail): the agent is
        not there: not_ready, and the call is offered again."""
        response = VoiceResponse()
        if step == "ask":
            gather = response.gather(num_digits=1, timeout=6, method="POST",
                                     action=self._url("/twilio/agent/connect", call=call_id, agent=agent_id,
                                                      screen="answer"))
            speak(gather, act.Say(say.text(say.SCREEN_PROMPT, "zh-CN"), "zh-CN"))
            response.redirect(self._url("/twilio/agent/connect", call=call_id, agent=agent_id, screen="none"),
                              method="POST")
            return str(response)
        if step == "1":
            return None
        self.connector.connect(self.router.reject(call_id, agent_id, "screening"))
        response.hangup()
        return str(response)

    def agent_done(self, call_id: str, agent_id: str, form: Mapping[str, str]) -> str:
        """The agent's Dial ended. A callback nobody answered is tried again, keeping its place."""
        view = self.router.call(call_id)
        ended = self.router.end_call(call_id, "completed", agent=agent_id)
        self.connector.settle(ended)
        if view and view.fields.get("callback_number") and form.get("DialCallStatus") != "completed":
            self._retry_callback(call_id, view.fields)
        response = VoiceResponse()
        response.hangup()
        return str(response)

    def agent_status(self, call_id: str, agent_id: str, form: Mapping[str, str]) -> None:
        """The agent's leg ended: unanswered means the agent goes not_ready and the call is offered again."""
        status = form.get("CallStatus", "")
        if status in FINAL_AGENT_STATUSES:
            self.connector.connect(self.router.reject(call_id, agent_id, status))
        elif status == "completed":
            self.connector.settle(self.router.end_call(call_id, "completed", agent=agent_id))

    def _announce(self, response: VoiceResponse, fields: Mapping[str, str], language: str, call_id: str) -> float:
        """Position and expected wait when due; returns the seconds until the next is due."""
        now = self.router.clock()
        last = float(fields.get("announced_at") or fields.get("enqueued_at") or 0)
        first = "announced_at" not in fields
        if not first and now - last < self.config.announce_every_s:
            return last + self.config.announce_every_s - now
        estimate = self.router.estimator.for_call(fields["skill"], language, call_id)
        text = say.position_announcement(language, estimate)
        if text:
            speak(response, act.Say(text, language))
        self.router.note_announced(call_id, now)
        return self.config.announce_every_s

    def _retry_callback(self, call_id: str, fields: Mapping[str, str]) -> None:
        """Dial the customer again later, at the same place in line, up to CALLBACK_ATTEMPTS times."""
        attempts = int(fields.get("attempts") or 0) + 1
        if attempts >= CALLBACK_ATTEMPTS:
            log.info("callback for call %s: no answer after %d attempts, given up", call_id, attempts)
            return
        origin = call_id.split("~", 1)[0]
        self.connector.connect(self.router.enqueue(CallRequest(
            call_id=f"{origin}~{attempts}", skill=fields["skill"],
            language=fields["language"], priority=int(fields["priority"]), channel="twilio",
            caller=fields.get("caller", ""), intent=fields.get("intent", ""),
            enqueued_at=float(fields["enqueued_at"]), callback_number=fields["callback_number"],
            extra={"attempts": str(attempts), "callback_key": fields["callback_key"]},
        ), self.config.callback_lifetime_s))

    def _url(self, path: str, **query: str) -> str:
        return f"{self.config.public_url.rstrip('/')}{path}?{urlencode(query)}"
