"""The shapes of ``/api/users`` and ``/api/audit`` for the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel


class UserView(BaseModel):
    """A user as admins see them: never the password or its hash."""

    name: str
    role: str = Field(description="admin, supervisor, agent or qa (quality reviewer)")
    agent_id: str | None = Field(description="for an agent: the router agent they work as")
    active: bool
    locked: bool = Field(description="after many failed logins, addresses the user never logged in from must wait "
                                     "until locked_until (the user's own addresses are not held up; unlock lifts it)")
    locked_until: str | None
    last_login_at: str | None
    language: str | None = Field(None, description="the pages' language the user chose (zh-CN or en-US); "
                                                   "null: the installation's default")


class UserList(RootModel[list[UserView]]):
    pass


Role = Literal["admin", "supervisor", "agent", "qa"]
NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"


class NewUser(BaseModel):
    name: str = Field(pattern=NAME_PATTERN)
    role: Role
    password: str = Field(min_length=10, description="the initial password")
    agent_id: str | None = Field(None, pattern=NAME_PATTERN,
                                 description="for an agent: the router agent they work as (default: the name)")


class RoleBody(BaseModel):
    role: Role
    agent_id: str | None = Field(None, pattern=NAME_PATTERN)


class PasswordBody(BaseModel):
    password: str = Field(min_length=10, description="not a commonly used password, not containing the name")


class AuditEntryView(BaseModel):
    id: int
    at: str
    actor: str
    role: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditList(RootModel[list[AuditEntryView]]):
    pass


class AuditQuery(BaseModel):
    action: str | None = None
    actor: str | None = None
    target: str | None = None
    limit: int | None = Field(None, description="1-1000 (default 200)")
