"""Return-visit dialers against real servers: the twilio library talking to a local HTTP server, and the
AMI dialer talking to a local AMI server over TCP."""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.ami_server import FakeAmiServer
from tests.fakes.http_server import LocalHttpServer, Reply, SeenRequest
from webhooks.dispositions import twilio_disposition
from workers.dialers import (
    AmiConfig,
    AmiVisitDialer,
    DialResult,
    TwilioVisitConfig,
    TwilioVisitDialer,
    VisitCall,
)

ACCOUNT_SID = "ACvisit0123456789abcdef0123456789"
AUTH_TOKEN = "visit-auth-token-0123456789abcdef"
FROM = "+8610095555"
PUBLIC_URL = "https://hotline.example.com/"
NUMBER = "+8613812345678"
CALL = VisitCall(visit_id=42, attempt=2, number=NUMBER, language="zh-CN")
AMI_SECRET = "test-ami-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def no_full_number(text: str) -> None:
    assert NUMBER not in text and NUMBER.lstrip("+") not in text, text


# -- Twilio ----------------------------------------------------------------------------------------


def call_resource(sid: str = "CA0123456789abcdef0123456789abcdef") -> dict[str, object]:
    return {"sid": sid, "account_sid": ACCOUNT_SID, "status": "queued", "to": NUMBER, "from": FROM,
            "direction": "outbound-api", "api_version": "2010-04-01", "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"}


def twilio_dialer(api_base: str, **overrides: object) -> TwilioVisitDialer:
    config = TwilioVisitConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base=api_base + "/",
                               from_number=FROM, public_url=PUBLIC_URL, ring_timeout_s=25, **overrides)  # type: ignore[arg-type]
    return TwilioVisitDialer(config)


@pytest.fixture
def twilio_api() -> Iterator[LocalHttpServer]:
    def answer(request: SeenRequest) -> Reply:
        if request.method == "POST" and request.path.endswith("/Calls.json"):
            return Reply.json(201, call_resource())
        return Reply.json(404, {"code": 20404, "message": "not found", "status": 404})

    server = LocalHttpServer(answer).start()
    yield server
    server.stop()


def test_twilio_dialer_posts_the_call_with_survey_and_status_urls(twilio_api: LocalHttpServer) -> None:
    result = twilio_dialer(twilio_api.url).dial(CALL)

    assert result == DialResult("pending", "CA0123456789abcdef0123456789abcdef")
    [request] = twilio_api.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    form = parse_qs(request.body.decode(), keep_blank_values=True)
    assert form["To"] == [NUMBER] and form["From"] == [FROM]
    url = urlsplit(form["Url"][0])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://hotline.example.com/twilio/voice"
    assert parse_qs(url.query) == {"menu": ["survey"], "visit": ["42"], "attempt": ["2"], "lang": ["zh-CN"]}
    status = urlsplit(form["StatusCallback"][0])
    assert f"{status.scheme}://{status.netloc}{status.path}" == "https://hotline.example.com/twilio/visit/status"
    assert parse_qs(status.query) == {"visit": ["42"], "attempt": ["2"]}
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["MachineDetection"] == ["Enable"]
    assert form["Timeout"] == ["25"]


