"""The pages' languages: every page, in Chromium, in zh-CN (the default) and en-US, as each role sees it, with
no text left in the other language; the switch on every page and the choice kept with the account; times in
HOTLINE_TIMEZONE in one format; the catalogues complete and compiled."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from admin.i18n import TRANSLATIONS
from hotline.app import Hotline
from hotline.settings import Settings
from ivr.services import CallInfo, PinCard
from routing.agents import Agent
from tests.test_browser_menus import DEFAULT, OPTIONS
from tests.web import SessionClient, add_user, browser_login

REPO = Path(__file__).resolve().parents[1]
ZH_DIR = TRANSLATIONS / "zh_Hans_CN" / "LC_MESSAGES"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z_]*[A-Za-z]")
ALLOWED_LATIN = {
    # names no Chinese page translates, the timezone, examples of what to type
    "hotline", "IVR", "CSV", "YAML", "PIN", "Asia", "Shanghai", "zh", "CN", "en", "US", "PJSIP", "client", "alice",
    "boss", "sue", "ann", "Ann", "Li", "Bob", "bob",  # the people the tests make, named in their rows' labels
}
DATA = re.compile(r"hotline \(default menu\)|\bmain\b|(?<![\w])/[\w/.-]+|\b\w+(?:\.\w+)+\b|“[^”]*”")
"""Values inside translated sentences: the default menu's publisher, its first node, addresses, the menu's
service names (``clock.business_hours``) and quoted results."""
RAW_TIMES = re.compile(r"\d{4}-\d\d-\d\dT\d\d:|\d{1,2}/\d{1,2}/\d{4}|\b(AM|PM|UTC)\b")
"""What the pages wrote before: raw ISO 8601, the browser's locale, UTC hours."""

VISIBLE_TEXT = """() => {
  const ignored = (el) => el.closest('[translate="no"], #language, script, style, textarea, pre, code, template');
  const texts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    const text = node.textContent.trim();
    if (!text || !parent || ignored(parent)) continue;
    const shown = parent.closest("select") || parent;
    if (shown.checkVisibility()) texts.push(text);
  }
  for (const el of document.querySelectorAll("[placeholder], [aria-label], [title]")) {
    if (el.closest('[translate="no"], #language') || !el.checkVisibility()) continue;
    for (const name of ["placeholder", "aria-label", "title"]) if (el.getAttribute(name)) texts.push(el.getAttribute(name));
  }
  // The charts draw on a canvas: their labels are read from Chart.js.
  for (const canvas of document.querySelectorAll("canvas")) {
    const chart = window.Chart && Chart.getChart(canvas);
    if (!chart) continue;
    texts.push(...chart.data.labels.map(String).filter((l) => /\\D/.test(l) && !/^\\d{4}-W\\d\\d$/.test(l)));
    texts.push(...chart.data.datasets.map((d) => d.label));
  }
  return texts;
}"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The installation's default: zh-CN (the other tests choose en-US)."""
    return settings.model_copy(update={"ui_language": "zh-CN"})


@pytest.fixture
def floor(hotline: Hotline) -> dict[str, str]:
    """Users of each role, an agent, a work order with a trail, a card counting PIN failures."""
    add_user(hotline, "boss", "admin")
    add_user(hotline, "sue", "supervisor")
    hotline.agents.put(Agent("ann", "Ann Li", "client:ann", {"general": 5}, ["zh-CN"]))
    add_user(hotline, "ann", "agent")
    number = hotline.desk.open_work_order(CallInfo("CA-1", "+8613812345678", "twilio", "zh-CN"), "fees", "RE-1")
    hotline.desk.act(number, "assign", "boss", assignee="sue")
    pins = hotline.pin_locks
    pins.check(PinCard(pins.card_key("6222021234567894"), "6222 **** **** 7894"),
               CallInfo("CA-2", "+8613812345678", "twilio", "zh-CN"), lambda: False)
    return {"work_order": number}


