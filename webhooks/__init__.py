"""The Twilio channel: a Flask blueprint that answers voice webhooks with TwiML."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import redis
from flask import Blueprint, Response, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from calls.log_context import enter_call, leave_call
from ivr.masking import redact
from metrics import MENU_ERRORS
from recordings.twilio_fetch import RecordingFetcher
from webhooks.calls import FINAL_STATUSES, BadRequest, OutboundStart, TwilioCalls
from webhooks.conference import LEAVE_EVENT
from webhooks.dispositions import twilio_disposition
from webhooks.fallbacks import FallbackConfig, for_caller, for_endpoint
from webhooks.hold_music import slice_wav
from webhooks.security import twilio_signed

log = logging.getLogger(__name__)

class VisitOutcomes(Protocol):
    """Return visits, as their status callback needs them."""

    def finish_attempt(self, visit_id: int, attempt: int, disposition: str) -> None: ...
    def call_ended(self, visit_id: int) -> None: ...


@dataclass(frozen=True)
class TwilioConfig:
    public_url: str
    auth_token: str | None
    fallback: FallbackConfig = FallbackConfig()
    shared_key_secret: str | None = None
    """The secret of a Twilio SharedKey, for webhooks a Webhook Setting signs with it (HMAC-SHA256)."""


def create_blueprint(
    calls: TwilioCalls, fetcher: RecordingFetcher, config: TwilioConfig, visits: VisitOutcomes,
) -> Blueprint:
    bp = Blueprint("twilio", __name__, url_prefix="/twilio")

    @bp.record_once
    def _register(state: object) -> None:
        state.app.extensions["hotline.twilio"] = config  # type: ignore[attr-defined]

    @bp.before_request
    def whole_bodies_only() -> None:
        # A chunked body (no Content-Length) past MAX_CONTENT_LENGTH is cut at the limit by werkzeug,
        # not refused: refuse it here as one with a Content-Length would be (Twilio always sends one).
        limit = request.max_content_length
        if request.content_length is None and limit is not None and len(request.get_data(cache=True)) >= limit:
            raise RequestEntityTooLarge()

    @bp.before_request
    def about_the_call() -> None:
        # Agent legs and hold requests name the customer's call in ?call=; the rest are the call's own webhooks.
        # The form only of a POST within the size limit: reading any other body here would answer it 413 before
        # the route and its signature check say what they say (405, 403).
        limit = request.max_content_length
        readable = request.method == "POST" and (limit is None or (request.content_length or 0) <= limit)
        call_id = request.args.get("call") or (request.form.get("CallSid", "") if readable else "")
        if call_id:
            g.hotline_call = enter_call(call_id, "twilio", (request.endpoint or "").removeprefix("twilio."))

    @bp.teardown_request
    def call_handled(_exc: BaseException | None) -> None:
        token = g.pop("hotline_call", None)
        if token is not None:
            leave_call(token)

    @bp.post("/voice")
    @twilio_signed
    def voice() -> Response:
        seq = request.args.get("seq", type=int)
        outbound = None
        if request.args.get("menu"):  # a call the hotline placed (signed URL: the query is ours)
            outbound = OutboundStart(request.args["menu"], request.args.get("visit", ""),
                                     request.args.get("lang") or None)
        # ?lang= on the number's webhook URL (e.g. an English-language number): the menu starts in it.
        twiml = calls.voice(request.form, seq, timed_out=request.args.get("timeout") == "1", outbound=outbound,
                            language=request.args.get("lang") or None,
                            requeue=request.args.get("requeue", 0, type=int),
                            joined=request.args.get("joined") == "1")
        return _twiml(twiml)

    @bp.post("/caller/resume")
    @twilio_signed
    def caller_resume() -> Response:
        """The URL a caller's call is moved to by REST: into their agent's conference, or back on hold."""
        return _twiml(calls.resume(_arg("call")))

    @bp.post("/fallback")
    @twilio_signed
    def fallback() -> Response:
        """The number's Voice Fallback URL: Twilio asks it when the voice URL failed (a 4xx/5xx, or no answer
        in 15 s) and would otherwise play its own error message. Touches nothing that may be down."""
        log.warning("call %s: Twilio used the fallback URL (error %s at %s)", request.form.get("CallSid", "?")[:64],
                  request.form.get("ErrorCode", "?")[:16], request.form.get("ErrorUrl", "?")[:200])
        return _twiml(for_caller(config.fallback))

    @bp.get("/hold-music.wav")
    def hold_music() -> Response:
        """The hotline's own hold-music slice (public: Twilio fetches <Play> media unsigned)."""
        return Response(slice_wav(), mimetype="audio/wav", headers={"Cache-Control": "public, max-age=86400"})

    @bp.post("/status")
    @twilio_signed
    def status() -> Response:
        calls.status(request.form)
        return Response(status=204)

    @bp.post("/visit/status")
    @twilio_signed
    def visit_status() -> Response:
        """Status of a return-visit call: the attempt's disposition, and the end of its survey."""
        visit, attempt = request.args.get("visit", type=int), request.args.get("attempt", type=int)
        if visit is None or attempt is None:
            raise BadRequest("missing or malformed visit or attempt")
        disposition = calls.answered_by.disposition(request.form.get("CallSid", ""), twilio_disposition(request.form))
        if disposition is None:
            return Response(status=204)
        calls.status(request.form)  # the survey's session ends and its call record closes
        visits.finish_attempt(visit, attempt, disposition)
        if disposition == "answered":
            visits.call_ended(visit)
        return Response(status=204)

    @bp.post("/queue/wait")
    @twilio_signed
    def queue_wait() -> Response:
        return _twiml(calls.hold.wait(_arg("call"), request.form.get("QueueSid", "")[:64]))

    @bp.post("/queue/choice")
    @twilio_signed
    def queue_choice() -> Response:
        return _twiml(calls.hold.choice(_arg("call"), request.form))

    @bp.post("/agent/connect")
    @twilio_signed
    def agent_connect() -> Response:
        screen = request.args.get("screen", "")
        if screen == "answer":  # the agent's key after the screening prompt
            screen = request.form.get("Digits", "")[:1] or "none"
        return _twiml(calls.hold.agent_connect(_arg("call"), _arg("agent"), request.args.get("waited", 0, type=int),
                                               screen, leg=request.form.get("CallSid", "")[:64]))

    @bp.post("/agent/done")
    @twilio_signed
    def agent_done() -> Response:
        return _twiml(calls.hold.agent_done(_arg("call"), _arg("agent"), request.form))

    @bp.post("/agent/status")
    @twilio_signed
    def agent_status() -> Response:
        calls.hold.agent_status(_arg("call"), _arg("agent"), request.form)
        return Response(status=204)

    @bp.post("/conference/status")
    @twilio_signed
    def conference_status() -> Response:
        """The statusCallback of the call's conference (``?call=``): a participant joined (the agent leg's recording
        starts then) or left (a consulted target before the hand-over is released). Always 204: Twilio ignores
        the answer and retries nothing."""
        if request.form.get("StatusCallbackEvent") == LEAVE_EVENT:
            calls.hold.participant_left(_arg("call"), request.form)
        else:
            calls.hold.participant_joined(_arg("call"), request.form)
        return Response(status=204)

    @bp.post("/recording")
    @twilio_signed
    def recording() -> Response:
        try:
            # A failed fetch is kept and retried by a job: Twilio retries no 5xx.
            fetcher.handle(request.form, request.args)
        except ValueError as exc:
            return Response(str(exc), status=400, mimetype="text/plain")
        except redis.RedisError as exc:  # not even kept: the one case left for an operator to see
            log.error("recording %s of call %s lost: %s", request.form.get("RecordingSid", "?")[:64],
                      request.form.get("CallSid", "?")[:64], type(exc).__name__)
            return Response("recording not kept", status=503, mimetype="text/plain")
        return Response(status=204)

    @bp.errorhandler(BadRequest)
    def bad_request(exc: BadRequest) -> Response:
        return Response(str(exc), status=400, mimetype="text/plain")

    @bp.errorhandler(Exception)
    def broken(exc: Exception) -> Response | HTTPException:
        # The channel's one error boundary: each route answers what its verb allows (webhooks.fallbacks).
        if isinstance(exc, HTTPException):
            return exc
        MENU_ERRORS.labels("twilio").inc()
        call_id = request.form.get("CallSid", "?")
        if isinstance(exc, redis.RedisError):
            log.error("call %s: redis unavailable (%s)", call_id, type(exc).__name__)
        else:
            log.error("call %s: %s", call_id, redact(repr(exc)), exc_info=exc)
        # The caller's part ends here (the fallback hangs up or dials the backup number), or the call is over
        # and its status callback failed: either way the call gets its whole record.
        if request.endpoint == "twilio.voice" or (
                request.endpoint == "twilio.status" and request.form.get("CallStatus") in FINAL_STATUSES):
            calls.failed(request.form)
        return _twiml(for_endpoint(request.endpoint or "", config.fallback))

    return bp


def _arg(name: str) -> str:
    value = request.args.get(name, "")
    if not value or len(value) > 64:
        raise BadRequest(f"missing or malformed {name}")
    return value


def _twiml(twiml: str) -> Response:
    return Response(twiml, mimetype="text/xml")
