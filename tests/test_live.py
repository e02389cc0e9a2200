"""The live dashboard's figures, its event stream and who may see them."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import queue
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import redis
import requests

from admin.live.sse import StreamSlots
from admin.live.web import with_late_records
from hotline.app import Hotline
from routing.agents import Agent
from routing.keys import EVENTS_STREAM
from routing.router import CallRequest
from softphone.agi_peer import AsteriskPeer
from store.models import CallRecord
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, api_caller
from tests.fakes.twilio_caller import TwilioCaller
from tests.web import PASSWORD, SessionClient, add_user, live_server, login

EVERY_STATE = {"available": 0, "offered": 0, "busy": 0, "wrap_up": 0, "not_ready": 0, "offline": 0}


def staff(hotline: Hotline) -> None:
    """Four agents: loss zh-CN available and not ready, general zh-CN not ready, general en-US offline."""
    for agent_id, skill, language, state in (("a1", "loss", "zh-CN", "available"), ("a2", "loss", "zh-CN", "not_ready"),
                                             ("a3", "general", "zh-CN", "not_ready"), ("a4", "general", "en-US", "")):
        hotline.agents.put(Agent(id=agent_id, name=agent_id, endpoint=f"PJSIP/{agent_id}", skills={skill: 5},
                                 languages=[language]))
        if state:
            hotline.router.set_agent_state(agent_id, state)


def queue_call(hotline: Hotline, call_id: str, skill: str, language: str, waited_s: float = 0) -> None:
    hotline.router.enqueue(CallRequest(call_id, skill, language, 0, "twilio", caller="138****5678",
                                       enqueued_at=time.time() - waited_s))


def add_records(hotline: Hotline) -> None:
    """Today: 4 queued (answered after 10 s, after 40 s, abandoned, unanswered), one self-served.
    Yesterday (local): 2 queued and abandoned, which today's figures leave out."""
    zone = ZoneInfo(hotline.settings.timezone)
    now = dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.astimezone(zone).date(), dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    today, yesterday = max(now - dt.timedelta(minutes=1), midnight), midnight - dt.timedelta(minutes=1)
    rows = [
        (today, "general:zh-CN", 10.0, "routed"), (today, "general:zh-CN", 40.0, "routed"),
        (today, "loss:zh-CN", None, "abandoned"), (today, "loss:zh-CN", None, "failed"), (today, "", None, "self_served"),
        (yesterday, "general:zh-CN", None, "abandoned"), (yesterday, "loss:zh-CN", None, "abandoned"),
    ]
    with hotline.sql.begin() as db:
        for n, (started, queue_name, wait, outcome) in enumerate(rows):
            db.add(CallRecord(call_id=f"rec{n}", channel="twilio", started_at=started, queue=queue_name, wait_s=wait,
                              answered_at=started + dt.timedelta(seconds=wait) if wait is not None else None,
                              outcome=outcome))


def test_snapshot_shows_queues_agents_calls_in_ivr_and_today(hotline: Hotline, client: Any,
                                                              caller: TwilioCaller) -> None:
    staff(hotline)
    queue_call(hotline, "c1", "general", "zh-CN", waited_s=30)
    queue_call(hotline, "c2", "general", "zh-CN", waited_s=5)
    queue_call(hotline, "c3", "general", "en-US", waited_s=12)
    caller.dial()  # in the welcome menu
    add_records(hotline)
    add_user(hotline, "sue", "supervisor")
    login(client, "sue")

    live = client.get("/api/live").json

    assert live["waiting"] == 3 and 30 <= live["longest_wait_s"] < 33
    assert live["in_ivr"] == 1
    assert live["agents"] == {**EVERY_STATE, "available": 1, "not_ready": 2, "offline": 1}
    assert live["agents_total"] == 4
    rows = {q["queue"]: q for q in live["queues"]}
    assert rows["general:zh-CN"]["waiting"] == 2 and 30 <= rows["general:zh-CN"]["longest_wait_s"] < 33
    assert rows["general:zh-CN"]["agents"] == {"not_ready": 1}
    assert rows["general:en-US"]["waiting"] == 1 and rows["general:en-US"]["agents"] == {"offline": 1}
    assert rows["loss:zh-CN"]["waiting"] == 0 and rows["loss:zh-CN"]["longest_wait_s"] == 0
    assert rows["loss:zh-CN"]["agents"] == {"available": 1, "not_ready": 1}
    today = live["today"]
    assert today["day"] == dt.datetime.now(ZoneInfo(hotline.settings.timezone)).date().isoformat()
    assert (today["queued"], today["answered"], today["answered_within_sl"], today["abandoned"]) == (4, 2, 1, 1)
    assert today["service_level"] == pytest.approx(0.25) and today["abandonment_rate"] == pytest.approx(0.25)
    assert today["service_level_s"] == 20


