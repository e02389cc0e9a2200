"""``hotline status`` over a real ``hotline up``: the readiness checks and every process it runs, with JSON logs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from hotline.heartbeat import STALE_S
from tests.conftest import AUTH_TOKEN, free_port
from tests.test_cli_up import _children_by_role, _wait_for

HOTLINE = Path(sys.executable).with_name("hotline")
TEXT_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def status(env: dict[str, str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run([str(HOTLINE), "status"], cwd=cwd, env=env, capture_output=True, timeout=60)
    return done.returncode, done.stdout.decode() + done.stderr.decode()


def row(output: str, name: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.split()[:1] == [name])


def test_status_shows_checks_and_processes_and_fails_when_one_is_stuck_or_all_are_stopped(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(HOTLINE_DATA_DIR=str(tmp_path / "var"), HOTLINE_WEB_PORT=str(port), HOTLINE_AGI_PORT=str(free_port()),
               HOTLINE_PUBLIC_URL=f"http://127.0.0.1:{port}", TWILIO_AUTH_TOKEN=AUTH_TOKEN, HOTLINE_WEB_WORKERS="1",
               HOTLINE_LOG_FORMAT="json")
    proc = subprocess.Popen([str(HOTLINE), "up"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz")
        deadline = time.monotonic() + 60
        code, output = status(env, tmp_path)
        while code != 0 and time.monotonic() < deadline:  # the children start (and first beat) after the web
            time.sleep(0.5)
            code, output = status(env, tmp_path)
        assert code == 0, output
        for check in ("redis", "database", "records", "menu"):
            assert row(output, check)[1] == "yes", output
        children = _children_by_role(proc.pid)
        assert row(output, "web")[1:3] == [str(proc.pid), "yes"]
        for name, role in (("agi-1", "agi"), ("router", "router"), ("worker-1", "worker")):
            assert row(output, name)[1:3] == [str(children[role][0]), "yes"], output
        assert output.rstrip().endswith("hotline ready")
        print(output)
        # A process that stops beating (stopped, or stuck) is not alive, though its pid is.
        router = children["router"][0]
        os.kill(router, signal.SIGSTOP)
        try:
            time.sleep(STALE_S + 1.5)
            code, output = status(env, tmp_path)
        finally:
            os.kill(router, signal.SIGCONT)
        assert code == 1 and row(output, "router")[2:4] == ["NO", "stuck:"], output
        assert row(output, "agi-1")[2] == "yes" and output.rstrip().endswith("hotline NOT ready")
    finally:
        proc.send_signal(signal.SIGTERM)
        logs = proc.communicate(timeout=30)[0].decode()
    code, output = status(env, tmp_path)
    assert code == 1 and row(output, "redis")[1:] == ["NO", "not", "running"], output
    assert all(row(output, name)[2] == "NO" for name in ("web", "agi-1", "router", "worker-1")), output
    # HOTLINE_LOG_FORMAT=json: every log line of every process is JSON, gunicorn's own included.
    lines = logs.splitlines()
    assert not [line for line in lines if TEXT_LOG_LINE.match(line)], logs
    records = [json.loads(line) for line in lines if line.startswith("{")]
    loggers = {record["logger"] for record in records}
    assert {"gunicorn.error", "gunicorn.access", "hotline.agi_app", "workers.runner"} <= loggers, loggers
