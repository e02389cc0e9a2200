"""The router's Lua scripts: each operation file with the shared helpers in front, registered once."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script

from routing.batch import Outcome, Reader
from routing.exceptions import (
    AgentOnCall,
    BadState,
    NoSuchAgent,
    NotBusy,
    NotOffered,
    NotWaiting,
    RouterError,
    TargetUnavailable,
)

_LUA = Path(__file__).parent / "lua"
OPERATIONS = (
    "enqueue", "agent_state", "agent_put", "agent_remove", "accept", "answer", "reject", "end_call", "tick", "callback",
    "wrap_extend", "console_seen", "transfer", "release_consult",
)
_ERRORS: dict[str, type[RouterError]] = {
    "NO_AGENT": NoSuchAgent, "ON_CALL": AgentOnCall, "BAD_STATE": BadState,
    "NOT_OFFERED": NotOffered, "NOT_WAITING": NotWaiting,
    "NOT_BUSY": NotBusy, "TARGET_UNAVAILABLE": TargetUnavailable,
}
Clock = Callable[[], float]


def register_lua(client: redis.Redis, path: Path, prefix: str = "") -> Script:
    """The loader of the hotline's Lua files (the calls' session and menu scripts; the router's operations
    through ``script_source``): ``prefix`` (shared helpers) goes in front."""
    return client.register_script(prefix + path.read_text())


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT = re.compile(r"--.*$", re.M)
_DEFINES = re.compile(r"^local\s+(?:function\s+([A-Za-z_]\w*)|([A-Za-z_][\w\s,]*?)\s*=)")


def script_source(operation: str, lua_dir: Path = _LUA, prune: bool = True) -> str:
    """The full text Redis runs for ``operation``: the shared helpers it uses, then the operation.

    With ``prune``, only the pieces of ``_common.lua`` the operation reaches (by name, transitively) go in
    front: Redis runs the whole chunk on every call, and creating the 40-odd helper closures (each looking up
    its upvalues) cost 8-14 µs per call, a quarter of a short script like answer's."""
    common = (lua_dir / "_common.lua").read_text()
    body = (lua_dir / f"{operation}.lua").read_text()
    if not prune:
        return common + "\n" + body
    pieces = _pieces(common)
    defined = {name: i for i, (names, _) in enumerate(pieces) for name in names}
    wanted: set[int] = set()
    todo = [defined[n] for n in _names(body) if n in defined]
    while todo:
        i = todo.pop()
        if i not in wanted:
            wanted.add(i)
            todo.extend(defined[n] for n in _names(pieces[i][1]) if n in defined)
    return "".join(text for i, (_, text) in enumerate(pieces) if i in wanted) + "\n" + body


def _names(lua: str) -> set[str]:
    """The identifiers the code uses (comments left out: they name helpers they do not call)."""
    return set(_NAME.findall(_COMMENT.sub("", lua)))


def _pieces(common: str) -> list[tuple[set[str], str]]:
    """``_common.lua`` cut before each top-level ``local`` (the comments above it go with it), with the names
    each piece defines. Everything else at the top level (a loop filling a table) stays with the piece above."""
    pieces: list[tuple[set[str], list[str]]] = [(set(), [])]
    comments: list[str] = []
    for line in common.splitlines(keepends=True):
        if line.startswith("--") or not line.strip():
            comments.append(line)
            continue
        found = _DEFINES.match(line)
        if found:
            names = {found.group(1)} if found.group(1) else {n.strip() for n in found.group(2).split(",")}
            pieces.append((names, comments + [line]))
        else:
            pieces[-1][1].extend([*comments, line])
        comments = []
    return [(names, "".join(lines)) for names, lines in pieces]


class RouterScripts:
    """Runs router operations atomically in Redis, with the prefix, clock and date every one needs."""

    def __init__(self, client: redis.Redis, prefix: str, events_stream: str, clock: Clock = time.time,
                 utc_offset_s: int = 0, lua_dir: Path = _LUA, prune: bool = True) -> None:
        """``lua_dir``, ``prune``: where the scripts are read from, and whether each gets only the helpers it
        uses (bench/router.py --before runs an older version's as that version did: whole)."""
        self._redis, self.prefix, self.events = client, prefix, events_stream
        self.clock, self._offset = clock, utc_offset_s
        self._scripts: dict[str, Script] = {
            op: client.register_script(script_source(op, lua_dir, prune)) for op in OPERATIONS}

    def run(self, operation: str, *args: object, now: float | None = None) -> Any:
        """Run ``operation`` with ``args`` (ARGV[4] on).

        Raises:
            RouterError: the subclass named by the script's error code (NO_AGENT, ON_CALL, ...).
        """
        at = self.clock() if now is None else now
        try:
            return self._scripts[operation](keys=[self.events], args=self._argv(at, args))
        except redis.ResponseError as exc:
            raise _router_error(str(exc)) from None

    def queue(self, pipe: Pipeline, operation: str, *args: object, now: float | None = None) -> Reader[Any]:
        """``run`` in a batch (``routing.batch``): the reader answers what ``run`` would, or raises what it would.
        A Redis that forgot the script (restarted) did not run it: the reader then runs it alone."""
        at = self.clock() if now is None else now
        # EVALSHA as a plain command: a Script queued in a pipeline costs a SCRIPT EXISTS round trip first.
        pipe.execute_command("EVALSHA", self._scripts[operation].sha, 1, self.events,  # type: ignore[no-untyped-call]
                             *self._argv(at, args))

        def read(outcome: Outcome) -> Any:
            reply = outcome if isinstance(outcome, redis.RedisError) else outcome[0]
            if isinstance(reply, redis.exceptions.NoScriptError):
                return self.run(operation, *args, now=at)
            if isinstance(reply, redis.ResponseError):
                raise _router_error(str(reply)) from None
            if isinstance(reply, Exception):
                raise reply
            return reply

        return read

    def _argv(self, at: float, args: tuple[object, ...]) -> list[str]:
        return [self.prefix, repr(at), self.today(at), *(str(a) for a in args)]

    def today(self, at: float | None = None) -> str:
        """The hotline's date (its time zone's offset), for agents' calls-taken-today."""
        moment = self.clock() if at is None else at
        return time.strftime("%Y-%m-%d", time.gmtime(moment + self._offset))


def _router_error(message: str) -> Exception:
    code, _, text = message.partition(" ")
    error = _ERRORS.get(code)
    if error is None:
        return redis.ResponseError(message)
    return error(text)