def test_calls_in_ivr_leave_the_count_when_queued_or_hung_up_or_stale(hotline: Hotline, client: Any,
                                                                      caller: TwilioCaller) -> None:
    add_user(hotline, "sue", "supervisor")
    other = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL, caller="+8613900001111")
    caller.dial()
    hotline.redis.script_flush()  # as after a Redis restart: the session script is loaded again
    other.dial()
    login(client, "sue")
    assert client.get("/api/live").json["in_ivr"] == 2
    caller.press("0")  # to an agent: waiting in the queue, out of the menus
    live = client.get("/api/live").json
    assert (live["in_ivr"], live["waiting"]) == (1, 1)
    other.hang_up()
    assert client.get("/api/live").json["in_ivr"] == 0
    TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL, caller="+8613900002222").dial()
    ttl = hotline.settings.session_ttl_s
    assert hotline.sessions.in_ivr(time.time() + ttl + 1) == 0  # no status callback ever came: it ages out


def test_stream_sends_a_snapshot_at_once_then_one_per_batch_of_call_events(hotline: Hotline, app: Any) -> None:
    add_user(hotline, "sue", "supervisor")
    with live_server(app) as url, stream(url, "sue") as frames:
        first = next_snapshot(frames)
        assert first["waiting"] == 0
        queue_call(hotline, "c1", "general", "zh-CN", waited_s=7)
        after = next_snapshot(frames)
        assert after["waiting"] == 1 and after["longest_wait_s"] >= 7
        # Forty call events in one transaction arrive as one batch: one snapshot, not forty.
        pipe = redis.Redis.from_url(hotline.redis_url).pipeline(transaction=True)
        for n in range(40):
            pipe.xadd(EVENTS_STREAM, {"type": "call_started", "ts": f"{time.time():.3f}", "call_id": f"x{n}"})
        pipe.execute()
        assert next_snapshot(frames)["waiting"] == 1
        # Events that do not change the picture send nothing.
        redis.Redis.from_url(hotline.redis_url).xadd(EVENTS_STREAM, {"type": "work_order_opened", "ts": "0"})
        with pytest.raises(queue.Empty):
            next_snapshot(frames, timeout=1.0)


def test_only_admins_and_supervisors_see_the_dashboard(hotline: Hotline, app: Any) -> None:
    add_user(hotline, "ann", "admin")
    add_user(hotline, "sue", "supervisor")
    add_user(hotline, "al", "agent", agent_id="a1")
    anonymous = app.test_client()
    assert anonymous.get("/api/live").status_code == 401
    assert anonymous.get("/api/live/stream").status_code == 401
    assert anonymous.get("/admin/dashboard").headers["Location"].startswith("/login?next=")
    agent = SessionClient(app.test_client(), "al")
    assert agent("GET", "/admin/dashboard").status_code == 403
    assert "may not" in agent("GET", "/admin/dashboard").get_data(as_text=True)
    assert agent("GET", "/api/live").status_code == 403 and "error" in agent("GET", "/api/live").json
    assert agent("GET", "/api/live/stream").status_code == 403
    for name in ("ann", "sue"):
        person = SessionClient(app.test_client(), name)
        page = person("GET", "/admin/dashboard")
        assert page.status_code == 200 and 'id="waiting"' in page.get_data(as_text=True)
        assert person("GET", "/api/live").json["waiting"] == 0


def test_api_token_reads_the_snapshot_and_the_document_lists_both(hotline: Hotline, app: Any) -> None:
    hotline.settings = hotline.settings.model_copy(update={"api_token": "live-token-0123456789"})
    call = api_caller(hotline, "live-token-0123456789")
    assert call("GET", "/api/live").json["agents_total"] == 0
    paths = app.test_client().get("/api/openapi.json").json["paths"]
    assert "/api/live" in paths and "/api/live/stream" in paths


# -- reading the stream from a live server -----------------------------------------------------

