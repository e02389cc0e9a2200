"""The recordings behind short-lived signed links (pages under /admin or /agent, JSON under /api)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint

if TYPE_CHECKING:
    from hotline.app import Hotline


def create_recordings_web(hotline: Hotline) -> Blueprint:
    return Blueprint("recordings_web", __name__)
