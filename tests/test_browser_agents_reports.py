"""In Chromium: an admin manages an agent through the agents page; a supervisor reads a report's charts
and downloads its CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from hotline.app import Hotline
from tests.test_reports import seed
from tests.web import add_user, browser_login

CHARTS = ("chart-calls-hour", "chart-sl-hour", "chart-complaints-week", "chart-satisfaction")
READ_CHARTS = """ids => Object.fromEntries(ids.map(id => {
  const chart = Chart.getChart(document.getElementById(id));
  return [id, chart && {type: chart.config.type, labels: chart.data.labels,
                        datasets: chart.data.datasets.map(d => [d.label, d.data])}];
}))"""


def log_in(page: Any, site: str, name: str) -> None:
    browser_login(page, site, name)


def test_admin_creates_edits_deactivates_and_reactivates_an_agent(hotline: Hotline, site: str, page: Any) -> None:
    add_user(hotline, "boss", "admin")
    log_in(page, site, "boss")
    page.goto(f"{site}/admin/agents")
    page.wait_for_selector("text=No agents yet.")

    page.fill("#agent-id", "ann")
    page.fill("#agent-name", "Ann Li")
    page.fill("#agent-endpoint", "PJSIP/1001")
    page.fill("#agent-languages", "zh-CN, en-US")
    page.fill("#skill-loss", "9")
    page.fill("#skill-general", "5")
    page.click("#agent-save")
    row = page.locator("#agent-ann")
    row.wait_for()
    assert sorted(row.locator("td.skills .tag").all_inner_texts()) == ["general 5", "loss 9"]
    assert "zh-CN, en-US" in row.inner_text() and row.get_attribute("data-state") == "offline"

    row.locator("button.edit").click()
    assert page.input_value("#skill-loss") == "9" and page.locator("#agent-id").get_attribute("readonly") == ""
    page.fill("#skill-loss", "7")
    page.click("#agent-save")
    page.wait_for_selector("#agent-ann .tag:text-is('loss 7')")
    assert dict(hotline.agents.get("ann").skills) == {"loss": 7, "general": 5}  # type: ignore[union-attr]

    row.locator("button.edit").click()
    page.fill("#skill-loss", "11")
    page.click("#agent-save")
    error = page.locator("#form-error")
    error.wait_for()
    assert error.inner_text() == "agent ann: skill loss level 11 is not 1-10"
    assert dict(hotline.agents.get("ann").skills)["loss"] == 7  # type: ignore[union-attr]
    page.click("#agent-new")
    assert page.input_value("#agent-id") == "" and not error.is_visible()

    row.locator("button.deactivate").click()
    page.wait_for_selector("#agent-ann[data-state='deactivated'] button.reactivate")
    assert hotline.agents.get("ann") is None
    row.locator("button.reactivate").click()
    page.wait_for_selector("#agent-ann[data-state='offline'] button.deactivate")
    assert sorted(row.locator("td.skills .tag").all_inner_texts()) == ["general 5", "loss 7"]
    assert hotline.agents.get("ann").endpoint == "PJSIP/1001"  # type: ignore[union-attr]
    assert [(e["actor"], e["action"]) for e in reversed(hotline.audit.entries(target="ann"))] == [
        ("boss", "agent_created"), ("boss", "agent_updated"), ("boss", "agent_deactivated"),
        ("boss", "agent_reactivated")]


def test_supervisor_reads_the_charts_of_a_period_and_downloads_the_csv(hotline: Hotline, site: str, page: Any,
                                                                       tmp_path: Path) -> None:
    seed(hotline.sql)  # tests/test_reports.py's records, around 2026-03-02 in Asia/Shanghai
    add_user(hotline, "sue", "supervisor")
    log_in(page, site, "sue")
    page.goto(f"{site}/admin/reports?from=2026-03-01&to=2026-03-03")
    page.wait_for_selector("body[data-ready='2026-03-01/2026-03-03']")
    charts = page.evaluate(READ_CHARTS, list(CHARTS))

    # Mar 2 (test_reports.py) plus x1 (Mar 1 23:59:59) and x2 (Mar 3 00:00, queued, answered after 100 s).
    calls = [0] * 24
    for hour, n in {0: 1, 9: 6, 10: 4, 11: 4, 12: 2, 13: 1, 14: 2, 15: 2, 16: 2, 23: 2}.items():
        calls[hour] = n
    hours = [f"{h:02d}" for h in range(24)]
    assert charts["chart-calls-hour"] == {"type": "bar", "labels": hours, "datasets": [["calls", calls]]}
    levels: list[float | None] = [None] * 24
    for hour, level in {0: 0, 9: 100, 10: 0, 14: 50, 15: 0, 16: 0}.items():
        levels[hour] = level
    assert charts["chart-sl-hour"]["datasets"] == [["service level %", levels]]
    # w9 on Sunday Mar 1 (ISO week 9); w1-w8 on Mar 2 and w10 on Mar 3 (week 10).
    assert charts["chart-complaints-week"] == {"type": "bar", "labels": ["2026-W09", "2026-W10"], "datasets": [
        ["service", [1, 3]], ["fees", [0, 3]], ["card or account", [0, 2]], ["other", [0, 1]]]}
    assert charts["chart-satisfaction"] == {"type": "bar", "labels": [
        "very satisfied", "satisfied", "neutral", "dissatisfied", "very dissatisfied"],
        "datasets": [["return visits", [2, 2, 1, 1, 1]]]}  # + the visit finished Mar 3 00:00, rated 1
    assert page.inner_text("#fig-calls .figure") == "26"
    for canvas in CHARTS:
        box = page.locator(f"#{canvas}").bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50  # drawn, not collapsed

    with page.expect_download() as info:
        page.click("#csv-link")
    download = info.value
    assert download.suggested_filename == "hotline-report-2026-03-01-2026-03-03.csv"
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "section,metric,value"
    assert {"calls,total,26", "hourly,09.calls,6", "weekly,2026-W10.complaints,9",
            "return_visits,ratings.1.count,2"} <= set(lines)


def test_a_bad_period_shows_the_reason_and_a_good_one_redraws(hotline: Hotline, site: str, page: Any) -> None:
    seed(hotline.sql)
    add_user(hotline, "sue", "supervisor")
    log_in(page, site, "sue")
    page.goto(f"{site}/admin/reports?from=2026-03-01&to=2026-03-03")
    page.wait_for_selector("body[data-ready]")
    page.fill("#from", "2026-03-04")
    page.click("#show")
    error = page.locator("#period-error")
    error.wait_for()
    assert error.inner_text() == "from 2026-03-04 is after to 2026-03-03"
    assert not page.locator("#report").is_visible()

    page.fill("#from", "2026-03-02")
    page.fill("#to", "2026-03-02")
    page.click("#show")
    page.wait_for_selector("body[data-ready='2026-03-02/2026-03-02']")
    assert not error.is_visible() and page.locator("#report").is_visible()
    charts = page.evaluate(READ_CHARTS, list(CHARTS))
    assert sum(charts["chart-calls-hour"]["datasets"][0][1]) == 24
    assert charts["chart-complaints-week"]["labels"] == ["2026-W10"]
    assert page.get_attribute("#csv-link", "href") == "/api/reports/summary.csv?from=2026-03-02&to=2026-03-02"
    assert page.url.endswith("/admin/reports?from=2026-03-02&to=2026-03-02")


def test_download_csv_of_a_refused_period_says_why(hotline: Hotline, site: str, page: Any) -> None:
    seed(hotline.sql)
    add_user(hotline, "sue", "supervisor")
    log_in(page, site, "sue")
    page.goto(f"{site}/admin/reports?from=2026-03-01&to=2026-03-03")
    page.wait_for_selector("body[data-ready]")
    page.fill("#from", "2026-03-04")  # not shown yet: the download takes the period in the form
    page.click("#csv-link")
    expect(page.locator("#period-error")).to_have_text("from 2026-03-04 is after to 2026-03-03")
    page.fill("#from", "2026-03-02")
    with page.expect_download() as info:
        page.click("#csv-link")
    assert info.value.suggested_filename == "hotline-report-2026-03-02-2026-03-03.csv"