def stream(url: str, name: str) -> Any:
    return _Stream(url, name)


class _Stream:
    """A logged-in reader of ``/api/live/stream`` on a thread, putting each snapshot on a queue."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.frames: queue.Queue[dict[str, Any]] = queue.Queue()

    def __enter__(self) -> queue.Queue[dict[str, Any]]:
        browser = requests.Session()
        token = re.search(r'name="csrf-token" content="([^"]+)"', browser.get(f"{self.url}/login").text)
        assert token is not None
        browser.post(f"{self.url}/login", data={"name": self.name, "password": PASSWORD, "csrf_token": token.group(1)},
                  allow_redirects=False)
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        where = urlsplit(self.url)
        self.conn = http.client.HTTPConnection(where.netloc, timeout=30)
        self.conn.sock = self.sock = socket.create_connection((where.hostname, where.port), timeout=30)
        self.conn.request("GET", "/api/live/stream", headers={"Cookie": cookie})
        reply = self.conn.getresponse()
        assert reply.status == 200 and reply.getheader("Content-Type", "").startswith("text/event-stream")
        threading.Thread(target=self._read, args=(reply,), daemon=True).start()
        return self.frames

    def _read(self, reply: http.client.HTTPResponse) -> None:
        name = ""
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):  # closed at the end of the test
            while line := reply.readline():
                if line.startswith(b"event: "):
                    name = line[7:].decode().strip()
                elif line.startswith(b"data: ") and name == "snapshot":
                    self.frames.put(json.loads(line[6:]))

    def __exit__(self, *exc: object) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv, which close() would wait for
        self.conn.close()


def next_snapshot(frames: queue.Queue[dict[str, Any]], timeout: float = 5.0) -> dict[str, Any]:
    return frames.get(timeout=timeout)


def test_a_quiet_stream_brings_late_records_with_the_heartbeat() -> None:
    def snap(service_level: float, as_of: float) -> dict[str, Any]:
        return {"waiting": 0, "today": {"service_level": service_level, "as_of": as_of}}

    later = iter([snap(0.5, 2), snap(0.5, 3), snap(0.75, 4)])
    frames = [("snapshot", snap(0.5, 1)), None, None, None]
    sent = list(with_late_records(iter(frames), lambda: next(later)))
    # unchanged figures (only as_of moved): heartbeats stay heartbeats; changed: a snapshot instead
    assert sent == [("snapshot", snap(0.5, 1)), None, None, ("snapshot", snap(0.75, 4))]


def test_fastagi_calls_in_the_menus_count_until_they_hang_up(hotline: Hotline, agi_server: tuple[str, int],
                                                              client: Any) -> None:
    add_user(hotline, "sue", "supervisor")
    login(client, "sue")
    counted: list[int] = []
    peer = AsteriskPeer(keys=[], on_play=lambda sound: counted.append(client.get("/api/live").json["in_ivr"]),
                        hangup_at=4)
    call = peer.dial(*agi_server)
    assert call.played and counted and set(counted) == {1}  # the dashboard saw the Asterisk caller in the menus
    assert client.get("/api/live").json["in_ivr"] == 0  # and not after the hang-up


def test_streams_over_the_process_cap_get_503_and_a_closed_page_frees_its_slot(hotline: Hotline, app: Any) -> None:
    app.extensions["stream_slots"] = StreamSlots(1)  # as if every thread but the webhooks' reserve were taken
    add_user(hotline, "sue", "supervisor")
    with live_server(app) as url:
        second = requests.Session()
        login_form = second.get(f"{url}/login").text
        token = re.search(r'name="csrf-token" content="([^"]+)"', login_form).group(1)  # type: ignore[union-attr]
        second.post(f"{url}/login", data={"name": "sue", "password": PASSWORD, "csrf_token": token})
        with stream(url, "sue") as frames:
            next_snapshot(frames)
            refused = second.get(f"{url}/api/live/stream", stream=True, timeout=5)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
            assert "try again" in refused.json()["error"]
        deadline = time.monotonic() + 10
        while True:  # the server notices the closed page at its next write: give it events to write
            hotline.events.emit("call_started", call_id=f"poke-{time.monotonic()}")
            again = second.get(f"{url}/api/live/stream", stream=True, timeout=5)
            if again.status_code == 200:
                again.close()
                break
            assert time.monotonic() < deadline, "the closed page never gave its slot back"
            time.sleep(0.2)
