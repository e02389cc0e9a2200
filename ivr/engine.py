"""The IVR engine: ``(menu, session, event) -> (session, actions)``, the same for every channel.

Pure apart from the services it is handed: no Redis, no HTTP, no sockets. Sensitive digits live
only in a per-step ``secrets`` dict that the next action consumes; the session keeps masks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from ivr import actions as act
from ivr import events as ev
from ivr.entries import entry_ok, split_entry
from ivr.masking import mask_digits
from ivr.model import (
    ActionNode,
    HangupNode,
    InputNode,
    LanguageNode,
    Menu,
    MenuNode,
    NodeBase,
    QueueNode,
    RecordNode,
    SayNode,
    SurveyNode,
    TransferNode,
)
from ivr.services import CallInfo, ServiceResult
from ivr.session import Session
from ivr.templates import fill_prompt

MAX_HOPS = 64
"""Nodes one step may pass through without the caller; validation forbids silent loops."""

INTENT_OF_SKILL = {"inquiry": "inquiry", "loss": "loss", "complaint": "complaint"}
QUEUE_AVAILABILITY = "queue.availability"
"""The service asked at every queue node: ``open``, ``closed`` (after hours, holidays), ``overflow`` (only the
overflow queue's agents are in: queued there), ``callback`` (nobody in: queued with a callback offer at once) or
``unstaffed`` (nobody in, no callback: said so, then the node's ``next``)."""


class Services(Protocol):
    def call(self, name: str, args: list[str], call: CallInfo) -> ServiceResult: ...


class MenuSource(Protocol):
    """Published menus, as channels need them: the live one for a new call, any version for a call in progress."""

    def live(self, name: str) -> Menu: ...
    def version(self, name: str, version: int) -> Menu: ...


class EngineError(RuntimeError):
    """The menu led the engine somewhere it cannot go (a bug in a published menu)."""


class Engine:
    """Runs menus. One instance serves every call; it keeps no per-call state."""

    def __init__(self, services: Services, clock: Callable[[], float] = time.time) -> None:
        self.services = services
        self.clock = clock

    def start(self, menu: Menu, call: ev.CallStarted) -> tuple[Session, list[act.Action]]:
        """Open a session at the menu's start node."""
        language = call.language if call.language in menu.languages else menu.default_language
        session = Session(
            call_id=call.call_id, channel=call.channel, caller=call.caller, called=call.called,
            menu=menu.name, menu_version=menu.version, language=language, started_at=self.clock(),
            vars=dict(call.vars),
        )
        run = _Step(self, menu, session)
        run.enter(menu.start)
        return session, run.actions

    def step(self, menu: Menu, session: Session, event: ev.Event) -> tuple[Session, list[act.Action]]:
        """Apply one caller event to a copy of ``session``."""
        run = _Step(self, menu, session.copy())
        run.session.seq += 1
        run.handle(event)
        return run.session, run.actions


class _Step:
    """One engine step: the session being changed, the actions so far, and transient secrets."""

    def __init__(self, engine: Engine, menu: Menu, session: Session) -> None:
        self.engine, self.menu, self.session = engine, menu, session
        self.actions: list[act.Action] = []
        self.prefix: list[act.Say] = []
        self.secrets: dict[str, str] = {}

    # -- moving between nodes --------------------------------------------------------------

    def enter(self, target: str | None) -> None:
        hops = 0
        while target is not None:
            hops += 1
            if hops > MAX_HOPS:
                raise EngineError(f"more than {MAX_HOPS} nodes without caller input at '{target}'")
            node = self.menu.nodes.get(target)
            if node is None:
                raise EngineError(f"unknown node '{target}'")
            visits = self.session.visits.get(target, 0) + 1
            if node.max_visits and visits > node.max_visits:
                self.trace(target, "max visits")
                target = node.on_max_visits
                continue
            s = self.session
            s.visits[target] = visits
            s.node, s.attempts = target, 0
            s.intent = s.intent or node.intent or ""
            s.outcome = node.outcome or s.outcome
            target = _ENTER[type(node)](self, target, node)
        self.secrets.clear()

    def handle(self, event: ev.Event) -> None:
        s = self.session
        if s.ended:
            self.actions.append(act.Hangup())
            return
        if isinstance(event, ev.Hangup):
            self.trace(s.node, "hangup")
            s.ended = True
            s.outcome = "abandoned" if s.outcome == "queued" else s.outcome or "hangup"
            return
        node = self.menu.nodes.get(s.node)
        if node is None:
            raise EngineError(f"session is at unknown node '{s.node}'")
        self.enter(_ON_EVENT[type(node)](self, s.node, node, event))

    def retry(self, node_id: str, node: NodeBase, kind: str) -> str | None:
        """Wrong or no input: re-prompt, or after the retries take the fallback."""
        s = self.session
        s.attempts += 1
        self.trace(node_id, kind)
        if s.attempts > self.menu.retries_of(node):
            fallback = self.menu.fallback_of(node)
            if fallback is None:
                self.actions.append(act.Hangup())
                s.ended, s.outcome = True, s.outcome or "failed"
            return fallback
        d = self.menu.defaults
        own_invalid = getattr(node, "invalid_prompt", None)
        if kind.startswith("invalid") and own_invalid:
            extra, extra_id = own_invalid, f"{node_id}.invalid"
        elif kind.startswith("invalid"):
            extra, extra_id = d.invalid_prompt, "defaults.invalid"
        else:
            extra, extra_id = d.no_input_prompt, "defaults.no_input"
        if extra:
            self.prefix.append(self.say(extra_id, extra))
        _ENTER[type(node)](self, node_id, node)
        return None

    # -- helpers ---------------------------------------------------------------------------

    def trace(self, node_id: str, what: str) -> None:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.engine.clock()))
        self.session.path.append({"node": node_id, "input": what, "at": at})

    def say(self, prompt_id: str, prompt: dict[str, str]) -> act.Say:
        lang = self.session.language
        return act.Say(fill_prompt(prompt[lang], self.session.vars, self.menu, lang), lang, prompt_id)

    def prompts(self, node_id: str, node: NodeBase) -> tuple[act.Say, ...]:
        own = (self.say(node_id, node.prompt),) if node.prompt else ()
        out, self.prefix = (*self.prefix, *own), []
        return out

    def take_buffer(self) -> str | None:
        typed, self.session.buffer = self.session.buffer, ""
        return typed or None

    def call_info(self) -> CallInfo:
        s = self.session
        return CallInfo(s.call_id, s.caller, s.channel, s.language, dict(s.vars))


