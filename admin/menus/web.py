"""The menu editor: drafts, validation, graph, simulator, publish, rollback (pages under /admin/menus)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, render_template
from sqlalchemy.orm import Session, sessionmaker

from admin.access import allow
from admin.menus.api import add_menu_api
from admin.menus.lifecycle import MenuEditor
from admin.menus.try_it import DryRunServices, Simulator
from bank.core_banking import DemoBank
from calls.menus import MenuNotFound
from ivr.services import OpeningClock, ReturnVisitDesk


def create_menus_web(editor: MenuEditor, simulator: Simulator) -> Blueprint:
    bp = Blueprint("menus_web", __name__)
    add_menu_api(bp, editor, simulator)

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


def dry_run_services(sql: sessionmaker[Session], hours: OpeningClock, visits: ReturnVisitDesk | None,
                     card_secret: str) -> Callable[[], DryRunServices]:
    """A fresh dry-run table per simulated step; the bank reads only the demo cards, never a real core."""
    bank = DemoBank(sql, card_secret)
    return lambda: DryRunServices(bank, hours, visits)
