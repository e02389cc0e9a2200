"""Card numbers, PINs and ID digits never reach logs, TwiML, Redis or the SQL store."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import MetaData, select

from calls.log_context import about_call
from hotline.app import Hotline
from hotline.logs import guard
from ivr.masking import RedactingFilter, mask_phone
from softphone.agi_peer import AsteriskPeer
from tests.conftest import AUTH_TOKEN
from tests.fakes.twilio_caller import TwilioCaller

CARD, PIN, ID6 = "6228480012345671", "654321", "888888"
SECRETS = (CARD, PIN, ID6)


def walk_every_sensitive_branch(client, caller: TwilioCaller) -> list[str]:  # noqa: ANN001
    heard: list[str] = []
    caller.dial()
    caller.press("1")
    caller.press(CARD + "#")
    caller.press("000000")  # a wrong PIN first
    caller.press(CARD[:-1] + "0#")  # a number that fails the Luhn check
    caller.press(CARD + "#")
    caller.press(PIN)
    caller.hang_up()
    heard += caller.transcript
    loss = TwilioCaller(client, AUTH_TOKEN, caller.public_url)
    loss.dial()
    loss.press("2")
    loss.press(CARD + "#")
    loss.press(ID6)
    loss.hang_up()
    heard += loss.transcript
    return heard


def dump_redis(url: str) -> str:
    client = redis.Redis.from_url(url, decode_responses=True)
    out = []
    for key in client.scan_iter():
        kind = client.type(key)
        if kind == "hash":
            out.append(str(client.hgetall(key)))
        elif kind == "stream":
            out.append(str(client.xrange(key)))
        elif kind == "string":
            out.append(str(client.get(key)))
    return "\n".join(out)


def dump_sql(hotline: Hotline) -> str:
    meta = MetaData()
    with hotline.sql() as db:
        meta.reflect(bind=db.get_bind())
        return "\n".join(str(row) for table in meta.sorted_tables for row in db.execute(select(table)))


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_no_secret_in_logs_twiml_redis_or_sql(
    client, caller: TwilioCaller, hotline: Hotline, redis_url: str, caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    caplog.set_level(logging.DEBUG)
    heard = walk_every_sensitive_branch(client, caller)
    assert any("余额为88.00元" in text for text in heard)  # the calls did get through
    assert any("挂失编号" in text for text in heard)
    places = {"logs": caplog.text, "twiml": "\n".join(heard), "redis": dump_redis(redis_url), "sql": dump_sql(hotline)}
    for where, text in places.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} found in {where}"
    assert "6228********5671" in places["redis"]  # the mask is what is kept


def test_redacting_filter_masks_card_numbers_in_log_lines_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("privacy-test")
    handler = logging.Handler()
    seen: list[str] = []
    handler.emit = lambda record: seen.append(handler.format(record))  # type: ignore[method-assign]
    handler.addFilter(RedactingFilter())
    log.addHandler(handler)
    try:
        log.warning("lookup failed for %s", CARD)
        try:
            raise ValueError(f"bad card {CARD}")
        except ValueError:
            log.exception("boom")
    finally:
        log.removeHandler(handler)
    assert CARD not in "\n".join(seen)
    assert "lookup failed for 6228********5671" in seen[0]
    assert "bad card 6228********5671" in seen[1]


def test_phone_numbers_are_masked_for_display() -> None:
    assert mask_phone("+8613812345678") == "+86138****5678"
    assert mask_phone("13812345678") == "138****5678"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the processes write with ``HOTLINE_LOG_FORMAT=json`` (the handler ``hotline.logs`` installs)."""
    out, root = io.StringIO(), logging.getLogger()
    handler, level = guard(logging.StreamHandler(out), "json"), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def test_json_log_lines_carry_the_call_and_never_a_card_number_or_pin(
    client, caller: TwilioCaller, agi_server: tuple[str, int], json_log: io.StringIO,  # noqa: ANN001
) -> None:
    heard = walk_every_sensitive_branch(client, caller)
    assert any("余额为88.00元" in text for text in heard)
    late = TwilioCaller(client, AUTH_TOKEN, caller.public_url)  # a step of a session Redis no longer holds
    late.post_raw("/twilio/voice?seq=3", Digits=CARD + "#")
    caller.post_raw("/twilio/fallback", ErrorCode="11200", ErrorUrl=caller.public_url + "/twilio/voice")
    peer = AsteriskPeer(["1", CARD + "#", PIN, ""])
    assert "HANGUP" in peer.dial(*agi_server).commands[-1]
    lost = AsteriskPeer([CARD + "#"], script="no-such-menu")  # the error boundary's line
    lost.dial(*agi_server)
    # A card number in a message, an exception and an extra field, inside a call: masked all the same.
    with about_call(peer.uniqueid, "asterisk", "test"):
        logging.getLogger("privacy-test").warning("lookup failed for %s", CARD, extra={"digits": CARD})
        try:
            raise ValueError(f"bad card {CARD}")
        except ValueError:
            logging.getLogger("privacy-test").exception("boom")
    text = json_log.getvalue()
    for secret in SECRETS:
        assert secret not in text, f"{secret} found in the JSON log"
    lines = [json.loads(line) for line in text.splitlines()]
    about = {(line.get("channel"), line.get("call_id")) for line in lines if "call_id" in line}
    assert {("twilio", late.call_sid), ("twilio", caller.call_sid), ("asterisk", lost.uniqueid)} <= about
    assert all(line["step"] and line["message"] for line in lines if "call_id" in line)
    steps = {line["call_id"]: line["step"] for line in lines if "call_id" in line}
    assert steps[late.call_sid] == "start" and steps[caller.call_sid] == "fallback"
    assert steps[lost.uniqueid] == "no-such-menu"
    hotline_lines = [line for line in lines if line["logger"].split(".")[0] in ("webhooks", "agi_scripts", "calls")]
    assert hotline_lines and all("call_id" in line for line in hotline_lines), hotline_lines
    assert lines[-2]["message"] == "lookup failed for 6228********5671" and "6228********5671" in lines[-1]["exc_info"]
