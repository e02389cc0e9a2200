"""axe-core on every page, for each role, in both languages: no violation of impact serious or critical.

axe-core is vendored under tests/vendor/axe-core (tests only, never served); it is evaluated in the page through
the browser's debugging protocol, so the pages' Content-Security-Policy (``default-src 'self'``) stays on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hotline.app import Hotline
from hotline.settings import Settings
from tests.test_i18n import choose, floor, read_page, walk  # noqa: F401  (floor is a fixture)
from tests.web import browser_login

AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
BLOCKING = ("serious", "critical")
DIALOGS = {"/admin/menus/hotline": "#publish"}
"""Pages whose dialog a button opens: checked open too (the dashboard's state dialog is open in the walk)."""
RUN_AXE = """async (blocking) => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.filter((v) => blocking.includes(v.impact)).flatMap((v) => v.nodes.map((n) =>
    `${v.id} (${v.impact}) at ${n.target.join(" ")}: ${n.html.slice(0, 160)}\\n    ${v.help} · ${v.helpUrl}` +
    (n.failureSummary ? `\\n    ${n.failureSummary.replace(/\\n/g, " ")}` : "")));
}"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The installation's default language: zh-CN."""
    return settings.model_copy(update={"ui_language": "zh-CN"})


def violations(page: Any) -> list[str]:
    """The serious and critical violations axe-core finds in ``page`` as it is now, one line-group each."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE)
    found: list[str] = page.evaluate(RUN_AXE, list(BLOCKING))
    return found


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
@pytest.mark.parametrize("role,name", [("admin", "boss"), ("supervisor", "sue"), ("agent", "ann")])
def test_no_page_has_a_serious_or_critical_accessibility_violation(
        hotline: Hotline, floor: dict[str, str], site: str, page: Any,  # noqa: F811
        role: str, name: str, language: str) -> None:
    page.goto(f"{site}/login")
    if language != "zh-CN":
        choose(page, language)
    problems = {"/login": violations(page)}
    browser_login(page, site, name)
    for path, ready in walk(role, floor["work_order"]):
        read_page(page, site, path, ready)  # the page as its script fills it in (dialogs and simulator open)
        problems[path] = violations(page)
        if path in DIALOGS:
            page.click(DIALOGS[path])
            page.wait_for_selector("dialog[open]")
            problems[f"{path} (dialog)"] = violations(page)
    found = {path: lines for path, lines in problems.items() if lines}
    assert found == {}, "\n".join(f"{path}:\n  " + "\n  ".join(lines) for path, lines in found.items())
