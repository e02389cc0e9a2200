"""The figures the reports page adds (complaints per week by category), checked by hand, and the page itself."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import sessionmaker

from hotline.app import Hotline
from reports.queries import build_report
from reports.render import csv_rows, summary_lines
from store.models import WorkOrder
from tests.web import SessionClient, add_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")

# category, local creation time in Shanghai. Period 2026-02-25 (Wed) .. 2026-03-10 (Tue): ISO weeks 9, 10 and 11.
ORDERS = [
    ("service", (2, 24, 23, 59, 59)),  # the day before the period
    ("service", (2, 25, 0, 0, 0)),  # W09, first second
    ("fees", (3, 1, 23, 59, 59)),  # W09, last second of Sunday (UTC 15:59:59 the same day)
    ("fees", (3, 2, 0, 0, 0)),  # W10: Monday local, still Sunday 16:00 in UTC
    ("card_account", (3, 2, 7, 0, 0)),  # W10: UTC Sunday 23:00
    ("other", (3, 5, 12, 0, 0)),  # W10
    ("service", (3, 8, 23, 0, 0)),  # W10, Sunday
    ("service", (3, 10, 23, 59, 59)),  # W11, the last second of the period
    ("fees", (3, 11, 0, 0, 0)),  # the day after
]


def add_orders(sql: sessionmaker, orders: list[tuple[str, dt.datetime]]) -> None:
    with sql.begin() as db:
        for n, (category, created) in enumerate(orders):
            db.add(WorkOrder(number=f"w{n}", call_id=f"CA-w{n}", category=category, caller_masked="138****5678",
                             callback_number="+8613812345678", language="zh-CN", recording_ref=f"rec-w{n}",
                             created_at=created.astimezone(dt.UTC)))


def shanghai(month: int, day: int, *hms: int) -> dt.datetime:
    return dt.datetime(2026, month, day, *hms, tzinfo=SHANGHAI)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_complaints_per_week_by_category_in_local_weeks(sql: sessionmaker) -> None:
    add_orders(sql, [(category, shanghai(*when)) for category, when in ORDERS])
    report = build_report(sql, dt.date(2026, 2, 25), dt.date(2026, 3, 10), "Asia/Shanghai")
    zero = {"service": 0, "fees": 0, "card_account": 0, "other": 0}
    assert report.to_json()["weekly"] == [
        {"week": "2026-W09", "start": "2026-02-25", "end": "2026-03-01", "complaints": 2,
         "by_category": {**zero, "service": 1, "fees": 1}},
        {"week": "2026-W10", "start": "2026-03-02", "end": "2026-03-08", "complaints": 4,
         "by_category": {"service": 1, "fees": 1, "card_account": 1, "other": 1}},
        {"week": "2026-W11", "start": "2026-03-09", "end": "2026-03-10", "complaints": 1,
         "by_category": {**zero, "service": 1}},
    ]
    assert report.complaints.total == sum(w.complaints for w in report.weekly) == 7
    rows = {(s, m): v for s, m, v in csv_rows(report)}
    assert rows[("weekly", "2026-W10.by_category.card_account")] == "1"
    assert rows[("weekly", "2026-W09.start")] == "2026-02-25" and rows[("weekly", "2026-W11.complaints")] == "1"
    text = "\n".join(summary_lines(report))
    assert "Complaints per week" in text and "2026-W10  2026-03-02  2026-03-08      4" in text


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_weeks_follow_daylight_saving_and_the_year_boundary(sql: sessionmaker) -> None:
    # New York moves to EDT at 2026-03-08 02:00: Monday 00:30 EDT is 04:30 UTC, which EST would put on Sunday.
    add_orders(sql, [
        ("service", dt.datetime(2026, 3, 8, 1, 30, tzinfo=NEW_YORK)),  # Sunday, EST: W10
        ("fees", dt.datetime(2026, 3, 8, 23, 30, tzinfo=NEW_YORK)),  # Sunday, EDT: W10
        ("fees", dt.datetime(2026, 3, 9, 0, 30, tzinfo=NEW_YORK)),  # Monday, EDT: W11
        ("other", dt.datetime(2026, 12, 31, 12, tzinfo=NEW_YORK)),  # Thursday: ISO week 2026-W53
        ("other", dt.datetime(2027, 1, 4, 0, 0, tzinfo=NEW_YORK)),  # Monday: 2027-W01
    ])
    spring = build_report(sql, dt.date(2026, 3, 2), dt.date(2026, 3, 15), "America/New_York")
    assert [(w.week, w.complaints, w.by_category["fees"]) for w in spring.weekly] == [
        ("2026-W10", 2, 1), ("2026-W11", 1, 1)]
    new_year = build_report(sql, dt.date(2026, 12, 30), dt.date(2027, 1, 5), "America/New_York")
    assert [(w.week, str(w.start), str(w.end), w.complaints) for w in new_year.weekly] == [
        ("2026-W53", "2026-12-30", "2027-01-03", 1), ("2027-W01", "2027-01-04", "2027-01-05", 1)]


def test_an_empty_period_still_lists_its_weeks(sql: sessionmaker) -> None:
    report = build_report(sql, dt.date(2026, 4, 1), dt.date(2026, 4, 30), "Asia/Shanghai")
    assert [w.week for w in report.weekly] == ["2026-W14", "2026-W15", "2026-W16", "2026-W17", "2026-W18"]
    assert {w.complaints for w in report.weekly} == {0}


def test_the_page_renders_for_admins_and_supervisors_not_agents(hotline: Hotline, app: Any) -> None:
    for name, role in (("boss", "admin"), ("sue", "supervisor"), ("al", "agent")):
        add_user(hotline, name, role)
    for name in ("boss", "sue"):
        page = SessionClient(app.test_client(), name)("GET", "/admin/reports?from=2026-03-02&to=2026-03-08")
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        for canvas in ("chart-calls-hour", "chart-sl-hour", "chart-complaints-week", "chart-satisfaction"):
            assert f'<canvas id="{canvas}"' in html
        assert 'value="2026-03-02"' in html and 'value="2026-03-08"' in html
        assert 'href="/api/reports/summary.csv?from=2026-03-02&amp;to=2026-03-08"' in html
        assert "vendor/chart.umd.min.js" in html and '"very dissatisfied"' in html
    al = SessionClient(app.test_client(), "al")
    assert al("GET", "/admin/reports").status_code == 403
    assert al("GET", "/api/reports/summary?from=2026-03-02&to=2026-03-08").status_code == 403


def test_the_page_defaults_to_the_last_seven_local_days(hotline: Hotline, client: Any) -> None:
    add_user(hotline, "sue", "supervisor")
    html = SessionClient(client, "sue")("GET", "/admin/reports").get_data(as_text=True)
    today = dt.datetime.now(ZoneInfo(hotline.settings.timezone)).date()
    assert f'value="{today - dt.timedelta(days=6)}"' in html and f'value="{today}"' in html


def test_a_session_gets_the_apis_reason_for_a_bad_period(hotline: Hotline, client: Any) -> None:
    add_user(hotline, "sue", "supervisor")
    sue = SessionClient(client, "sue")
    bad = sue("GET", "/api/reports/summary?from=2026-03-03&to=2026-03-02")
    assert bad.status_code == 400 and bad.json["error"] == "from 2026-03-03 is after to 2026-03-02"
    assert sue("GET", "/api/reports/summary?from=2026-03-02&to=2026-03-02").json["weekly"][0]["week"] == "2026-W10"
