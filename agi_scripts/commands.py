"""Engine actions -> AGI commands, and AGI replies -> the caller event the engine waits for."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from agi_scripts.agi import AgiReply, HotlineAGI, quote
from agi_scripts.exceptions import AgiHangup
from agi_scripts.hold import AgiHold, HoldDeps
from ivr import actions as act
from ivr import events as ev
from ivr.model import Menu
from ivr.session import Session
from recordings.spool import RecordingSpool
from routing.call_events import queue_request

log = logging.getLogger(__name__)

KEYS = "0123456789*#"
PLAY_TIMEOUT_S = 120.0
"""Longest a prompt may take to play before the peer counts as stuck (settings may lower it)."""
REPLY_SLACK_S = 10
Render = Callable[[str, str, Path], None]
"""``render(text, language, wav_path)``: speaks a prompt into a file."""
QUEUE_WAIT_S = 3600


class Prompts:
    """Where prompt audio lives: Asterisk plays ``<sound_prefix>/<menu>/<lang>/<prompt_id>``.

    Static prompts are rendered ahead (``hotline prompts build``); a prompt filled per call (a balance,
    a reference number) is rendered when first needed, named by a hash of its text.
    """

    def __init__(self, root: Path, menu: Menu, render: Render | None = None, sound_prefix: str = "hotline") -> None:
        self.root, self.menu, self._render, self.prefix = root, menu.name, render, sound_prefix
        self._templates = _templates_of(menu)

    def sound(self, say: act.Say) -> str | None:
        """The file to play, or None (logged) when there is none: the call goes on without it."""
        template = self._templates.get(say.prompt_id, {}).get(say.language)
        if template != say.text:  # filled per call, or not a menu prompt at all (hold announcements)
            return self._dynamic(say)
        if (self.root / self.menu / say.language / f"{say.prompt_id}.wav").exists():
            return f"{self.prefix}/{self.menu}/{say.language}/{say.prompt_id}"
        log.warning("prompt missing: menu %s, node %s, language %s (run `hotline prompts build`)",
                    self.menu, say.prompt_id, say.language)
        return None

    def _dynamic(self, say: act.Say) -> str | None:
        name = hashlib.sha256(f"{say.language}\n{say.text}".encode()).hexdigest()[:24]
        path = self.root / self.menu / say.language / "dynamic" / f"{name}.wav"
        if not path.exists():
            if self._render is None:
                log.warning("prompt %s (%s) is filled per call and no renderer is set", say.prompt_id, say.language)
                return None
            try:
                _render_once(self._render, say.text, say.language, path)
            except Exception as exc:  # a missing voice must not silence the rest of the call
                log.warning("rendering prompt %s (%s) failed: %s", say.prompt_id, say.language, type(exc).__name__)
                return None
        return f"{self.prefix}/{self.menu}/{say.language}/dynamic/{name}"


_RENDER_SLOTS = threading.BoundedSemaphore(4)
"""Renders at once: each is two subprocesses, and a burst of calls must not fork hundreds."""
_in_flight: dict[Path, threading.Lock] = {}
_in_flight_guard = threading.Lock()


def _render_once(render: Render, text: str, language: str, path: Path) -> None:
    """Render ``path`` unless another call is rendering the same text: then wait for that one."""
    with _in_flight_guard:
        lock = _in_flight.setdefault(path, threading.Lock())
    with lock:
        if not path.exists():
            with _RENDER_SLOTS:
                render(text, language, path)
    with _in_flight_guard:
        _in_flight.pop(path, None)


def _templates_of(menu: Menu) -> dict[str, dict[str, str]]:
    """The menu's prompt texts, worked out once per published version rather than once per call."""
    return _templates_cache.setdefault((menu.name, menu.version), menu.prompts())


_templates_cache: dict[tuple[str, int], dict[str, dict[str, str]]] = {}


