"""Twilio's REST API on loopback, for the calls the hotline places to agents and the calls it controls.

It keeps the state Twilio's documentation describes, and refuses what the documentation says Twilio refuses:
calls (created, redirected, completed), queues, conferences and their participants. The callers of a test
(``tests.fakes.twilio_caller.TwilioCaller`` given this API) register their calls, join and leave conferences as
their TwiML says, and follow the REST redirects Twilio would make them follow.

Conference events: a conference keeps the ``statusCallback`` and ``statusCallbackEvent`` of the ``<Conference>``
noun that created it (its first participant's; https://www.twilio.com/docs/voice/twiml/conference
#attributes-statuscallback), and posts ``participant-join`` there, signed, for every participant that joins,
by TwiML or by the Participants API ("Tracking updates to all conference participants [...] by using the
Conference's statusCallback webhook", https://www.twilio.com/docs/voice/api/conference-participant-resource).
Twilio promises no order between these callbacks and a call's TwiML requests, and no retry of a status
callback (https://www.twilio.com/docs/usage/webhooks/webhooks-overview): with ``late_callbacks`` they are kept
in ``owed`` until a test delivers them (``deliver_owed``), in whatever order it chooses, or never.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http_server import LocalHttpServer, Reply, SeenRequest

HOTLINE_NUMBER = "+861095555"
FINAL = frozenset({"completed", "canceled", "busy", "failed", "no-answer"})


@dataclass
class FakeCall:
    sid: str
    to: str = ""
    from_: str = ""
    status: str = "queued"
    url: str = ""
    """The Url it was created with (its first TwiML)."""
    redirects: list[str] = field(default_factory=list)
    """Urls (or inline TwiML) of REST updates, in order, for the call's stand-in to follow."""


@dataclass
class Participant:
    call_sid: str
    muted: bool = False
    hold: bool = False
    hold_url: str = ""
    coaching: bool = False
    call_sid_to_coach: str = ""
    end_conference_on_exit: bool = False
    beep: str = "true"
    label: str = ""
    status: str = "connected"


@dataclass
class Conference:
    sid: str
    friendly_name: str
    status: str = "in-progress"
    participants: dict[str, Participant] = field(default_factory=dict)
    ended_by: str = ""
    status_callback: str = ""
    status_callback_events: frozenset[str] = frozenset()
    """``statusCallbackEvent`` of the noun that created it (``start end join leave mute hold ...``)."""
    sequence: int = 0
    """``SequenceNumber`` of its last event: Twilio numbers a conference's events (they may arrive out of order)."""


Webhook = Callable[[str, dict[str, str]], int]
"""Post a signed form to the hotline as Twilio would (``TwilioCaller.post_callback``); the HTTP status."""


