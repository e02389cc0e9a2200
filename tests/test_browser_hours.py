"""In Chromium, in zh-CN and en-US: an admin sets the opening hours per weekday and the holiday calendar; a
supervisor reads them; the next call hears the change."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hotline.app import Hotline
from tests.test_hours import CLOSED_NOTICE, ZONE, new_caller
from tests.test_i18n import VISIBLE_TEXT, choose, untranslated
from tests.web import add_user, browser_login

WORDS = {
    "en-US": {"nav": "Hours", "defaults": "Not saved yet", "save": "Save hours", "saved": "Opening hours saved",
              "add": "Add holiday", "closed": "agents are closed", "removed": "holiday removed",
              "read_only": "Read-only: only an admin changes hours and holidays."},
    "zh-CN": {"nav": "营业时间", "defaults": "尚未保存", "save": "保存营业时间", "saved": "营业时间已保存",
              "add": "添加节假日", "closed": "人工服务休息中", "removed": "已删除节假日",
              "read_only": "只读：只有管理员可以修改营业时间和节假日。"},
}


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_admin_sets_hours_and_a_holiday_and_the_next_caller_hears_them(hotline: Hotline, site: str,
                                                                        page: Any, language: str) -> None:
    words = WORDS[language]
    add_user(hotline, "boss", "admin")
    browser_login(page, site, "boss")
    choose(page, language)
    page.click(f"nav >> text={words['nav']}")
    page.wait_for_url(f"{site}/admin/hours")
    assert page.locator("#week tbody tr").count() == 7
    assert words["defaults"] in page.inner_text("main")  # the settings' defaults until saved
    assert untranslated(language, page.evaluate(VISIBLE_TEXT)) == []

    page.fill("input[name=opens_0]", "09:00:00")
    page.fill("input[name=closes_0]", "17:30:00")
    page.check("input[name=closed_6]")
    page.click(f"text={words['save']}")
    page.wait_for_selector(f"text={words['saved']}")
    assert page.input_value("input[name=opens_0]") == "09:00:00"
    assert page.input_value("input[name=closes_0]") == "17:30:00"
    assert page.is_checked("input[name=closed_6]") and not page.is_checked("input[name=closed_5]")
    monday = hotline.hours.calendar().week[0]
    assert (monday.opens, monday.closes) == (dt.time(9), dt.time(17, 30))
    assert hotline.hours.calendar().week[6].closed

    today = dt.datetime.now(ZONE).date()
    page.fill("#holiday-form input[name=day]", today.isoformat())
    page.fill("#holiday-form input[name=name]", "春节")
    page.click(f"text={words['add']}")
    row = page.locator(f"#holidays tr[data-day='{today.isoformat()}']")
    row.wait_for()
    assert "春节" in row.inner_text()
    assert words["closed"] in page.inner_text("#hours-now")

    caller = new_caller(hotline)  # a new call, no restart: agents closed today
    caller.dial()
    assert CLOSED_NOTICE in caller.said()

    row.locator("button").click()
    page.wait_for_selector(f"text={words['removed']}")
    assert page.locator(f"#holidays tr[data-day='{today.isoformat()}']").count() == 0


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_a_supervisor_reads_the_hours_but_cannot_change_them(hotline: Hotline, site: str, page: Any,
                                                             language: str) -> None:
    words = WORDS[language]
    hotline.hours.add_holiday(dt.date(2027, 10, 1), "国庆节")
    add_user(hotline, "sue", "supervisor")
    browser_login(page, site, "sue")
    choose(page, language)
    page.goto(f"{site}/admin/hours")
    assert "国庆节" in page.inner_text("#holidays")
    assert page.is_disabled("input[name=opens_0]") and page.is_disabled("input[name=closed_0]")
    assert page.locator(f"text={words['save']}").count() == 0
    assert page.locator("#holiday-form").count() == 0 and page.locator("#holidays button").count() == 0
    assert words["read_only"] in page.inner_text("main")
