"""``hotline users``: the people who log in to the admin and agent pages (SQL only, no Redis needed)."""

from __future__ import annotations

import sys

import click

from admin.users.accounts import MIN_PASSWORD, ROLES, AccountError, Accounts
from hotline.settings import Settings
from store.db import connect
from store.redis_clients import RedisClients
from store.redis_server import running_local_redis


def _accounts() -> Accounts:
    settings = Settings()
    return Accounts(connect(settings.sql_url))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt(f"Password (at least {MIN_PASSWORD} characters)", hide_input=True,
                            confirmation_prompt=True))


def register(main: click.Group) -> None:
    @main.group()
    def users() -> None:
        """Log-in accounts: admin, supervisor, agent, qa (quality reviewer)."""

    @users.command("add")
    @click.argument("name")
    @click.option("--role", type=click.Choice(ROLES), required=True)
    @click.option("--agent", "agent_id", help="For role agent: the router agent id (default: NAME).")
    @click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
    def add(name: str, role: str, agent_id: str | None, password_stdin: bool) -> None:
        """Create a user; the first admin is made this way."""
        try:
            account = _accounts().add(name, role, _password(password_stdin), agent_id)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        agent = f", works as agent {account.agent_id}" if account.agent_id else ""
        click.echo(f"user {account.name} created with role {account.role}{agent}")

    @users.command("list")
    def list_users() -> None:
        """Every user with role, state and last login."""
        for account in _accounts().all():
            state = "active" if account.active else "deactivated"
            last = f"{account.last_login_at:%Y-%m-%d %H:%M}" if account.last_login_at else "never"
            click.echo(f"{account.name:<24} {account.role:<11} {state:<28} last login {last}")

    @users.command("passwd")
    @click.argument("name")
    @click.option("--password-stdin", is_flag=True)
    def passwd(name: str, password_stdin: bool) -> None:
        """Set a new password (logs the user out everywhere)."""
        try:
            _accounts().set_password(name, _password(password_stdin))
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"password of {name} changed")

    @users.command("unlock")
    @click.argument("name")
    def unlock(name: str) -> None:
        """Lift the wait new addresses face after many failed logins (kept in the hotline's Redis)."""
        settings = Settings()
        url = settings.redis_url or running_local_redis(settings.data_dir)
        if not url:
            raise click.ClickException("no Redis to clear the waits in: start the hotline or set REDIS_URL")
        from hotline.app import login_throttle

        throttle = login_throttle(settings, RedisClients(url, None, settings.redis_timeout_s).shared())
        try:
            Accounts(connect(settings.sql_url), throttle).unlock(name)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{name} unlocked")
