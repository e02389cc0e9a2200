"""Rings agents for Twilio callers: a REST ``calls.create`` whose TwiML then connects the caller."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from routing.endpoints import twilio_target
from routing.router import Offer, Router

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentLegConfig:
    public_url: str
    account_sid: str
    auth_token: str
    api_base: str
    caller_id: str
    """The hotline's Twilio number, shown to the agent."""
    offer_timeout_s: int = 20
    sip_domain: str = ""
    request_timeout_s: float = 10.0
    """twilio's HTTP client waits forever by default: a stalled connection would hold a ring thread for good."""
    sip_domains: tuple[str, ...] = ()
    """Hosts a ``sip:`` endpoint may point at (``HOTLINE_TWILIO_SIP_DOMAIN`` and ``..._AGENT_SIP_DOMAINS``)."""
    screen: frozenset[str] = frozenset({"number"})
    """Endpoint kinds (number, sip, client) whose legs must press 1 first: a mobile's voicemail answers calls."""


class TwilioAgentDialer:
    """Places the agent leg off the request thread: the caller's webhook answers without waiting on Twilio."""

    def __init__(self, config: AgentLegConfig, router: Router, workers: int = 4) -> None:
        self.config, self.router = config, router
        self.client = Client(config.account_sid, config.auth_token,
                             http_client=TwilioHttpClient(timeout=config.request_timeout_s))
        self.client.api.base_url = config.api_base.rstrip("/")
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="agent-leg")

    def ring(self, offer: Offer) -> None:
        self._pool.submit(self._ring, offer)

    def cancel(self, agent_leg: str) -> None:
        self._pool.submit(self._cancel, agent_leg)

    def address(self, endpoint: str) -> str | None:
        """Where Twilio can reach the agent: a client identity, a number, a SIP URI to an allowed domain
        (checked again here: an endpoint stored before the check, or edited in Redis, is never rung)."""
        return twilio_target(endpoint, self.config.sip_domains or (self.config.sip_domain,))

    def _ring(self, offer: Offer) -> None:
        to = self.address(offer.endpoint)
        query = urlencode({"call": offer.call_id, "agent": offer.agent_id})
        base = self.config.public_url.rstrip("/")
        screen = "&screen=ask" if to and _kind(to) in self.config.screen else ""
        try:
            if to is None:
                raise ValueError(f"endpoint {offer.endpoint!r} cannot be reached from Twilio")
            leg = self.client.calls.create(
                to=to, from_=self.config.caller_id, url=f"{base}/twilio/agent/connect?{query}{screen}", method="POST",
                status_callback=f"{base}/twilio/agent/status?{query}", status_callback_method="POST",
                status_callback_event=["completed"], timeout=self.config.offer_timeout_s,
            )
        except (TwilioException, ValueError, OSError) as exc:
            log.warning("call %s: could not ring agent %s (%s)", offer.call_id, offer.agent_id, exc)
            for again in self.router.reject(offer.call_id, offer.agent_id, "failed"):
                if again.channel == "twilio":
                    self.ring(again)
            return
        if leg.sid:
            self.router.note_agent_leg(offer.call_id, leg.sid)

    def _cancel(self, agent_leg: str) -> None:
        try:
            self.client.calls(agent_leg).update(status="canceled")
        except (TwilioException, OSError) as exc:
            log.info("agent leg %s not cancelled (%s): it has ended already", agent_leg, type(exc).__name__)


def _kind(address: str) -> str:
    return "number" if address.startswith("+") else address.split(":", 1)[0]
