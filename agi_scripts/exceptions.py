"""What went wrong on the AGI wire, named after what Asterisk said (or did not say)."""

from __future__ import annotations


class AgiError(Exception):
    """Any failure of the AGI dialog."""


class AgiHangup(AgiError):
    """The caller hung up: a ``HANGUP`` line, ``result=-1`` on a dead channel, or the socket closed."""


class AgiDeadChannel(AgiHangup):
    """511: the command needs a live channel and this one is gone."""


class AgiInvalidCommand(AgiError):
    """510: Asterisk does not know the command."""


class AgiUsageError(AgiError):
    """520: the command was malformed."""


class AgiTimeout(AgiError):
    """Asterisk did not answer a command in time: a stuck peer must not hold a worker forever."""


class AgiProtocolError(AgiError):
    """A line that is not AGI (garbage result, truncated environment)."""
