"""The menu editor in a real browser: edit, see the problem at its line, fix it, try it, publish, call, roll back."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from calls.menus import DEFAULT_MENU_FILE
from hotline.app import Hotline
from ivr.loader import load_menu_file
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_caller import TwilioCaller
from tests.web import add_user, browser_login

DEFAULT = DEFAULT_MENU_FILE.read_text(encoding="utf-8")
OLD_MAIN = "查询余额和卡片状态请按1，挂失请按2，投诉请按3，人工服务请按0。"
NEW_MAIN = "新菜单：查询余额请按1，挂失请按2，投诉请按3，咨询理财请按4，人工服务请按0。"
OPTIONS = '      "3": complaint_category\n'


def log_in(page: Any, site: str, name: str) -> None:
    browser_login(page, site, name, "/admin/**")


def new_call(client: Any) -> TwilioCaller:
    call = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL)
    call.dial()
    return call


def test_an_admin_edits_tries_publishes_and_rolls_back_the_menu(hotline: Hotline, site: str, page: Any,
                                                                client: Any) -> None:
    add_user(hotline, "ada", "admin")
    log_in(page, site, "ada")
    page.goto(f"{site}/admin/menus")
    page.click("#menus a:text('hotline')")
    expect(page.locator("#check-status")).to_have_text("valid")
    expect(page.locator("#status")).to_contain_text("Live: version 1")

    # A new prompt and a key 4 that points at a node nobody wrote yet.
    typo = DEFAULT.replace(OLD_MAIN, NEW_MAIN).replace(OPTIONS, OPTIONS + '      "4": wealth_desk\n')
    page.fill("#source", typo)
    expect(page.locator("#check-status")).to_have_text("1 problem")
    line = next(n for n, text in enumerate(typo.splitlines(), 1) if "wealth_desk" in text)
    problem = page.locator("#problems button.problem")
    expect(problem).to_have_text(f"node main · line {line} unknown target 'wealth_desk' for key 4")
    expect(page.locator("#publish")).to_be_disabled()
    problem.click()
    selected = page.evaluate("() => { const s = document.getElementById('source');"
                             " return s.value.slice(s.selectionStart, s.selectionEnd); }")
    assert selected == '      "4": wealth_desk'
    expect(page.locator("#gutter b")).to_have_text(str(line))

    page.fill("#source", typo.replace("wealth_desk", "agent_general"))
    expect(page.locator("#check-status")).to_have_text("valid")
    expect(page.locator("#problems")).to_have_text("none")
    page.wait_for_function("() => window.menuGraph && window.menuGraph.edges('[source = \"main\"]')"
                           ".some(e => e.data('label') === 'key 4' && e.data('target') === 'agent_general')")
    # every node of the default menu is drawn (one per node: the graph is the menu, not a picture of it)
    assert page.evaluate("() => window.menuGraph.nodes().length") == len(load_menu_file(DEFAULT_MENU_FILE).nodes)
    assert page.evaluate("() => window.menuGraph.$id('main').data('label')").startswith("main\nmenu\n新菜单")

    # TRY IT: the draft, not the live menu, and nothing queued for real.
    page.click("#sim-call")
    expect(page.locator("#sim-screen")).to_contain_text(NEW_MAIN)
    page.click("#keypad .key[data-key='4']")
    expect(page.locator("#sim-screen")).to_have_text("正在为您转接人工服务，请稍候。")
    expect(page.locator("#sim-path")).to_contain_text("main key 4")
    expect(page.locator("#sim-effects")).to_contain_text("would queue the call for general")
    page.click("#sim-hangup")
    expect(page.locator("#sim-waiting")).to_contain_text("call ended (abandoned)")
    assert hotline.menus.live_version("hotline") == 1
    assert OLD_MAIN in new_call(client).said()

    page.click("#publish")  # asks first, with what would change in the live menu
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-title")).to_have_text("Publish this draft?")
    expect(page.locator("#confirm-diff .del")).to_have_text(f"-      zh-CN: {OLD_MAIN}")
    expect(page.locator("#confirm-diff")).to_contain_text(f"+      zh-CN: {NEW_MAIN}")
    page.click("#confirm-cancel")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert hotline.menus.live_version("hotline") == 1  # cancelled: nothing went live
    page.click("#publish")
    page.click("#confirm-go")
    expect(page.locator("#message")).to_contain_text("Version 2 is live")
    expect(page.locator("#versions tr[data-version='2']")).to_contain_text("live")
    expect(page.locator("#last-diff")).to_contain_text(f"+      zh-CN: {NEW_MAIN}")
    assert NEW_MAIN in new_call(client).said()

    page.click("#rollback-1")
    expect(page.locator("#confirm-title")).to_have_text("Roll back to v1?")
    expect(page.locator("#confirm-what")).to_contain_text("Changes against the live version 2:")
    expect(page.locator("#confirm-diff .del")).to_have_text([f"-      zh-CN: {NEW_MAIN}", '-      "4": agent_general'])
    expect(page.locator("#confirm-diff .add").last).to_have_text(f"+      zh-CN: {OLD_MAIN}")
    page.click("#confirm-go")
    expect(page.locator("#message")).to_contain_text("Version 1 is live again as version 3")
    expect(page.locator("#versions tr[data-version='3']")).to_contain_text("ada")
    expect(page.locator("#versions tr[data-version='3'] .tag.rollback")).to_have_text("rollback to v1")
    expect(page.locator("#versions tr[data-version='2'] .tag.rollback")).to_have_count(0)
    expect(page.locator("#source")).to_have_value(DEFAULT)  # nothing unsaved: the editor shows what is live
    heard = new_call(client).said()
    assert OLD_MAIN in heard and NEW_MAIN not in heard
    (entry,) = hotline.audit.entries(action="menu_rolled_back")
    assert (entry["actor"], entry["detail"]["version"]) == ("ada", 3)


def test_a_saved_draft_is_there_after_a_reload_and_supervisors_are_kept_out(hotline: Hotline, site: str,
                                                                            page: Any, browser: Any) -> None:
    add_user(hotline, "ada", "admin")
    add_user(hotline, "sue", "supervisor")
    log_in(page, site, "ada")
    page.goto(f"{site}/admin/menus/hotline")
    expect(page.locator("#check-status")).to_have_text("valid")
    page.fill("#source", DEFAULT.replace(OLD_MAIN, NEW_MAIN))
    expect(page.locator("#dirty")).to_be_visible()
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("Draft saved by ada")
    page.reload()
    expect(page.locator("#source")).to_have_value(DEFAULT.replace(OLD_MAIN, NEW_MAIN))
    expect(page.locator("#dirty")).to_be_hidden()
    page.goto(f"{site}/admin/menus")
    expect(page.locator("#menus tr[data-menu='hotline']")).to_contain_text("draft by ada from v1")

    other = browser.new_context().new_page()
    log_in(other, site, "sue")
    assert other.locator("header nav a:text('Menus')").count() == 0
    assert other.goto(f"{site}/admin/menus/hotline").status == 403
    other.context.close()


def test_the_keyboard_leaves_the_yaml_editor_with_esc_then_tab(hotline: Hotline, site: str, page: Any) -> None:
    add_user(hotline, "ada", "admin")
    log_in(page, site, "ada")
    page.goto(f"{site}/admin/menus/hotline")
    expect(page.locator("#check-status")).to_have_text("valid")
    page.focus("#source")
    page.evaluate("() => document.getElementById('source').setSelectionRange(0, 0)")
    page.keyboard.press("Tab")  # indents, and stays
    focused = "() => document.activeElement && document.activeElement.id"
    assert page.evaluate(focused) == "source"
    assert page.input_value("#source").startswith("  # The default bank hotline")
    page.keyboard.press("Shift+Tab")  # takes the indent away, and stays
    assert page.evaluate(focused) == "source"
    assert page.input_value("#source") == DEFAULT
    expect(page.locator("#source-help")).to_contain_text("press Esc, then Tab")
    assert page.get_attribute("#source", "aria-describedby") == "source-help"

    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert page.evaluate(focused) not in ("source", None, "")
    assert page.input_value("#source") == DEFAULT  # nothing typed on the way out
    page.focus("#source")
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(focused) == "publish"  # the toolbar's last button, before the editor
    page.focus("#source")
    page.keyboard.press("Tab")  # Esc counts for the next key only
    assert page.evaluate(focused) == "source"


def test_the_menu_graph_is_readable_and_zooms_with_buttons_and_keys(hotline: Hotline, site: str,
                                                                     page: Any) -> None:
    add_user(hotline, "ada", "admin")
    log_in(page, site, "ada")
    page.goto(f"{site}/admin/menus/hotline")
    page.wait_for_function("() => window.menuGraph && window.menuGraph.nodes().length > 0")
    zoom = "() => window.menuGraph.zoom()"
    label_px = "() => parseFloat(window.menuGraph.$id('main').style('font-size')) * window.menuGraph.zoom()"
    assert page.evaluate(label_px) >= 12  # was 5 px: the whole menu squeezed into the box
    # the start of the call is on screen: the top node is inside the graph's box
    assert page.evaluate("""() => { const g = window.menuGraph; const top = g.nodes().min((n) => n.position('y')).ele;
        const p = top.renderedPosition(); return p.x > 0 && p.x < g.width() && p.y > 0 && p.y < g.height(); }""")
    fitted = page.evaluate(zoom)

    page.click("#zoom-in")
    assert page.evaluate(zoom) == pytest.approx(fitted * 1.25)
    expect(page.locator("#zoom-level")).to_have_text(f"{round(fitted * 125)}%")
    page.click("#zoom-out")
    page.click("#zoom-out")
    assert page.evaluate(zoom) == pytest.approx(fitted / 1.25)
    page.click("#zoom-fit")
    assert page.evaluate(zoom) == pytest.approx(fitted)

    page.focus("#graph")
    page.keyboard.press("+")
    page.keyboard.press("+")
    assert page.evaluate(zoom) == pytest.approx(fitted * 1.25 ** 2)
    page.keyboard.press("-")
    assert page.evaluate(zoom) == pytest.approx(fitted * 1.25)
    page.keyboard.press("0")
    assert page.evaluate(zoom) == pytest.approx(fitted)
    expect(page.locator("#graph-help")).to_contain_text("+ zooms in")
