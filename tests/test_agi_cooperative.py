"""``hotline agi`` on gevent serves each call in a greenlet: a call waiting on the database must not stall the others.

SQLite never yields by itself; the FastAGI process runs its statements in native threads (store/cooperative.py).
Here one caller's wrong PIN has to be counted in the database while this test holds SQLite's write lock, so that
call waits for as long as the lock is held; meanwhile a second caller goes through the whole menu and is hung up
on. On a process where the waiting statement held the hub, the second caller would hear nothing until the first
one's statement gave up (HOTLINE_DB_TIMEOUT, set far beyond the second caller's patience)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from hotline.app import Hotline
from softphone.agi_peer import AsteriskPeer, PeerCall
from tests.asterisk_stack import fastagi_process

CARD, WRONG_PIN = "6228480012345671", "111111"
REPO = Path(__file__).resolve().parents[1]
DB_WAIT_S = 60
"""How long the server's statements wait for SQLite's lock: the first caller's lasts as long as the test holds it."""


def test_a_call_waiting_on_the_database_does_not_hold_up_the_other_calls(
    hotline: Hotline, redis_url: str, prompts: Path, tmp_path: Path,
) -> None:
    database = hotline.settings.sql_url.removeprefix("sqlite:///")
    with fastagi_process(hotline, redis_url, tmp_path / "agi.log", HOTLINE_AGI_RUNTIME="gevent",
                         HOTLINE_DB_TIMEOUT=str(DB_WAIT_S)) as (port, pid):
        assert "gevent" in Path(f"/proc/{pid}/maps").read_text(), "hotline agi is not running on gevent"
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # SQLite's write lock, as a long write elsewhere would hold it
        pin_sent = threading.Event()
        asked: list[str] = []

        def first_caller_types(waiting_for: str) -> str:
            asked.append(waiting_for)
            if len(asked) == 1:
                pin_sent.set()
                return WRONG_PIN  # counted in the database: waits there while the lock is held
            return ""

        first: list[PeerCall] = []
        first_peer = AsteriskPeer(["1", CARD + "#"], ask=first_caller_types, timeout_s=DB_WAIT_S + 30)
        first_thread = threading.Thread(target=lambda: first.append(first_peer.dial("127.0.0.1", port)))
        first_thread.start()
        try:
            assert pin_sent.wait(30), "the first caller was never asked for the PIN"
            time.sleep(0.5)  # the PIN is checked (scrypt) and its failure reaches the database's lock
            played_before = len(asked)

            # Meanwhile another caller stays silent through the whole menu (welcome, its retries, the transfer
            # to an agent) to the agents' queue, where it hangs up.
            second = AsteriskPeer([""], timeout_s=10).dial("127.0.0.1", port)

            assert second.closed_by_server and second.held_since is not None, second.commands
            assert any(sound.endswith("/welcome") for sound in second.played), second.played
            assert first_thread.is_alive() and len(asked) == played_before, \
                "the first call went on without its database write: the test proved nothing"
        finally:
            lock.execute("ROLLBACK")
            lock.close()
            first_thread.join(DB_WAIT_S + 30)
        assert first and first[0].closed_by_server
        # Once the lock went, the wrong PIN was counted and the caller asked again: the call went on normally.
        assert any("inquiry_wrong_pin" in sound for sound in first[0].played) or len(asked) > 1, first[0].played
