"""The reports page with charts (pages under /admin or /agent, JSON under /api)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint

if TYPE_CHECKING:
    from hotline.app import Hotline


def create_reports_web(hotline: Hotline) -> Blueprint:
    return Blueprint("reports_web", __name__)
