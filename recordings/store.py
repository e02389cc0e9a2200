"""Saving audio under stable names, with a metadata file beside each one."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

_SAFE = re.compile(r"[^A-Za-z0-9_-]")
T = TypeVar("T")


@dataclass(frozen=True)
class StoredAudio:
    ref: str
    call_id: str
    path: str
    """Relative to the store's root, so the store can move."""
    duration_s: float
    sha256: str
    size_bytes: int
    kind: str
    work_order: str | None = None
    created_at: str = ""
    agent_id: str | None = None
    """Conversations: the agent on this leg of the call."""
    leg: str | None = None
    """Conversations: the agent's channel (Asterisk) or call sid (Twilio) that was recorded."""
    pauses: tuple[tuple[float, float], ...] = ()
    """Conversations: (from, to) seconds into the audio where recording was paused (silence in the file)."""


CONVERSATIONS = "conversations"
"""The store's folder (``kind``) of agent conversations; complaint messages are in ``complaints``."""


Blocking = Callable[..., Any]
"""Runs ``fn(*args)`` where a wait for the disk holds up no one: ``store.cooperative.in_thread_if_gevent`` in the
app (a thread of gevent's pool in a process of greenlets), or directly (``_directly``)."""


def _directly(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)


class RecordingStore:
    """``<root>/<kind>/<yyyy>/<mm>/<dd>/<ref>.wav`` plus ``<ref>.json``; written atomically and synced to disk,
    through ``blocking``: in a process of greenlets (``hotline agi``, the gevent web) a write and its ``fsync``
    waiting for the disk would stall every call of the process."""

    def __init__(self, root: Path, blocking: Blocking = _directly) -> None:
        self.root, self._blocking = root, blocking

    def save(
        self, ref: str, call_id: str, audio: bytes, duration_s: float,
        kind: str = "complaints", work_order: str | None = None, suffix: str = ".wav",
        agent_id: str | None = None, leg: str | None = None, pauses: tuple[tuple[float, float], ...] = (),
    ) -> StoredAudio:
        now = dt.datetime.now(dt.UTC)
        folder = Path(kind) / f"{now:%Y}" / f"{now:%m}" / f"{now:%d}"
        relative = folder / (_SAFE.sub("_", ref) + suffix)
        meta = StoredAudio(
            ref=ref, call_id=call_id, path=str(relative), duration_s=duration_s,
            sha256=hashlib.sha256(audio).hexdigest(), size_bytes=len(audio), kind=kind,
            work_order=work_order, created_at=now.isoformat(timespec="seconds"), agent_id=agent_id, leg=leg,
            pauses=pauses,
        )
        target = self.root / relative
        self._blocking(_write_with_sidecar, target, audio, json.dumps(asdict(meta), indent=1).encode())
        return meta

    def link(self, relative_path: str, work_order: str) -> None:
        """Note the work order in the metadata file of audio stored before the work order existed."""
        sidecar = (self.root / relative_path).with_suffix(".json")
        meta = json.loads(sidecar.read_text())
        if meta.get("work_order") != work_order:
            meta["work_order"] = work_order
            self._blocking(_write_atomically, sidecar, json.dumps(meta, indent=1).encode())

    def open(self, meta: StoredAudio) -> bytes:
        """The audio, checked against its checksum."""
        with open_checked(self.root / meta.path, meta.ref, meta.sha256) as audio:
            return audio.read()

    def delete(self, relative_path: str) -> None:
        """Remove a recording and its metadata file; a file already gone is not an error."""
        target = self.root / relative_path
        if self.root.resolve() not in target.resolve().parents:
            raise ValueError(f"{relative_path} is outside the recordings folder")
        target.unlink(missing_ok=True)
        target.with_suffix(".json").unlink(missing_ok=True)


class ChecksumMismatch(OSError):
    """The file is not the audio that was stored under that name (replaced or damaged)."""


def open_checked(path: Path, ref: str, sha256: str) -> BinaryIO:
    """``path`` opened for reading, at its start, once its bytes hash to ``sha256``; raises ``ChecksumMismatch``.
    The caller reads the very file that was checked (one open file, no second look-up by name)."""
    audio = path.open("rb")
    try:
        if hashlib.file_digest(audio, "sha256").hexdigest() != sha256:
            raise ChecksumMismatch(f"recording {ref} does not match its checksum")
        audio.seek(0)
    except BaseException:
        audio.close()
        raise
    return audio


def _write_with_sidecar(target: Path, audio: bytes, sidecar: bytes) -> None:
    _write_atomically(target, audio)
    _write_atomically(target.with_suffix(".json"), sidecar)


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(target)
