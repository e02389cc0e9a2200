"""A recording stored while the disk is slow holds up no other call of a gevent process.

``hotline agi`` stores a complaint's recording from its call's greenlet, and syncs it to disk; the gevent web does
the same for Twilio's recordings. A write or an ``fsync`` waiting for the disk on the hub would stall every call of
the process (``recordings.store.RecordingStore``, given ``store.cooperative.in_thread_if_gevent`` by the app).

The disk is made slow here by a FIFO where the store writes its temporary file: the write waits until a reader
opens it, a second later. The FIFO then refuses the ``fsync`` (EINVAL), which the store reports as it would a
failing disk."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASE = textwrap.dedent("""\
    from gevent import monkey
    monkey.patch_all()
    import datetime as dt, json, os, subprocess, sys, threading, time
    from pathlib import Path
    from hotline.app import build_hotline
    from hotline.settings import Settings

    root = Path(sys.argv[1])
    hotline = build_hotline(Settings(_env_file=None, data_dir=root,
                                     database_url=f"sqlite:///{root}/hotline.db", redis_url=sys.argv[2]))
    now = dt.datetime.now(dt.UTC)
    folder = hotline.recordings.root / "complaints" / f"{now:%Y}" / f"{now:%m}" / f"{now:%d}"
    folder.mkdir(parents=True)
    slow = folder / f".REC1.wav.{os.getpid()}.tmp"
    os.mkfifo(slow)
    reader = subprocess.Popen(["sh", "-c", f"sleep 1; cat '{slow}' > /dev/null"])
    ticks = []
    stop = threading.Event()
    def tick():  # another call of the process
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.002)
    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.01)
    before = len(ticks)
    try:
        hotline.recordings.save("REC1", "call-1", b"RIFF" + bytes(100_000), 12.5)
        outcome = "stored"
    except OSError as exc:
        outcome = type(exc).__name__
    meanwhile = len(ticks) - before
    stop.set()
    ticker.join()
    reader.wait()
    print(json.dumps({"outcome": outcome, "ticks_meanwhile": meanwhile}))
""")


def test_a_recording_waiting_for_the_disk_lets_the_other_calls_go_on(tmp_path: Path, redis_url: str) -> None:
    done = subprocess.run([sys.executable, "-c", CASE, str(tmp_path), redis_url], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    # ~500 turns of another greenlet in the second the write waited; on the hub it would have had none.
    assert found["ticks_meanwhile"] > 50, "the other calls stood still while the recording waited for the disk"
    assert found["outcome"] == "OSError"  # the disk's refusal reaches the caller: nothing is taken as stored
