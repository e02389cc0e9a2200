"""How quickly hostile menu documents are refused, against parsing the default menu.

    .venv/bin/python bench/hostile_menus.py [--repeat 20]

Times ``ivr.loader.parse_menu`` (what publishing, the editor's check and ``hotline menu validate`` all
run first) on each document of ``tests/test_menu_hostile.HOSTILE`` (billion laughs, deep nesting,
node floods, huge, binary, foreign tags, wrong types ...) and on the largest menu the limits accept.
Prints the median in milliseconds and the ratio to the default menu's parse time, and the start of
the refusal. A hostile document should cost about what a real menu of its size costs, never more.
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
import time

import yaml

from ivr.loader import MAX_MENU_BYTES, MenuError, parse_menu
from tests.test_menu_hostile import DEFAULT, HOSTILE, _generated_menu


def timed(document: str | bytes, repeat: int) -> tuple[float, str]:
    samples, outcome = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            parse_menu(document)
            outcome = "accepted"
        except MenuError as exc:
            outcome = str(exc)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    base, _ = timed(DEFAULT, args.repeat * 5)
    print(f"libyaml: {yaml.__with_libyaml__}; default menu ({len(DEFAULT.encode()):,} bytes) parses in "
          f"{base:.2f} ms (median of {args.repeat * 5})\n")
    print(f"{'document':38} {'bytes':>9} {'ms':>8} {'x default':>10}  outcome")
    rows = [("largest accepted menu", _generated_menu(MAX_MENU_BYTES - 1024)), *(
        (name, document) for name, (document, _) in HOSTILE.items())]
    for name, document in rows:
        ms, outcome = timed(document, args.repeat)
        size = len(document) if isinstance(document, bytes) else len(document.encode("utf-8", "surrogatepass"))
        print(f"{name:38} {size:>9,} {ms:>8.2f} {ms / base:>10.1f}  {outcome[:70]!r}")


if __name__ == "__main__":
    main()
