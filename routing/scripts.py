"""The router's Lua scripts: each operation file with the shared helpers in front, registered once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.commands.core import Script

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
    """The one loader of the hotline's Lua files (the router's operations, the calls' session and menu
    scripts): ``prefix`` (shared helpers) goes in front."""
    return client.register_script(prefix + path.read_text())


def script_source(operation: str) -> str:
    """The full text Redis runs for ``operation``: shared helpers, then the operation."""
    common = (_LUA / "_common.lua").read_text()
    return common + "\n" + (_LUA / f"{operation}.lua").read_text()


class RouterScripts:
    """Runs router operations atomically in Redis, with the prefix, clock and date every one needs."""

    def __init__(self, client: redis.Redis, prefix: str, events_stream: str, clock: Clock = time.time,
                 utc_offset_s: int = 0, lua_dir: Path = _LUA) -> None:
        """``lua_dir``: where the scripts are read from (bench/router.py --before runs an older version's)."""
        self._redis, self.prefix, self.events = client, prefix, events_stream
        self.clock, self._offset = clock, utc_offset_s
        common = (lua_dir / "_common.lua").read_text() + "\n"
        self._scripts: dict[str, Script] = {
            op: register_lua(client, lua_dir / f"{op}.lua", common) for op in OPERATIONS}

    def run(self, operation: str, *args: object, now: float | None = None) -> Any:
        """Run ``operation`` with ``args`` (ARGV[4] on).

        Raises:
            RouterError: the subclass named by the script's error code (NO_AGENT, ON_CALL, ...).
        """
        at = self.clock() if now is None else now
        argv = [self.prefix, repr(at), self.today(at), *(str(a) for a in args)]
        try:
            return self._scripts[operation](keys=[self.events], args=argv)
        except redis.ResponseError as exc:
            raise _router_error(str(exc)) from None

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
