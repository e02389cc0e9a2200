"""People who log in: roles, hashed passwords, lock-out after repeated failures."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from store.models import User, utcnow

log = logging.getLogger(__name__)

ROLES = ("admin", "supervisor", "agent")
MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(ValueError):
    """A user could not be created or changed; the message says why."""


class NoSuchUser(AccountError, LookupError):
    """No user by that name."""


class UserExists(AccountError):
    """The name is taken."""


class LastAdmin(AccountError):
    """The change would leave no active admin to manage the others."""


class LoginRefused(Exception):
    """Wrong name or password, locked or deactivated: the message is safe to show."""


@dataclass(frozen=True)
class Account:
    """What the web layer knows about a logged-in person (never the hash)."""

    id: int
    name: str
    role: str
    agent_id: str | None
    active: bool
    session_epoch: int
    locked_until: dt.datetime | None = None
    last_login_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "role": self.role, "agent_id": self.agent_id, "active": self.active,
            "locked_until": _iso(self.locked_until), "last_login_at": _iso(self.last_login_at),
        }


class Accounts:
    """The one place users are created, checked and changed."""

    def __init__(self, sql: sessionmaker[Session], max_failures: int = 5, lockout_s: float = 900,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sql, self.max_failures, self.clock = sql, max_failures, clock
        self.lockout = dt.timedelta(seconds=lockout_s)

    def add(self, name: str, role: str, password: str, agent_id: str | None = None) -> Account:
        _check_name(name)
        if role not in ROLES:
            raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
        _check_password(password)
        agent_id = _agent_id(role, agent_id, name)
        with self.sql.begin() as db:
            if db.scalar(select(User.id).where(User.name == name)) is not None:
                raise UserExists(f"user {name!r} already exists")
            user = User(name=name, role=role, password_hash=generate_password_hash(password), agent_id=agent_id,
                        active=True, failed_logins=0, session_epoch=0)
            db.add(user)
            db.flush()
            return _account(user)

    def authenticate(self, name: str, password: str) -> Account:
        """The account when name and password match; raises LoginRefused, counting the failure."""
        now = self.clock()
        refusal = None
        with self.sql.begin() as db:  # the failure count is committed, then the refusal raised
            user = db.scalar(select(User).where(User.name == name).with_for_update())
            if user is None:
                check_password_hash(_DUMMY_HASH, password)
                refusal = "wrong name or password"
            elif user.locked_until is not None and _aware(user.locked_until) > now:
                refusal = f"too many failed logins: locked until {_aware(user.locked_until):%H:%M:%S} UTC"
            elif not check_password_hash(user.password_hash, password):
                user.failed_logins += 1
                if user.failed_logins >= self.max_failures:
                    user.locked_until, user.failed_logins = now + self.lockout, 0
                    log.warning("login of %s locked for %.0f s after %d failures", name,
                                self.lockout.total_seconds(), self.max_failures)
                refusal = "wrong name or password"
            elif not user.active:
                refusal = f"user {name} is deactivated"
            else:
                user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
                account = _account(user)
        if refusal is not None:
            raise LoginRefused(refusal)
        return account

    def get(self, name: str) -> Account | None:
        with self.sql() as db:
            user = db.scalar(select(User).where(User.name == name))
            return _account(user) if user else None

    def by_id(self, user_id: int) -> Account | None:
        with self.sql() as db:
            user = db.get(User, user_id)
            return _account(user) if user else None

    def all(self) -> list[Account]:
        with self.sql() as db:
            return [_account(u) for u in db.scalars(select(User).order_by(User.name))]

    def set_password(self, name: str, password: str) -> Account:
        _check_password(password)
        return self._change(name, lambda u: _set_password(u, password))

    def set_role(self, name: str, role: str, agent_id: str | None = None) -> Account:
        if role not in ROLES:
            raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")

        def change(user: User) -> None:
            user.role, user.agent_id = role, _agent_id(role, agent_id or user.agent_id, user.name)
            user.session_epoch += 1

        return self._change(name, change)

    def set_active(self, name: str, active: bool) -> Account:
        def change(user: User) -> None:
            user.active = active
            if not active:
                user.session_epoch += 1  # logged out everywhere
        return self._change(name, change)

    def unlock(self, name: str) -> Account:
        def change(user: User) -> None:
            user.locked_until, user.failed_logins = None, 0
        return self._change(name, change)

    def _change(self, name: str, change: Callable[[User], None]) -> Account:
        """Apply ``change``; raises LastAdmin (nothing changed) when no active admin would be left."""
        with self.sql.begin() as db:
            # Locking every active admin first: two admins demoting each other at once cannot both succeed.
            admins = list(db.scalars(select(User).where(User.role == "admin", User.active.is_(True))
                                     .order_by(User.id).with_for_update()))
            user = db.scalar(select(User).where(User.name == name))
            if user is None:
                raise NoSuchUser(f"no user {name!r}")
            change(user)
            if admins and not any(a.role == "admin" and a.active for a in admins):
                raise LastAdmin(f"{name} is the last active admin: make another admin first")
            return _account(user)


def _set_password(user: User, password: str) -> None:
    user.password_hash = generate_password_hash(password)
    user.session_epoch += 1
    user.failed_logins, user.locked_until = 0, None


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise AccountError(f"user name {name[:70]!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")


def _agent_id(role: str, agent_id: str | None, name: str) -> str | None:
    """The router agent an agent works as (their own name unless given); other roles have none."""
    if role != "agent":
        return None
    agent_id = agent_id or name
    if not _NAME.match(agent_id):
        raise AccountError(f"agent id {agent_id[:70]!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    return agent_id


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")


def _account(user: User) -> Account:
    return Account(
        id=user.id, name=user.name, role=user.role, agent_id=user.agent_id, active=user.active,
        session_epoch=user.session_epoch, locked_until=user.locked_until, last_login_at=user.last_login_at,
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # SQLite drops the zone


def _iso(value: dt.datetime | None) -> str | None:
    return _aware(value).isoformat() if value else None
