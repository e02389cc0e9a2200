"""Fuzzing every ``/twilio/*`` webhook: arbitrary fields and values, raw bodies, huge bodies, wrong methods,
missing, empty and forged signatures. Without a valid ``X-Twilio-Signature`` the answer is 403 (413 when the
body is over the limit) and nothing changes: no Redis key, no SQL row, no event, no file. With one, the
answer is TwiML, an empty 204 or a 4xx saying why; never a 500, never the channel's error boundary.

The Flask test client carries most examples; a real gunicorn on loopback takes the size limit and
malformed framing over a socket. Seeds are fixed (``derandomize``): CI sees the same examples every run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from hotline.app import MAX_WEBHOOK_BYTES, Hotline, create_app, prepare
from hotline.settings import Settings
from routing.agents import Agent
from routing.config import QueueConfig
from store.models import Base
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, free_port
from tests.fakes.twilio_api import HOTLINE_NUMBER
from tests.fakes.twilio_caller import TwilioCaller

SIGNER = RequestValidator(AUTH_TOKEN)
AGENTS = ("ann", "bob")
FIELDS = ["CallSid", "AccountSid", "From", "To", "Caller", "Called", "CallStatus", "Direction", "ApiVersion",
          "Digits", "SpeechResult", "RecordingSid", "RecordingUrl", "RecordingDuration", "RecordingStatus",
          "QueueResult", "QueueTime", "DialCallStatus", "DialCallDuration", "CallDuration", "AnsweredBy"]
QUERY = ["seq", "timeout", "menu", "visit", "lang", "attempt", "call", "agent"]
WORDS = ["", "0", "1", "9", "#", "*", "0#", "completed", "in-progress", "ringing", "busy", "no-answer",
         "canceled", "failed", "hangup", "bridged", "queue-full", "redirected", "leave", "error", "survey",
         "hotline", "-1", "99999999999999999999", "1e309", "inf", "nan", "NaN", "-0", "0x1F", "１２３",
         "CA" + "0" * 32, "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1", "../../etc/passwd",
         "<Say>hi</Say>", "]]>", "&amp;", "%00", "\x00", "\r\n", "\u202e", "\U0001f4de", "null", "[]", "{}"]
CONTROL = st.text(st.characters(codec="ascii", categories=["Cc"]), max_size=30)
LONG = st.builds(lambda piece, n: (piece * n)[:n], st.text(min_size=1, max_size=3), st.integers(200, 12_000))
VALUES = st.sampled_from(WORDS) | st.text(max_size=40) | CONTROL | LONG
HEADER_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
"""What a header value can carry: a server hands the app its bytes decoded as latin-1, never a line break."""
KEYS = st.sampled_from(FIELDS) | st.text(max_size=20)


@pytest.fixture
def fuzz_settings(settings: Settings, twilio_api: Any) -> Settings:
    # Agent legs and recording downloads go to Twilio's fake on loopback, never to the internet.
    fast = QueueConfig(lower_level_after=0, overflow_after=0, callback_after=0, wrap_up=1)
    return settings.model_copy(update={"twilio_api_base": twilio_api.server.url, "twilio_number": HOTLINE_NUMBER,
                                       "queues": {"general": fast}})


@pytest.fixture
def fuzz(fuzz_settings: Settings) -> Iterator[Fuzz]:
    hotline = prepare(fuzz_settings)
    app = create_app(hotline=hotline)
    app.testing = True
    fuzz = Fuzz(app, hotline, fuzz_settings)
    yield fuzz
    logging.getLogger("webhooks").removeHandler(fuzz.errors)


class Fuzz:
    """The app under test, a few calls already in progress, and what it has stored."""

    def __init__(self, app: Any, hotline: Hotline, settings: Settings) -> None:
        self.client, self.hotline, self.settings = app.test_client(), hotline, settings
        # The webhooks Twilio posts to (not the hold music it fetches with GET).
        self.routes = sorted(r.rule for r in app.url_map.iter_rules()
                             if r.rule.startswith("/twilio/") and "POST" in (r.methods or ()))
        self.errors = _Records()
        logging.getLogger("webhooks").addHandler(self.errors)
        for agent in AGENTS:
            hotline.agents.put(Agent(agent, agent.title(), f"client:{agent}", {"general": 5}, ["zh-CN", "en-US"]))
            hotline.router.set_agent_state(agent, "available")
        self.calls = [TwilioCaller(self.client, AUTH_TOKEN, PUBLIC_URL) for _ in range(3)]
        for caller in self.calls:
            caller.dial()
        self.calls[1].press("0")  # offered to an agent
        self.calls[2].press("0")  # offered to the other one
        self.recording_url = f"{settings.twilio_api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE{'1' * 32}"
        self._settle()

    def _settle(self, timeout_s: float = 10) -> None:
        """Wait until the agents' legs are dialled (off-thread, through Twilio's fake): from here on
        only the requests under test change anything."""
        deadline, last = time.monotonic() + timeout_s, self.snapshot()
        while True:
            time.sleep(0.2)
            now = self.snapshot()
            if now == last:
                return
            assert time.monotonic() < deadline, "the hotline kept changing with no request"
            last = now

    @property
    def call_sids(self) -> list[str]:
        return [caller.call_sid for caller in self.calls]

    def snapshot(self) -> Snapshot:
        return snapshot(self.hotline)

    def post(self, path: str, query: dict[str, str], body: Any, signature: str | None,
             method: str = "POST", **kwargs: Any) -> Any:
        headers = {} if signature is None else {"X-Twilio-Signature": signature}
        target = f"{path}?{urlencode(query)}" if query else path
        self.errors.records.clear()
        return self.client.open(target, method=method, data=body, headers=headers, **kwargs)


Snapshot = tuple[dict[bytes, Any], dict[str, int], list[str]]


def snapshot(hotline: Hotline) -> Snapshot:
    """Every Redis key with its value (the events stream included), the rows of every table, the files kept."""
    client = redis.Redis.from_url(hotline.settings.redis_url or "")
    keys = {key: client.dump(key) for key in client.scan_iter(count=1000)}
    with hotline.sql() as db:
        rows = {t.name: db.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}
    files = sorted(str(p) for p in Path(hotline.settings.data_dir).rglob("*") if p.is_file())
    return keys, rows, files


class _Records(logging.Handler):
    """ERROR records of the webhooks package: the channel's error boundary caught something."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def signed_url(path: str, query: dict[str, str]) -> str:
    return PUBLIC_URL + path + (f"?{urlencode(query)}" if query else "")


