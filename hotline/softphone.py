"""``hotline call``: try the hotline from a terminal, over FastAGI or Twilio webhooks."""

from __future__ import annotations

from collections.abc import Callable

import click

from hotline.agi_peer import AsteriskPeer
from hotline.settings import Settings
from hotline.twilio_peer import TwilioPeer

Ask = Callable[[str], str] | None
_FILLED = "(a prompt filled for this call)"


def call_asterisk(settings: Settings, keys: list[str], ask: Ask, caller: str, language: str) -> None:
    """Dial the FastAGI server; print each prompt's text as Asterisk would play it."""
    texts = _prompt_texts(settings)
    host = "127.0.0.1" if settings.agi_host in ("0.0.0.0", "") else settings.agi_host
    peer = AsteriskPeer(keys, caller=caller, language=language, script=settings.menu_name, ask=ask,
                        on_play=lambda sound: click.echo(f"  < {texts.get(sound, _FILLED)}"), timeout_s=60)
    call = peer.dial(host, settings.agi_port)
    click.echo(f"call {peer.uniqueid} ended: {len(call.commands)} AGI commands, last {call.commands[-1:]}")


def call_twilio(settings: Settings, keys: list[str], ask: Ask, caller: str, url: str | None) -> None:
    """Place the call as Twilio would, signing every webhook with TWILIO_AUTH_TOKEN."""
    if not settings.twilio_auth_token:
        raise click.ClickException("TWILIO_AUTH_TOKEN is not set: the hotline would refuse every webhook")
    peer = TwilioPeer(url or settings.public_url, settings.twilio_auth_token, keys, caller=f"+86{caller}",
                      ask=ask, on_say=lambda text: click.echo(f"  < {text}"))
    said = peer.call()
    click.echo(f"call {peer.call_sid} ended: {len(said)} prompts")


def _prompt_texts(settings: Settings) -> dict[str, str]:
    """Sound name -> prompt text of the live menu (placeholders left as written)."""
    from hotline.app import build_hotline

    menu = build_hotline(settings).menus.live(settings.menu_name)
    return {
        f"hotline/{menu.name}/{language}/{prompt_id}": text
        for prompt_id, prompt in menu.prompts().items() for language, text in prompt.items()
    }
