"""The process log: what the hotline acts on, not the twilio library's dump of every REST request's headers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from twilio.rest import Client

from hotline.logs import configure_logging
from tests.fakes.http_server import LocalHttpServer, Reply

ACCOUNT = "AC" + "0" * 32


@pytest.fixture
def twilio_api() -> Iterator[LocalHttpServer]:
    server = LocalHttpServer(lambda request: Reply.json(201, {"sid": "CA" + "1" * 32, "status": "queued"})).start()
    yield server
    server.stop()


def test_a_twilio_rest_request_leaves_no_header_dump_in_the_log(
    twilio_api: LocalHttpServer, capsys: pytest.CaptureFixture[str],
) -> None:
    root, library = logging.getLogger(), logging.getLogger("twilio.http_client")
    kept = (list(root.handlers), root.level, library.level)
    configure_logging(logging.INFO)
    try:
        client = Client(ACCOUNT, "token")
        client.api.base_url = f"http://127.0.0.1:{twilio_api.port}"
        call = client.calls.create(to="+8613800000000", from_="+862100000000", url="https://hotline.example.com/x")
        logging.getLogger("webhooks.hold").info("call %s placed", call.sid)
    finally:  # pytest's own handlers and levels back, for the tests after this one
        root.handlers[:] = kept[0]
        root.setLevel(kept[1])
        library.setLevel(kept[2])
    log = capsys.readouterr().err
    assert len(twilio_api.requests) == 1  # the request did go out
    assert f"call {call.sid} placed" in log  # the hotline's own INFO lines still do
    assert "Twilio API Request" not in log and "Headers" not in log and "User-Agent" not in log, log