def sign(path: str, query: dict[str, str], form: Any) -> str:
    return SIGNER.compute_signature(signed_url(path, query), form)


def form_of(body: bytes, content_type: str) -> MultiDict[str, str]:
    """The form the app will see for this raw body: what Twilio would have signed."""
    environ = EnvironBuilder(method="POST", data=body, content_type=content_type).get_environ()
    return Request(environ).form


def assert_answered(fuzz: Fuzz, path: str, reply: Any) -> None:
    """A signed request: TwiML, an empty 204, or a 4xx that says why. Never a 500, never the boundary."""
    body = reply.get_data(as_text=True)
    if path == "/twilio/recording" and reply.status_code == 503:
        assert body == "recording not kept"  # Redis failed: nothing could keep it (logged as an error)
        return
    assert not fuzz.errors.records, [r.getMessage()[:300] for r in fuzz.errors.records]
    assert reply.status_code < 500, body[:300]
    assert reply.status_code != 403, "a correctly signed request was refused"
    if reply.status_code == 200:
        assert reply.mimetype == "text/xml"
        assert ET.fromstring(body).tag == "Response"
    elif reply.status_code == 204:
        assert body == ""
    else:
        assert 400 <= reply.status_code < 500 and body.strip(), (reply.status_code, body[:300])


