"""The reports page: the figures of ``workers.reports`` for a chosen period, with charts.

The page reads ``/api/reports/summary`` (admin.reports_api) from the browser, so the figures, the
CSV download and the refusal of a bad period are the API's own; this module only serves the page.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request

from admin.access import allow
from admin.i18n import label
from complaints.visit_calls import RATING_LABELS
from reports.figures import KNOWN_CATEGORIES

DEFAULT_DAYS = 7
"""Without a period in the address: the last week, today included."""


def create_reports_web(timezone: str, service_level_s: float) -> Blueprint:
    web = Blueprint("reports_web", __name__)

    @web.get("/admin/reports")
    @allow("admin", "supervisor")
    def reports_page() -> str:
        today = dt.datetime.now(ZoneInfo(timezone)).date()
        start = request.args.get("from") or str(today - dt.timedelta(days=DEFAULT_DAYS - 1))
        end = request.args.get("to") or str(today)
        return render_template("reports.html", start=start, end=end, timezone=timezone,
                               service_level_s=service_level_s, categories=KNOWN_CATEGORIES,
                               category_labels={c: label(c) for c in KNOWN_CATEGORIES},
                               ratings={k: label(v) for k, v in RATING_LABELS.items()})

    return web
