"""One IVR call over AGI: the engine's loop, with the session held for the length of the call."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from agi_scripts.agi import HotlineAGI
from agi_scripts.commands import PLAY_TIMEOUT_S, AgiChannel, Prompts, Render
from agi_scripts.exceptions import AgiHangup, AgiTimeout
from agi_scripts.hold import AgiHold, HoldDeps
from calls.call_events import emit_call_ended, emit_call_failed, emit_call_started
from calls.log_context import at_step
from calls.sessions import SessionStore
from ivr import events as ev
from ivr.engine import INTENT_OF_SKILL, Engine, MenuSource
from ivr.masking import mask_phone
from ivr.model import Menu
from ivr.session import Session
from metrics import timed_step
from recordings.spool import RecordingSpool
from routing.events import EventLog
from routing.router import CallRequest, Ended

log = logging.getLogger(__name__)

ASTERISK_LANGUAGES = {"zh": "zh-CN", "cn": "zh-CN", "en": "en-US"}
MAX_STEPS = 500
"""A call longer than this is a peer or menu gone wrong, not a caller."""
DEFAULT_PRIORITY = 5


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
    hold: HoldDeps | None = None
    """The router side: how callers wait for agents. Required for menus with queue nodes."""
    play_timeout_s: float = PLAY_TIMEOUT_S
    """A peer that does not finish playing a prompt by then counts as stuck: the call is ended."""
    sessions: SessionStore | None = None
    """Only to count the call among the calls in the menus (the session itself stays in this process)."""


def run_ivr_call(
    agi: HotlineAGI, deps: IvrDeps, menu_name: str, variables: tuple[tuple[str, str], ...] = (),
    direction: str = "inbound",
) -> Session:
    """Walk the caller through ``menu_name`` until the menu or the caller ends the call.

    ``variables`` start the session (an outbound survey's visit); ``direction`` goes into the call record."""
    env = agi.env
    menu = deps.menus.live(menu_name)
    call = ev.CallStarted(
        call_id=env.get("agi_uniqueid", ""), caller=env.get("agi_callerid", ""),
        called=_called(env), channel="asterisk",
        language=ASTERISK_LANGUAGES.get(env.get("agi_language", "")), vars=variables,
    )
    session, actions = deps.engine.start(menu, call)
    emit_call_started(deps.events, session, direction)
    assert deps.hold is not None, "FastAGI needs the router (IvrDeps.hold)"
    _track(deps.hold, session.call_id)
    if session.caller and direction == "inbound":  # calling in again replaces a pending callback
        deps.hold.connector.settle(deps.hold.router.cancel_callback_of(session.caller) or Ended([]))
    channel = AgiChannel(agi, Prompts(deps.prompts_root, menu, deps.render), deps.spool, deps.hold,
                         deps.play_timeout_s)
    status = "completed"
    counted: bool | None = None
    try:
        for _ in range(MAX_STEPS):
            channel.session = session
            at_step(session.node)
            counted = _count_in_menus(deps, session, counted)
            event = channel.perform(actions)
            if event is None:
                break
            node = menu.nodes.get(session.node)
            with timed_step("asterisk", node.type if node is not None else "start"):
                session, actions = deps.engine.step(menu, session, event)
    except (AgiHangup, AgiTimeout) as exc:
        if isinstance(exc, AgiTimeout):  # Asterisk went quiet: the call is given up, and the log says why
            log.warning("call %s: %s; ended as a hang-up", session.call_id, exc)
        session, _ = deps.engine.step(menu, session, ev.Hangup())
    except Exception:
        status, session.outcome = "failed", "error"  # on to the server's error boundary, recorded here
        raise
    finally:
        emit_call_ended(deps.events, session, status)
        agi.call_recorded = True
        _untrack(deps.hold, session.call_id)
        if deps.sessions is not None:
            deps.sessions.note_in_ivr(session.call_id, False)
    return session


def _track(hold: HoldDeps, call_id: str) -> None:
    """The call's lease, renewed while this process serves it: a killed process's calls get ended."""
    hold.keeper.hold(call_id)
    try:
        hold.router.track_channel_call(call_id, "asterisk", hold.keeper.lease_s)
    except redis.RedisError as exc:  # the call goes on; only the dropped-call safety net is missing
        log.warning("call %s: lease not taken (%s)", call_id, type(exc).__name__)


def _untrack(hold: HoldDeps, call_id: str) -> None:
    hold.keeper.release(call_id)
    try:
        hold.router.untrack_channel_call(call_id)
    except redis.RedisError as exc:
        log.warning("call %s: lease not given back (%s); it lapses", call_id, type(exc).__name__)


def _count_in_menus(deps: IvrDeps, session: Session, counted: bool | None) -> bool:
    """Note the call in (or out of) the dashboard's count when that changes: not a Redis trip per step."""
    in_menus = not session.ended and session.outcome != "queued"
    if deps.sessions is not None and in_menus != counted:
        deps.sessions.note_in_ivr(session.call_id, in_menus)
    return in_menus



def transfer_to_queue(agi: HotlineAGI, deps: IvrDeps, menu: Menu, query: dict[str, list[str]]) -> Session:
    """The ``queue`` script: a caller transferred into the router (``hotline-queues`` in the dialplan)
    waits for an agent of ``?skill=`` at ``?priority=``, hearing ``menu``'s language and prompts.

    The transferred leg is a call of its own in the records (started, queued, answered or abandoned, ended),
    so a blind transfer counts in the reports like a caller who pressed 0."""
    assert deps.hold is not None, "FastAGI needs the router (IvrDeps.hold)"
    env = agi.env
    skill = (query.get("skill") or ["general"])[0]
    priority = _priority((query.get("priority") or [""])[0])
    language = ASTERISK_LANGUAGES.get(env.get("agi_language", ""), menu.languages[0])
    intent = INTENT_OF_SKILL.get(skill, "agent")
    session = Session(
        call_id=env.get("agi_uniqueid", ""), channel="asterisk", caller=env.get("agi_callerid", ""),
        called=_called(env), menu=menu.name, menu_version=menu.version, language=language, intent=intent,
        outcome="queued", started_at=time.time(),
    )
    session.path.append({"node": "transfer", "input": f"queued {skill}",
                         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    emit_call_started(deps.events, session)
    _track(deps.hold, session.call_id)
    channel = AgiChannel(agi, Prompts(deps.prompts_root, menu, deps.render), deps.spool, deps.hold,
                         deps.play_timeout_s)
    request = CallRequest(
        call_id=session.call_id, skill=skill, language=language, priority=priority, channel="asterisk",
        caller=mask_phone(session.caller), intent=intent, ivr_path=tuple(session.path),
    )
    result = "hangup"
    try:
        result = AgiHold(agi, deps.hold, channel.say).wait_for_agent(request).result
    except (AgiHangup, AgiTimeout):
        pass
    except Exception:
        result = "error"
        raise
    finally:
        session.outcome = {"bridged": "routed", "hangup": "abandoned", "error": "error"}.get(result, "unanswered")
        session.ended = True
        emit_call_ended(deps.events, session, "failed" if result == "error" else "completed")
        agi.call_recorded = True
        _untrack(deps.hold, session.call_id)
    return session


def record_failed_call(events: EventLog, env: dict[str, str], outbound: bool = False) -> None:
    """The FastAGI server's error boundary met this call: it gets a record all the same."""
    emit_call_failed(events, env.get("agi_uniqueid", "")[:64], "asterisk", env.get("agi_callerid", ""),
                     _called(env), "outbound" if outbound else "inbound")


def _called(env: dict[str, str]) -> str:
    """The number the caller dialled: the DNID when the trunk sent one, else the dialplan extension
    (``s`` is Asterisk's "no extension", not a number)."""
    for key in ("agi_dnid", "agi_extension"):
        value = env.get(key, "")
        if value and value not in ("unknown", "s"):
            return value
    return ""


def _priority(text: str) -> int:
    """``?priority=`` from the dialplan; a typo there must not drop the caller, so it falls back to the default."""
    try:
        return int(text) if text else DEFAULT_PRIORITY
    except ValueError:
        log.warning("queue script: priority %r is not a number, using %d", text[:20], DEFAULT_PRIORITY)
        return DEFAULT_PRIORITY
