"""What the router refuses, as exceptions the API and CLI turn into clear answers."""

from __future__ import annotations


class RouterError(Exception):
    """A router operation was refused; the message says why."""


class NoSuchAgent(RouterError):
    pass


class AgentOnCall(RouterError):
    """The agent is on (or being offered) a call and cannot do that now."""


class BadState(RouterError):
    pass


class NotOffered(RouterError):
    """The call is not (or no longer) offered to that agent: withdrawn, timed out or ended."""


class NotWaiting(RouterError):
    """The call is not waiting in line (already ringing an agent, or gone)."""


class NotBusy(RouterError):
    """The call is not connected to that agent (not answered yet, moved on, or ended)."""


class TargetUnavailable(RouterError):
    """The agent a call is handed to is not free to take it (on a call, on a break, logged out)."""
