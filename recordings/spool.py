"""Recordings Asterisk writes into a spool folder, moved into the store once the call step ends."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from recordings.store import RecordingStore, StoredAudio

log = logging.getLogger(__name__)


class RecordingSpool:
    """``RECORD FILE <root>/<name>`` writes ``<name>.wav`` here; ``keep`` stores it for good."""

    def __init__(self, root: Path, store: RecordingStore, on_saved: Callable[[StoredAudio], None]) -> None:
        self.root, self._store, self._on_saved = root, store, on_saved

    def path_for(self, name: str) -> str:
        """Where Asterisk should record (no extension: RECORD FILE adds the format's)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return str((self.root / name).resolve())

    def keep(self, name: str, call_id: str, seconds: float) -> str:
        """Move the recording into the store; its name is the reference work orders keep."""
        spooled = self.root / f"{name}.wav"
        if not spooled.exists():
            # Asterisk on another host with no shared spool: keep the reference, say so once.
            log.warning("recording %s of call %s is not in the spool %s", name, call_id, self.root)
            return name
        meta = self._store.save(name, call_id, spooled.read_bytes(), seconds)
        self._on_saved(meta)
        spooled.unlink()
        return name
