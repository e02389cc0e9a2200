"""In Chromium, in zh-CN and en-US: the Agents page refuses an endpoint Twilio cannot ring (``alice`` without
``client:``) and a language no published menu speaks (``zh`` for ``zh-CN``), saying what to write; the Users
page's new user is an agent unless the admin picks otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from hotline.app import Hotline
from tests.test_i18n import CJK, choose
from tests.web import add_user, browser_login


def new_agent(page: Any, endpoint: str, languages: str) -> None:
    page.fill("#agent-id", "ann")
    page.fill("#agent-endpoint", endpoint)
    page.fill("#agent-languages", languages)
    page.fill("#skill-general", "5")
    page.click("#agent-save")


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_the_agents_page_refuses_an_unringable_endpoint_and_an_unspoken_language(
    hotline: Hotline, site: str, page: Any, language: str,
) -> None:
    add_user(hotline, "boss", "admin")
    browser_login(page, site, "boss")
    page.goto(f"{site}/admin/agents")
    choose(page, language)
    error = page.locator("#form-error")
    new_agent(page, "alice", "zh-CN")
    expect(error).to_contain_text("client:alice")
    assert bool(CJK.search(error.inner_text())) == (language == "zh-CN")
    new_agent(page, "client:alice", "zh")
    expect(error).to_contain_text("'zh'")
    assert bool(CJK.search(error.inner_text())) == (language == "zh-CN")
    assert hotline.agents.get("ann") is None
    new_agent(page, "client:alice", "zh-CN")
    page.locator("#agent-ann").wait_for()
    assert hotline.agents.get("ann").endpoint == "client:alice"  # type: ignore[union-attr]


def test_the_new_user_form_starts_on_agent(hotline: Hotline, site: str, page: Any) -> None:
    add_user(hotline, "boss", "admin")
    browser_login(page, site, "boss")
    page.goto(f"{site}/admin/users")
    expect(page.locator("#new-role")).to_have_value("agent")
