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
from calls.call_events import queue_request
from ivr import actions as act
from ivr import events as ev
from ivr.model import Menu
from ivr.session import Session
from recordings.prompts import OutsidePrompts, prompt_path
from recordings.spool import RecordingSpool

log = logging.getLogger(__name__)

KEYS = "0123456789*#"
PLAY_TIMEOUT_S = 120.0
"""Longest a prompt may take to play before the peer counts as stuck (settings may lower it)."""
REPLY_SLACK_S = 10
Render = Callable[[str, str, Path], None]
"""``render(text, language, wav_path)``: speaks a prompt into a file."""
QUEUE_WAIT_S = 3600
DIGITS_VARIABLE = "HOTLINE_DIGITS"
READ_MAX_DIGITS = 255
"""app_read's limit."""


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
        try:  # the menu and language name folders: they must stay inside the prompts folder like every prompt
            checked = prompt_path(self.root, self.menu, say.language, name)
        except OutsidePrompts as exc:
            log.error("%s", exc)
            return None
        path = checked.parent / "dynamic" / checked.name
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
            path.with_suffix(".txt").write_text(text, encoding="utf-8")  # what it says, for people
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
        self._recordings = 0
        self._timeouts: tuple[float, float] | None = None

    def perform(self, actions: list[act.Action]) -> ev.Event | None:
        """Run the actions; the last waiting one yields the event (None: the call is over).

        Prompts followed by a Gather are not played on their own: they become the Gather's prompt, so one
        ``Read`` plays them and collects the keys (see ``_gather`` for why no key may wait between commands)."""
        lead: list[act.Say] = []
        for index, action in enumerate(actions):
            if isinstance(action, act.Say):
                if any(isinstance(a, act.Gather) for a in actions[index + 1:]):
                    lead.append(action)
                else:
                    self._play(action)
            elif isinstance(action, act.Hangup):
                self.agi.command("HANGUP")
                return None
            elif isinstance(action, act.Gather):
                return self._gather(action, tuple(lead))
            else:
                return _PERFORM[type(action)](self, action)
        return None

    def say(self, say: act.Say) -> None:
        """Play one prompt without listening for keys (hold announcements)."""
        self._play(say)

    def _play(self, say: act.Say) -> None:
        sound = self.prompts.sound(say)
        if sound is None:
            return
        reply = self.agi.command("STREAM FILE", sound, quote(""), timeout_s=self.play_timeout_s)
        if reply.result == "-1":
            # Almost always the caller hanging up mid-prompt (a missing file is logged by Prompts.sound);
            # the hang-up itself shows as HANGUP/511 on the next command.
            log.info("could not play %s (the caller hung up?)", sound)

    def _gather(self, gather: act.Gather, lead: tuple[act.Say, ...] = ()) -> ev.Event:
        """One ``Read`` plays every prompt and collects the whole entry inside Asterisk.

        res_agi reads and frees the channel's frames, DTMF included, whenever no AGI command is running
        (``run_agi()``): a key typed between two commands is lost. So an entry is never collected one
        ``WAIT FOR DIGIT`` at a time. ``Read`` (app_read) keeps running from the first prompt to the
        last key; prompts are ``&``-joined and a key stops them (type-ahead). Its ``timeout`` argument
        sets first-digit and between-digit timeouts to one value; left empty, Asterisk uses the
        channel's ``TIMEOUT(response)`` for the first key after the last prompt and ``TIMEOUT(digit)``
        between keys (``ast_app_getdata_terminator``), so both are set here. ``GET DATA`` would allow
        only ``#`` to end an entry and one prompt file; ``Read``'s ``t()`` takes the node's finish key."""
        sounds = [s for s in (self.prompts.sound(say) for say in (*lead, *gather.prompt)) if s]
        between = gather.inter_digit_timeout_s or gather.timeout_s
        self._set_timeouts(gather.timeout_s, between)
        max_digits = min(max(gather.max_digits, 1), READ_MAX_DIGITS)
        terminator = gather.finish_on_key.replace(")", "").replace(",", "")
        arguments = f"{DIGITS_VARIABLE},{'&'.join(sounds)},{max_digits},t({terminator}),1,"
        budget = self.play_timeout_s + gather.timeout_s + max_digits * between + REPLY_SLACK_S
        self.agi.command("EXEC", "Read", quote(arguments), timeout_s=budget)
        reply = self.agi.command("GET FULL VARIABLE", quote(f"${{READSTATUS}}:${{{DIGITS_VARIABLE}}}"))
        status, _, digits = reply.data.partition(":")
        if status == "HANGUP" or reply.result == "0":
            raise AgiHangup(f"hung up during Read ({status or 'no status'})")
        digits = "".join(ch for ch in digits if ch in KEYS)
        if digits:
            return ev.Digits(digits)
        if status == "OK" and gather.finish_on_key:
            return ev.Digits(gather.finish_on_key)  # only the finish key: an empty entry, not silence
        return ev.Timeout()

    def _set_timeouts(self, first_s: float, between_s: float) -> None:
        """``TIMEOUT(response)``/``TIMEOUT(digit)`` for the next ``Read``, sent only when they change."""
        wanted = (round(first_s, 3), round(between_s, 3))
        if self._timeouts != wanted:
            self.agi.command("SET VARIABLE", "TIMEOUT(response)", f"{wanted[0]:g}")
            self.agi.command("SET VARIABLE", "TIMEOUT(digit)", f"{wanted[1]:g}")
            self._timeouts = wanted

    def _record(self, record: act.Record) -> ev.Event:
        """``RECORD FILE`` answers ``-1 (hangup)`` when the caller hangs up (keeping what they said, with its
        ``endpos``), and ``-1 (randomerror)`` / ``-1 (writefile)`` when the beep cannot be played or the
        spool cannot be written: those are faults of this side, never a reason to drop the caller."""
        for say in record.prompt:
            self._play(say)
        self._recordings += 1
        name = f"{self.call_id}-{self._recordings}".replace("/", "_")
        reply = self._record_file(name, record, beep=True)
        if reply.result == "-1" and reply.data not in ("hangup", ""):
            log.error("RECORD FILE failed (%s) on call %s: recording again without the beep", reply.data, self.call_id)
            reply = self._record_file(name, record, beep=False)
            if reply.result == "-1" and reply.data not in ("hangup", ""):
                log.error("RECORD FILE failed again (%s) on call %s: the menu takes the caller on",
                          reply.data, self.call_id)
                return ev.Timeout()
        seconds = (reply.endpos or 0) / 8000  # endpos counts 8 kHz samples
        hung_up = reply.data == "hangup" or reply.result == "-1"
        if seconds < 1:
            if hung_up:
                raise AgiHangup("hung up while recording")
            return ev.Timeout()
        # A caller who speaks and then hangs up has left a complaint: keep it like one ended by the key.
        return ev.RecordingSaved(self.spool.keep(name, self.call_id, seconds), seconds)

    def _record_file(self, name: str, record: act.Record, beep: bool) -> AgiReply:
        return self.agi.command(
            "RECORD FILE", self.spool.path_for(name), "wav", quote(record.finish_on_key),
            record.max_seconds * 1000, *(["BEEP"] if beep else []), f"s={int(record.silence_timeout_s)}",
            timeout_s=record.max_seconds + REPLY_SLACK_S,
        )

    def _enqueue(self, enqueue: act.Enqueue) -> ev.Event:
        assert self.session is not None, "the IVR loop sets the session before each step"
        hold = AgiHold(self.agi, self.hold, self.say)
        return hold.wait_for_agent(queue_request(self.session, enqueue, "asterisk"))

    def _transfer(self, transfer: act.Transfer) -> ev.Event:
        self.agi.command("EXEC", "Dial", quote(f"{transfer.target},30"), timeout_s=QUEUE_WAIT_S)
        return ev.Hangup()


_PERFORM: dict[type, Callable[[AgiChannel, act.Action], ev.Event]] = {
    act.Record: AgiChannel._record,  # type: ignore[dict-item]
    act.Enqueue: AgiChannel._enqueue,  # type: ignore[dict-item]
    act.Transfer: AgiChannel._transfer,  # type: ignore[dict-item]
}
