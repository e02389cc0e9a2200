"""Where an agent may be rung. An endpoint goes as it is into Asterisk's ``Dial()`` or Twilio's ``calls.create``:
one with ``&``, ``,`` or ``(`` would make Asterisk dial more than the agent
(``PJSIP/1002&Local/0900123456@outbound,60,G(evil^s^1)``), and a ``sip:`` URI to any host would let
Twilio call out wherever it points. So endpoints are checked when an agent is stored (``Agent.check``)
and again just before they are dialled (a bad value already stored never reaches ``Dial``).

Accepted:
- Asterisk: ``PJSIP/1001`` (also ``SIP/``, ``IAX2/``; ``PJSIP/<number>@<trunk>``), ``Local/<exten>@<context>``,
  or a bare extension of digits (dialled as ``PJSIP/<it>``; a bare name such as ``alice`` is refused when
  stored: Twilio cannot ring it and it reads like a Client identity);
- Twilio: ``client:<identity>``, an E.164 number (``+8613800000000``), or ``sip:<user>@<host>`` where the
  host is one of the allowed SIP domains (``HOTLINE_TWILIO_SIP_DOMAIN``, ``HOTLINE_TWILIO_AGENT_SIP_DOMAINS``).
"""

from __future__ import annotations

import re
from collections.abc import Collection

_NAME = r"[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,63}"
"""A device, extension or number: no Dial() separators (``&``, ``,``, ``(``, ``^``, ``|``), spaces or quotes."""
_HOST = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
_LOCAL_EXTEN = r"[A-Za-z0-9_+*#][A-Za-z0-9_.+*#-]{0,63}"
_CHANNEL = re.compile(rf"(?:PJSIP|SIP|IAX2)/{_NAME}(?:@{_HOST})?|Local/{_LOCAL_EXTEN}@{_HOST}", re.IGNORECASE)
_BARE = re.compile(_NAME)
_CLIENT = re.compile(r"client:[A-Za-z0-9_][A-Za-z0-9_.@-]{0,120}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SIP_URI = re.compile(rf"sip:({_NAME})@([A-Za-z0-9][A-Za-z0-9.-]{{0,252}})", re.IGNORECASE)

RULES = ("PJSIP/1001 (or SIP/, IAX2/, Local/<exten>@<context>, a bare extension 1001), client:<identity>, "
         "an E.164 number such as +8613800000000, or sip:<user>@<allowed SIP domain>")


def asterisk_target(endpoint: str) -> str | None:
    """The channel Asterisk's ``Dial()`` rings for ``endpoint``, or None when it must not be dialled."""
    if _CHANNEL.fullmatch(endpoint):
        return endpoint
    if _BARE.fullmatch(endpoint):
        return f"PJSIP/{endpoint}"
    return None


def twilio_target(endpoint: str, sip_domains: Collection[str]) -> str | None:
    """Where Twilio rings ``endpoint`` (``To`` of ``calls.create``), or None when it must not. A PJSIP
    extension becomes ``sip:<ext>@<first allowed domain>``."""
    domains = [d.lower() for d in sip_domains if d]
    if _CLIENT.fullmatch(endpoint) or _E164.fullmatch(endpoint):
        return endpoint
    sip = _SIP_URI.fullmatch(endpoint)
    if sip:
        return endpoint if sip.group(2).lower() in domains else None
    device = re.fullmatch(rf"(?:PJSIP|SIP)/({_NAME})", endpoint, re.IGNORECASE)
    if device and domains:
        return f"sip:{device.group(1)}@{domains[0]}"
    return None


def endpoint_problem(endpoint: str, sip_domains: Collection[str] = ()) -> str | None:
    """None when ``endpoint`` can be rung on some channel; otherwise why not, for the admin to read."""
    if len(endpoint) > 128:
        return "is longer than 128 characters"
    sip = _SIP_URI.fullmatch(endpoint)
    if sip and twilio_target(endpoint, sip_domains) is None:
        allowed = ", ".join(d for d in sip_domains if d) or "none set (HOTLINE_TWILIO_AGENT_SIP_DOMAINS)"
        return f"rings SIP domain {sip.group(2)!r}, which is not an allowed one ({allowed})"
    if _BARE.fullmatch(endpoint) and not endpoint.lstrip("+").isdigit():  # Asterisk rings PJSIP/<it>, Twilio nothing
        return (f"is a bare name: write client:{endpoint} for a Twilio Client identity or PJSIP/{endpoint} for an "
                "Asterisk endpoint (a bare extension is digits only)")
    if sip or asterisk_target(endpoint) is not None or twilio_target(endpoint, sip_domains) is not None:
        return None
    return f"is not one the hotline can ring: use {RULES}"