def walk(role: str, number: str) -> list[tuple[str, str | None]]:
    """(path, a selector that shows the page's script has filled it in) for every page of ``role``."""
    if role == "agent":
        return [("/agent", "#state[data-state]"), ("/agent/evaluations", None), ("/account/password", None)]
    pages: list[tuple[str, str | None]] = [
        ("/admin/agents", "#agents tbody tr[id^='agent-']"),
        ("/admin/dashboard", "body[data-ready='1']"),
        ("/admin/reports", "body[data-ready]"),
        ("/admin/work-orders", None),
        (f"/admin/work-orders/{number}", None),
        ("/admin/pin-locks", None),
        ("/admin/hours", None),
        ("/admin/quality", None),
        ("/admin/quality/scorecards", None),
        ("/account/password", None),
        ("/admin/nowhere", None),
    ]
    if role == "admin":
        pages += [("/admin/menus", None), ("/admin/menus/hotline", "#versions tbody tr[data-version]"),
                  ("/admin/users", "#users tbody tr[data-user]"), ("/admin/audit", None),
                  ("/admin/quality/forms", None)]
    return pages


def untranslated(language: str, texts: list[str]) -> list[str]:
    if language == "zh-CN":
        return [t for t in texts
                if any(w not in ALLOWED_LATIN and "_" not in w for w in LATIN_WORD.findall(DATA.sub("", t)))]
    return [t for t in texts if CJK.search(t)]


def read_page(page: Any, site: str, path: str, ready: str | None) -> list[str]:
    page.goto(f"{site}{path}")
    if ready:
        page.wait_for_selector(ready, state="attached")
    if path == "/admin/menus/hotline":  # the simulator's texts too
        page.wait_for_selector("#check-status.good")
        page.click("#sim-call")
        page.wait_for_selector("#sim-waiting:not(:empty)")
    if path == "/admin/dashboard":  # an agent's row, and the dialog that changes their state
        page.click("#agent-rows tr[data-agent='ann'] button.change")
        page.wait_for_selector("#state-dialog[open]")
    texts: list[str] = page.evaluate(VISIBLE_TEXT)
    return texts


def choose(page: Any, language: str) -> None:
    page.click("#language-zh" if language == "zh-CN" else "#language-en")
    page.wait_for_selector(f"body[data-language='{language}']")


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
@pytest.mark.parametrize("role,name", [("admin", "boss"), ("supervisor", "sue"), ("agent", "ann")])
def test_every_page_speaks_one_language(hotline: Hotline, floor: dict[str, str], site: str, page: Any,
                                        role: str, name: str, language: str) -> None:
    page.goto(f"{site}/login")
    assert page.get_attribute("html", "lang") == "zh-CN"  # nobody chose yet: the installation's default
    if language != "zh-CN":
        choose(page, language)
    problems: dict[str, list[str]] = {}
    login_texts = page.evaluate(VISIBLE_TEXT)
    if untranslated(language, login_texts):
        problems["/login"] = untranslated(language, login_texts)
    browser_login(page, site, name)
    for path, ready in walk(role, floor["work_order"]):
        texts = read_page(page, site, path, ready)
        assert page.get_attribute("html", "lang") == language, path
        wrong = untranslated(language, texts) + [t for t in texts if RAW_TIMES.search(t)]
        if wrong:
            problems[path] = wrong
    assert problems == {}


def test_the_choice_is_kept_with_the_account_and_times_are_in_the_timezone(
        hotline: Hotline, floor: dict[str, str], site: str, page: Any, browser: Any) -> None:
    browser_login(page, site, "sue")
    page.goto(f"{site}/admin/work-orders")
    assert page.inner_text("h1") == "工单"
    choose(page, "en-US")
    assert page.inner_text("h1") == "Work orders" and page.url == f"{site}/admin/work-orders"
    assert hotline.accounts.get("sue").language == "en-US"  # type: ignore[union-attr]

    created = dt.datetime.fromisoformat(hotline.desk.show(floor["work_order"])["created_at"])
    shanghai = created.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    row = page.locator(f"tr[data-number='{floor['work_order']}'] td")
    assert row.nth(6).inner_text() == shanghai
    page.goto(f"{site}/admin/work-orders/{floor['work_order']}")
    assert page.locator("#trail tbody td").first.inner_text()[:10] == shanghai[:10]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page.locator("#trail tbody td").first.inner_text())

    other = browser.new_context()  # another browser: the account's choice, not this browser's, decides
    try:
        second = other.new_page()
        second.goto(f"{site}/login")
        assert second.get_attribute("html", "lang") == "zh-CN"
        browser_login(second, site, "sue")
        assert second.get_attribute("html", "lang") == "en-US" and second.inner_text("nav").startswith("Agents")
        second.goto(f"{site}/admin/dashboard")
        second.wait_for_selector("body[data-ready='1']")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", second.inner_text("#as-of"))
    finally:
        other.close()


