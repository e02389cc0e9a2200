"""The menu editor: drafts, validation, graph, simulator, publish, rollback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint

if TYPE_CHECKING:
    from hotline.app import Hotline


def create_menus_web(hotline: Hotline) -> Blueprint:
    return Blueprint("menus_web", __name__)
