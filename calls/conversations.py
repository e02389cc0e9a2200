"""Agent conversations being recorded, on either channel: who, which leg, since when, and the pauses.

The channel that connects the agent starts a conversation here (Asterisk: the hold loop as it dials the agent,
whose channel starts ``MixMonitor`` while it rings; the agent's channel and the answer time are learnt from the
router when first needed; Twilio: the agent leg's connect webhook, noted ``started=False`` until the leg joins the
call's conference after its whisper, when its recording is started: ``begin``).
The console pauses and resumes it (``admin.recordings.pause``), and whoever keeps the audio at the end
(Asterisk: the caller's hold loop; Twilio: the recording callback) takes the pauses with it, as offsets into
the audio, so a player shows the gap. One JSON value per call and agent in Redis, under the router's prefix: a
transferred call has one conversation per leg, the first kept while the next is already recorded; the call's
newest leg is the one a caller that names no agent means (the console's pause names the agent on the call).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import redis

from recordings.sampling import records

LONGEST_S = 6 * 3600
"""A conversation's state outlives any call; then it goes by itself."""


class NotRecording(LookupError):
    """The call has no recording running (not connected, not recorded by its queue's setting, or over)."""


class AlreadySo(ValueError):
    """Pausing a paused recording, or resuming one that runs."""


@dataclass(frozen=True)
class Conversation:
    call_id: str
    channel: str
    """``asterisk`` or ``twilio``."""
    agent_id: str
    leg: str
    """The agent's channel name (Asterisk, for AMI ``MixMonitorMute``) or call sid (Twilio, for its Recording)."""
    started_at: float
    path: str = ""
    """Asterisk: where MixMonitor writes, without the ``.raw`` extension."""
    pauses: tuple[tuple[float, float], ...] = ()
    paused_at: float | None = None
    """Seconds into the audio when the running pause began; None while recording."""
    started: bool = True
    """False while a Twilio agent leg hears its whisper: its recording is not started yet (``begin``)."""
    on_caller: bool = False
    """Asterisk: MixMonitor runs on the caller's channel, not the agent's (a warm transfer's target, recorded from
    the hand-over: their own channel is swapped for a copy as it joins the caller's bridge, the caller's is only
    moved), so the audio read from the channel is the caller's."""

    def offset(self, now: float) -> float:
        return round(max(0.0, now - self.started_at), 3)

    def closed(self, now: float) -> tuple[tuple[float, float], ...]:
        """The pauses with a running one ended ``now`` (the call ended while paused)."""
        if self.paused_at is None:
            return self.pauses
        return (*self.pauses, (self.paused_at, self.offset(now)))


