"""The menu model: what a menu YAML document may contain, checked by pydantic."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

# Node ids and language codes name prompt files (``<prompts>/<menu>/<language>/<node id>.wav``): plain names
# only, so no menu can point a file write or clean-up outside the prompts folder.
_NODE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
"""A BCP 47 language tag's shape (zh-CN, en, zh-Hans-CN): what espeak-ng and Twilio's <Say> take."""


def _node_id(value: str) -> str:
    if not _NODE_ID.fullmatch(value):
        raise PydanticCustomError("node_id", "node id may use only letters, digits, '_', '-' and '.' "
                                             "(1 to 64, starting with a letter, digit or '_')")
    return value


def _language(value: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise PydanticCustomError("language_code", "language code '{code}' is not a language tag such as zh-CN or en",
                                  {"code": value})
    return value


NodeId = Annotated[str, AfterValidator(_node_id)]
LanguageCode = Annotated[str, AfterValidator(_language)]
Prompt = dict[LanguageCode, str]
"""A prompt: language code -> text (may hold ``{var}``, ``{var:digits}``, ``{var:label}``)."""

DigitKey = Annotated[str, Field(pattern=r"^[0-9*#]$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeBase(_Strict):
    """Fields every node has: a prompt, how long to wait, how often to retry, where to go after."""

    prompt: Prompt | None = None
    timeout: float | None = Field(default=None, gt=0, le=60)
    retries: int | None = Field(default=None, ge=0, le=5)
    fallback: str | None = None
    max_visits: int | None = Field(default=None, ge=1, le=20)
    on_max_visits: str | None = None
    intent: Literal["inquiry", "loss", "complaint", "agent", "survey"] | None = None
    """Entering the node marks why the caller called (first mark wins), for call records."""
    outcome: Literal["self_served", "survey_completed"] | None = None
    """Entering the node means the caller got what they came for."""

    def waits_for_caller(self) -> bool:
        """True when entering this node hands control to the caller (so a cycle through it is fine)."""
        return False

    def edges(self) -> dict[str, str]:
        """Every node this one can lead to, labelled by why."""
        out = {}
        if self.fallback:
            out["fallback"] = self.fallback
        if self.on_max_visits:
            out["on_max_visits"] = self.on_max_visits
        return out


class SayNode(NodeBase):
    type: Literal["say"]
    next: str

    def edges(self) -> dict[str, str]:
        return {**super().edges(), "next": self.next}


class MenuNode(NodeBase):
    type: Literal["menu"]
    options: dict[DigitKey, str] = Field(min_length=1)
    invalid_prompt: Prompt | None = None
    global_keys: bool = True
    store: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]*$")
    values: dict[DigitKey, str] = {}
    """With ``store``: the value kept for each key pressed (e.g. a complaint category)."""

    def waits_for_caller(self) -> bool:
        return True

    def edges(self) -> dict[str, str]:
        return {**super().edges(), **{f"key {k}": t for k, t in self.options.items()}}


class InputNode(NodeBase):
    type: Literal["input"]
    store: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    next: str
    min_digits: int = Field(default=1, ge=1, le=32)
    max_digits: int = Field(default=1, ge=1, le=32)
    finish_on_key: Literal["#", "*", ""] = "#"
    first_digit_timeout: float = Field(default=8, gt=0, le=60)
    inter_digit_timeout: float = Field(default=4, gt=0, le=60)
    check: Literal["luhn"] | None = None
    allow_star: bool = False
    """Accept ``*`` for a letter, e.g. the X that ends some Chinese ID numbers."""
    sensitive: bool = False
    invalid_prompt: Prompt | None = None

    def waits_for_caller(self) -> bool:
        return True

    def edges(self) -> dict[str, str]:
        return {**super().edges(), "next": self.next}


class ActionNode(NodeBase):
    type: Literal["action"]
    service: str
    args: list[str] = []
    results: dict[str, str] = Field(min_length=1)

    def edges(self) -> dict[str, str]:
        return {**super().edges(), **{f"result {r}": t for r, t in self.results.items()}}


class RecordNode(NodeBase):
    type: Literal["record"]
    store: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    next: str
    max_seconds: int = Field(default=120, ge=1, le=600)
    finish_on_key: Literal["#", "*"] = "#"

    def waits_for_caller(self) -> bool:
        return True

    def edges(self) -> dict[str, str]:
        return {**super().edges(), "next": self.next}


class QueueNode(NodeBase):
    type: Literal["queue"]
    skills: list[str] = Field(min_length=1)
    priority: int = Field(default=5, ge=0, le=10)
    next: str | None = None
    """Where a caller goes who leaves the queue without reaching an agent."""

    def waits_for_caller(self) -> bool:
        return True

    def edges(self) -> dict[str, str]:
        return {**super().edges(), **({"next": self.next} if self.next else {})}


class TransferNode(NodeBase):
    type: Literal["transfer"]
    target: str = Field(min_length=1)

    def waits_for_caller(self) -> bool:
        return True


class LanguageNode(NodeBase):
    type: Literal["language"]
    next: str
    language: LanguageCode | None = None
    """The language to switch to; unset means the next one in the menu's list."""

    def edges(self) -> dict[str, str]:
        return {**super().edges(), "next": self.next}


