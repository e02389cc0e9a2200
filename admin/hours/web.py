"""Opening hours per weekday and the holiday calendar: admins edit, supervisors read; every edit is audited.

New calls hear an edit within the calendar's cache time (``calls.hours``), with no restart; return visits
share the same holidays.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, Response, flash, redirect, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from admin.access import allow, current
from admin.audit import AuditLog
from admin.i18n import refusal
from calls.hours import WEEKDAYS, DayHours, HoursBook, HoursInvalid
from store.db import UNAVAILABLE

log = logging.getLogger(__name__)

WEEKDAY_NAMES = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
                 _l("Sunday"))


def create_hours_web(book: HoursBook, audit: AuditLog) -> Blueprint:
    bp = Blueprint("hours_web", __name__, url_prefix="/admin/hours")

    @bp.get("")
    @allow("admin", "supervisor")
    def index() -> str:
        calendar = book.calendar()
        local = book.local()
        return render_template(
            "hours.html", week=[(d, WEEKDAY_NAMES[d], calendar.week[d]) for d in WEEKDAYS],
            holidays=sorted(calendar.holidays.items()), configured=calendar.configured, timezone=book.timezone,
            open_now=book.is_open(), local_now=local.strftime("%Y-%m-%d %H:%M:%S"), ttl_s=book.ttl_s,
            may_edit=current().role == "admin", today=local.date().isoformat())

    @bp.post("/week")
    @allow("admin")
    def save_week() -> Response | tuple[str, int]:
        try:
            week = {d: _day(d) for d in WEEKDAYS}
        except ValueError:
            return _refused(400, _("Times are written HH:MM."))
        try:
            book.save_week(week)
        except HoursInvalid as exc:
            return _refused(400, refusal(str(exc)))
        except UNAVAILABLE as exc:
            return _away(exc)
        who = current()
        audit.write(who.name, who.role, "hours_saved", "week", **{
            str(d): "closed" if h.closed else f"{h.opens:%H:%M}-{h.closes:%H:%M}" for d, h in week.items()})
        flash(_("Opening hours saved"), "ok")
        return redirect("/admin/hours", code=303)  # type: ignore[return-value]

    @bp.post("/holidays")
    @allow("admin")
    def add_holiday() -> Response | tuple[str, int]:
        try:
            day = dt.date.fromisoformat(request.form.get("day", ""))
        except ValueError:
            return _refused(400, _("Give the date as YYYY-MM-DD."))
        name = request.form.get("name", "").strip()[:100]
        try:
            book.add_holiday(day, name)
        except UNAVAILABLE as exc:
            return _away(exc)
        who = current()
        audit.write(who.name, who.role, "holiday_added", day.isoformat(), name=name)
        flash(_("%(day)s: holiday added", day=day.isoformat()), "ok")
        return redirect("/admin/hours", code=303)  # type: ignore[return-value]

    @bp.post("/holidays/<day>/delete")
    @allow("admin")
    def remove_holiday(day: str) -> Response | tuple[str, int]:
        try:
            date = dt.date.fromisoformat(day)
        except ValueError:
            return _refused(400, _("That is not a date."))
        try:
            removed = book.remove_holiday(date)
        except UNAVAILABLE as exc:
            return _away(exc)
        if not removed:
            return _refused(404, _("That date is not a holiday."))
        who = current()
        audit.write(who.name, who.role, "holiday_removed", date.isoformat())
        flash(_("%(day)s: holiday removed", day=date.isoformat()), "ok")
        return redirect("/admin/hours", code=303)  # type: ignore[return-value]

    return bp


def _day(weekday: int) -> DayHours:
    """One weekday's row of the form: closed, or both times."""
    if request.form.get(f"closed_{weekday}"):
        return DayHours(None, None)
    opens, closes = request.form.get(f"opens_{weekday}", ""), request.form.get(f"closes_{weekday}", "")
    return DayHours(dt.time.fromisoformat(opens) if opens else None,
                    dt.time.fromisoformat(closes) if closes else None)


def _away(exc: Exception) -> tuple[str, int]:
    log.warning("hours not saved: %s unavailable", type(exc).__name__)
    return _refused(503, _("The database is away: try again shortly."))


def _refused(status: int, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, message=message), status
