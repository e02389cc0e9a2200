"""Twilio, as far as the hotline can tell: signed webhooks for the callers it plays, a REST API on loopback
for the calls the hotline places (agents' phones, return visits), and the recordings it fetches.

Callers follow the TwiML they get back like Twilio does: a ``<Gather>`` gets the caller's next entry, a
``<Record>`` gets its length, an ``<Enqueue>`` holds the caller (fetching the wait URL) until the hotline moves
their call (REST) into the conference their agent dialled, or their patience ends.
"""

from __future__ import annotations

import itertools
import logging
import random
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

import requests
from twilio.request_validator import RequestValidator

from simulate.clock import DayClock, Measurements
from simulate.phones import AgentPhones
from simulate.twilio_rest import rest_handler

log = logging.getLogger(__name__)

ACCOUNT_SID = "AC" + "5" * 32
HOTLINE_NUMBER = "+861095555"
RECORD_PREFIX = "record:"
MAX_STEPS = 200
HANGUP_WHILE_RECORDING = 0.3
"""Share of Twilio callers who hang up to end their complaint recording instead of pressing #."""
DUPLICATE_STATUS = 0.2
"""Share of hang-ups whose final status callback comes twice (webhooks may repeat:
https://www.twilio.com/docs/usage/webhooks/webhooks-overview)."""
MACHINE_ANSWERS = 0.15
"""Share of answered return visits a voicemail box or fax takes."""
MACHINES = ("machine_start", "fax", "unknown")
"""The AnsweredBy values MachineDetection=Enable sends for anything but a person."""
MUSIC_SLICE_S = 10.0
"""The hotline's own hold-music slice (``/twilio/hold-music.wav``): what one loop of its <Play> lasts."""
SAY_S = 4.0


class WebhookFailed(Exception):
    """The hotline did not answer a webhook with TwiML: Twilio would play its error message and hang up."""

    def __init__(self, message: str, delivered: bool = True) -> None:
        super().__init__(message)
        self.delivered = delivered
        """The hotline got the request (it answered late or wrongly): it has the call."""


@dataclass
class Waiting:
    """A caller in ``<Enqueue>``: the agent's leg bridges them, talks, and ends the call."""

    talk_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: threading.Event = field(default_factory=threading.Event)
    """Set on the first waitUrl request: the caller is on hold from then on."""
    moved: threading.Event = field(default_factory=threading.Event)
    """The hotline redirected the call (REST): the caller leaves the queue for ``moves[0]``."""
    moves: list[str] = field(default_factory=list)
    redirected: bool = False
    """The hotline moved the call at least once (the agent's conference finds the caller)."""
    bridged: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    gone: bool = False


@dataclass
class TwilioOutcome:
    started: bool = False
    queued: bool = False
    answered: bool = False
    abandoned: bool = False
    failed: bool = False
    hung_up_recording: bool = False
    """The caller ended the complaint recording by hanging up: its work order must exist all the same."""
    status_sent: bool = False
    said: list[str] = field(default_factory=list)


