"""The agents and skills pages (pages under /admin or /agent, JSON under /api)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint

if TYPE_CHECKING:
    from hotline.app import Hotline


def create_agents_web(hotline: Hotline) -> Blueprint:
    return Blueprint("agents_web", __name__)
