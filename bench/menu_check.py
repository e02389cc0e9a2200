"""How long the menu editor's live check takes per keystroke pause: parse + validate + lines + graph.

    .venv/bin/python bench/menu_check.py [--repeat 200]

The page calls ``POST /api/menus/<name>/check`` 300 ms after the admin stops typing, so one check must
stay well under that. Times ``admin.menu_check.check`` and ``graph`` (what the view does, without HTTP)
on the default menu, on the default menu with a broken option (the problem path: lines are looked up),
and on a generated 300-node menu. Prints median and p95 in milliseconds.
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

from admin.menus.check import check, graph
from calls.menus import DEFAULT_MENU_FILE

DEFAULT = DEFAULT_MENU_FILE.read_text(encoding="utf-8")
BROKEN = DEFAULT.replace('      "3": complaint_category\n', '      "3": complaint_category\n      "4": nowhere\n')


def big_menu(nodes: int) -> str:
    """A chain of menus, each with three keys onward and one back: the shape of a large bank IVR."""
    lines = ["name: big", "languages: [zh-CN, en-US]", "start: m0", "nodes:"]
    for i in range(nodes):
        ahead = [f"m{min(i + k, nodes - 1)}" for k in (1, 2, 3)]
        lines += [f"  m{i}:", "    type: menu", "    prompt:", f"      zh-CN: 第{i}层菜单，请按一到三。",
                  f"      en-US: Menu {i}, press one to three.", "    options:",
                  *(f'      "{k}": {target}' for k, target in enumerate(ahead, 1)), f'      "9": m{max(i - 1, 0)}']
    return "\n".join(lines) + "\n"


def timed(source: str, repeat: int) -> tuple[float, float, int]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        checked = check(source)
        if checked.menu is not None:
            graph(checked.menu)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], len(check(source).problems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    for label, source in (("default menu (30 nodes)", DEFAULT), ("default menu, one broken key", BROKEN),
                          ("generated menu (300 nodes)", big_menu(300))):
        median, p95, problems = timed(source, args.repeat)
        print(f"{label:32} {len(source.encode()) / 1024:6.1f} KiB  median {median:6.2f} ms  p95 {p95:6.2f} ms  "
              f"problems {problems}")


if __name__ == "__main__":
    main()
