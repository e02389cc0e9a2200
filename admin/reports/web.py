"""The reports page: the figures of ``workers.reports`` for a chosen period, with charts.

The page reads ``/api/reports/summary`` (admin.reports_api) from the browser, so the figures, the
CSV download and the refusal of a bad period are the API's own; this module only serves the page.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request

from admin.access import allow
from complaints.visit_calls import RATING_LABELS
from reports.figures import KNOWN_CATEGORIES

if TYPE_CHECKING:
    from hotline.app import Hotline

DEFAULT_DAYS = 7
"""Without a period in the address: the last week, today included."""


def create_reports_web(hotline: Hotline) -> Blueprint:
    web = Blueprint("reports_web", __name__)
    settings = hotline.settings

    @web.get("/admin/reports")
    @allow("admin", "supervisor")
    def reports_page() -> str:
        today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
        start = request.args.get("from") or str(today - dt.timedelta(days=DEFAULT_DAYS - 1))
        end = request.args.get("to") or str(today)
        return render_template("reports.html", start=start, end=end, timezone=settings.timezone,
                               service_level_s=settings.service_level_s, categories=KNOWN_CATEGORIES,
                               ratings=RATING_LABELS)

    return web
