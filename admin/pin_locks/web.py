"""Cards whose PIN checks are locked or counting failures: supervisors see them, admins reset them (audited).

Only masked numbers are shown; a card is named in links by the counter's keyed hash, never its number.
"""

from __future__ import annotations

import logging
import re

import redis
from flask import Blueprint, Response, flash, redirect, render_template
from flask_babel import gettext as _

from admin.access import allow, current
from admin.audit import AuditLog
from calls.pin_locks import PinLocks
from store.db import UNAVAILABLE

log = logging.getLogger(__name__)
_CARD_KEY = re.compile(r"^[0-9a-f]{64}$")
_AWAY: tuple[type[Exception], ...] = (redis.RedisError, *UNAVAILABLE)


def create_pin_locks_web(pin_locks: PinLocks, audit: AuditLog) -> Blueprint:
    bp = Blueprint("pin_locks_web", __name__, url_prefix="/admin/pin-locks")

    @bp.get("")
    @allow("admin", "supervisor")
    def index() -> str:
        return render_template("pin_locks.html", cards=pin_locks.listing(), policy=pin_locks.policy,
                               may_reset=current().role == "admin")

    @bp.post("/<card_key>/reset")
    @allow("admin")
    def reset(card_key: str) -> Response | tuple[str, int]:
        if not _CARD_KEY.match(card_key):
            return _refused(400, _("That is not a card's key."))
        try:
            found = pin_locks.reset(card_key)
        except _AWAY as exc:
            log.warning("PIN lock reset refused: %s unavailable", type(exc).__name__)
            return _refused(503, _("The lock could not be reset now: try again shortly."))
        if found is None:
            return _refused(404, _("No PIN failures are recorded for that card."))
        who = current()
        audit.write(who.name, who.role, "pin_lock_reset", found.card_masked, failures=found.failures,
                    was_locked=found.locked_at is not None)
        flash(_("%(card)s: PIN checks reset", card=found.card_masked), "ok")
        return redirect("/admin/pin-locks", code=303)  # type: ignore[return-value]

    return bp


def _refused(status: int, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, message=message), status
