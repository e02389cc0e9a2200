"""espeak-ng and sox run for a prompt the same way in every process, and never fork a gevent process.

A balance read out on Asterisk is rendered during the call (``agi_scripts.commands``). In ``hotline agi`` (gevent)
a fork copies the whole process's page tables while every call waits (``recordings/tools.py``, bench/spawn.py).
Each case runs in a fresh Python process, patched by gevent as ``hotline agi`` is, or not patched as the CLI and
the threaded web are; fork handlers count any fork of that process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import wave
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNTIMES = ["gevent", "plain"]

_PRELUDE = textwrap.dedent("""\
    import sys
    if sys.argv[1] == "gevent":
        from gevent import monkey
        monkey.patch_all()
    import json, os, time, threading
    from pathlib import Path
    from recordings.prompts import RenderError, render_wav
    from recordings.tools import run_tool
    forks = []
    os.register_at_fork(before=lambda: forks.append(1))
    ticks = []
    def tick():  # another call of the process: it must go on while the tool runs
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.002)
    stop = threading.Event()
    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    time.sleep(0.01)
    def children():
        return [p for p in os.listdir("/proc") if p.isdigit()
                and Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[1] == str(os.getpid())]
    def report(**found):
        stop.set()
        ticker.join()
        found.update(forks=len(forks), children=children())
        print(json.dumps(found))
""")


def _run_case(runtime: str, body: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _PRELUDE + textwrap.dedent(body), runtime, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_prompt_is_rendered_without_forking_the_process_while_its_other_calls_go_on(
    runtime: str, tmp_path: Path,
) -> None:
    target = tmp_path / "balance.wav"
    found = _run_case(runtime, """
        before = len(ticks)
        render_wav("您的余额是1,234.56元。Your balance is 1,234.56 yuan.", "zh-CN", Path(sys.argv[2]))
        report(ticks_meanwhile=len(ticks) - before)
    """, str(target))
    with wave.open(str(target)) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        assert audio.getnframes() > 8000  # over a second of speech, both languages' parts joined
    assert found["ticks_meanwhile"] > 0, "the other calls stood still while the prompt was rendered"
    assert found["children"] == []
    if runtime == "gevent":
        assert found["forks"] == 0, "espeak-ng or sox was started by forking the FastAGI process"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["balance.wav"]  # no parts left beside it


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_tool_past_its_time_is_stopped_and_leaves_no_process(runtime: str) -> None:
    found = _run_case(runtime, """
        started = time.monotonic()
        try:
            run_tool(["sleep", "30"], None, 0.5)
            outcome = "finished"
        except Exception as exc:
            outcome = type(exc).__name__
        report(outcome=outcome, waited=time.monotonic() - started)
    """)
    assert found["outcome"] == "TimeoutExpired"
    assert found["waited"] < 10  # not the 30 s the program would have taken
    assert found["children"] == [], "the program that ran past its time was left running or unreaped"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_failing_tool_gets_its_input_and_says_why_it_failed(runtime: str, tmp_path: Path) -> None:
    found = _run_case(runtime, """
        done = run_tool(["sh", "-c", "cat >&2; exit 3"], "余额 no such voice".encode(), 10)
        missing = ""
        try:
            run_tool(["hotline-no-such-tool"], None, 10)
        except FileNotFoundError as exc:
            missing = str(exc)
        report(returncode=done.returncode, stderr=done.stderr.decode(), missing=missing)
    """)
    assert found["returncode"] == 3
    assert found["stderr"] == "余额 no such voice"  # what the program was given on stdin, and wrote as its error
    assert "hotline-no-such-tool" in str(found["missing"])
    assert found["children"] == []
