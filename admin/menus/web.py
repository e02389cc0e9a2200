"""The menu editor: drafts, validation, graph, simulator, publish, rollback (pages under /admin/menus)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Blueprint, abort, render_template

from admin.access import allow
from admin.menus.api import add_menu_api
from admin.menus.drafts import MenuDrafts
from admin.menus.lifecycle import MenuEditor
from admin.menus.try_it import DryRunServices, Simulator
from bank.core_banking import DemoBank
from calls.menus import MenuNotFound
from ivr.services import BusinessHours

if TYPE_CHECKING:
    from hotline.app import Hotline


def create_menus_web(hotline: Hotline) -> Blueprint:
    bp = Blueprint("menus_web", __name__)
    editor = MenuEditor(hotline.menus, MenuDrafts(hotline.sql), hotline.audit, hotline.jobs)
    add_menu_api(bp, editor, Simulator(hotline.redis, _dry_run_services(hotline)))

    @bp.get("/admin/menus")
    @allow("admin")
    def menus_page() -> str:
        return render_template("menus.html", menus=[editor.summary(name) for name in editor.names()])

    @bp.get("/admin/menus/<name>")
    @allow("admin")
    def editor_page(name: str) -> str:
        try:
            menu = editor.summary(name)
        except MenuNotFound:
            abort(404)
        return render_template("menu_editor.html", menu=menu)

    return bp


def _dry_run_services(hotline: Hotline) -> Callable[[], DryRunServices]:
    """A fresh dry-run table per simulated step; the bank reads only the demo cards, never a real core."""
    s = hotline.settings
    bank = DemoBank(hotline.sql)
    hours = BusinessHours(s.timezone, s.business_opens, s.business_closes)
    return lambda: DryRunServices(bank, hours, hotline.visits)
