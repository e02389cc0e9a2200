"""Controlling a connected call from the web (the agent's console, the supervisor's floor), whatever the channel.

The pages and the API (``admin``) may not import the channels; they are handed one ``CallControl`` per channel
(``"asterisk"``: AMI, ``"twilio"``: the REST API) built in ``hotline.app``. Each method returns once the channel
has accepted the request, or raises ``ControlRefused`` with a reason for people (the API answers it 409). The
reason is English, as the logs keep it; the web translates it on its way to a person (``admin.i18n.REFUSALS``:
a new text needs its pattern there, tests/test_call_control_refusals.py finds one missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from routing.router import CallView

TransferMode = Literal["cold", "warm"]
"""cold (blind): the caller goes at once and the agent is free; warm: the agent talks to the target first
(the caller on hold), then completes (the caller joins the target, the agent leaves) or cancels (back to the caller)."""

TargetKind = Literal["queue", "agent", "supervisor"]

MonitorMode = Literal["listen", "whisper", "barge"]


@dataclass(frozen=True)
class TransferTarget:
    kind: TargetKind
    value: str
    """The queue's skill, or the agent's / supervisor's agent id."""


class ControlRefused(ValueError):
    """The channel did not do it: the call is not in a state for it, or the PBX / Twilio said no (the text says)."""


class CallControl(Protocol):
    channel: str

    def hangup(self, call: CallView) -> None:
        """End the whole call (the caller's side too)."""

    def hold(self, call: CallView, on: bool) -> None:
        """Put the caller on hold (music) or take them back."""

    def transfer(self, call: CallView, target: TransferTarget, mode: TransferMode) -> None:
        """Send the caller to another queue, agent or supervisor, cold or warm."""

    def complete_transfer(self, call: CallView) -> None:
        """Warm transfer: join the caller with the consulted party; the agent leaves."""

    def cancel_transfer(self, call: CallView) -> None:
        """Warm transfer: drop the consulted party; the agent has the caller back."""

    def monitor(self, call: CallView, agent_endpoint: str, supervisor_endpoint: str, mode: MonitorMode) -> None:
        """Ring the supervisor's phone and join the agent's call muted (listen), heard by the agent only
        (whisper / coach) or by both (barge)."""