class TwilioApi:
    """Twilio's REST API on loopback. Keeps every request; ``queues`` are set up by a test."""

    def __init__(self) -> None:
        self.server = LocalHttpServer(self._answer)
        self._legs = 0
        self._lock = threading.RLock()
        self._sids = itertools.count(1)
        self.queues: dict[str, dict[str, object]] = {}
        self.recordings: Callable[[SeenRequest], Reply] | None = None
        """Who answers ``.../Recordings/...`` on this API (``MediaServer._answer``): one base URL, as at Twilio."""
        """Queue sid -> its resource (friendly_name, current_size, date_updated), as a test sets them up."""
        self.calls: dict[str, FakeCall] = {}
        self.conferences: dict[str, Conference] = {}
        self.leg_sids: list[str] = []
        """The sid of each call the hotline created, in order."""
        self.webhook: Webhook | None = None
        """How this account posts its status callbacks to the hotline (set by the first call's stand-in)."""
        self.late_callbacks = False
        """Keep conference status callbacks in ``owed`` instead of posting them as they happen."""
        self.owed: list[tuple[str, dict[str, str]]] = []
        """(URL, form) of the conference status callbacks not posted yet."""
        self.delivered: list[tuple[str, dict[str, str], int]] = []
        """(URL, form, the hotline's HTTP status) of each conference status callback posted."""

    # -- what the calls' stand-ins tell it ---------------------------------------------------------

    def register(self, call_sid: str, caller: str = "", called: str = "") -> None:
        """An inbound call Twilio is handling: it exists for the REST API from now on, in progress."""
        with self._lock:
            self.calls.setdefault(call_sid, FakeCall(call_sid, called, caller))
            self.calls[call_sid].status = "in-progress"

    def answered(self, call_sid: str) -> None:
        """A call the hotline placed was picked up."""
        with self._lock:
            self.calls[call_sid].status = "in-progress"

    def join(self, call_sid: str, name: str, attrs: dict[str, str]) -> Conference:
        """``<Dial><Conference>``: joins the conference of that name in progress, or creates one
        (https://www.twilio.com/docs/voice/twiml/conference: "the first caller to dial a conference name creates
        it"; a name is reused once the conference before it has ended). The creating noun's ``statusCallback``
        and ``statusCallbackEvent`` are the conference's; a later participant's are ignored. Then the
        participant-join callback, if the conference asked for ``join`` events."""
        with self._lock:
            conference = self.conference(name)
            if conference is None:
                conference = self._new_conference(name)
                conference.status_callback = attrs.get("statusCallback", "")
                conference.status_callback_events = frozenset(attrs.get("statusCallbackEvent", "").split())
            participant = conference.participants[call_sid] = Participant(
                call_sid, muted=attrs.get("muted") == "true",
                end_conference_on_exit=attrs.get("endConferenceOnExit") == "true", beep=attrs.get("beep", "true"),
                label=attrs.get("participantLabel", ""))
            self._joined(conference, participant, start_conference_on_enter=attrs.get(
                "startConferenceOnEnter", "true") == "true")
        self._post_owed()
        return conference

    def leave(self, call_sid: str) -> None:
        """The call left its conference (hung up, redirected, removed). A participant with
        ``endConferenceOnExit`` ends it for everyone (https://www.twilio.com/docs/voice/twiml/conference#attributes-
        endconferenceonexit); a conference with nobody left ends too. Each participant gone owes its
        ``participant-leave`` callback when the conference asked for ``leave`` events (the docs promise no order
        against the call's other requests: here it comes before the REST request that removed it is answered)."""
        with self._lock:
            for conference in self.conferences.values():
                if conference.status != "in-progress" or call_sid not in conference.participants:
                    continue
                gone = conference.participants.pop(call_sid)
                self._owe_event(conference, gone, "leave")
                if gone.end_conference_on_exit or not conference.participants:
                    conference.status, conference.ended_by = "completed", call_sid
                    for rest in list(conference.participants.values()):
                        self._owe_event(conference, rest, "leave")
                    conference.participants.clear()
        self._post_owed()

    def conference(self, name: str) -> Conference | None:
        """The conference of that friendly name in progress, if any."""
        with self._lock:
            return next((c for c in self.conferences.values()
                         if c.friendly_name == name and c.status == "in-progress"), None)

    def legs_to(self, to: str) -> list[FakeCall]:
        """The calls the hotline placed to ``to``, oldest first."""
        with self._lock:
            return [self.calls[sid] for sid in self.leg_sids if self.calls[sid].to == to]

    def deliver_owed(self, count: int | None = None, newest_first: bool = False) -> list[int]:
        """Post ``count`` (all: None) of the conference callbacks kept back by ``late_callbacks``, oldest first
        unless ``newest_first``; returns the hotline's HTTP statuses."""
        with self._lock:
            order = list(reversed(self.owed)) if newest_first else list(self.owed)
            chosen = order[:len(order) if count is None else count]
            for item in chosen:
                self.owed.remove(item)
        return [self._post(url, form) for url, form in chosen]

    def _joined(self, conference: Conference, participant: Participant, start_conference_on_enter: bool) -> None:
        """Owe the ``participant-join`` callback, with the parameters of
        https://www.twilio.com/docs/voice/twiml/conference#attributes-statuscallback (the joining
        participant's ``CallSid``; ``Timestamp`` in RFC 2822)."""
        self._owe_event(conference, participant, "join", start_conference_on_enter)

    def _owe_event(self, conference: Conference, participant: Participant, event: str,
                   start_conference_on_enter: bool = True) -> None:
        """Owe the ``participant-<event>`` callback (``join``, ``leave``) if the conference asked for it."""
        if not conference.status_callback or event not in conference.status_callback_events:
            return
        conference.sequence += 1
        form = {
            "AccountSid": "ACtest", "ConferenceSid": conference.sid, "FriendlyName": conference.friendly_name,
            "StatusCallbackEvent": f"participant-{event}", "CallSid": participant.call_sid,
            "SequenceNumber": str(conference.sequence),
            "Timestamp": formatdate(usegmt=True).replace("GMT", "+0000"),
            "Muted": _bool(participant.muted), "Hold": _bool(participant.hold),
            "Coaching": _bool(participant.coaching),
            "EndConferenceOnExit": _bool(participant.end_conference_on_exit),
            "StartConferenceOnEnter": _bool(start_conference_on_enter),
        }
        if participant.call_sid_to_coach:
            form["CallSidToCoach"] = participant.call_sid_to_coach
        if participant.label:
            form["ParticipantLabel"] = participant.label
        self.owed.append((conference.status_callback, form))

    def _post_owed(self) -> None:
        """Post what is owed now (outside the lock: the hotline may call this API while it answers), unless
        ``late_callbacks`` keeps it back."""
        if not self.late_callbacks:
            self.deliver_owed()

    def _post(self, url: str, form: dict[str, str]) -> int:
        assert self.webhook is not None, "no call's stand-in gave this API a way to post to the hotline"
        status = self.webhook(url, form)
        with self._lock:
            self.delivered.append((url, form, status))
        return status

    def next_redirect(self, call_sid: str) -> str | None:
        with self._lock:
            call = self.calls.get(call_sid)
            return call.redirects.pop(0) if call and call.redirects else None

    # -- the wire --------------------------------------------------------------------------------

    def _answer(self, request: SeenRequest) -> Reply:
        reply = self._reply(request)
        self._post_owed()  # a participant added by REST has joined
        return reply

    def _reply(self, request: SeenRequest) -> Reply:
        if self.recordings is not None and "/Recordings/" in request.path:
            return self.recordings(request)
        parts = urlsplit(request.path)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        if "/Calls/" in path and path.endswith("/Recordings.json") and request.method == "POST":
            return self._create_recording(path.rsplit("/", 2)[1], request)
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        with self._lock:
            if path.endswith("/Queues.json") and request.method == "GET":
                # One page, with the paging block the 2010 API sends.
                return Reply.json(200, {"queues": list(self.queues.values()),
                                        "meta": {"key": "queues", "next_page_url": None, "page": 0}})
            if "/Queues/" in path and request.method == "DELETE":
                return self._delete_queue(path)
            if "/Conferences" in path:
                return self._conferences(request.method, path, query, form)
            if path.endswith("/Calls.json") and request.method == "POST":
                return self._create_call(form)
            if "/Calls/" in path and request.method == "POST":
                return self._update_call(path.rsplit("/", 1)[1].removesuffix(".json"), form)
            if request.method == "DELETE":
                return Reply(204)
        return _error(404, 20404, "not found")

    def _create_recording(self, call_sid: str, request: SeenRequest) -> Reply:
        """``POST .../Calls/<CallSid>/Recordings.json`` starts recording a live call
        (https://www.twilio.com/docs/voice/api/recording#create-a-recording-resource). Refused as Twilio does: an
        unknown call is 404 (20404); a call not in progress cannot be recorded ("Begin recording an in-progress
        call", https://support.twilio.com/hc/en-us/articles/360010199074-Getting-Started-with-Call-Recording-Controls:
        a queued, ringing or ended call is 400, 21220 "Call is not in-progress"). The recording itself (its sid,
        its callback, its media) is the media server's (``MediaServer.create``)."""
        with self._lock:
            call = self.calls.get(call_sid)
            if call is None:
                return _error(404, 20404, f"The requested resource /Calls/{call_sid}/Recordings.json was not found")
            if call.status != "in-progress":
                return _error(400, 21220, "Call is not in-progress. Cannot create recording.")
        if self.recordings is None:
            return _error(404, 20404, "not found")
        return self.recordings(request)

    def _delete_queue(self, path: str) -> Reply:
        sid = path.rsplit("/", 1)[1].removesuffix(".json")
        queue = self.queues.get(sid)
        if queue is None:
            return _error(404, 20404, "not found")
        if queue.get("current_size"):  # a queue with callers in it cannot go
            return _error(400, 20001, "queue is not empty")
        del self.queues[sid]
        return Reply(204)

    def _create_call(self, form: dict[str, str]) -> Reply:
        self._legs += 1
        sid = f"CAagentleg{self._legs:022d}"
        self.calls[sid] = FakeCall(sid, form.get("To", ""), form.get("From", ""), url=form.get("Url", ""))
        self.leg_sids.append(sid)
        return Reply.json(201, {"sid": sid, "status": "queued"})

    def _update_call(self, sid: str, form: dict[str, str]) -> Reply:
        """https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource"""
        call = self.calls.get(sid)
        if call is None:
            return _error(404, 20404, f"The requested resource /Calls/{sid}.json was not found")
        status = form.get("Status")
        if status == "canceled":
            # "canceled" ends a queued or ringing call only; an answered one goes on.
            if call.status in ("queued", "ringing"):
                call.status = "canceled"
        elif status == "completed":
            # "completed" hangs up an answered call (and cancels a queued or ringing one).
            if call.status not in FINAL:
                call.status = "completed"
                self.leave(sid)
        elif "Url" in form or "Twiml" in form:
            # Redirecting: only a call in progress; "Call is not in-progress. Cannot redirect." (error 21220).
            if call.status != "in-progress":
                return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
            call.redirects.append(form.get("Url") or form["Twiml"])
        return Reply.json(200, {"sid": sid, "status": call.status, "to": call.to, "from": call.from_})

    def _conferences(self, method: str, path: str, query: dict[str, str], form: dict[str, str]) -> Reply:
        """https://www.twilio.com/docs/voice/api/conference-resource ·
        https://www.twilio.com/docs/voice/api/conference-participant-resource"""
        tail = path.split("/Conferences", 1)[1]
        if tail == ".json" and method == "GET":
            # Read with filters FriendlyName and Status (https://www.twilio.com/docs/voice/api/conference-resource
            # #read-multiple-conference-resources).
            found = [_conference_json(c) for c in self.conferences.values()
                     if query.get("FriendlyName", c.friendly_name) == c.friendly_name
                     and query.get("Status", c.status) == c.status]
            return Reply.json(200, {"conferences": found, "meta": {"key": "conferences", "next_page_url": None,
                                                                  "page": 0}})
        pieces = tail.strip("/").removesuffix(".json").split("/")
        conference = self.conferences.get(pieces[0])
        if conference is None:
            return _error(404, 20404, "conference not found")
        if len(pieces) == 2 and pieces[1] == "Participants" and method == "POST":
            return self._add_participant(conference, form)
        if len(pieces) == 3 and pieces[1] == "Participants":
            return self._participant(conference, pieces[2], method, form)
        return _error(404, 20404, "not found")

    def _add_participant(self, conference: Conference, form: dict[str, str]) -> Reply:
        """Create a participant: Twilio dials ``To`` from ``From`` (both required) and adds them when they answer.
        ``Coaching=true`` needs ``CallSidToCoach``, the CallSid of a participant of this conference; that one alone
        hears the coach. A conference that has ended takes nobody.
        https://www.twilio.com/docs/voice/api/conference-participant-resource#create-a-participant (From, To,
        Muted, Beep, EndConferenceOnExit, Coaching, CallSidToCoach, Label)"""
        if conference.status != "in-progress":
            return _error(400, 20001, "conference is not in progress")
        if not form.get("From") or not form.get("To"):
            return _error(400, 21604, "From and To are required")
        coaching = form.get("Coaching") == "true"
        coached = form.get("CallSidToCoach", "")
        if coaching and coached not in conference.participants:
            return _error(400, 20001, "CallSidToCoach must be a participant of the conference")
        self._legs += 1
        sid = f"CAparticipant{self._legs:019d}"
        self.calls[sid] = FakeCall(sid, form["To"], form["From"], "in-progress")  # the supervisor answered
        participant = Participant(
            sid, muted=form.get("Muted") == "true", coaching=coaching, call_sid_to_coach=coached,
            end_conference_on_exit=form.get("EndConferenceOnExit") == "true", beep=form.get("Beep", "true"),
            label=form.get("Label", ""))
        conference.participants[sid] = participant
        self._joined(conference, participant, start_conference_on_enter=form.get("StartConferenceOnEnter",
                                                                                 "true") == "true")
        return Reply.json(201, _participant_json(conference, participant))

    def _participant(self, conference: Conference, call_sid: str, method: str, form: dict[str, str]) -> Reply:
        """Update (Muted, Hold + HoldUrl, Coaching + CallSidToCoach, EndConferenceOnExit) or delete (remove from the
        conference) a participant, named by its CallSid or its label
        (https://www.twilio.com/docs/voice/api/conference-participant-resource#update-a-participant-resource,
        #delete-a-participant-resource)."""
        participant = conference.participants.get(call_sid) or next(
            (p for p in conference.participants.values() if p.label and p.label == call_sid), None)
        if participant is None:
            return _error(404, 20404, "participant not found")
        if method == "DELETE":  # removed from the conference (kicked): their call leaves it
            self.leave(participant.call_sid)
            return Reply(204)
        if method == "POST":
            for name, attr in (("Muted", "muted"), ("Hold", "hold"), ("Coaching", "coaching"),
                               ("EndConferenceOnExit", "end_conference_on_exit")):
                if name in form:
                    setattr(participant, attr, form[name] == "true")
            if "HoldUrl" in form:
                participant.hold_url = form["HoldUrl"]
            if "CallSidToCoach" in form:
                participant.call_sid_to_coach = form["CallSidToCoach"]
            if participant.coaching and participant.call_sid_to_coach not in conference.participants:
                return _error(400, 20001, "CallSidToCoach must be a participant of the conference")
        return Reply.json(200, _participant_json(conference, participant))

    def _new_conference(self, name: str) -> Conference:
        sid = f"CF{next(self._sids):032x}"
        self.conferences[sid] = Conference(sid, name)
        return self.conferences[sid]

    # -- reading what the hotline asked ------------------------------------------------------------

    def deletes(self) -> list[str]:
        return [r.path for r in self.server.requests if r.method == "DELETE"]

    def created(self, count: int, timeout_s: float = 5) -> list[dict[str, str]]:
        """The form of each calls.create, once ``count`` have arrived (the dialer works off-thread)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            creates = [r for r in self.server.requests if r.path.endswith("/Calls.json")]
            if len(creates) >= count:
                return [{k: v[0] for k, v in parse_qs(r.body.decode()).items()} for r in creates]
            time.sleep(0.01)
        raise AssertionError(f"expected {count} agent calls, Twilio got {self.server.requests}")

    def updates(self) -> list[tuple[str, dict[str, str]]]:
        """Every call update (``POST .../Calls/<sid>.json``), in order."""
        return [(r.path, {k: v[0] for k, v in parse_qs(r.body.decode()).items()})
                for r in self.server.requests
                if r.method == "POST" and re.search(r"/Calls/[^/]+\.json$", urlsplit(r.path).path)]


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _error(status: int, code: int, message: str) -> Reply:
    return Reply.json(status, {"code": code, "message": message, "status": status,
                               "more_info": f"https://www.twilio.com/docs/errors/{code}"})


def _conference_json(conference: Conference) -> dict[str, object]:
    return {"sid": conference.sid, "friendly_name": conference.friendly_name, "status": conference.status,
            "account_sid": "ACtest"}


def _participant_json(conference: Conference, p: Participant) -> dict[str, object]:
    return {"call_sid": p.call_sid, "conference_sid": conference.sid, "muted": p.muted, "hold": p.hold,
            "coaching": p.coaching, "call_sid_to_coach": p.call_sid_to_coach or None,
            "end_conference_on_exit": p.end_conference_on_exit, "label": p.label or None, "status": p.status}
