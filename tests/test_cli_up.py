"""`hotline up` on a machine with no Redis configured: it starts its own and answers Twilio."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis

from admin.users.accounts import Accounts
from routing.keys import EVENTS_STREAM
from softphone.agi_peer import AsteriskPeer, PeerCall
from store.db import connect
from tests.conftest import AUTH_TOKEN, free_port
from tests.fakes.twilio_caller import TwilioCaller

T = TypeVar("T")


class _HttpClient:
    """Enough of Flask's test client for TwilioCaller, over a real socket."""

    def __init__(self, base: str) -> None:
        self.base = base

    def post(self, path: str, data: dict[str, str], headers: dict[str, str]) -> object:
        body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(self.base + path, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=5) as reply:
            return _Reply(reply.status, reply.read(), reply.headers.get_content_type())


class _Reply:
    def __init__(self, status: int, data: bytes, mimetype: str) -> None:
        self.status_code, self.data, self.mimetype = status, data, mimetype


def test_hotline_up_starts_its_own_redis_and_serves_a_call(tmp_path: Path) -> None:
    port, agi_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(HOTLINE_DATA_DIR=str(tmp_path / "var"), HOTLINE_WEB_PORT=str(port), HOTLINE_AGI_PORT=str(agi_port),
               HOTLINE_PUBLIC_URL=f"http://127.0.0.1:{port}", TWILIO_AUTH_TOKEN=AUTH_TOKEN, HOTLINE_WEB_WORKERS="1",
               HOTLINE_BUSINESS_OPENS="00:00", HOTLINE_BUSINESS_CLOSES="23:59:59")
    hotline = Path(sys.executable).with_name("hotline")
    proc = subprocess.Popen([str(hotline), "up"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(base + "/healthz")
        caller = TwilioCaller(_HttpClient(base), AUTH_TOKEN, base)
        caller.dial()
        caller.press("1")
        assert caller.said() == ["请输入您的卡号，以井号键结束。"]
        redis_url = (tmp_path / "var" / "redis" / "url").read_text().strip()
        assert redis.Redis.from_url(redis_url).xlen(EVENTS_STREAM) == 1
        agi_call = _dial_agi(agi_port)
        # no agent logged in: told so at once (not held), then goodbye
        assert agi_call.commands[-3:] == ['STREAM FILE hotline/hotline/zh-CN/defaults.no_agent ""',
                                          'STREAM FILE hotline/hotline/zh-CN/goodbye ""', "HANGUP"]
        with urllib.request.urlopen(base + "/login", timeout=5) as login_page:
            assert login_page.status == 200 and b'name="password"' in login_page.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0].decode()
    assert "hotline up: web on" in output
    # no gunicorn control socket: its one path per user would be shared by every hotline on the machine
    assert "Control socket" not in output and "gunicorn.ctl" not in output
    assert (tmp_path / "var" / "hotline.db").exists()
    # nothing in the data folder is readable by another user of the machine (issue 17)
    var = tmp_path / "var"
    opened = {str(p.relative_to(var)): oct(p.stat().st_mode & 0o777) for p in [var, *var.rglob("*")]
              if not p.is_symlink() and p.stat().st_mode & 0o077}
    # prompt files are made 640 for Asterisk's group, but their folders are 700: without HOTLINE_ASTERISK_GROUP
    # nobody else reaches them
    assert {k for k in opened if not k.startswith("recordings/prompts/")} == set(), opened
    assert oct((var / "recordings" / "prompts").stat().st_mode & 0o777) == "0o700"
    _assert_stopped(redis_url)
    # the first start made an admin whose password was shown once, and it works
    shown = re.search(r"as admin with password (\S+) ", output)
    assert shown, output
    accounts = Accounts(connect(f"sqlite:///{tmp_path / 'var' / 'hotline.db'}"))
    assert accounts.authenticate("admin", shown.group(1)).role == "admin"


def _dial_agi(port: int) -> PeerCall:
    """The FastAGI server is a separate process: dial until it listens (an upper bound, not a timing: on a busy
    machine a start, with its migration check and the demo bank's scrypt hashes, has taken over 20 s)."""
    return _retry(lambda: AsteriskPeer(["0"]).dial("127.0.0.1", port), seconds=60)


def _wait_for(url: str) -> None:
    def get() -> None:
        with urllib.request.urlopen(url, timeout=1):
            pass

    _retry(get)


def _retry(attempt: Callable[[], T], seconds: float = 20) -> T:
    """``attempt()`` until it stops failing to connect, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return attempt()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _assert_stopped(url: str, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=0.2).ping()
        except redis.ConnectionError:
            return
        time.sleep(0.1)
    raise AssertionError("hotline up left its redis-server running")


def test_a_hotline_that_fails_to_start_stops_the_redis_it_started(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(HOTLINE_DATA_DIR=str(tmp_path / "var"),
               DATABASE_URL=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")  # nothing listens
    hotline = Path(sys.executable).with_name("hotline")
    result = subprocess.run([str(hotline), "web"], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert result.returncode != 0
    redis_url = (tmp_path / "var" / "redis" / "url").read_text().strip()
    _assert_stopped(redis_url)


def test_hotline_up_starts_a_killed_fastagi_server_and_worker_again(tmp_path: Path) -> None:
    port, agi_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(HOTLINE_DATA_DIR=str(tmp_path / "var"), HOTLINE_WEB_PORT=str(port), HOTLINE_AGI_PORT=str(agi_port),
               HOTLINE_PUBLIC_URL=f"http://127.0.0.1:{port}", TWILIO_AUTH_TOKEN=AUTH_TOKEN, HOTLINE_WEB_WORKERS="1",
               HOTLINE_WORKERS="2")
    hotline = Path(sys.executable).with_name("hotline")
    proc = subprocess.Popen([str(hotline), "up"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _dial_agi(agi_port)
        before = _children_by_role(proc.pid)
        assert _counts(before) == {"agi": 1, "router": 1, "worker": 2}
        for role in ("agi", "worker"):
            os.kill(before[role][0], signal.SIGKILL)
        _retry(lambda: _wanted(lambda: _counts(_children_by_role(proc.pid)) == _counts(before)
                                   and _children_by_role(proc.pid)["agi"] != before["agi"]))
        after = _children_by_role(proc.pid)
        assert after["agi"] != before["agi"] and len(set(after["worker"]) - set(before["worker"])) == 1
        assert _dial_agi(agi_port).commands[-1] == "HANGUP"  # Asterisk served again
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert re.search(r"agi-1 \(pid \d+\) stopped.*starting it again", output), output


def _children_by_role(pid: int) -> dict[str, list[int]]:
    """``hotline up``'s child processes by their ``hotline.cli`` command (gunicorn's web workers left out)."""
    roles: dict[str, list[int]] = {}
    # Children are listed per thread that started them: the supervisor's thread starts the restarted ones.
    children = [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    for child in children:
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"hotline.cli" in argv:
            roles.setdefault(argv[argv.index(b"hotline.cli") + 1].decode(), []).append(int(child))
    return roles


def _counts(roles: dict[str, list[int]]) -> dict[str, int]:
    return {role: len(pids) for role, pids in roles.items()}


def _wanted(ready: Callable[[], bool]) -> None:
    if not ready():
        raise OSError("not yet")  # _retry tries again


def test_killed_hotline_up_takes_its_children_along_and_a_second_one_is_refused(tmp_path: Path) -> None:
    port, agi_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(HOTLINE_DATA_DIR=str(tmp_path / "var"), HOTLINE_WEB_PORT=str(port), HOTLINE_AGI_PORT=str(agi_port),
               TWILIO_AUTH_TOKEN=AUTH_TOKEN, HOTLINE_WEB_WORKERS="1", HOTLINE_WORKERS="1", HOTLINE_AGI_DRAIN="3")
    hotline = Path(sys.executable).with_name("hotline")
    first = subprocess.Popen([str(hotline), "up"], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _dial_agi(agi_port)
        children = [pid for pids in _children_by_role(first.pid).values() for pid in pids]
        second = subprocess.run([str(hotline), "up"], cwd=tmp_path, env=env, capture_output=True, timeout=60)
        assert second.returncode == 1
        assert f"hotline up already runs for {tmp_path / 'var'} (pid {first.pid})" in second.stderr.decode()
        first.send_signal(signal.SIGKILL)
        first.wait(5)
        # An upper bound: each child ends its own way on SIGTERM (FastAGI drains for HOTLINE_AGI_DRAIN, set short
        # above; the worker lets RQ and its loops stop); a loaded machine once took over 15 s.
        deadline = time.monotonic() + 30
        while alive := [pid for pid in children if Path(f"/proc/{pid}").exists()
                        and b"hotline.cli" in Path(f"/proc/{pid}/cmdline").read_bytes()]:
            assert time.monotonic() < deadline, f"children of a killed hotline up still run: {alive}"
            time.sleep(0.1)
        redis_url = (tmp_path / "var" / "redis" / "url").read_text().strip()
        # the next hotline up adopts the redis-server the killed one left, and stops it when it ends
        third = subprocess.Popen([str(hotline), "up"], cwd=tmp_path, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _dial_agi(agi_port)
        finally:
            third.send_signal(signal.SIGTERM)
            third.wait(30)
        _assert_stopped(redis_url)
    finally:
        if first.poll() is None:
            first.kill()
