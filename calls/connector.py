"""Hands the router's offers to the channel that rings the agent, and cancels rings that lost their caller.

Asterisk callers need nothing here: their hold loop is blocked on the offer and dials the agent itself.
Twilio callers are on Twilio's hold: the hotline places a REST call to the agent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from routing.router import Ended, Offer

log = logging.getLogger(__name__)


class AgentDialer(Protocol):
    def ring(self, offer: Offer) -> None: ...

    def cancel(self, agent_leg: str) -> None: ...


class OfferConnector:
    def __init__(self, dialers: dict[str, AgentDialer]) -> None:
        self.dialers = dialers

    def connect(self, offers: Iterable[Offer]) -> None:
        for offer in offers:
            dialer = self.dialers.get(offer.channel)
            if dialer is not None:
                dialer.ring(offer)

    def cancel(self, ended: Ended) -> None:
        """The caller left while the agent was ringing: stop the ring (Asterisk's Dial stops by itself)."""
        if ended.agent_leg:
            for dialer in self.dialers.values():
                dialer.cancel(ended.agent_leg)

    def settle(self, ended: Ended) -> None:
        """After a call ends: cancel a ring it left behind, ring agents for what the freed agent may take."""
        self.cancel(ended)
        self.connect(ended.offers)
