"""``/api/reports``: the report of a period as JSON or a CSV download, behind the bearer token."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Session, sessionmaker

from admin.access import allow
from admin.api_models import ReportBody, ReportQuery
from admin.errors import answer_errors_as_json
from admin.openapi import ErrorBody, doc
from reports.figures import Report
from reports.queries import build_report, parse_period
from reports.render import to_csv

MAX_DAYS = 366
"""A longer period is refused: one request should not scan years of call records."""


def create_reports_api(sql: sessionmaker[Session], timezone: str, service_level_s: float) -> Blueprint:
    api = Blueprint("reports_api", __name__, url_prefix="/api/reports")

    def report() -> Report:
        start, end = parse_period(request.args.get("from"), request.args.get("to"), MAX_DAYS)
        return build_report(sql, start, end, timezone, service_level_s)

    @api.get("/summary")
    @allow("admin", "supervisor")
    @doc({200: ReportBody, 400: ErrorBody}, query=ReportQuery, tags=("reports",))
    def summary() -> Response:
        """The report of the local days from..to: every figure is defined in reports/figures.py."""
        return jsonify(report().to_json())

    @api.get("/summary.csv")
    @allow("admin", "supervisor")
    @doc({200: None, 400: ErrorBody}, query=ReportQuery, tags=("reports",))
    def summary_csv() -> Response:
        """The same report as a CSV download: section, metric, value."""
        result = report()
        name = f"hotline-report-{result.period.start}-{result.period.end}.csv"
        return Response(to_csv(result), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    answer_errors_as_json(api)

    return api
