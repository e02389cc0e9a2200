"""Keeping an Asterisk conversation once its call is over: MixMonitor's file from the spool into the store.

The caller's hold loop calls ``keep`` when ``Dial`` returns (the agent's channel is gone, MixMonitor is closing
its file); the audio becomes a stereo WAV (``recordings.conversation_audio``), is stored with its checksum like a
complaint message, and gets its SQL row (``on_saved``), linked to the call and to the call's work order.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import redis

from calls.conversations import Conversation, Conversations
from recordings.conversation_audio import stereo_wav, wait_until_written
from recordings.store import CONVERSATIONS, RecordingStore, StoredAudio
from routing.config import QueueConfig

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def conversation_ref(call_id: str, agent_id: str, started_at: float) -> str:
    """The recording's name: one per call, agent and leg (a transferred call has one per agent)."""
    return _SAFE.sub("_", f"conv-{call_id}-{agent_id}-{int(started_at * 1000)}")[:128]


@dataclass
class ConversationKeeper:
    conversations: Conversations
    spool: Path
    """Where MixMonitor writes (shared with Asterisk, as the complaint recordings' spool is)."""
    store: RecordingStore
    on_saved: Callable[[StoredAudio], None]
    work_order_for_call: Callable[[str], str | None]
    file_wait_s: float = 3.0

    def wanted(self, queues: Mapping[str, QueueConfig], skill: str, call_id: str) -> bool:
        """Whether the call's queue records it (its ``record`` setting; a queue since deleted: recorded)."""
        return self.conversations.wanted(queues[skill].record if skill in queues else "all", call_id)

    def spool_path(self, call_id: str, agent_id: str, started_at: float) -> str:
        """The absolute path (no extension) MixMonitor is given; the ``.raw`` is added by the dialplan."""
        self.spool.mkdir(parents=True, exist_ok=True)
        return str((self.spool / conversation_ref(call_id, agent_id, started_at)).resolve())

    def keep_later(self, call_id: str, agent_id: str, answered: bool | None = None, leg: str = "") -> None:
        """Take the conversation of ``agent_id``'s leg now (the call's next leg may be recorded already) and keep
        its audio off the caller's thread: the caller's channel goes on (or hangs up) without waiting.
        ``answered``: whether the agent picked up (None: unknown, the caller hung up during the Dial);
        ``leg``: the agent's channel, when known."""
        ended_at = time.time()
        try:
            conversation = self.conversations.end(call_id, agent_id)
        except redis.RedisError as exc:  # the caller's channel goes on; the file stays in the spool
            log.warning("conversation of call %s (agent %s) not kept: redis %s", call_id, agent_id,
                        type(exc).__name__)
            return
        if conversation is None or conversation.channel != "asterisk":
            return
        if answered is False:  # rang, never picked up: MixMonitor saw no audio, there is nothing to keep
            Path(conversation.path + ".raw").unlink(missing_ok=True)
            return
        if leg and not conversation.leg:
            conversation = replace(conversation, leg=leg)
        threading.Thread(target=self.keep, args=(conversation, ended_at), name=f"keep-{call_id[:24]}",
                         daemon=True).start()

    def keep(self, conversation: Conversation, ended_at: float | None = None) -> StoredAudio | None:
        """``ended_at``: when ``Dial`` returned (the agent's channel hung up, MixMonitor stopped): the audio's end,
        from which its start is known better than from the time the leg was dialled (see ``_offsets``)."""
        try:
            return self._keep(conversation, ended_at)
        except Exception:  # noqa: BLE001 - disk or SQL: the file stays in the spool, said once, loudly
            log.exception("conversation of call %s (agent %s) not stored: left at %s.raw", conversation.call_id,
                          conversation.agent_id, conversation.path)
            return None

    def _keep(self, conversation: Conversation, ended_at: float | None) -> StoredAudio | None:
        raw_path = Path(conversation.path + ".raw")
        if not wait_until_written(raw_path, self.file_wait_s):
            # Asterisk on another host without the shared spool, or MixMonitor refused the path.
            log.warning("conversation of call %s: no recording at %s", conversation.call_id, raw_path)
            return None
        audio, seconds = stereo_wav(raw_path.read_bytes(), swap=not conversation.on_caller)
        meta = self.store.save(
            Path(conversation.path).name, conversation.call_id, audio, seconds, kind=CONVERSATIONS,
            work_order=self.work_order_for_call(conversation.call_id), agent_id=conversation.agent_id,
            leg=conversation.leg[:64], pauses=_offsets(conversation, seconds, ended_at),
        )
        self.on_saved(meta)
        raw_path.unlink()
        log.info("conversation of call %s with agent %s stored (%.1f s)", conversation.call_id,
                 conversation.agent_id, seconds)
        return meta


def _offsets(conversation: Conversation, seconds: float, ended_at: float | None) -> tuple[tuple[float, float], ...]:
    """The pauses as offsets into the audio. They were noted against the time the leg was dialled, but the audio
    starts when the agent picks up (MixMonitor writes nothing while the phone rings): the audio, ending at
    ``ended_at``, is shorter than the time since the dial by the difference, which every offset loses."""
    late = max(0.0, (ended_at - seconds) - conversation.started_at) if ended_at is not None else 0.0
    return tuple((round(max(0.0, a - late), 3), round(min(seconds, max(0.0, b - late)), 3))
                 for a, b in conversation.pauses)
