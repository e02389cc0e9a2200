"""The shapes of the menu editor's JSON (``/api/menus/...``), for the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, RootModel


class ProblemView(BaseModel):
    node: str | None = Field(description="the node the problem is about; null: the whole menu")
    reason: str
    line: int | None = Field(description="1-based line of the draft text; null when unknown")


class Refusal(BaseModel):
    """An error; a draft refused by the validator lists every problem."""

    error: str
    problems: list[ProblemView] = []


class GraphNode(BaseModel):
    id: str
    type: str
    label: str = Field(description="id, type and the first words of the prompt, one per line")


class GraphEdge(BaseModel):
    source: str
    target: str
    label: str = Field(description="key 1, next, result found, fallback...")
    kind: Literal["own", "global", "fallback"] = Field(
        description="own: written on the node; global: a global key; fallback: the menu's default fallback")


class Graph(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class DraftView(BaseModel):
    source: str
    base_version: int = Field(description="the published version the draft started from")
    updated_by: str
    updated_at: str
    stale: bool = Field(description="a newer version was published after the draft started")


class MenuSummary(BaseModel):
    name: str
    live_version: int | None = Field(description="null: only a draft, never published")
    published_by: str | None
    published_at: str | None
    draft: DraftView | None


class MenuList(RootModel[list[MenuSummary]]):
    pass


class MenuDetail(MenuSummary):
    live_source: str | None


class DraftBody(BaseModel):
    source: str = Field(description="the menu YAML")
    base_version: int | None = Field(None, description="the version it started from; default: the live one")


class CheckBody(BaseModel):
    source: str


class CheckResult(BaseModel):
    valid: bool
    problems: list[ProblemView]
    graph: Graph | None = Field(description="null when the text does not parse")


class PublishBody(BaseModel):
    source: str | None = Field(None, description="publish this text; default: the saved draft")
    base_version: int | None = None
    overwrite: bool = Field(False, description="publish although a newer version went live since the draft began")


class RollbackBody(BaseModel):
    version: int = Field(ge=1, description="the older version to put live again, as a new version")


class VersionView(BaseModel):
    menu: str
    version: int
    published_by: str
    published_at: str
    live: bool
    diff: str = Field(description="unified diff against the version before it")
    restored_from: int | None = Field(None, description="a rollback: the older version whose text it put live again")


class PreviewBody(BaseModel):
    source: str | None = Field(None, description="the text that would be published")
    version: int | None = Field(None, ge=1, description="or: the older version a rollback would put live again")


class PreviewView(BaseModel):
    live_version: int | None = Field(description="null: never published")
    diff: str = Field(description="unified diff from the live text to what would go live; empty: no change")


class VersionList(RootModel[list[VersionView]]):
    pass


class VersionDetail(VersionView):
    source: str


class Published(VersionView):
    prompt_job: str | None = Field(description="the RQ job re-rendering the changed prompts; null if not queued")


class SimStart(BaseModel):
    source: str | None = Field(None, description="the text to run; default: the saved draft, else the live menu")


class SimEvent(BaseModel):
    event: Literal["keys", "timeout", "hangup", "recording", "queue"]
    digits: str | None = None
    seconds: float | None = None
    result: str | None = Field(None, description="for queue: bridged, timeout, hangup...")


class Said(BaseModel):
    text: str
    language: str
    prompt_id: str


class PathStep(BaseModel):
    node: str
    input: str
    at: str


class SimView(BaseModel):
    id: str
    menu: str
    node: str
    language: str
    said: list[Said] = Field(description="what the caller hears after this step, in order")
    waiting: dict[str, str | int | float | bool | list[str]] = Field(
        description="kind: keys, record, queue, transfer, ended or none, with the gather's limits")
    effects: list[str] = Field(description="what the services and the channel would have done for real")
    path: list[PathStep]
    vars: dict[str, str]
    ended: bool
    outcome: str