# -- entering nodes: return the next node, or None to wait for the caller -------------------

def _enter_say(run: _Step, node_id: str, node: SayNode) -> str | None:
    assert node.prompt is not None
    run.actions.extend(run.prefix)
    run.prefix = []
    run.actions.append(run.say(node_id, node.prompt))
    return node.next


def _enter_menu(run: _Step, node_id: str, node: MenuNode | SurveyNode) -> str | None:
    typed = run.take_buffer()
    if typed:
        return _ON_EVENT[type(node)](run, node_id, node, ev.Digits(typed))
    keys = run.menu.options_of(node) if isinstance(node, MenuNode) else {}
    width = max((len(k) for k in keys), default=1)
    run.actions.append(act.Gather(
        max_digits=width, timeout_s=run.menu.timeout_of(node), finish_on_key="",
        prompt=run.prompts(node_id, node),
    ))
    return None


def _enter_input(run: _Step, node_id: str, node: InputNode) -> str | None:
    typed = run.take_buffer()
    if typed and (len(typed) >= node.max_digits or node.finish_on_key and node.finish_on_key in typed):
        return _on_input(run, node_id, node, ev.Digits(typed))
    run.session.buffer = typed or ""
    run.actions.append(act.Gather(
        max_digits=node.max_digits - len(run.session.buffer), min_digits=node.min_digits,
        timeout_s=node.first_digit_timeout, inter_digit_timeout_s=node.inter_digit_timeout,
        finish_on_key=node.finish_on_key, prompt=() if typed else run.prompts(node_id, node),
    ))
    return None


