"""The agents' phones: they ring a few seconds before the agent picks up, unless one stops answering."""

from __future__ import annotations

import random
import threading

SIP_DOMAIN = "pbx.sim"


class AgentPhones:
    """Each agent has one PJSIP extension, reached from Asterisk as ``PJSIP/2000`` and from Twilio as
    ``sip:2000@pbx.sim``; a phone made dead never answers again."""

    def __init__(self, seed: int) -> None:
        self._dead: set[str] = set()
        self._rng, self._lock = random.Random(seed), threading.Lock()

    @staticmethod
    def extension(address: str) -> str:
        address = address.strip('"')
        if address.startswith("sip:"):
            return address[4:].split("@", 1)[0]
        return address.split("/", 1)[-1]

    def kill(self, endpoint: str) -> None:
        with self._lock:
            self._dead.add(self.extension(endpoint))

    def dead(self, address: str) -> bool:
        return self.extension(address) in self._dead

    def ring_s(self) -> float:
        """Day seconds from the first ring to the agent picking up."""
        with self._lock:
            return self._rng.uniform(2, 8)
