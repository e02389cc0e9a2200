"""Supervisors listen to, whisper to or barge into an agent's call on Asterisk: ``ChanSpy`` dialled to the
supervisor's own phone over AMI (``Originate`` with ``Application=ChanSpy``).

The supervisor's phone rings; when they answer, ChanSpy joins the agent's channel:
- ``listen``: ``q`` (no beep, no channel name read out): they hear both sides, nobody hears them;
- ``whisper``: ``qw``: the agent hears them, the caller does not (coaching);
- ``barge``: ``qB``: both hear them (they take part in the call).
``E`` ends the supervisor's leg when the agent's channel hangs up, so nobody is left listening to silence.

The agent's channel is found by the agent's endpoint as a channel-name prefix: ``PJSIP/1002`` spies on
``PJSIP/1002-00000011``, never on ``PJSIP/10021-...`` (the ``-`` is part of the prefix). Both endpoints pass the
same checks as any endpoint the hotline dials (``routing.endpoints``): nothing else reaches the Originate.
"""

from __future__ import annotations

import logging

from routing.endpoints import asterisk_target
from workers.ami import AmiError, one_action
from workers.dialers import AmiConfig

log = logging.getLogger(__name__)

MODES = {"listen": "q", "whisper": "qw", "barge": "qB"}
"""ChanSpy's options per mode (https://docs.asterisk.org/Asterisk_22_Documentation/API_Documentation/Dialplan_Applications/ChanSpy/)."""


class MonitorRefused(ValueError):
    """The spy was not placed: a wrong mode or endpoint, or Asterisk said no (the message says which)."""


class AmiMonitor:
    """Places the supervisor's ChanSpy leg; returns once Asterisk has accepted it (the phone then rings)."""

    def __init__(self, config: AmiConfig) -> None:
        self.config = config

    def spy(self, agent_endpoint: str, supervisor_endpoint: str, mode: str) -> None:
        headers = originate_headers(agent_endpoint, supervisor_endpoint, mode, self.config.ring_timeout_s)
        cfg = self.config
        try:
            ack = one_action(cfg.host, cfg.port, cfg.username, cfg.secret, "Originate", headers,
                             timeout_s=cfg.connect_timeout_s, id_prefix="hotline-spy")
        except AmiError as exc:
            raise MonitorRefused(f"Asterisk could not be asked: {exc}") from None
        if ack.get("response", "").lower() != "success":
            raise MonitorRefused(f"Asterisk refused: {ack.get('message') or 'no reason given'}")
        log.info("%s on %s: ringing %s", mode, agent_endpoint, supervisor_endpoint)


def originate_headers(agent_endpoint: str, supervisor_endpoint: str, mode: str,
                      ring_timeout_s: int) -> list[tuple[str, object]]:
    """The Originate's fields; raises MonitorRefused for a mode or endpoint that must not be dialled."""
    if mode not in MODES:
        raise MonitorRefused(f"mode {mode[:20]!r} is not one of {', '.join(MODES)}")
    spied, phone = asterisk_target(agent_endpoint), asterisk_target(supervisor_endpoint)
    if spied is None:
        raise MonitorRefused(f"the agent's endpoint {agent_endpoint[:64]!r} is not an Asterisk channel")
    if phone is None:
        raise MonitorRefused(f"the supervisor's phone {supervisor_endpoint[:64]!r} is not an Asterisk channel: "
                             "use PJSIP/<extension> or an extension")
    prefix = spied if spied.lower().startswith("local/") else f"{spied}-"
    return [("Channel", phone), ("Application", "ChanSpy"), ("Data", f"{prefix},{MODES[mode]}E"),
            ("CallerID", f'"{mode}" <{mode}>'), ("Timeout", ring_timeout_s * 1000), ("Async", "true")]