forms = st.dictionaries(KEYS, VALUES, max_size=8)
queries = st.dictionaries(st.sampled_from(QUERY) | st.text(max_size=8), VALUES, max_size=4)
FUZZ = settings(derandomize=True, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
NUMBERS = st.integers(-3, 10**12).map(str)
STATUSES = ["queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"]


def or_fuzz(plausible: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Mostly what Twilio sends, sometimes anything."""
    return st.one_of(plausible, plausible, plausible, VALUES)


def plausible_query(fuzz: Fuzz, path: str) -> st.SearchStrategy[dict[str, str]]:
    call, agent = or_fuzz(st.sampled_from(fuzz.call_sids)), or_fuzz(st.sampled_from(AGENTS))
    wanted = {
        "/twilio/voice": st.fixed_dictionaries({}, optional={
            "seq": or_fuzz(st.integers(0, 12).map(str)), "timeout": or_fuzz(st.just("1")),
            "menu": or_fuzz(st.sampled_from(["survey", "hotline"])), "visit": or_fuzz(NUMBERS),
            "lang": or_fuzz(st.sampled_from(["zh-CN", "en-US"]))}),
        "/twilio/visit/status": st.fixed_dictionaries({"visit": or_fuzz(NUMBERS), "attempt": or_fuzz(NUMBERS)}),
        "/twilio/queue/wait": st.fixed_dictionaries({"call": call}),
        "/twilio/queue/choice": st.fixed_dictionaries({"call": call}),
        "/twilio/conference/status": st.fixed_dictionaries({"call": call}),
    }.get(path, st.fixed_dictionaries({"call": call, "agent": agent}) if "/agent/" in path else st.just({}))
    return st.tuples(wanted, st.dictionaries(st.sampled_from(QUERY) | st.text(max_size=8), VALUES, max_size=2)).map(
        lambda parts: {**parts[1], **parts[0]})


def plausible_form(fuzz: Fuzz) -> st.SearchStrategy[dict[str, str]]:
    wanted = st.fixed_dictionaries({"CallSid": or_fuzz(st.sampled_from(fuzz.call_sids))}, optional={
        "Digits": or_fuzz(st.text("0123456789*#", max_size=20)),
        "CallStatus": or_fuzz(st.sampled_from(STATUSES)), "CallDuration": or_fuzz(NUMBERS),
        "QueueResult": or_fuzz(st.sampled_from(["bridged", "hangup", "leave", "queue-full", "error",
                                                "system-error", "redirected"])),
        "DialCallStatus": or_fuzz(st.sampled_from(STATUSES)), "AnsweredBy": or_fuzz(st.sampled_from(["human"])),
        "RecordingSid": or_fuzz(st.sampled_from(["RE" + "1" * 32, "RE" + "2" * 32])),
        "RecordingUrl": or_fuzz(st.just(fuzz.recording_url)), "RecordingDuration": or_fuzz(NUMBERS),
        "RecordingStatus": or_fuzz(st.sampled_from(["completed", "in-progress", "absent", "failed"])),
        "From": or_fuzz(st.just("+8613812345678")), "To": or_fuzz(st.just(HOTLINE_NUMBER)),
        "Direction": or_fuzz(st.sampled_from(["inbound", "outbound-api"])),
        "StatusCallbackEvent": or_fuzz(st.sampled_from(["participant-join", "participant-leave"])),
        "FriendlyName": or_fuzz(st.sampled_from([f"hotline-{sid}" for sid in fuzz.call_sids])),
    })
    return st.tuples(wanted, st.dictionaries(KEYS, VALUES, max_size=3)).map(lambda parts: {**parts[1], **parts[0]})


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_signed_requests_with_plausible_then_arbitrary_fields_never_fail(fuzz: Fuzz, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(fuzz.routes), "route")
    query = data.draw(plausible_query(fuzz, path), "query")
    form = data.draw(plausible_form(fuzz), "form")
    reply = fuzz.post(path, query, form, sign(path, query, form))
    assert_answered(fuzz, path, reply)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_signed_requests_with_arbitrary_fields_never_fail(fuzz: Fuzz, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(fuzz.routes), "route")
    form, query = data.draw(forms, "form"), data.draw(queries, "query")
    reply = fuzz.post(path, query, form, sign(path, query, form))
    assert_answered(fuzz, path, reply)


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_repeated_fields_and_raw_bodies_signed_never_fail(fuzz: Fuzz, data: st.DataObject) -> None:
    """Bodies the test client would never build: repeated keys, bad percent-escapes, invalid UTF-8, other types."""
    path = data.draw(st.sampled_from(fuzz.routes), "route")
    content_type = data.draw(st.sampled_from([
        "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=latin-1",
        "application/json", "text/plain", "multipart/form-data; boundary=x", "", "garbage/;;;"]), "type")
    pairs = data.draw(st.lists(st.tuples(KEYS, VALUES), max_size=6), "pairs")
    body = data.draw(st.sampled_from([
        urlencode(pairs).encode(), b"&".join(k.encode() + b"=" + v.encode() for k, v in pairs),
        b"CallSid=%ff%fe&Digits=%zz&%=&&==&Digits=1", b"\xff\xfe\x00garbage", b'{"CallSid": "CA1"}',
        b"--x\r\nContent-Disposition: form-data; name=\"Digits\"\r\n\r\n1\r\n--x--\r\n"]), "body")
    query = data.draw(queries, "query")
    reply = fuzz.post(path, query, body, sign(path, query, form_of(body, content_type)), content_type=content_type)
    assert_answered(fuzz, path, reply)


def _bad_signatures(fuzz: Fuzz, path: str, query: dict[str, str], form: dict[str, str]) -> st.SearchStrategy[Any]:
    good = sign(path, query, form)
    other_path = next(r for r in fuzz.routes if r != path)
    return st.one_of(
        st.just(None), st.just(""), st.just(" "), st.text(HEADER_CHARS, max_size=60),
        st.builds(lambda c, n: c * n, HEADER_CHARS, st.integers(100, 8000)),
        st.just(good[:-2]), st.just(good.lower() if good != good.lower() else good.upper()),
        st.just(good + "="), st.just(" " + good),
        st.just(RequestValidator("another-token").compute_signature(signed_url(path, query), form)),
        st.just(sign(other_path, query, form)),  # signed for another webhook
        st.just(sign(path, {**query, "seq": "1"}, form)),  # signed for another query
        st.just(sign(path, query, {**form, "Digits": "9"})),  # signed over other fields
        st.just(SIGNER.compute_signature(f"http://evil.example{path}", form)),  # signed for another host
    )


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_without_a_valid_signature_nothing_changes(fuzz: Fuzz, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(fuzz.routes), "route")
    form = data.draw(forms, "form")
    if data.draw(st.booleans(), "a known call"):
        form["CallSid"] = data.draw(st.sampled_from(fuzz.call_sids))
        form.setdefault("Digits", "1")
        form.setdefault("CallStatus", "completed")
    query = data.draw(queries, "query")
    signature = data.draw(_bad_signatures(fuzz, path, query, form), "signature")
    method = data.draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]))
    before = fuzz.snapshot()
    reply = fuzz.post(path, query, form, signature, method=method)
    if method == "POST":
        # The form must be read to check a signature: one over the size limit is refused for that first.
        too_big = signature and len(urlencode(form).encode()) > MAX_WEBHOOK_BYTES
        assert reply.status_code == (413 if too_big else 403), reply.get_data(as_text=True)[:300]
    else:
        assert reply.status_code in ((405, 200) if method == "OPTIONS" else (405,))  # OPTIONS: Flask's own Allow
    assert fuzz.snapshot() == before


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_a_body_over_the_limit_is_a_413_signed_or_not(fuzz: Fuzz, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(fuzz.routes), "route")
    form = {"CallSid": fuzz.call_sids[0], "Digits": "1",
            "Pad": data.draw(st.sampled_from(["x", "数", "\x00"])) * data.draw(st.integers(MAX_WEBHOOK_BYTES, 4 << 20))}
    signature = data.draw(st.sampled_from([sign(path, {}, form), "forged"]), "signature")
    before = fuzz.snapshot()
    reply = fuzz.post(path, {}, form, signature)
    assert reply.status_code == 413 and "larger than" in reply.get_json()["error"]
    assert fuzz.snapshot() == before


def test_the_fuzzed_calls_still_work_afterwards(fuzz: Fuzz) -> None:
    """The snapshot sees real changes (it is not blind), and a call placed now is greeted as usual."""
    before = fuzz.snapshot()
    fresh = TwilioCaller(fuzz.client, AUTH_TOKEN, PUBLIC_URL)
    fresh.dial()
    assert fresh.said()[0].startswith("您好，欢迎致电")
    assert fuzz.snapshot() != before
    assert fuzz.calls[0].press("1").find("Gather") is not None


# -- over a real socket: gunicorn as `hotline web` runs it ---------------------------------------------

@pytest.fixture
def gunicorn(fuzz_settings: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "REDIS_URL": fuzz_settings.redis_url or "", "DATABASE_URL": fuzz_settings.sql_url,
           "HOTLINE_DATA_DIR": str(fuzz_settings.data_dir), "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "HOTLINE_PUBLIC_URL": PUBLIC_URL, "TWILIO_API_BASE": fuzz_settings.twilio_api_base,
           "HOTLINE_WEB_PORT": str(port), "HOTLINE_WEB_WORKERS": "1", "HOTLINE_WEB_THREADS": "4",
           "HOTLINE_BUSINESS_OPENS": "00:00", "HOTLINE_BUSINESS_CLOSES": "23:59:59"}
    code = "from hotline.settings import Settings; from hotline.wsgi_server import serve; serve(Settings())"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc)
        yield url
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
        assert b"Traceback" not in stderr, stderr.decode(errors="replace")[-2000:]


def _wait_until_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gunicorn exited"
        # not listening yet, or a worker still starting (its first answer may take seconds on a busy machine)
        with contextlib.suppress(requests.ConnectionError, requests.Timeout):
            if requests.get(url + "/healthz", timeout=5).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError("gunicorn did not start")


def raw_request(url: str, head: bytes, body: bytes = b"", close_early: bool = False) -> bytes:
    """Send bytes as they are (no client fixing the framing); the server's whole answer, or b"" if none."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        if close_early:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def test_over_a_real_socket_oversized_and_malformed_bodies_are_refused(gunicorn: str, fuzz_settings: Settings) -> None:
    path, form = "/twilio/voice", {"CallSid": "CA" + "f" * 32, "Digits": "1"}
    hotline = prepare(fuzz_settings)
    before = snapshot(hotline)
    huge = {**form, "Pad": "x" * (2 * MAX_WEBHOOK_BYTES)}
    big = requests.post(gunicorn + path, data=huge, headers={"X-Twilio-Signature": sign(path, {}, huge)}, timeout=10)
    # In the hotline's default language (zh-CN here: this gunicorn's settings choose none): "larger than allowed".
    assert big.status_code == 413 and "请求内容超出该地址允许的大小（/twilio/voice）" in big.json()["error"]
    chunked = requests.post(gunicorn + path, data=iter([b"CallSid=CA1&Pad=", b"x" * (2 * MAX_WEBHOOK_BYTES)]),
                            headers={"X-Twilio-Signature": "forged", "Connection": "close",
                                     "Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert chunked.status_code == 413
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            "X-Twilio-Signature: forged\r\n").encode()
    lying = raw_request(gunicorn, head + b"Content-Length: 1000\r\nConnection: close\r\n\r\n", b"CallSid=CA1",
                        close_early=True)  # then the client is gone
    assert lying.startswith((b"HTTP/1.1 400", b"HTTP/1.1 403")), lying[:200]
    negative = raw_request(gunicorn, head + b"Content-Length: -5\r\nConnection: close\r\n\r\n", b"CallSid=CA1")
    assert negative.startswith(b"HTTP/1.1 400"), negative[:200]
    garbage = raw_request(gunicorn, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64) + b"\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400"), garbage[:200]
    unsigned = requests.post(gunicorn + path, data=form, timeout=10)
    assert unsigned.status_code == 403
    assert snapshot(hotline) == before
    ok = requests.post(gunicorn + path, data=form, headers={"X-Twilio-Signature": sign(path, {}, form)}, timeout=10)
    assert ok.status_code == 200 and "欢迎致电" in ok.text
