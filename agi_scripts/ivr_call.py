"""One IVR call over AGI: the engine's loop, with the session held for the length of the call."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from agi_scripts.agi import HotlineAGI
from agi_scripts.commands import PLAY_TIMEOUT_S, AgiChannel, Prompts, Render
from agi_scripts.exceptions import AgiHangup, AgiTimeout
from ivr import events as ev
from ivr.engine import Engine, MenuSource
from ivr.session import Session
from recordings.spool import RecordingSpool
from routing.call_events import emit_call_ended, emit_call_started
from routing.events import EventLog

log = logging.getLogger(__name__)

ASTERISK_LANGUAGES = {"zh": "zh-CN", "cn": "zh-CN", "en": "en-US"}
MAX_STEPS = 500
"""A call longer than this is a peer or menu gone wrong, not a caller."""


@dataclass(frozen=True)
class IvrDeps:
    engine: Engine
    menus: MenuSource
    events: EventLog
    spool: RecordingSpool
    prompts_root: Path
    """Rendered prompts (``<data dir>/recordings/prompts``)."""
    render: Render | None = None
    """Speaks prompts filled per call; None: they are skipped (logged)."""
    play_timeout_s: float = PLAY_TIMEOUT_S
    """A peer that does not finish playing a prompt by then counts as stuck: the call is ended."""


def run_ivr_call(agi: HotlineAGI, deps: IvrDeps, menu_name: str) -> Session:
    """Walk the caller through ``menu_name`` until the menu or the caller ends the call."""
    env = agi.env
    menu = deps.menus.live(menu_name)
    call = ev.CallStarted(
        call_id=env.get("agi_uniqueid", ""), caller=env.get("agi_callerid", ""),
        called=env.get("agi_dnid") or env.get("agi_extension", ""), channel="asterisk",
        language=ASTERISK_LANGUAGES.get(env.get("agi_language", "")),
    )
    session, actions = deps.engine.start(menu, call)
    emit_call_started(deps.events, session)
    channel = AgiChannel(agi, Prompts(deps.prompts_root, menu, deps.render), deps.spool, deps.play_timeout_s)
    status = "completed"
    try:
        for _ in range(MAX_STEPS):
            event = channel.perform(actions)
            if event is None:
                break
            session, actions = deps.engine.step(menu, session, event)
    except (AgiHangup, AgiTimeout):
        session, _ = deps.engine.step(menu, session, ev.Hangup())
    finally:
        emit_call_ended(deps.events, session, status)
    return session

