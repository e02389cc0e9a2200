"""Who may take a work order: an active user who works orders (admin or supervisor), not any text."""

from __future__ import annotations

from flask_babel import gettext as _

from admin.users.accounts import Accounts

WORKS_ORDERS = ("admin", "supervisor")


def assignee_refusal(accounts: Accounts, name: str | None) -> str | None:
    """Why ``name`` cannot be assigned a work order, or None when it can (an empty name is the desk's to refuse)."""
    if not name:
        return None
    account = accounts.get(name)
    if account is None or not account.active or account.role not in WORKS_ORDERS:
        return str(_("assignee %(name)r is not an active admin or supervisor: assign the work order to a user who "
                     "works orders", name=name))
    return None


def assignees(accounts: Accounts) -> list[str]:
    """The names a work order may be assigned to, for the page's choice: active admins and supervisors."""
    return sorted(a.name for a in accounts.all() if a.active and a.role in WORKS_ORDERS)
