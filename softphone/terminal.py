"""``hotline call``: try the hotline from a terminal, over FastAGI or Twilio webhooks.

It only dials: it builds no hotline of its own (no database, no redis-server started), so it leaves
nothing running behind it. Each call has a fresh id, as each real call does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
import requests

from softphone.agi_peer import AsteriskPeer
from softphone.twilio_peer import TwilioPeer, TwilioRefused

Ask = Callable[[str], str] | None
SOUND_PREFIX = "hotline/"
"""Asterisk plays ``hotline/<menu>/<lang>/<prompt>``: the prompts folder, linked under its sounds."""


def call_asterisk(host: str, port: int, prompts: Path, menu: str, keys: list[str], ask: Ask, caller: str,
                  language: str, hold_s: float, secret: str) -> None:
    """Dial the FastAGI server at ``host:port`` for ``menu``; print what the caller hears (the texts kept
    beside the audio in ``prompts``). ``hold_s``: how long the caller stays on hold, and talks once an agent
    is put through."""
    peer = AsteriskPeer(keys, caller=caller, language=language, script=menu, ask=ask, secret=secret,
                        on_play=lambda sound: click.echo(f"  < {prompt_text(prompts, sound)}"), timeout_s=60,
                        patience_s=hold_s, talk_s=hold_s, on_event=lambda what: click.echo(f"  ~ {what}"))
    try:
        call = peer.dial(host, port)
    except OSError as exc:
        raise click.ClickException(f"no FastAGI server answers at {host}:{port} ({exc.strerror or exc}): "
                                   "is `hotline up` (or `hotline agi`) running with these settings?") from None
    if not call.commands:
        raise click.ClickException(f"the FastAGI server at {host}:{port} closed the call at once: see its log "
                                   "(a wrong FastAGI secret, or too many connections)")
    click.echo(f"call {peer.uniqueid} ended: {len(call.commands)} AGI commands, last {call.commands[-1:]}")


def call_twilio(base: str, auth_token: str | None, keys: list[str], ask: Ask, caller: str, language: str,
                hold_s: float) -> None:
    """Place the call to the hotline at ``base`` as Twilio would, signing every webhook with ``auth_token``."""
    if not auth_token:
        raise click.ClickException("TWILIO_AUTH_TOKEN is not set: the hotline would refuse every webhook")
    peer = TwilioPeer(base, auth_token, keys, caller=f"+86{caller}", ask=ask,
                      language={"zh": "zh-CN", "en": "en-US"}[language], hold_s=hold_s,
                      on_say=lambda text: click.echo(f"  < {text}"), on_event=lambda what: click.echo(f"  ~ {what}"))
    try:
        said = peer.call()
    except TwilioRefused as exc:
        raise click.ClickException(str(exc)) from None
    except requests.ConnectionError:
        raise click.ClickException(f"no hotline answers at {base}: is `hotline up` running, and is --url "
                                   "(or HOTLINE_PUBLIC_URL) its address?") from None
    click.echo(f"call {peer.call_sid} ended: {len(said)} prompts")


def prompt_text(prompts: Path, sound: str) -> str:
    """What a played sound says: the text kept beside its audio (``hotline prompts build``, or a prompt filled
    for this call), else the sound's name."""
    if sound.startswith(SOUND_PREFIX):
        try:
            return (prompts / (sound.removeprefix(SOUND_PREFIX) + ".txt")).read_text(encoding="utf-8").strip()
        except OSError:
            pass
    return f"({sound})"
