"""People who log in: roles, hashed passwords, password rules, growing waits after failed logins."""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from werkzeug import security

from admin.users.throttle import LoginThrottle
from store.cooperative import in_thread_if_gevent
from store.models import User, utcnow

log = logging.getLogger(__name__)

ROLES = ("admin", "supervisor", "agent", "qa")
"""``qa``: a quality reviewer, who sees the quality pages and plays the recordings of their review queue only."""
LANGUAGES = ("zh-CN", "en-US")
"""The languages of the pages (``admin.i18n``)."""
MIN_PASSWORD = 10
MAX_PASSWORD = 256
"""Long passphrases are welcome; a megabyte "password" only burns hashing time."""
MIN_DISTINCT = 4
TOKEN_ACTOR = "api-token"
"""The name the API token acts under in the audit log; no person may be called that."""
RESERVED_NAMES = frozenset({TOKEN_ACTOR})
REFUSED = "wrong name or password, or too many tries: wait a little"
"""The pages show it in the person's language (``admin.users.login``)."""
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt.gz")
"""The 20,000 most common passwords (Django's list, BSD licence: common-passwords.LICENSE)."""
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def generate_password_hash(password: str) -> str:
    """werkzeug's scrypt (~50-100 ms of CPU), off the hub in a gevent web worker: the other requests go on."""
    return in_thread_if_gevent(security.generate_password_hash, password)


def check_password_hash(stored: str, password: str) -> bool:
    return in_thread_if_gevent(security.check_password_hash, stored, password)


# Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = security.generate_password_hash("not-a-real-password")


class AccountError(ValueError):
    """A user could not be created or changed; the message says why."""


class NoSuchUser(AccountError, LookupError):
    """No user by that name."""


class UserExists(AccountError):
    """The name is taken."""


class LastAdmin(AccountError):
    """The change would leave no active admin to manage the others."""


class LoginRefused(Exception):
    """Wrong name or password, throttled or deactivated: the message is the same for all (safe to show);
    ``reason`` is for the audit log only."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


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
    previous_login_at: dt.datetime | None = None
    """Set by ``authenticate``: the login before this one (for the failed-logins notice)."""
    language: str | None = None
    """The pages' language the person chose; None: the installation's default."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "role": self.role, "agent_id": self.agent_id, "active": self.active,
            "locked_until": _iso(self.locked_until), "last_login_at": _iso(self.last_login_at),
            "language": self.language,
        }