class Conversations:
    def __init__(self, client: redis.Redis, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self._redis, self._prefix, self.clock = client, prefix, clock

    def key(self, call_id: str, agent_id: str | None = None) -> str:
        """The conversation of ``agent_id`` on the call; without one, the call's pointer to its newest leg."""
        return f"{self._prefix}recording:{call_id}" + (f":{agent_id}" if agent_id is not None else "")

    @staticmethod
    def wanted(policy: str, call_id: str) -> bool:
        """Whether the queue's ``record`` setting (``all``, ``none``, ``N%``) records this call."""
        return records(policy, call_id)

    def start(self, conversation: Conversation) -> None:
        pipe = self._redis.pipeline(transaction=False)  # two keys: no MULTI, so Redis Cluster takes it too
        pipe.set(self.key(conversation.call_id, conversation.agent_id), _dump(conversation), ex=LONGEST_S)
        pipe.set(self.key(conversation.call_id), conversation.agent_id, ex=LONGEST_S)
        pipe.execute()

    def get(self, call_id: str, agent_id: str | None = None) -> Conversation | None:
        raw = self._redis.get(self._leg(call_id, agent_id))
        return _load(raw) if raw else None

    def answered(self, call_id: str, leg: str, answered_at: float, agent_id: str | None = None) -> None:
        """The agent's channel and pick-up time, for a conversation started as its leg was dialled (the audio
        starts at the answer: offsets count from there). Nothing when they are known already."""
        def learnt(c: Conversation, now: float) -> Conversation:
            return c if c.leg else replace(c, leg=leg, started_at=answered_at)
        self._change(call_id, agent_id, learnt)

    def begin(self, call_id: str, leg: str, agent_id: str | None = None) -> Conversation | None:
        """Claim the start of a conversation noted ``started=False`` on ``leg`` (the join callback and the fallback
        timer may both try, in any process): the claimant gets it, anyone later None, as does another leg."""
        def claimed(c: Conversation, now: float) -> Conversation:
            if c.started or c.leg != leg:
                raise AlreadySo("started already, or another leg's")
            return replace(c, started=True, started_at=now)
        try:
            return self._change(call_id, agent_id, claimed)
        except (NotRecording, AlreadySo):
            return None

    def recording_since(self, call_id: str, leg: str, at: float, agent_id: str | None = None) -> None:
        """The audio of ``leg`` starts at ``at`` (when the start Twilio accepted was asked): offsets count from
        there. Nothing when the conversation is over, is another leg's by now, or has pauses (their offsets stand)."""
        def since(c: Conversation, now: float) -> Conversation:
            return replace(c, started_at=at) if c.leg == leg and c.paused_at is None and not c.pauses else c
        try:
            self._change(call_id, agent_id, since)
        except NotRecording:
            pass

    def pause(self, call_id: str, agent_id: str | None = None, at: float | None = None) -> Conversation:
        """Note the pause (the channel has muted the recording already), as of ``at`` (the clock's time when the
        channel was asked: the mark covers the whole gap); raises NotRecording, AlreadySo."""
        return self._change(call_id, agent_id, lambda c, now: replace(c, paused_at=c.offset(now))
                            if c.paused_at is None else _already("paused"), at)

    def resume(self, call_id: str, agent_id: str | None = None, paused_at: float | None = None) -> Conversation:
        """End the running pause (as of now: after the channel unmuted); with ``paused_at``, only that pause (the
        automatic resume of a pause the agent already ended and started again must not cut the new one short)."""
        def ended(c: Conversation, now: float) -> Conversation:
            if c.paused_at is None or (paused_at is not None and c.paused_at != paused_at):
                return _already("recording")
            return replace(c, pauses=(*c.pauses, (c.paused_at, c.offset(now))), paused_at=None)
        return self._change(call_id, agent_id, ended)

    def end(self, call_id: str, agent_id: str | None = None) -> Conversation | None:
        """Take the conversation (its audio is being kept), with a running pause ended now."""
        key = self._leg(call_id, agent_id)
        pipe = self._redis.pipeline()
        pipe.get(key)
        pipe.delete(key)
        raw, _ = pipe.execute()
        if not raw:
            return None
        found = _load(raw)
        return replace(found, pauses=found.closed(self.clock()), paused_at=None)

    def _leg(self, call_id: str, agent_id: str | None) -> str:
        if agent_id is None:
            newest = self._redis.get(self.key(call_id))
            agent_id = newest.decode() if isinstance(newest, bytes) else newest
            if not agent_id:
                return self.key(call_id, "")  # no leg recorded: a key nothing is stored under
        return self.key(call_id, agent_id)

    def _change(self, call_id: str, agent_id: str | None, change: Callable[[Conversation, float], Conversation],
                at: float | None = None) -> Conversation:
        key = self._leg(call_id, agent_id)
        out: list[Conversation] = []

        def apply(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(key)
            if not raw:
                raise NotRecording(call_id)
            changed = change(_load(raw), self.clock() if at is None else at)
            pipe.multi()
            pipe.set(key, _dump(changed), keepttl=True)
            out.append(changed)

        self._redis.transaction(apply, key)
        return out[-1]


def _already(state: str) -> Conversation:
    raise AlreadySo(f"the recording is {state} already")


def _dump(conversation: Conversation) -> str:
    return json.dumps(asdict(conversation))


def _load(raw: bytes | str) -> Conversation:
    data = json.loads(raw)
    data["pauses"] = tuple(tuple(p) for p in data.get("pauses") or ())
    return Conversation(**data)
