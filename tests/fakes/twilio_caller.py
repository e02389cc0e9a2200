"""A caller driven the way Twilio drives a call: signed form posts that follow the TwiML."""

from __future__ import annotations

import itertools
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

from tests.fakes.clock import Clock

_sids = itertools.count(1)
SAY_S = 4.0
"""How long the stand-in takes to speak one <Say> (an announcement of a dozen words)."""
WAIT_URL_VERBS = frozenset({"Play", "Say", "Pause", "Hangup", "Redirect", "Leave", "Gather"})
"""The verbs a waitUrl document may use (https://www.twilio.com/docs/voice/twiml/enqueue#waiturl)."""


class TwilioCaller:
    """One phone call. ``dial`` starts it; ``press``, ``wait``, ``record`` answer the last TwiML."""

    def __init__(self, client: Any, auth_token: str, public_url: str,
                 caller: str = "+8613812345678", called: str = "+861095555", api: Any = None,
                 call_sid: str | None = None) -> None:
        """``api``: the REST API fake (``tests.fakes.twilio_api.TwilioApi``) that knows this call, so the hotline
        can redirect it and it can join conferences; ``call_sid``: the sid of a call the hotline created there."""
        self.client, self.public_url = client, public_url.rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.call_sid = call_sid or f"CA{next(_sids):032x}"
        self.api = api
        if api is not None:
            if api.webhook is None:
                api.webhook = self.post_callback  # the account's own callbacks (conference events) go the same way
            if self.call_sid in api.calls:
                api.answered(self.call_sid)  # a leg the hotline placed, picked up
            else:
                api.register(self.call_sid, caller, called)
        self.caller, self.called = caller, called
        self.twiml: ET.Element | None = None
        self.transcript: list[str] = []
        self._enqueue_action = self._wait_url = ""
        self.held = False
        self.shared_key: tuple[str, str] | None = None
        """(key id, secret) when the account signs webhooks with a SharedKey instead of the auth token."""
        self.queue_sid = f"QU{self.call_sid[2:]}"
        self._whisper: Callable[[], None] | None = None
        """The <Conference> join a document owes once its <Say> before the <Dial> is spoken (``whispered``)."""

    # -- the phone -------------------------------------------------------------------------

    def dial(self) -> ET.Element:
        return self.post("/twilio/voice")

    def press(self, digits: str) -> ET.Element:
        """Type keys into the current <Gather>."""
        return self.post(self._action("Gather"), Digits=digits)

    def wait(self) -> ET.Element:
        """Press nothing: Twilio falls through the <Gather>/<Record> to the <Redirect>."""
        return self.post(self.verb("Redirect").text or "")

    def record(self, sid: str, seconds: int, url: str = "") -> ET.Element:
        return self.post(self._action("Record"), RecordingSid=sid, RecordingDuration=str(seconds),
                         RecordingUrl=url or f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{sid}")

    def hold(self, wait_url: str = "") -> ET.Element:
        """Twilio asks the waitUrl. A document using a verb a waitUrl may not use ends the hold: Twilio then
        requests the <Enqueue> action with ``QueueResult=error``
        (https://www.twilio.com/docs/voice/twiml/enqueue#attributes-action-parameters)."""
        # The waitUrl request carries the queue's sid (https://www.twilio.com/docs/voice/twiml/enqueue#waiturl).
        doc = self.post(wait_url or self._wait_url, QueueSid=self.queue_sid, QueuePosition="1")
        self.held = True  # Twilio asks the waitUrl once the caller is in the queue
        if set(self.verbs()) - WAIT_URL_VERBS:
            return self.post(self._enqueue_action, QueueResult="error")
        return doc

    def hold_for(self, seconds: float, clock: Clock, lengths: Mapping[str, float]) -> list[tuple[float, str]]:
        """Hold for ``seconds`` of ``clock``'s time as Twilio does: it plays the waitUrl document to its end and
        only then asks the waitUrl again (https://www.twilio.com/docs/voice/twiml/enqueue#waiturl). A <Play> lasts
        its file's length (``lengths``, what Twilio learns by playing it) times ``loop``; loop 0 plays forever
        (https://www.twilio.com/docs/voice/twiml/play#attributes-loop). Returns each <Say> heard, with its time."""
        heard: list[tuple[float, str]] = []
        end = clock.now + seconds
        while clock.now < end:
            self.hold()
            assert self.twiml is not None and "Leave" not in self.verbs() and "Hangup" not in self.verbs()
            for verb in self.twiml.iter():
                if verb.tag == "Say":
                    heard.append((clock.now, verb.text or ""))
                    clock.advance(SAY_S)
                elif verb.tag == "Play":
                    loops = int(verb.get("loop", "1"))
                    clock.advance(lengths[verb.text or ""] * loops if loops else end - clock.now)
                elif verb.tag == "Pause":
                    clock.advance(float(verb.get("length", "1")))
        return heard

    def answer_agent_leg(self, url: str, caller: TwilioCaller,
                         during_whisper: Callable[[], None] | None = None) -> str:
        """This is the agent's leg, picking up: follow its documents as Twilio does. A <Redirect> after the
        <Pause> is asked for again. Twilio executes a document's verbs in order: a <Say> before the
        <Dial><Conference> (the whisper) is spoken before the leg joins (verbs run one after the other, top to
        bottom: https://www.twilio.com/docs/voice/twiml); ``during_whisper`` runs while it is (the stand-in speaks
        in no time otherwise). A <Dial><Conference> is "bridged" when the caller, following the hotline's REST
        redirect, is in the same conference (with the REST API fake); <Dial><Queue> reaches only a queue the caller
        is in: <Enqueue> creates it
        when the caller gets there (https://www.twilio.com/docs/voice/twiml/enqueue), after any <Say> before it;
        a <Dial> that cannot connect ends and its action gets ``DialCallStatus=failed``
        (https://www.twilio.com/docs/voice/twiml/dial#dialcallstatus-values). Returns how the leg went."""
        for _ in range(30):
            self.post(url, speaking=during_whisper is not None)
            dial, redirect = self.twiml.find("Dial"), self.twiml.find("Redirect")  # type: ignore[union-attr]
            if dial is None and redirect is not None:
                for pause in self.twiml.iter("Pause"):  # type: ignore[union-attr]
                    time.sleep(float(pause.get("length", "1")))
                url = redirect.text or ""
                continue
            conference = dial.find("Conference") if dial is not None else None
            if conference is not None and self.api is not None:
                # The hotline moved the caller's call by REST: Twilio makes it follow.
                caller.follow()
                if during_whisper is not None:
                    during_whisper()
                    self.whispered()
                room = self.api.conference(conference.text or "")
                both = room is not None and {self.call_sid, caller.call_sid} <= set(room.participants)
                return "bridged" if both else "alone"
            queue = dial.find("Queue") if dial is not None else None
            if dial is None or queue is None:
                return "hung up" if dial is None else "dialled"
            if caller.held and queue.text == f"hotline-{caller.call_sid}":
                return "bridged"
            self.post(dial.attrib["action"], DialCallStatus="failed", DialCallDuration="0")
            return "failed"
        raise AssertionError("the agent's leg never got past its redirects")

    def whispered(self) -> None:
        """The <Say> before this leg's <Dial><Conference> has been spoken: the leg joins the conference now."""
        join, self._whisper = self._whisper, None
        assert join is not None, "no <Say> before a <Dial><Conference> is being spoken"
        join()

    def follow(self) -> ET.Element | None:
        """Twilio moves this call to the TwiML of the REST update the hotline made (None: there is none).
        A call in <Enqueue> leaves its queue and the Enqueue action is requested "right away"
        (https://www.twilio.com/docs/voice/twiml/enqueue#attributes-action); a call in a <Dial> leaves it, and
        this stand-in also requests the Dial action (nothing documented says it is not). Neither answer is played:
        the call executes the new Url (https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource)."""
        assert self.api is not None, "only a call the REST API fake knows can be redirected"
        target = self.api.next_redirect(self.call_sid)
        if target is None:
            return None
        verbs = self.verbs() if self.twiml is not None else []
        if "Enqueue" in verbs and self._enqueue_action:
            assert self.post_raw(self._enqueue_action, QueueResult="redirected", QueueTime="5").status_code == 200
        elif "Dial" in verbs and self.verb("Dial").find("Conference") is not None:
            self.api.leave(self.call_sid)
            assert self.post_raw(self.verb("Dial").attrib["action"], DialCallStatus="completed").status_code == 200
        self.held = False
        if target.lstrip().startswith("<"):
            self.twiml = ET.fromstring(target)
            return self.twiml
        return self.post(target)

    def leave_conference(self) -> ET.Element:
        """The conference ended (the other side left, ending it on exit) or this call left it: Twilio requests
        the <Dial> action with the call's next document (https://www.twilio.com/docs/voice/twiml/dial#action)."""
        dial = self.verb("Dial")
        assert dial.find("Conference") is not None
        if self.api is not None:
            self.api.leave(self.call_sid)
        return self.post(dial.attrib["action"], DialCallStatus="completed", DialCallDuration="42")

    def leave_queue(self, result: str) -> ET.Element:
        return self.post(self._enqueue_action or self._action("Enqueue"), QueueResult=result)

    def hang_up(self, status: str = "completed") -> int:
        if self.api is not None:
            self.api.leave(self.call_sid)
            self.api.calls[self.call_sid].status = status
        return int(self.post_raw("/twilio/status", CallStatus=status, CallDuration="42").status_code)

    # -- hanging up in the middle of a verb ------------------------------------------------------
    # At a hang-up Twilio sends the verb's action, the recording's status callback and the call's final status
    # callback as separate requests, with no documented order between them; a status callback may come twice
    # ("make handlers idempotent": https://www.twilio.com/docs/usage/webhooks/webhooks-overview). So these post
    # them in the ``order`` the test names, each name as often as it appears.

    def hang_up_recording(self, sid: str, seconds: int, url: str, order: Sequence[str]) -> None:
        """Hang up while <Record> runs: the action gets ``Digits=hangup`` and the recording
        (https://www.twilio.com/docs/voice/twiml/record#action), the recordingStatusCallback its own post
        (https://www.twilio.com/docs/voice/twiml/record#recordingstatuscallback)."""
        self._in_order(order, self.recording_hang_up(sid, seconds, url))

    def recording_hang_up(self, sid: str, seconds: int, url: str) -> dict[str, Callable[[], Any]]:
        """The requests of a hang-up while <Record> runs, by name, to be sent in any order (or at once)."""
        action = self._action("Record")
        recording = {"RecordingSid": sid, "RecordingDuration": str(seconds), "RecordingUrl": url}
        return {
            "action": lambda: self.post_raw(action, Digits="hangup", **recording),
            "recording": lambda: self.post_raw("/twilio/recording", RecordingStatus="completed", **recording),
            "status": lambda: self.post_raw("/twilio/status", CallStatus="completed", CallDuration="42"),
        }

    def hang_up_holding(self, order: Sequence[str], result: str = "hangup") -> None:
        """Hang up on hold (``QueueResult=hangup``) or while talking to the agent who dequeued the caller
        (``bridged``): the <Enqueue> action is requested (https://www.twilio.com/docs/voice/twiml/enqueue#action).
        The last document may be the waitUrl's, whose <Hangup/> ended the call; the Enqueue action is still owed."""
        self._in_order(order, self.holding_hang_up(result))

    def holding_hang_up(self, result: str = "hangup") -> dict[str, Callable[[], Any]]:
        """The requests of a hang-up on hold (or with the agent), by name, to be sent in any order (or at once)."""
        action = self._enqueue_action
        return {
            "action": lambda: self.post_raw(action, QueueResult=result, QueueTime="30"),
            "status": lambda: self.post_raw("/twilio/status", CallStatus="completed", CallDuration="42"),
        }

    def _in_order(self, order: Sequence[str], requests: dict[str, Callable[[], Any]]) -> None:
        for name in order:
            reply = requests[name]()
            assert reply.status_code in (200, 204), (name, reply.status_code, reply.data)

    # -- reading what Twilio would do --------------------------------------------------------

    def said(self) -> list[str]:
        """Every <Say> text of the last answer, nested ones included, in order."""
        assert self.twiml is not None
        return [el.text or "" for el in self.twiml.iter("Say")]

    def queue(self) -> str:
        """The router queue ("skill:language") this caller waits in, once TwiML put them on hold for it."""
        assert self.verb("Enqueue").text == f"hotline-{self.call_sid}"
        view = self.client.application.extensions["hotline"].router.call(self.call_sid)
        return view.queue if view else ""

    def verb(self, name: str) -> ET.Element:
        assert self.twiml is not None
        found = self.twiml.find(name)
        assert found is not None, f"no <{name}> in {ET.tostring(self.twiml, encoding='unicode')}"
        return found

    def verbs(self) -> list[str]:
        assert self.twiml is not None
        return [child.tag for child in self.twiml]

    # -- the wire ----------------------------------------------------------------------------

    def post(self, url: str, speaking: bool = False, **fields: str) -> ET.Element:
        """The document at ``url``; its <Dial><Conference> joins at once, or with ``speaking`` after a <Say>
        before it only when the test says it has been spoken (``whispered``)."""
        reply = self.post_raw(url, **fields)
        assert reply.status_code == 200, reply.data
        assert reply.mimetype == "text/xml"
        self.twiml = ET.fromstring(reply.data)
        conference = self.twiml.find("Dial/Conference")
        if conference is not None and self.api is not None:
            api, name, attrs = self.api, conference.text or "", dict(conference.attrib)

            def join() -> None:
                api.join(self.call_sid, name, attrs)
            self._whisper = join
            verbs = self.verbs()
            if not (speaking and "Say" in verbs[:verbs.index("Dial")]):
                self.whispered()
        enqueue = self.twiml.find("Enqueue")
        if enqueue is not None and "action" in enqueue.attrib:
            self._enqueue_action = enqueue.attrib["action"]  # owed when the caller leaves the queue
            self._wait_url = enqueue.attrib.get("waitUrl", "")
        self.transcript.extend(self.said())
        return self.twiml

    def post_callback(self, url: str, form: dict[str, str]) -> int:
        """A request Twilio makes of its own (a conference's status callback): exactly ``form``, signed as every
        webhook is (https://www.twilio.com/docs/usage/security#validating-requests); the HTTP status."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        signature = self.validator.compute_signature(url, form)
        return int(self.client.post(path, data=form, headers={"X-Twilio-Signature": signature}).status_code)

    def post_raw(self, url: str, signature: str | None = None, **fields: str) -> Any:
        form = {"CallSid": self.call_sid, "AccountSid": "ACtest", "From": self.caller, "To": self.called,
                "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", **fields}
        full = url if url.startswith("http") else self.public_url + url
        headers = {}
        if self.shared_key is not None:
            # A Webhook Setting signing with a shared key: HMAC-SHA256 over the same string, and a header naming
            # the key (https://www.twilio.com/docs/usage/webhooks/webhook-shared-keys).
            key_id, secret = self.shared_key
            headers["X-Twilio-Webhooks-Signature-Settings"] = f"key={key_id},algorithm=HMAC_SHA256"
            signature = signature or RequestValidator(secret).compute_signature(full, form, "HMAC_SHA256")
        if signature is None:
            signature = self.validator.compute_signature(full, form)
        parts = urlsplit(full)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.client.post(path, data=form, headers={"X-Twilio-Signature": signature, **headers})

    def _action(self, verb: str) -> str:
        return self.verb(verb).attrib["action"]