class Accounts:
    """The one place users are created, checked and changed."""

    def __init__(self, sql: sessionmaker[Session], throttle: LoginThrottle | None = None,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sql, self.throttle, self.clock = sql, throttle, clock

    def add(self, name: str, role: str, password: str, agent_id: str | None = None) -> Account:
        _check_name(name)
        if role not in ROLES:
            raise AccountError(_("role %(role)r is not one of %(roles)s", role=role, roles=", ".join(ROLES)))
        check_password(password, name)
        agent_id = _agent_id(role, agent_id, name)
        with self.sql.begin() as db:
            if db.scalar(select(User.id).where(User.name == name)) is not None:
                raise UserExists(_("user %(name)r already exists", name=name))
            user = User(name=name, role=role, password_hash=generate_password_hash(password), agent_id=agent_id,
                        active=True, failed_logins=0, session_epoch=0)
            db.add(user)
            db.flush()
            return _account(user)

    def authenticate(self, name: str, password: str, address: str = "") -> Account:
        """The account when name and password match and ``address`` need not wait; else LoginRefused, with the
        same message whatever the reason, after the same work (one database read, one password hash check,
        two Redis round trips), so neither the text nor the time tells which names exist."""
        throttle, name = self.throttle, name[:64]
        waiting = throttle is not None and throttle.wait_s(name, address) > 0
        with self.sql() as db:
            user = db.scalar(select(User).where(User.name == name))
            known = user is not None
            matches = check_password_hash(user.password_hash if user is not None else _DUMMY_HASH, password)
            active, user_id = (user.active, user.id) if user is not None else (False, 0)
        reason = ("throttled" if waiting else "unknown name" if not known else "wrong password" if not matches
                  else "deactivated" if not active else "")
        if reason:
            if throttle is not None:
                throttle.failed(name, address, counted=reason in ("unknown name", "wrong password"))
            if reason == "throttled":
                log.warning("login of %r from %s refused unchecked: too many failures, still waiting", name, address)
            raise LoginRefused(REFUSED, reason)
        if throttle is not None:
            throttle.succeeded(name, address)
        with self.sql.begin() as db:
            user = db.get(User, user_id)
            assert user is not None
            previous = user.last_login_at
            user.last_login_at = self.clock()
            return replace(_account(user), previous_login_at=previous)

    def change_own_password(self, name: str, current_password: str, new_password: str,
                            address: str = "") -> Account:
        """A person changes their own password: the current one is required (wrong ones count like failed
        logins, so a stolen session cannot guess it freely); every session of theirs ends."""
        throttle = self.throttle
        if throttle is not None and throttle.wait_s(name, address) > 0:
            raise AccountError(_("too many wrong passwords: wait a little and try again"))
        with self.sql() as db:
            user = db.scalar(select(User).where(User.name == name))
            if user is None or not check_password_hash(user.password_hash, current_password):
                if throttle is not None:
                    throttle.failed(name, address)
                raise AccountError(_("the current password is wrong"))
        if new_password == current_password:
            raise AccountError(_("the new password must differ from the current one"))
        return self.set_password(name, new_password)

    def get(self, name: str) -> Account | None:
        with self.sql() as db:
            user = db.scalar(select(User).where(User.name == name))
            account = _account(user) if user else None
        return self._with_wait(account) if account else None

    def by_id(self, user_id: int) -> Account | None:
        with self.sql() as db:
            user = db.get(User, user_id)
            return _account(user) if user else None

    def all(self) -> list[Account]:
        with self.sql() as db:
            accounts = [_account(u) for u in db.scalars(select(User).order_by(User.name))]
        return [self._with_wait(a) for a in accounts]

    def _with_wait(self, account: Account) -> Account:
        return replace(account, locked_until=self.throttled_until(account.name))

    def set_password(self, name: str, password: str) -> Account:
        check_password(password, name)
        account = self._change(name, lambda u: _set_password(u, password))
        if self.throttle is not None:
            self.throttle.clear(name)
        return account

    def set_role(self, name: str, role: str, agent_id: str | None = None) -> Account:
        if role not in ROLES:
            raise AccountError(_("role %(role)r is not one of %(roles)s", role=role, roles=", ".join(ROLES)))

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

    def set_language(self, user_id: int, language: str | None) -> None:
        """Keep the pages' language a person chose with their account (None: back to the default)."""
        if language is not None and language not in LANGUAGES:
            raise AccountError(_("language %(language)r is not one of %(languages)s", language=language,
                                 languages=", ".join(LANGUAGES)))
        with self.sql.begin() as db:
            db.execute(update(User).where(User.id == user_id).values(language=language))

    def end_sessions(self, user_id: int) -> None:
        """Every cookie issued to the user so far stops working (logout: an old copy of it is worth nothing)."""
        with self.sql.begin() as db:
            db.execute(update(User).where(User.id == user_id).values(session_epoch=User.session_epoch + 1))

    def unlock(self, name: str) -> Account:
        """Lift the account-wide login wait (what an admin sees as "locked")."""
        account = self.get(name)
        if account is None:
            raise NoSuchUser(_("no user %(name)r", name=name))
        if self.throttle is not None:
            self.throttle.clear(name)
        return replace(account, locked_until=None)

    def throttled_until(self, name: str) -> dt.datetime | None:
        """Until when addresses the account never logged in from must wait before trying it."""
        wait = self.throttle.account_wait_s(name) if self.throttle is not None else 0.0
        return self.clock() + dt.timedelta(seconds=wait) if wait > 0 else None

    def _change(self, name: str, change: Callable[[User], None]) -> Account:
        """Apply ``change``; raises LastAdmin (nothing changed) when no active admin would be left."""
        with self.sql.begin() as db:
            # Locking every active admin first: two admins demoting each other at once cannot both succeed.
            admins = list(db.scalars(select(User).where(User.role == "admin", User.active.is_(True))
                                     .order_by(User.id).with_for_update()))
            user = db.scalar(select(User).where(User.name == name))
            if user is None:
                raise NoSuchUser(_("no user %(name)r", name=name))
            change(user)
            if admins and not any(a.role == "admin" and a.active for a in admins):
                raise LastAdmin(_("%(name)s is the last active admin: make another admin first", name=name))
            return _account(user)


def _set_password(user: User, password: str) -> None:
    user.password_hash = generate_password_hash(password)
    user.session_epoch += 1
    user.failed_logins, user.locked_until = 0, None


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise AccountError(_("user name %(name)r: use 1-64 letters, digits, '.', '_', '@' or '-'", name=name[:70]))
    if name.casefold() in RESERVED_NAMES:
        raise AccountError(_("user name %(name)r is reserved (the API token acts under it in the audit log)",
                             name=name))


@functools.cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip().casefold() for line in lines if line.strip())


def _agent_id(role: str, agent_id: str | None, name: str) -> str | None:
    """The router agent an agent works as (their own name unless given); other roles have none."""
    if role != "agent":
        return None
    agent_id = agent_id or name
    if not _NAME.match(agent_id):
        raise AccountError(_("agent id %(id)r: use 1-64 letters, digits, '.', '_', '@' or '-'", id=agent_id[:70]))
    return agent_id


def check_password(password: str, name: str = "") -> None:
    """NIST SP 800-63B 5.1.1.2: long enough, not a commonly used password, not made of the user's name."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(_("the password needs at least %(n)s characters", n=MIN_PASSWORD))
    if len(password) > MAX_PASSWORD:
        raise AccountError(_("the password may have at most %(n)s characters", n=MAX_PASSWORD))
    folded = password.casefold()
    if len(set(folded.strip())) < MIN_DISTINCT:
        raise AccountError(_("the password needs at least %(n)s different characters (not counting spaces at "
                             "either end)", n=MIN_DISTINCT))
    if name and name.casefold() in folded:
        raise AccountError(_("the password must not contain the user name"))
    squeezed = "".join(folded.split())
    if folded in common_passwords() or squeezed in common_passwords():
        raise AccountError(_("that password is among the most commonly used ones: choose another"))


def _account(user: User) -> Account:
    return Account(
        id=user.id, name=user.name, role=user.role, agent_id=user.agent_id, active=user.active,
        session_epoch=user.session_epoch, last_login_at=user.last_login_at, language=user.language,
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # SQLite drops the zone


def _iso(value: dt.datetime | None) -> str | None:
    return _aware(value).isoformat() if value else None
