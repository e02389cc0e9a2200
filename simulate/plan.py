"""What happens in the simulated day, drawn once from a seed: who calls when, and what they do.

Everything is in *day seconds* (0..86,400); the runner maps them onto the real run by the time scale.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

DAY_S = 86_400.0
PIN_POOL = ("739251", "284617", "905382", "461970", "318564", "572803")
"""PINs of the simulation's cards: six distinct values the PII check greps every store for."""
ID_LAST6 = "408215"

INTENTS = (
    # (intent, share): from a bank hotline's typical mix
    ("inquiry", 0.38), ("agent", 0.27), ("complaint", 0.12), ("loss", 0.08),
    ("inquiry_then_agent", 0.05), ("hangup_in_menu", 0.10),
)


@dataclass(frozen=True)
class CallPlan:
    index: int
    at_s: float
    """When the call arrives, in day seconds."""
    channel: str
    """twilio or asterisk."""
    intent: str
    caller: str
    keys: tuple[str, ...]
    """What the caller answers, entry by entry (``hotline.agi_peer`` format; ``record:N`` speaks N s)."""
    card: str = ""
    wrong_pins: int = 0
    patience_s: float = 0.0
    """How long the caller waits in a queue before hanging up (day seconds)."""
    talk_s: float = 0.0
    hangup_after_steps: int | None = None
    """Hang up after answering this many prompts, in the menus."""

    @property
    def queues(self) -> bool:
        return self.intent in ("agent", "inquiry_then_agent") or self.wrong_pins >= 3


@dataclass(frozen=True)
class AgentPlan:
    id: str
    name: str
    endpoint: str
    skills: dict[str, int]
    languages: tuple[str, ...]


@dataclass(frozen=True)
class DayPlan:
    seed: int
    calls: tuple[CallPlan, ...]
    agents: tuple[AgentPlan, ...]
    cards: tuple[tuple[str, str], ...]
    """(card number, PIN) the callers use; loss reports each take a card of their own."""
    survey_answer_rate: float = 0.7
    resolve_after_s: tuple[float, float] = (1800.0, 4 * 3600.0)
    """The back office resolves each complaint between these many day seconds after it was opened."""
    counts: dict[str, int] = field(default_factory=dict)


def arrival_times(n: int, rng: random.Random) -> list[float]:
    """``n`` arrival times over the day: quiet nights, a morning peak near 10:00 and an afternoon one near
    15:00 (a mixture of two normal peaks over a flat daytime base and a small night floor)."""

    def draw() -> float:
        u = rng.random()
        if u < 0.04:
            return rng.uniform(0, DAY_S)  # night and day alike
        if u < 0.25:
            return rng.uniform(8 * 3600, 21 * 3600)
        if u < 0.65:
            return rng.gauss(10.25 * 3600, 1.1 * 3600)
        return rng.gauss(15.0 * 3600, 1.3 * 3600)

    times: list[float] = []
    while len(times) < n:
        t = draw()
        if 0 <= t < DAY_S:
            times.append(t)
    return sorted(times)


def luhn_cards(count: int, prefix: str = "62220377") -> list[str]:
    """``count`` distinct 16-digit card numbers passing the Luhn check."""
    out = []
    for i in range(count):
        body = f"{prefix}{i:07d}"
        total = 0
        for pos, digit in enumerate(reversed(body)):
            d = int(digit) * (2 if pos % 2 == 0 else 1)
            total += d - 9 if d > 9 else d
        out.append(body + str((10 - total % 10) % 10))
    return out


def make_agents(count: int) -> tuple[AgentPlan, ...]:
    """Every agent takes general calls; most also inquiries, fewer losses and complaints; a fifth speak
    English. Levels 3-9, so the skill floors and escalation steps matter."""
    rng = random.Random(7)
    agents = []
    for i in range(count):
        skills = {"general": rng.randint(3, 9)}
        if i % 5 != 4:
            skills["inquiry"] = rng.randint(3, 9)
        if i % 3 == 0:
            skills["loss"] = rng.randint(5, 9)
        if i % 3 == 1:
            skills["complaint"] = rng.randint(3, 9)
        languages = ("zh-CN", "en-US") if i % 5 == 0 else ("zh-CN",)
        agents.append(AgentPlan(f"sim{i + 1:03d}", f"Agent {i + 1}", f"PJSIP/{2000 + i}", skills, languages))
    return tuple(agents)


def make_plan(n_calls: int, n_agents: int = 50, seed: int = 1) -> DayPlan:
    rng = random.Random(seed)
    cards = [(card, PIN_POOL[i % len(PIN_POOL)]) for i, card in enumerate(luhn_cards(max(64, n_calls // 4)))]
    loss_cards = iter(cards[len(cards) // 2:])
    inquiry_cards = cards[: len(cards) // 2]
    calls = []
    weights = [w for _, w in INTENTS]
    for index, at in enumerate(arrival_times(n_calls, rng)):
        intent = rng.choices([name for name, _ in INTENTS], weights)[0]
        channel = "twilio" if index % 2 == 0 else "asterisk"
        caller = f"1{rng.choice('3578')}{rng.randint(0, 999_999_999):09d}"
        english = rng.random() < 0.08
        prefix = ("9",) if english else ()
        card, pin = rng.choice(inquiry_cards)
        wrong = 0
        hangup_after: int | None = None
        if intent == "inquiry":
            roll = rng.random()
            wrong = 0 if roll < 0.82 else 1 if roll < 0.95 else 3
            keys: list[str] = ["1"]
            for _ in range(wrong):
                keys += [f"{card}#", _wrong_pin(pin, rng)]
            if wrong < 3:
                keys += [f"{card}#", pin]
        elif intent == "inquiry_then_agent":
            keys = ["1", f"{card}#", pin, "0"]
        elif intent == "loss":
            try:
                card, pin = next(loss_cards)
            except StopIteration:
                card, pin = rng.choice(inquiry_cards)  # already frozen: the caller is put through to an agent
            keys = ["2", f"{card}#", ID_LAST6[:5] + "*" if ID_LAST6.endswith("X") else ID_LAST6]
        elif intent == "complaint":
            keys = ["3", str(rng.randint(1, 4)), f"record:{rng.randint(15, 110)}"]
        elif intent == "agent":
            keys = ["0"]
        else:  # hangs up somewhere in the menus
            keys = ["1", f"{card}#"]
            hangup_after = rng.randint(1, 2)
        calls.append(CallPlan(
            index=index, at_s=at, channel=channel, intent=intent, caller=caller, keys=(*prefix, *keys),
            card=card, wrong_pins=wrong, patience_s=rng.expovariate(1 / 150) + 10,
            talk_s=max(30.0, rng.lognormvariate(math.log(200), 0.6)), hangup_after_steps=hangup_after,
        ))
    counts: dict[str, int] = {}
    for call in calls:
        counts[call.intent] = counts.get(call.intent, 0) + 1
    return DayPlan(seed, tuple(calls), make_agents(n_agents), tuple(cards), counts=counts)


def _wrong_pin(pin: str, rng: random.Random) -> str:
    while True:
        guess = f"{rng.randint(0, 999_999):06d}"
        if guess != pin and guess not in PIN_POOL:
            return guess