class TwilioCloud:
    """The webhook side and the REST side of Twilio for one simulated day."""

    def __init__(self, hotline_url: str, auth_token: str, clock: DayClock, measured: Measurements,
                 phones: AgentPhones, survey_answer_rate: float, seed: int) -> None:
        self.hotline_url, self.clock, self.measured, self.phones = hotline_url.rstrip("/"), clock, measured, phones
        self.validator = RequestValidator(auth_token)
        self.survey_answer_rate = survey_answer_rate
        self._rng, self._rng_lock = random.Random(seed), threading.Lock()
        # Twilio's SIDs are unique across days and accounts: a second day on one database must not meet
        # the first day's calls (https://www.twilio.com/docs/glossary/what-is-a-sid).
        self._sids = itertools.count(1)
        self._sid_nonce = secrets.randbits(64)
        self._waiting: dict[str, Waiting] = {}
        self._cancelled: set[str] = set()
        self._orders: dict[tuple[str, ...], Iterator[tuple[str, ...]]] = {}
        self.recordings: dict[str, str] = {}
        """Recording sid -> the call it is of (``GET Recordings/<sid>.json`` answers it)."""
        self._recording_callbacks: dict[str, list[tuple[str, str, float]]] = {}
        """Call sid -> (recording sid, status callback URL, day time started) of each recording made by REST."""
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), rest_handler(self))
        self.server.daemon_threads = True
        self.api_base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.survey_calls: list[str] = []
        """Call sids of the return visits a customer answered (each starts a call on the hotline)."""
        self.visits_dialled = 0
        self.closed = False
        """The day is over: calls the hotline places from now on are refused (they are not part of the day)."""
        threading.Thread(target=self.server.serve_forever, name="twilio-api", daemon=True).start()

    def close(self) -> None:
        self.closed = True
        self.server.shutdown()
        self.server.server_close()

    def new_sid(self, prefix: str = "CA") -> str:
        return f"{prefix}{self._sid_nonce:016x}{next(self._sids):016x}"

    # -- the wire ------------------------------------------------------------------------------

    def post(self, http: requests.Session, url: str, sid: str, fields: dict[str, str], caller: str,
             called: str, direction: str = "inbound") -> ET.Element:
        full = url if url.startswith("http") else self.hotline_url + url
        form = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": caller, "To": called,
                "CallStatus": "in-progress", "Direction": direction, "ApiVersion": "2010-04-01", **fields}
        headers = {"X-Twilio-Signature": self.validator.compute_signature(full, form)}
        began = time.monotonic()
        try:
            reply = http.post(full, data=form, headers=headers, timeout=15)  # Twilio's own webhook timeout
        except requests.RequestException as exc:
            self.measured.count("webhook_errors")
            # A read timeout: the request went out and the hotline is at work on it; no connection: it never got it.
            raise WebhookFailed(f"{urlsplit(full).path}: {type(exc).__name__}",
                                delivered=isinstance(exc, requests.ReadTimeout)) from None
        self.measured.latency("webhook", self.clock.hour(), time.monotonic() - began)
        if reply.status_code == 204:
            return ET.Element("Response")
        if reply.status_code != 200 or not reply.content.startswith(b"<?xml"):
            self.measured.count("webhook_errors")
            raise WebhookFailed(f"{urlsplit(full).path}: HTTP {reply.status_code}")
        return ET.fromstring(reply.content)

    def status(self, http: requests.Session, sid: str, caller: str, called: str, status: str = "completed",
               url: str = "/twilio/status", direction: str = "inbound", **extra: str) -> None:
        """The status callback: Twilio retries nothing, so a failure here is only counted."""
        try:
            self.post(http, url, sid, {"CallStatus": status, "CallDuration": "60", **extra}, caller, called,
                      direction)
        except WebhookFailed as exc:
            self.measured.problem(f"status callback of {sid} failed: {exc}")

    # -- a caller ------------------------------------------------------------------------------

    def call(self, keys: list[str], caller: str, hangup_after_steps: int | None, patience_s: float,
             talk_s: float, sid: str | None = None, url: str = "/twilio/voice", called: str = HOTLINE_NUMBER,
             direction: str = "inbound", extra: dict[str, str] | None = None) -> tuple[str, TwilioOutcome]:
        """Play one call to its end; returns its sid and what happened."""
        sid = sid or self.new_sid()
        outcome, http = TwilioOutcome(), requests.Session()
        # Registered before the first webhook: the hotline may ring an agent before its <Enqueue> reaches us.
        with self._lock:
            self._waiting[sid] = Waiting(talk_s)
        fields: dict[str, str] = dict(extra or {})
        steps = 0
        next_url: str | None = url
        try:
            for _ in range(MAX_STEPS):
                if next_url is None:
                    break
                current = next_url
                twiml = self.post(http, next_url, sid, fields, caller, called, direction)
                outcome.started = True
                outcome.said += [say.text or "" for say in twiml.iter("Say")]
                fields = {}
                redirect = twiml.find("Redirect")
                next_url = redirect.text if redirect is not None else None
                for verb in twiml:
                    if verb.tag == "Gather":
                        if hangup_after_steps is not None and steps >= hangup_after_steps:
                            next_url = None  # the caller hangs up in the menus
                            break
                        steps += 1
                        entry = keys.pop(0) if keys else ""
                        if entry:
                            next_url, fields = verb.get("action", current), {"Digits": entry}
                        break
                    if verb.tag == "Record":
                        steps += 1
                        entry = (keys.pop(0) if keys else "").removeprefix(RECORD_PREFIX)
                        if entry.isdigit() and entry != "0":
                            next_url, fields = self._recorded(http, sid, verb, current, entry, outcome, caller,
                                                              called, direction)
                        break
                    if verb.tag == "Enqueue":
                        outcome.queued = True
                        next_url, fields = self._hold(http, sid, verb, outcome, caller, called, patience_s, talk_s)
                        break
                    if verb.tag == "Dial" and verb.find("Conference") is not None:
                        next_url, fields = self._conference(sid, verb, outcome)
                        break
                    if verb.tag in ("Hangup", "Dial"):
                        next_url = None
                        break
        except WebhookFailed as exc:
            outcome.failed = True
            outcome.started = outcome.started or exc.delivered  # Twilio then ends the call: its status follows
            self.measured.problem(f"call {sid}: {exc}")
        finally:
            if outcome.started and not outcome.status_sent:
                self.status(http, sid, caller, called, direction=direction)
            with self._lock:
                waiting = self._waiting.pop(sid)
            with waiting.lock:
                waiting.gone = not waiting.bridged.is_set()
        return sid, outcome

    def _hold(self, http: requests.Session, sid: str, enqueue: ET.Element, outcome: TwilioOutcome, caller: str,
              called: str, patience_s: float, talk_s: float) -> tuple[str | None, dict[str, str]]:
        """On hold until bridged (then the agent talks and hangs up) or out of patience."""
        action, wait_url = enqueue.get("action"), enqueue.get("waitUrl")
        if action is None or wait_url is None:
            # A Twilio queue the hotline does not route (its apology when Redis is away): nobody comes.
            self.measured.count("unrouted_queue")
            time.sleep(self.clock.real(patience_s))
            outcome.abandoned = True
            return None, {}
        waiting = self._waiting[sid]
        began = time.monotonic()
        give_up = began + self.clock.real(patience_s)
        poll = 0.0
        while True:
            remaining = give_up - time.monotonic()
            if waiting.moved.wait(timeout=max(0.0, min(poll, remaining))):
                with waiting.lock:
                    waiting.moved.clear()
                    url = waiting.moves.pop(0)
                # Out of the queue by REST: the Enqueue action is requested right away
                # (https://www.twilio.com/docs/voice/twiml/enqueue#attributes-action); the call follows the new Url.
                self._post_quietly(http, sid, caller, called, "inbound", action,
                                   {"QueueResult": "redirected", "QueueTime": f"{time.monotonic() - began:.0f}"})
                return url, {}
            if time.monotonic() >= give_up:
                with waiting.lock:
                    if waiting.moved.is_set():
                        continue  # an agent took the call this very moment
                    waiting.gone = True
                outcome.abandoned = True
                # The Enqueue action (QueueResult=hangup) and the status callback, in either order.
                self._hang_up(http, sid, caller, called, "inbound", outcome, {
                    "action": (action, {"QueueResult": "hangup", "QueueSid": f"QU{sid[2:]}"})})
                return None, {}
            # Twilio asks the waitUrl once the caller is in the queue, then again only when the document's verbs
            # run out (https://www.twilio.com/docs/voice/twiml/enqueue#waiturl).
            twiml = self.post(http, wait_url, sid, {"QueueTime": f"{time.monotonic() - began:.0f}",
                                                    "QueueSid": f"QU{sid[2:]}"}, caller, called)
            waiting.held.set()
            if twiml.find("Leave") is not None:
                return action, {"QueueResult": "leave"}
            poll = max(0.05, self.clock.real(_length(twiml)))

    def _conference(self, sid: str, dial: ET.Element, outcome: TwilioOutcome) -> tuple[str | None, dict[str, str]]:
        """In the conference with the agent until it ends (the agent hangs up, ending it on exit); then the
        <Dial> action (https://www.twilio.com/docs/voice/twiml/dial#action)."""
        waiting = self._waiting[sid]
        if not waiting.bridged.wait(timeout=30):
            return dial.get("action"), {"DialCallStatus": "failed", "DialCallDuration": "0"}
        waiting.done.wait(timeout=self.clock.real(waiting.talk_s) + 60)
        outcome.answered = True
        return dial.get("action"), {"DialCallStatus": "completed", "DialCallDuration": f"{waiting.talk_s:.0f}"}

    def _recorded(self, http: requests.Session, sid: str, record: ET.Element, current: str, seconds: str,
                  outcome: TwilioOutcome, caller: str, called: str,
                  direction: str) -> tuple[str | None, dict[str, str]]:
        """The caller spoke their complaint: ended with # (the action and the recording status callback, in
        either order: https://www.twilio.com/docs/voice/twiml/record#recordingstatuscallback), or by hanging up
        (the action with Digits=hangup, https://www.twilio.com/docs/voice/twiml/record#action, the recording
        callback and the call's status callback, in any order)."""
        rec = self.new_sid("RE")
        with self._lock:
            self.recordings[rec] = sid
        fields = {"RecordingSid": rec, "RecordingDuration": seconds,
                  "RecordingUrl": f"{self.api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec}"}
        recording = ("/twilio/recording", {**fields, "RecordingStatus": "completed"})
        action = record.get("action", current)
        if self._chance(HANGUP_WHILE_RECORDING):
            outcome.hung_up_recording = True
            self._hang_up(http, sid, caller, called, direction, outcome,
                          {"action": (action, {**fields, "Digits": "hangup"}), "recording": recording})
            return None, {}
        # Twilio posts the recording callback on its own, before or after the action: a moment from now.
        with self._rng_lock:
            delay = self._rng.uniform(0.0, 0.2)
        threading.Timer(delay, self._post_quietly, args=(requests.Session(), sid, caller, called, direction,
                                                         *recording)).start()
        return action, fields

    def _hang_up(self, http: requests.Session, sid: str, caller: str, called: str, direction: str,
                 outcome: TwilioOutcome, requests_: dict[str, tuple[str, dict[str, str]]]) -> None:
        """The caller hung up: the pending action(s) and the final status callback, in every order by turns (none
        is documented between them), the status sometimes twice."""
        with self._lock:
            kind = tuple(requests_)
            if kind not in self._orders:
                self._orders[kind] = itertools.cycle(itertools.permutations([*kind, "status"]))
            names = list(next(self._orders[kind]))
        if self._chance(DUPLICATE_STATUS):
            names.append("status")
        self.measured.count("twilio hang-up " + " > ".join(names))
        outcome.status_sent = True
        for name in names:
            if name == "status":
                self.status(http, sid, caller, called, direction=direction)
            else:
                self._post_quietly(http, sid, caller, called, direction, *requests_[name])

    def _post_quietly(self, http: requests.Session, sid: str, caller: str, called: str, direction: str, url: str,
                      fields: dict[str, str]) -> None:
        """A request whose answer no caller hears (after the hang-up, or a callback): a failure is only counted."""
        try:
            self.post(http, url, sid, fields, caller, called, direction)
        except WebhookFailed as exc:
            self.measured.problem(f"call {sid}: {exc}")

    def _chance(self, p: float) -> bool:
        with self._rng_lock:
            return self._rng.random() < p

    # -- the REST API ------------------------------------------------------------------------

    def create_call(self, form: dict[str, str]) -> dict[str, str] | None:
        """A new call the hotline places; None once the day is over (Twilio answers 503)."""
        if self.closed:
            return None
        sid = self.new_sid()
        if "/twilio/agent/connect" in form.get("Url", ""):
            target: Callable[[str, dict[str, str]], None] = self._agent_leg
        else:
            target = self._return_visit
            self.visits_dialled += 1
        threading.Thread(target=self._guarded, args=(target, sid, form), daemon=True).start()
        return {"sid": sid, "status": "queued", "to": form.get("To", ""), "from": form.get("From", "")}

    def start_recording(self, call_sid: str, form: dict[str, str]) -> tuple[int, dict[str, str]]:
        """``POST Calls/<sid>/Recordings.json`` (https://www.twilio.com/docs/voice/api/recording#create-a-recording-
        resource): the recording runs until the call ends, then its ``RecordingStatusCallback`` is posted."""
        rec = self.new_sid("RE")
        with self._lock:
            self.recordings[rec] = call_sid
            callback = form.get("RecordingStatusCallback")
            if callback:
                self._recording_callbacks.setdefault(call_sid, []).append((rec, callback, self.clock.now()))
        return 201, {"sid": rec, "call_sid": call_sid, "status": "in-progress",
                     "channels": "2" if form.get("RecordingChannels") == "dual" else "1"}

    def recording(self, rec: str) -> dict[str, str] | None:
        """The recording resource's JSON (``GET Recordings/<sid>.json``): its call, as the hotline checks."""
        with self._lock:
            call_sid = self.recordings.get(rec)
        return None if call_sid is None else {"sid": rec, "call_sid": call_sid, "status": "completed"}

    def _recordings_completed(self, http: requests.Session, sid: str, called: str) -> None:
        """The call ended: each recording made on it by REST is completed, its status callback posted
        (https://www.twilio.com/docs/voice/api/recording#recordingstatuscallback)."""
        with self._lock:
            made = self._recording_callbacks.pop(sid, [])
        for rec, url, began in made:
            seconds = max(1, round(self.clock.now() - began))
            self._post_quietly(http, sid, HOTLINE_NUMBER, called, "outbound-api", url, {
                "RecordingSid": rec, "RecordingStatus": "completed", "RecordingDuration": str(seconds),
                "RecordingChannels": "2", "RecordingSource": "StartCallRecordingAPI",
                "RecordingUrl": f"{self.api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec}"})

    def update_call(self, sid: str, form: dict[str, str]) -> tuple[int, dict[str, str]]:
        if "Url" in form:
            # Redirect a call: only one in progress (https://www.twilio.com/docs/voice/api/call-resource#update-a-
            # call-resource); "Call is not in-progress. Cannot redirect." otherwise (error 21220).
            with self._lock:
                waiting = self._waiting.get(sid)
            if waiting is None:
                return 404, {"code": "20404", "message": f"/Calls/{sid}.json was not found"}
            with waiting.lock:
                if waiting.gone:
                    return 400, {"code": "21220", "message": "Call is not in-progress. Cannot redirect."}
                waiting.moves.append(form["Url"])
                waiting.redirected = True
                waiting.moved.set()
            return 200, {"sid": sid, "status": "in-progress"}
        if form.get("Status") in ("canceled", "completed"):
            with self._lock:
                self._cancelled.add(sid)
        return 200, {"sid": sid, "status": form.get("Status", "in-progress")}

    def _guarded(self, target: Callable[[str, dict[str, str]], None], sid: str, form: dict[str, str]) -> None:
        try:
            target(sid, form)
        except Exception as exc:  # noqa: BLE001 - one phone's trouble must not end the day
            self.measured.problem(f"Twilio leg {sid}: {type(exc).__name__}: {exc}")

    def _agent_leg(self, sid: str, form: dict[str, str]) -> None:
        """An agent's phone rings: it answers (and the agent talks to the caller), or it does not."""
        http, to, status_url = requests.Session(), form["To"], form["StatusCallback"]
        self.clock.sleep(self.phones.ring_s())
        if sid in self._cancelled:
            self.status(http, sid, HOTLINE_NUMBER, to, "canceled", status_url, "outbound-api")
            return
        if self.phones.dead(to):
            time.sleep(float(form.get("Timeout") or 20))
            self.status(http, sid, HOTLINE_NUMBER, to, "no-answer", status_url, "outbound-api")
            return
        twiml = self.post(http, form["Url"], sid, {}, HOTLINE_NUMBER, to, "outbound-api")
        for _ in range(MAX_STEPS):  # <Pause> then <Redirect>: the hotline waits for the caller to be in the queue
            redirect = twiml.find("Redirect")
            if twiml.find("Dial") is not None or redirect is None:
                break
            self.clock.sleep(sum(float(p.get("length", "1")) for p in twiml.iter("Pause")))
            twiml = self.post(http, redirect.text or "", sid, {}, HOTLINE_NUMBER, to, "outbound-api")
        dial = twiml.find("Dial")
        if dial is None:  # the caller is gone
            self.status(http, sid, HOTLINE_NUMBER, to, "completed", status_url, "outbound-api")
            return
        room = dial.find("Conference")
        waiting = self._waiting.get((room.text or "").removeprefix("hotline-")) if room is not None else None
        bridged = False
        if waiting is not None:
            with waiting.lock:
                # The caller is there once the hotline moved their call (REST) while it was in progress.
                if not waiting.gone and waiting.redirected:
                    waiting.bridged.set()
                    bridged = True
        if bridged and room is not None and "join" in room.get("statusCallbackEvent", "").split():
            # The conference's participant-join event for this leg (https://www.twilio.com/docs/voice/twiml/
            # conference#attributes-statuscallback): the hotline starts recording the conversation then.
            self.status(http, sid, HOTLINE_NUMBER, to, "in-progress", room.get("statusCallback", ""), "outbound-api",
                        StatusCallbackEvent="participant-join", FriendlyName=room.text or "",
                        ConferenceSid=f"CF{sid[2:]}")
        if bridged and waiting is not None:
            self.clock.sleep(waiting.talk_s)
        self.post(http, dial.attrib["action"], sid, {
            "DialCallStatus": "completed" if bridged else "failed",
            "DialCallDuration": f"{waiting.talk_s:.0f}" if bridged and waiting else "0"},
            HOTLINE_NUMBER, to, "outbound-api")
        if waiting is not None:
            waiting.done.set()
        self.status(http, sid, HOTLINE_NUMBER, to, "completed", status_url, "outbound-api")
        self._recordings_completed(http, sid, to)

    def _return_visit(self, sid: str, form: dict[str, str]) -> None:
        """A customer's phone rings for the satisfaction survey: answered (and rated) or not."""
        http, to, status_url = requests.Session(), form["To"], form.get("StatusCallback", "")
        with self._rng_lock:
            answers, rating = self._rng.random() < self.survey_answer_rate, self._rng.choice("1122233345")
            machine = self._rng.choice(MACHINES) if self._rng.random() < MACHINE_ANSWERS else ""
        self.clock.sleep(self.phones.ring_s() * 2)
        if not answers:
            self.status(http, sid, HOTLINE_NUMBER, to, "no-answer", status_url, "outbound-api")
            return
        if machine:
            # MachineDetection=Enable puts AnsweredBy on the request to the call's Url only
            # (https://www.twilio.com/docs/voice/answering-machine-detection); the status callback has none.
            twiml = self.post(http, form["Url"], sid, {"AnsweredBy": machine}, HOTLINE_NUMBER, to, "outbound-api")
            if any("工单" in (say.text or "") or "work order" in (say.text or "") for say in twiml.iter("Say")):
                self.measured.problem(f"return visit {sid}: the work order was read to a {machine}")
            self.measured.count(f"return visit answered by {machine}")
            self.status(http, sid, HOTLINE_NUMBER, to, "completed", status_url, "outbound-api")
            return
        with self._lock:
            self.survey_calls.append(sid)
        self.call([rating, "1"], HOTLINE_NUMBER, None, 0, 0, sid=sid, url=form["Url"], called=to,
                  direction="outbound-api", extra={"AnsweredBy": "human"})
        self.status(http, sid, HOTLINE_NUMBER, to, "completed", status_url, "outbound-api", AnsweredBy="human")


def _length(twiml: ET.Element) -> float:
    """How long Twilio takes to play a hold document: each <Play> loop times the hotline's slice, <Say>, <Pause>,
    and a <Gather>'s wait for a key (https://www.twilio.com/docs/voice/twiml/play#attributes-loop)."""
    seconds = 0.0
    for verb in twiml.iter():
        if verb.tag == "Play":
            seconds += MUSIC_SLICE_S * max(1, int(verb.get("loop") or 1))
        elif verb.tag == "Say":
            seconds += SAY_S
        elif verb.tag == "Pause":
            seconds += float(verb.get("length") or 1)
        elif verb.tag == "Gather":
            seconds += float(verb.get("timeout") or 5)
    return seconds
