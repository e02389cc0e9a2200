"""Whole calls over a real TCP socket to the FastAGI server, answered by a scripted Asterisk."""

from __future__ import annotations

import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from agi_scripts.server import FastAgiServer
from hotline.agi_app import create_agi_server
from hotline.agi_peer import AsteriskPeer
from hotline.app import Hotline
from hotline.settings import Settings
from hotline.store.models import Recording, WorkOrder
from routing.keys import EVENTS_STREAM

CARD, PIN = "6222021234567894", "123456"


@pytest.fixture
def prompts(settings: Settings, hotline: Hotline) -> Path:
    """Every prompt of the live menu as a short WAV, where Asterisk would play it from."""
    menu = hotline.menus.live(settings.menu_name)
    root = settings.recordings_dir / "prompts"
    for prompt_id, texts in menu.prompts().items():
        for language in texts:
            path = root / menu.name / language / f"{prompt_id}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(path), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(8000)
                out.writeframes(bytes(1600))
    return root


@pytest.fixture
def agi_server(settings: Settings, hotline: Hotline, prompts: Path) -> Iterator[tuple[str, int]]:
    hotline.settings = settings.model_copy(update={"agi_port": 0})
    server: FastAgiServer = create_agi_server(hotline)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", server.server_address[1]
    server.shutdown()
    server.server_close()


def ended(redis_url: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return [f for _, f in client.xrange(EVENTS_STREAM) if f["type"] == "call_ended"]


def test_inquiry_sends_exact_agi_commands(agi_server: tuple[str, int], redis_url: str) -> None:
    call = AsteriskPeer(["1", CARD + "#", PIN, ""]).dial(*agi_server)
    keys = '"0123456789*#"'
    assert call.commands[:3] == [
        f"STREAM FILE hotline/hotline/zh-CN/welcome {keys}",
        f"STREAM FILE hotline/hotline/zh-CN/main {keys}",
        "WAIT FOR DIGIT 6000",
    ]
    card_at = call.commands.index(f"STREAM FILE hotline/hotline/zh-CN/inquiry_card {keys}")
    # first digit: 10 s to find the card; then 5 s between digits, up to the #
    assert call.commands[card_at + 1:card_at + 18] == ["WAIT FOR DIGIT 10000"] + ["WAIT FOR DIGIT 5000"] * 16
    assert call.commands[card_at + 18:card_at + 25] == [
        f"STREAM FILE hotline/hotline/zh-CN/inquiry_pin {keys}",
        "WAIT FOR DIGIT 8000", *["WAIT FOR DIGIT 4000"] * 5,
    ]
    assert f"STREAM FILE hotline/hotline/zh-CN/inquiry_result {keys}" in call.commands
    assert call.commands[-2:] == ['STREAM FILE hotline/hotline/zh-CN/goodbye ""', "HANGUP"]
    (end,) = ended(redis_url)
    assert (end["outcome"], end["verified"], end["intent"], end["channel"]) == (
        "self_served", "yes", "inquiry", "asterisk")
    assert CARD not in str(call.commands) and CARD not in str(end)