def test_the_api_answers_in_the_callers_language(hotline: Hotline, floor: dict[str, str], app: Any) -> None:
    boss = SessionClient(app.test_client(), "boss")
    refused = boss("POST", "/api/users", {"name": "x y", "role": "supervisor", "password": "a long enough one"})
    assert refused.status_code == 400 and refused.get_json()["error"].startswith("用户名 'x y' 无效")
    too_high = {"name": "Ann Li", "endpoint": "client:ann", "skills": {"general": 11}, "languages": ["zh-CN"]}
    refused = boss("PUT", "/api/agents/ann", too_high)  # the router's refusal, translated on its way out
    assert (refused.status_code, refused.get_json()["error"]) == (400, "坐席 ann：技能 general 的等级 11 不在 1-10 之间")
    typo = {"source": DEFAULT.replace(OPTIONS, OPTIONS + '      "4": wealth_desk\n')}
    (problem,) = boss("POST", "/api/menus/hotline/check", typo).get_json()["problems"]  # the validator's sentence
    assert (problem["node"], problem["reason"]) == ("main", "key 4 指向未知目标 'wealth_desk'") and problem["line"]
    hotline.accounts.set_language(hotline.accounts.get("boss").id, "en-US")  # type: ignore[union-attr]
    refused = boss("POST", "/api/users", {"name": "x y", "role": "supervisor", "password": "a long enough one"})
    assert refused.get_json()["error"].startswith("user name 'x y': use 1-64 letters")
    assert boss("PUT", "/api/agents/ann", too_high).get_json()["error"] == "agent ann: skill general level 11 is not 1-10"
    (problem,) = boss("POST", "/api/menus/hotline/check", typo).get_json()["problems"]
    assert problem["reason"] == "unknown target 'wealth_desk' for key 4"


def test_the_switch_sends_back_only_to_this_site(app: Any, hotline: Hotline) -> None:
    client = app.test_client()
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").get_data(as_text=True))
    assert token
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example"):
        moved = client.post("/language", data={"language": "en-US", "next": target, "csrf_token": token.group(1)})
        assert moved.status_code == 302 and moved.headers["Location"] == "/"
    assert "Log in" in client.get("/login").get_data(as_text=True)  # the choice holds before logging in
    forged = client.post("/language", data={"language": "zh-CN", "next": "/login"})  # from another site
    assert forged.status_code == 400 and "Log in" in client.get("/login").get_data(as_text=True)


def _code_messages(config: str) -> set[str]:
    method_map = [("admin/**.py", "python"), ("admin/templates/**.html", "jinja2")] if config == "messages" \
        else [("admin/static/*.js", "javascript")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(REPO), method_map, keywords=keywords):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _key(msgid: str | tuple[str, ...] | list[str]) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


def _text(msgstr: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (msgstr,) if isinstance(msgstr, str) else tuple(msgstr)


@pytest.mark.parametrize("domain", ["messages", "js"])
def test_every_message_of_the_code_has_a_compiled_zh_cn_translation(domain: str) -> None:
    with open(ZH_DIR / f"{domain}.po", "rb") as po:
        catalogue = {_key(m.id): m for m in read_po(po) if m.id}
    missing = [m for m in _code_messages(domain) if m not in catalogue or not catalogue[m].string
               or catalogue[m].fuzzy]
    assert missing == [], "run ./scripts/translations, translate these, then ./scripts/translations compile"
    with open(ZH_DIR / f"{domain}.mo", "rb") as mo:
        compiled = {_key(m.id): _text(m.string) for m in read_mo(mo) if m.id}
    assert compiled == {key: _text(m.string) for key, m in catalogue.items()}, \
        "the .mo is older than its .po: ./scripts/translations compile"
