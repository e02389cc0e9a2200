"""N simultaneous callers on a real Asterisk 22, typing at a human pace: lost digits and keypress latency.

    .venv/bin/python bench/asterisk.py [--callers 200] [--tone-ms 200] [--gap-ms 100]

Needs the Asterisk that ./scripts/test builds (``$HOTLINE_ASTERISK_PREFIX``, default
/var/cache/hotline-peers/asterisk-22). Starts, in a temporary folder: redis-server, SQLite, the prompts
rendered by ``hotline prompts build`` (espeak-ng), ``hotline agi`` and ``hotline router`` as processes of
their own, and Asterisk with the project's ``asterisk_conf/`` installed as its README says
(tests/asterisk_pbx.py). Each caller is a Local channel that walks the inquiry: ``1`` at the main menu,
the demo card and ``#``, the PIN; every entry is typed with SendDTMF on the caller's side (tones of
--tone-ms, --gap-ms apart) only after the prompt it answers has started, then the caller hangs up after
the balance. The baseline is one caller alone, measured in the same run.

Figures, all from Asterisk's own AMI events (timestamps on):
- lost digits: keys typed minus keys the hotline read (the READSTATUS/digits it asked Asterisk for after each
  ``Read``), over every entry of every caller; 0 is the target;
- keypress to next prompt: from the ``DTMFEnd`` of an entry's last key on the hotline's channel to the start
  of the next AGI command that plays a prompt (p50/p95);
- callers verified (card and PIN accepted).
Prints the figures; exits 0 whatever they are.
"""

# ruff: noqa: E402  (the sys.path fix below has to run before the project's imports)

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from agi_scripts.commands import DIGITS_VARIABLE
from hotline.app import prepare
from hotline.cli import _build_prompts
from tests.asterisk_pbx import Caller, RealAsterisk, available, free_port
from tests.asterisk_stack import AgiProcess, stack_settings
from tests.conftest import RedisProcess

CARD, PIN = "6222021234567894", "123456"
ENTRIES = [("main", "1", "1"), ("inquiry_card", CARD + "#", CARD), ("inquiry_pin", PIN, PIN)]
"""(prompt that asks, keys typed, digits the hotline should read)."""


def walk(pbx: RealAsterisk, tone_s: float, gap_s: float) -> Caller:
    call = pbx.call()
    for prompt, keys, _ in ENTRIES:
        call.wait_prompt(prompt, timeout_s=120)
        call.press(keys, tone_s, gap_s)
    call.wait_prompt("inquiry_after", timeout_s=120)
    call.hang_up()
    return call


def measure(pbx: RealAsterisk, call: Caller) -> tuple[int, int, list[float]]:
    """(digits typed, digits lost, keypress-to-next-prompt latencies in s) for one call."""
    assert pbx.ami is not None
    events = pbx.ami.by_uniqueid.get(call.ivr_id, [])
    # Read sets the digits variable on the channel: Asterisk reports it (VarSet) with what it collected.
    reads = [e.get("value", "") for e in events if e.get("event") == "VarSet" and e.get("variable") == DIGITS_VARIABLE]
    typed = sum(len(expected) for _, _, expected in ENTRIES)
    lost = sum(max(0, len(expected) - len(_common_prefix(expected, got)))
               for (_, _, expected), got in zip(ENTRIES, reads + [""] * len(ENTRIES), strict=False))
    latencies: list[float] = []
    last_key_at: float | None = None
    keys_left = [len(keys) for _, keys, _ in ENTRIES]
    entry = 0
    for event in events:
        if event.get("event") == "DTMFEnd" and event.get("direction") == "Received" and entry < len(ENTRIES):
            keys_left[entry] -= 1
            if keys_left[entry] == 0:
                last_key_at, entry = float(event["timestamp"]), entry + 1
        elif (event.get("event") == "AGIExecStart" and last_key_at is not None
              and event.get("command", "").startswith(("EXEC Read", "STREAM FILE"))):
            latencies.append(float(event["timestamp"]) - last_key_at)
            last_key_at = None
    return typed, lost, latencies


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000 if ordered else float("nan")


def run(pbx: RealAsterisk, n: int, tone_s: float, gap_s: float) -> dict[str, float]:
    started = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        calls = list(pool.map(lambda _: walk(pbx, tone_s, gap_s), range(n)))
    wall = time.monotonic() - started
    time.sleep(1)
    typed = lost = 0
    latencies: list[float] = []
    for call in calls:
        t, lo, lat = measure(pbx, call)
        typed, lost, latencies = typed + t, lost + lo, latencies + lat
    return {"callers": n, "typed": typed, "lost": lost, "p50": pct(latencies, 50), "p95": pct(latencies, 95),
            "mean": statistics.mean(latencies) * 1000 if latencies else float("nan"), "wall": wall,
            "samples": len(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callers", type=int, default=200)
    parser.add_argument("--tone-ms", type=int, default=200)
    parser.add_argument("--gap-ms", type=int, default=100)
    args = parser.parse_args()
    why = available()
    if why:
        sys.exit(f"bench/asterisk.py: {why}")
    tone_s, gap_s = args.tone_ms / 1000, args.gap_ms / 1000
    with tempfile.TemporaryDirectory(prefix="hotline-asterisk-bench-") as tmp:
        folder = Path(tmp)
        redis_server = RedisProcess(folder)
        redis_server.start()
        pbx = RealAsterisk(folder / "asterisk", free_port(), folder / "var" / "recordings" / "prompts")
        pbx.install()
        settings = stack_settings(folder, redis_server.url, pbx)
        _build_prompts(prepare(settings), verbose=False)
        agi = AgiProcess(settings, folder / "agi.log")
        agi.start()
        pbx.start()
        try:
            version = pbx.cli("core show version").strip()
            baseline = run(pbx, 1, tone_s, gap_s)
            load = run(pbx, args.callers, tone_s, gap_s)
        finally:
            pbx.stop()
            agi.stop()
            redis_server.stop()
    print(f"{version}; callers type {args.tone_ms} ms tones "
          f"{args.gap_ms} ms apart, after each prompt starts; entries: 1, card + #, PIN")
    print(f"  {'callers':>8} {'digits typed':>13} {'lost':>5} {'key->prompt p50 ms':>19} {'p95 ms':>8} "
          f"{'mean ms':>8} {'samples':>8} {'wall s':>7}")
    for r in (baseline, load):
        print(f"  {r['callers']:>8.0f} {r['typed']:>13.0f} {r['lost']:>5.0f} {r['p50']:>19.1f} {r['p95']:>8.1f} "
              f"{r['mean']:>8.1f} {r['samples']:>8.0f} {r['wall']:>7.1f}")
    print(f"  ratio p50 {load['p50'] / baseline['p50']:.2f}x, p95 {load['p95'] / baseline['p95']:.2f}x "
          "the lone caller's")
    print(f"target: 0 lost digits at {args.callers} callers: {'PASS' if load['lost'] == 0 else 'FAIL'}")


if __name__ == "__main__":
    main()