class AgiChannel:
    """Plays a step's actions on one call and returns the caller's answer as an engine event."""

    def __init__(
        self, agi: HotlineAGI, prompts: Prompts, spool: RecordingSpool, hold: HoldDeps,
        play_timeout_s: float = PLAY_TIMEOUT_S,
    ) -> None:
        self.agi, self.prompts, self.spool, self.hold = agi, prompts, spool, hold
        self.play_timeout_s = play_timeout_s
        self.session: Session | None = None
        """The call's session as of the step being performed (the router wants its path and caller)."""
        self.call_id = agi.env.get("agi_uniqueid", "call")
        self._typed = ""
        self._recordings = 0

    def perform(self, actions: list[act.Action]) -> ev.Event | None:
        """Run the actions; the last waiting one yields the event (None: the call is over)."""
        self._typed = ""
        for index, action in enumerate(actions):
            if isinstance(action, act.Say):
                # Keys pressed here are kept only when a Gather follows (type-ahead).
                keep = any(isinstance(a, act.Gather) for a in actions[index + 1:])
                self._play(action, escape=KEYS if keep else "")
            elif isinstance(action, act.Hangup):
                self.agi.command("HANGUP")
                return None
            else:
                return _PERFORM[type(action)](self, action)
        return None

    def say(self, say: act.Say) -> None:
        """Play one prompt without listening for keys (hold announcements)."""
        self._play(say, escape="")

    def _play(self, say: act.Say, escape: str) -> None:
        if escape and self._typed:
            return  # the caller is already typing: stop talking
        sound = self.prompts.sound(say)
        if sound is None:
            return
        reply = self.agi.command("STREAM FILE", sound, quote(escape), timeout_s=self.play_timeout_s)
        if reply.result == "-1":
            # A missing file also answers -1; a hang-up shows as HANGUP/511 on the next command.
            log.warning("could not play %s", sound)
        elif reply.result not in ("", "0"):
            self._typed += _key(reply)

    def _gather(self, gather: act.Gather) -> ev.Event:
        for say in gather.prompt:
            self._play(say, escape=KEYS)
        digits, timeout = self._typed, gather.timeout_s
        while len(digits) < gather.max_digits and not (gather.finish_on_key and digits.endswith(gather.finish_on_key)):
            if digits:
                timeout = gather.inter_digit_timeout_s or gather.timeout_s
            reply = self.agi.command("WAIT FOR DIGIT", int(timeout * 1000), timeout_s=timeout + REPLY_SLACK_S)
            if reply.result == "-1":
                raise AgiHangup("WAIT FOR DIGIT failed")
            if reply.result in ("", "0"):
                break
            digits += _key(reply)
        return ev.Digits(digits) if digits else ev.Timeout()

    def _record(self, record: act.Record) -> ev.Event:
        for say in record.prompt:
            self._play(say, escape="")
        self._recordings += 1
        name = f"{self.call_id}-{self._recordings}".replace("/", "_")
        reply = self.agi.command(
            "RECORD FILE", self.spool.path_for(name), "wav", quote(record.finish_on_key),
            record.max_seconds * 1000, "BEEP", f"s={int(record.silence_timeout_s)}",
            timeout_s=record.max_seconds + REPLY_SLACK_S,
        )
        if reply.data == "hangup" or reply.result == "-1":
            raise AgiHangup("hung up while recording")
        seconds = (reply.endpos or 0) / 8000  # endpos counts 8 kHz samples
        if seconds < 1:
            return ev.Timeout()
        return ev.RecordingSaved(self.spool.keep(name, self.call_id, seconds), seconds)

    def _enqueue(self, enqueue: act.Enqueue) -> ev.Event:
        assert self.session is not None, "the IVR loop sets the session before each step"
        hold = AgiHold(self.agi, self.hold, self.say)
        return hold.wait_for_agent(queue_request(self.session, enqueue, "asterisk"))

    def _transfer(self, transfer: act.Transfer) -> ev.Event:
        self.agi.command("EXEC", "Dial", quote(f"{transfer.target},30"), timeout_s=QUEUE_WAIT_S)
        return ev.Hangup()


def _key(reply: AgiReply) -> str:
    try:
        key = chr(int(reply.result))
    except (ValueError, OverflowError):  # not a number, or none a key could be (Asterisk sends its ASCII code)
        return ""
    return key if key in KEYS else ""


_PERFORM: dict[type, Callable[[AgiChannel, act.Action], ev.Event]] = {
    act.Gather: AgiChannel._gather,  # type: ignore[dict-item]
    act.Record: AgiChannel._record,  # type: ignore[dict-item]
    act.Enqueue: AgiChannel._enqueue,  # type: ignore[dict-item]
    act.Transfer: AgiChannel._transfer,  # type: ignore[dict-item]
}