def test_twilio_refusal_fails_without_the_full_number(caplog: pytest.LogCaptureFixture) -> None:
    error = {"code": 21211, "message": f"The 'To' number {NUMBER} is not a valid phone number.",
             "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}
    server = LocalHttpServer(lambda request: Reply.json(400, error)).start()
    try:
        with caplog.at_level(logging.DEBUG):
            result = twilio_dialer(server.url).dial(CALL)
    finally:
        server.stop()

    assert result.disposition == "failed" and result.provider_call_id == ""
    assert "21211" in result.detail and "not a valid phone number" in result.detail and "HTTP 400" in result.detail
    assert "+86138****5678" in result.detail
    no_full_number(result.detail)
    assert caplog.records
    for record in caplog.records:
        no_full_number(record.getMessage())


def test_twilio_unreachable_fails(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        result = twilio_dialer(f"http://127.0.0.1:{free_port()}").dial(CALL)

    assert result.disposition == "failed"
    assert "could not reach Twilio" in result.detail and "ConnectionError (Connection refused)" in result.detail
    for record in caplog.records:
        no_full_number(record.getMessage())


def test_twilio_api_that_does_not_answer_in_time_fails() -> None:
    def slow(request: SeenRequest) -> Reply:
        time.sleep(1.0)
        return Reply.json(201, call_resource())

    server = LocalHttpServer(slow).start()
    try:
        started = time.monotonic()
        result = twilio_dialer(server.url, request_timeout_s=0.2).dial(CALL)
        assert time.monotonic() - started < 0.9
    finally:
        server.stop()
    assert result.disposition == "failed" and "Timeout" in result.detail


@pytest.mark.parametrize(("form", "expected"), [
    ({"CallStatus": "queued"}, None),
    ({"CallStatus": "initiated"}, None),
    ({"CallStatus": "ringing"}, None),
    ({"CallStatus": "in-progress", "AnsweredBy": "human"}, None),
    ({"CallStatus": "completed"}, "answered"),
    ({"CallStatus": "completed", "AnsweredBy": "human"}, "answered"),
    ({"CallStatus": "completed", "AnsweredBy": "unknown"}, "answered"),
    ({"CallStatus": "completed", "AnsweredBy": "machine_start"}, "voicemail"),
    ({"CallStatus": "completed", "AnsweredBy": "machine_end_beep"}, "voicemail"),
    ({"CallStatus": "completed", "AnsweredBy": "machine_end_silence"}, "voicemail"),
    ({"CallStatus": "completed", "AnsweredBy": "machine_end_other"}, "voicemail"),
    ({"CallStatus": "completed", "AnsweredBy": "fax"}, "voicemail"),
    ({"CallStatus": "busy"}, "busy"),
    ({"CallStatus": "no-answer"}, "no-answer"),
    ({"CallStatus": "failed"}, "failed"),
    ({"CallStatus": "canceled"}, "failed"),
    ({}, None),
    ({"CallStatus": "something-new"}, None),
])
def test_twilio_disposition(form: dict[str, str], expected: str | None) -> None:
    assert twilio_disposition(form) == expected


# -- Asterisk AMI ----------------------------------------------------------------------------------


def ami_config(port: int, **overrides: object) -> AmiConfig:
    settings: dict[str, object] = {
        "host": "127.0.0.1", "port": port, "username": "hotline", "secret": AMI_SECRET, "caller_id": '"Hotline" <95555>',
        "ring_timeout_s": 1, "connect_timeout_s": 1.0, "result_grace_s": 0.5, **overrides,
    }
    return AmiConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
def ami() -> Iterator[FakeAmiServer]:
    with FakeAmiServer(outcomes={
        "+8613800000003": ("Failure", 3), "+8613800000005": ("Failure", 5), "+8613800000008": ("Failure", 8),
    }, secret=AMI_SECRET) as server:
        yield server


def dial(number: str, port: int, **overrides: object) -> tuple[DialResult, float]:
    started = time.monotonic()
    result = AmiVisitDialer(ami_config(port, **overrides)).dial(VisitCall(7, 1, number, "en-US"))
    return result, time.monotonic() - started


def test_ami_answered_sends_the_originate_and_logs_off(ami: FakeAmiServer) -> None:
    result, took = dial(NUMBER, ami.port)

    assert result == DialResult("answered", "1700000000.42")
    assert took < 1.0
    assert [a["Action"] for a in ami.actions] == ["Login", "Originate", "Logoff"]
    login = ami.actions[0]
    assert (login["Username"], login["Secret"], login["Events"]) == ("hotline", AMI_SECRET, "call")
    originate = ami.named("Originate")[0]
    assert originate["Channel"] == f"PJSIP/{NUMBER}@hotline-trunk"
    assert originate["Context"] == "hotline-outbound"
    assert originate["Exten"] == "s"
    assert originate["Priority"] == "1"
    assert originate["CallerID"] == '"Hotline" <95555>'
    assert originate["Timeout"] == "1000"
    assert originate["Async"] == "true"
    assert originate["Variable"] == ["HOTLINE_VISIT=7", "HOTLINE_ATTEMPT=1", "HOTLINE_LANGUAGE=en"]
    assert str(originate["ActionID"]).startswith("hotline-visit-7-1-")


def test_ami_language_variable_is_the_primary_subtag() -> None:
    dialer = AmiVisitDialer(ami_config(5038, caller_id=""))
    headers = dialer.originate_headers(VisitCall(1, 3, "13800138000", "zh-CN"))
    assert ("Variable", "HOTLINE_LANGUAGE=zh") in headers
    assert "CallerID" not in {key for key, _ in headers}


@pytest.mark.parametrize(("number", "disposition", "detail"), [
    ("+8613800000003", "no-answer", ""),
    ("+8613800000005", "busy", ""),
    ("+8613800000008", "failed", "Reason 8 (congestion)"),
])
def test_ami_failures_map_the_originate_reason(
    ami: FakeAmiServer, number: str, disposition: str, detail: str
) -> None:
    result, took = dial(number, ami.port)

    assert result.disposition == disposition
    assert detail in result.detail
    assert took < 1.0
    assert [a["Action"] for a in ami.actions] == ["Login", "Originate", "Logoff"]


def test_ami_wrong_secret_fails_at_login(ami: FakeAmiServer) -> None:
    result, took = dial(NUMBER, ami.port, secret="wrong")

    assert result.disposition == "failed"
    assert "login" in result.detail.lower() and "authentication failed" in result.detail.lower()
    assert [a["Action"] for a in ami.actions] == ["Login"], "no Originate after a refused login"
    assert took < 1.0


def test_ami_server_closing_after_originate_fails(caplog: pytest.LogCaptureFixture) -> None:
    with FakeAmiServer(secret=AMI_SECRET, close_after_originate=True) as server, caplog.at_level(logging.DEBUG):
        result, took = dial(NUMBER, server.port)
        originates = server.named("Originate")

    assert result.disposition == "failed" and "closed the connection" in result.detail
    assert len(originates) == 1, "the call is never placed twice"
    assert took < 1.0
    for record in caplog.records:
        no_full_number(record.getMessage())


def test_ami_without_an_originate_response_times_out() -> None:
    with FakeAmiServer(secret=AMI_SECRET, send_originate_response=False) as server:
        result, took = dial(NUMBER, server.port, ring_timeout_s=0, result_grace_s=0.3)
        actions = [a["Action"] for a in server.actions]

    assert result.disposition == "failed" and "timed out" in result.detail and "OriginateResponse" in result.detail
    assert 0.3 <= took < 1.5
    assert actions == ["Login", "Originate", "Logoff"]


def test_ami_response_overtaking_the_acknowledgement_is_not_lost() -> None:
    with FakeAmiServer(secret=AMI_SECRET, event_before_ack=True) as server:
        result, _ = dial(NUMBER, server.port)
    assert result.disposition == "answered"


def test_ami_nothing_listening_fails() -> None:
    result, took = dial(NUMBER, free_port())

    assert result.disposition == "failed" and "cannot connect" in result.detail
    assert took < 1.0


def test_ami_not_an_asterisk_fails() -> None:
    server = LocalHttpServer(lambda request: Reply(200))
    server.start()
    try:
        result, took = dial(NUMBER, server.port, connect_timeout_s=0.3)
    finally:
        server.stop()
    assert result.disposition == "failed" and "timed out waiting for the AMI greeting" in result.detail
    assert took < 1.0


def test_ami_refused_originate_fails_with_the_reason() -> None:
    with FakeAmiServer(secret=AMI_SECRET, refuse_originate="Permission denied") as server:
        result, _ = dial(NUMBER, server.port)
        actions = [a["Action"] for a in server.actions]
    assert result == DialResult("failed", detail="Asterisk refused the Originate: Permission denied")
    assert actions == ["Login", "Originate", "Logoff"]


def test_ami_number_with_a_line_break_is_never_sent(ami: FakeAmiServer) -> None:
    result, _ = dial("+8613812345678\r\nAction: Command", ami.port)
    assert result.disposition == "failed" and "line break" in result.detail
    no_full_number(result.detail)
    assert [a["Action"] for a in ami.actions] == ["Login", "Logoff"]