def _enter_action(run: _Step, node_id: str, node: ActionNode) -> str | None:
    args = [run.secrets.get(name, run.session.vars.get(name, "")) for name in node.args]
    outcome = run.engine.services.call(node.service, args, run.call_info())
    run.session.vars.update(outcome.outputs)
    run.trace(node_id, f"result {outcome.result}")
    target = node.results.get(outcome.result) or node.results.get("default")
    return target or run.menu.fallback_of(node)


def _enter_record(run: _Step, node_id: str, node: RecordNode) -> str | None:
    run.session.buffer = ""
    run.actions.append(act.Record(
        max_seconds=node.max_seconds, finish_on_key=node.finish_on_key,
        silence_timeout_s=run.menu.timeout_of(node), prompt=run.prompts(node_id, node),
    ))
    return None


def _enter_queue(run: _Step, node_id: str, node: QueueNode) -> str | None:
    s = run.session
    run.actions.extend(run.prefix)
    run.prefix = []
    s.intent = s.intent or next((INTENT_OF_SKILL[k] for k in node.skills if k in INTENT_OF_SKILL), "agent")
    # Nobody to answer: say so now rather than hold the caller to the longest wait (both channels).
    answer = run.engine.services.call(QUEUE_AVAILABILITY, [node.skills[0]], run.call_info())
    availability = answer.result
    if availability in ("closed", "unstaffed"):
        said = run.menu.defaults.closed_prompt if availability == "closed" else run.menu.defaults.no_agent_prompt
        if said:
            run.actions.append(run.say(f"defaults.{'closed' if availability == 'closed' else 'no_agent'}", said))
        s.outcome = "unanswered"
        run.trace(node_id, f"not queued: {availability}")
        if node.next:
            return node.next
        s.ended = True
        run.actions.append(act.Hangup())
        return None
    if node.prompt:
        run.actions.append(run.say(node_id, node.prompt))
    s.outcome = "queued"
    skills = tuple(node.skills)
    if availability == "overflow" and answer.outputs.get("queue"):
        # None of the skill's agents is in but the overflow queue's are: straight there, not after overflow_after.
        skills = (answer.outputs["queue"],)
        run.trace(node_id, f"overflow {node.skills[0]} -> {skills[0]}")
    run.trace(node_id, "queued " + ",".join(skills) + (" (callback offered)" if availability == "callback" else ""))
    run.actions.append(act.Enqueue(skills, node.priority, s.language, tuple(s.path),
                                   offer_callback=availability == "callback"))
    return None


def _enter_transfer(run: _Step, node_id: str, node: TransferNode) -> str | None:
    if node.prompt:
        run.actions.append(run.say(node_id, node.prompt))
    run.session.outcome = "transferred"
    run.actions.append(act.Transfer(node.target))
    return None


def _enter_language(run: _Step, node_id: str, node: LanguageNode) -> str | None:
    s, langs = run.session, run.menu.languages
    s.language = node.language or langs[(langs.index(s.language) + 1) % len(langs)]
    run.trace(node_id, f"language {s.language}")
    return node.next


def _enter_hangup(run: _Step, node_id: str, node: NodeBase) -> str | None:
    run.actions.extend(run.prefix)
    run.prefix = []
    if node.prompt:
        run.actions.append(run.say(node_id, node.prompt))
    run.actions.append(act.Hangup())
    s = run.session
    s.ended, s.outcome = True, s.outcome or "self_served"
    return None


# -- events at a waiting node: return the next node, or None to stay ------------------------

