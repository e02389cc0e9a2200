"""``--metrics-log FILE``: scrape the day's ``/metrics`` every second, as Prometheus would, and keep the lines
an operator watches (callers waiting, agents by state, step latencies) with the second of the day they were read."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

WATCHED = ("hotline_queue_waiting_calls{", "hotline_queue_longest_wait_seconds{", "hotline_agents{",
           "hotline_step_duration_seconds_count{", "hotline_step_duration_seconds_sum{", "hotline_calls_started_total{",
           "hotline_calls_ended_total{", "hotline_record_writer_unwritten_events ", "hotline_menu_errors_total{")


class MetricsLog:
    """A thread that scrapes ``web_url``/metrics every ``every_s`` and appends the watched lines to ``path``."""

    def __init__(self, web_url: str, token: str, path: Path, every_s: float = 1.0) -> None:
        self.url, self.token, self.path, self.every_s = web_url + "/metrics", token, path, every_s
        self.scrapes, self.failures, self.slowest_s = 0, 0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-log", daemon=True)

    def start(self) -> None:
        self._began = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            while not self._stop.wait(self.every_s):
                at = time.monotonic() - self._began
                try:
                    request = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {self.token}"})
                    started = time.perf_counter()
                    with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310 - our own hotline
                        text = reply.read().decode()
                    self.slowest_s = max(self.slowest_s, time.perf_counter() - started)
                except OSError as exc:
                    self.failures += 1
                    out.write(f"{at:7.1f} scrape failed: {exc}\n")
                    continue
                self.scrapes += 1
                out.writelines(f"{at:7.1f} {line}\n" for line in text.splitlines() if line.startswith(WATCHED))
                out.flush()
