"""What the engine asks a channel to do. Channels render these; they hold no menu logic."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Say:
    text: str
    language: str
    prompt_id: str = ""
    """Names the audio for channels that play files: ``<node>`` (its prompt), ``<node>.invalid``,
    ``defaults.invalid`` or ``defaults.no_input``."""


@dataclass(frozen=True)
class Gather:
    """Collect digits while (or after) the prompts play; the caller may type ahead."""

    max_digits: int
    timeout_s: float
    finish_on_key: str
    prompt: tuple[Say, ...] = ()
    min_digits: int = 1
    inter_digit_timeout_s: float | None = None


@dataclass(frozen=True)
class Record:
    max_seconds: int
    finish_on_key: str = "#"
    silence_timeout_s: float = 5
    prompt: tuple[Say, ...] = ()


@dataclass(frozen=True)
class Enqueue:
    skills: tuple[str, ...]
    priority: int
    language: str
    ivr_path: tuple[dict[str, str], ...] = field(default=(), compare=False)
    offer_callback: bool = False
    """Nobody of the queue is logged in: the channel offers the caller a callback at once."""


@dataclass(frozen=True)
class Transfer:
    target: str


@dataclass(frozen=True)
class Hangup:
    pass


Action = Say | Gather | Record | Enqueue | Transfer | Hangup