def _on_menu(run: _Step, node_id: str, node: MenuNode, event: ev.Event) -> str | None:
    if not isinstance(event, ev.Digits) or not event.digits:
        return run.retry(node_id, node, "no input" if not isinstance(event, ev.Digits) else "invalid")
    key, run.session.buffer = event.digits[0], event.digits[1:]
    target = run.menu.options_of(node).get(key)
    if target is None:
        run.session.buffer = ""
        return run.retry(node_id, node, f"invalid key {key}" if key.isdigit() or key in "*#" else "invalid")
    run.trace(node_id, f"key {key}")
    if node.store and key in node.values:
        run.session.vars[node.store] = node.values[key]
    return target


def _on_input(run: _Step, node_id: str, node: InputNode, event: ev.Event) -> str | None:
    if not isinstance(event, ev.Digits) or not event.digits:
        return run.retry(node_id, node, "no input")
    value, rest = split_entry(run.session.buffer + event.digits, node)
    run.session.buffer = rest
    shown = mask_digits(value) if node.sensitive else value
    if not entry_ok(value, node):
        run.session.buffer = ""
        return run.retry(node_id, node, f"invalid {shown}")
    if node.sensitive:
        run.secrets[node.store] = value
    run.session.vars[node.store] = shown
    run.trace(node_id, f"digits {shown}")
    return node.next


def _on_record(run: _Step, node_id: str, node: RecordNode, event: ev.Event) -> str | None:
    if isinstance(event, ev.RecordingSaved) and event.seconds > 0:
        run.session.vars[node.store] = event.ref
        run.trace(node_id, f"recorded {event.seconds:.0f}s")
        return node.next
    return run.retry(node_id, node, "no recording")


def _on_queue(run: _Step, node_id: str, node: QueueNode, event: ev.Event) -> str | None:
    s = run.session
    result = event.result if isinstance(event, ev.QueueResult) else "timeout"
    run.trace(node_id, f"queue {result}")
    if result == "bridged":
        s.outcome = "routed"
    elif result != "hangup" and node.next:
        s.outcome = "unanswered"  # left the queue without an agent: timeout, full, no agents
        return node.next
    elif result == "hangup":
        s.outcome = "abandoned"
    s.ended = True
    run.actions.append(act.Hangup())
    return None


def _on_survey(run: _Step, node_id: str, node: SurveyNode, event: ev.Event) -> str | None:
    if not isinstance(event, ev.Digits) or not event.digits:
        return run.retry(node_id, node, "no input")
    key, run.session.buffer = event.digits[0], ""
    if key in node.options:
        run.trace(node_id, f"key {key}")
        return node.options[key]
    if not key.isdigit() or not 1 <= int(key) <= node.scale:
        return run.retry(node_id, node, "invalid")
    run.session.vars[node.store] = key
    run.trace(node_id, f"answer {key}")
    return node.next


def _on_terminal(run: _Step, node_id: str, node: NodeBase, event: ev.Event) -> str | None:
    run.session.ended = True
    run.actions.append(act.Hangup())
    return None


def _never_waits(run: _Step, node_id: str, node: NodeBase, event: ev.Event) -> str | None:
    raise EngineError(f"node '{node_id}' does not wait for the caller")


_ENTER: dict[type, Callable[..., str | None]] = {
    SayNode: _enter_say, MenuNode: _enter_menu, InputNode: _enter_input, ActionNode: _enter_action,
    RecordNode: _enter_record, QueueNode: _enter_queue, TransferNode: _enter_transfer,
    LanguageNode: _enter_language, SurveyNode: _enter_menu, HangupNode: _enter_hangup,
}
_ON_EVENT: dict[type, Callable[..., str | None]] = {
    MenuNode: _on_menu, InputNode: _on_input, RecordNode: _on_record, QueueNode: _on_queue,
    SurveyNode: _on_survey, TransferNode: _on_terminal, HangupNode: _on_terminal,
    SayNode: _never_waits, ActionNode: _never_waits, LanguageNode: _never_waits,
}