class HangupNode(NodeBase):
    type: Literal["hangup"]

    def waits_for_caller(self) -> bool:
        return True


class SurveyNode(NodeBase):
    """A satisfaction question: the key pressed (1..scale) is stored as the answer."""

    type: Literal["survey"]
    store: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    scale: int = Field(default=5, ge=2, le=9)
    next: str
    options: dict[DigitKey, str] = {}
    """Keys besides the answers, e.g. one to never be called again."""
    invalid_prompt: Prompt | None = None

    @model_validator(mode="after")
    def _options_beside_answers(self) -> SurveyNode:
        taken = sorted(k for k in self.options if k.isdigit() and 1 <= int(k) <= self.scale)
        if taken:
            raise ValueError(f"option keys {', '.join(taken)} are answers of the {self.scale}-point scale")
        return self

    def waits_for_caller(self) -> bool:
        return True

    def edges(self) -> dict[str, str]:
        return {**super().edges(), "next": self.next, **{f"key {k}": t for k, t in self.options.items()}}


Node = Annotated[
    SayNode | MenuNode | InputNode | ActionNode | RecordNode | QueueNode
    | TransferNode | LanguageNode | HangupNode | SurveyNode,
    Field(discriminator="type"),
]


class Defaults(_Strict):
    timeout: float = Field(default=5, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=5)
    fallback: str | None = None
    invalid_prompt: Prompt | None = None
    no_input_prompt: Prompt | None = None
    closed_prompt: Prompt | None = None
    """Said at a queue node outside business hours (not for lost cards), before the node's ``next``."""
    no_agent_prompt: Prompt | None = None
    """Said at a queue node when no agent of the skill and language is logged in, before the node's ``next``."""


class Menu(_Strict):
    """A whole hotline menu: languages, start node, global keys and the node table."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    version: int = 0
    languages: list[LanguageCode] = Field(min_length=1)
    start: str
    defaults: Defaults = Defaults()
    global_keys: dict[DigitKey, str] = {}
    """Keys that work in every ``menu`` node unless the node says ``global_keys: false``."""
    labels: dict[str, dict[str, Prompt]] = {}
    """Spoken names of values, ``labels[var][value][language]``, used by ``{var:label}`` in prompts."""
    nodes: dict[NodeId, Node] = Field(min_length=1)

    @field_validator("languages")
    @classmethod
    def _unique_languages(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("languages are listed twice")
        return value

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def timeout_of(self, node: NodeBase) -> float:
        return node.timeout if node.timeout is not None else self.defaults.timeout

    def retries_of(self, node: NodeBase) -> int:
        return node.retries if node.retries is not None else self.defaults.retries

    def fallback_of(self, node: NodeBase) -> str | None:
        return node.fallback or self.defaults.fallback

    def prompts(self) -> dict[str, Prompt]:
        """Every prompt by the id the engine gives it (``Say.prompt_id``): what gets rendered to audio."""
        out: dict[str, Prompt] = {}
        if self.defaults.invalid_prompt:
            out["defaults.invalid"] = self.defaults.invalid_prompt
        if self.defaults.no_input_prompt:
            out["defaults.no_input"] = self.defaults.no_input_prompt
        if self.defaults.closed_prompt:
            out["defaults.closed"] = self.defaults.closed_prompt
        if self.defaults.no_agent_prompt:
            out["defaults.no_agent"] = self.defaults.no_agent_prompt
        for node_id, node in self.nodes.items():
            if node.prompt:
                out[node_id] = node.prompt
            invalid = getattr(node, "invalid_prompt", None)
            if invalid:
                out[f"{node_id}.invalid"] = invalid
        return out

    def options_of(self, node: MenuNode) -> dict[str, str]:
        """A menu node's keys, with the global keys under its own."""
        return {**self.global_keys, **node.options} if node.global_keys else dict(node.options)
