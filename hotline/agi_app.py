"""The FastAGI side of the composition root: routes for the published menus, served in threads."""

from __future__ import annotations

import logging
import signal
import sys

from agi_scripts.agi import HotlineAGI
from agi_scripts.exceptions import AgiHangup
from agi_scripts.ivr_call import IvrDeps, run_ivr_call
from agi_scripts.server import FastAgiServer, Handler, Routes
from hotline.app import Hotline, record_recording
from hotline.menus import MenuNotFound
from recordings.prompts import render_wav
from recordings.spool import RecordingSpool

log = logging.getLogger(__name__)


def ivr_deps(hotline: Hotline) -> IvrDeps:
    recordings_dir = hotline.settings.recordings_dir
    spool = RecordingSpool(
        recordings_dir / "spool", hotline.recordings, on_saved=lambda meta: record_recording(hotline.sql, meta)
    )
    return IvrDeps(hotline.engine, hotline.menus, hotline.events, spool, recordings_dir / "prompts", render_wav,
                   hotline.settings.agi_play_timeout_s)


def build_routes(hotline: Hotline) -> Routes:
    """``agi://host:port/<menu>`` runs that menu: any published one, also those published after start."""
    deps = ivr_deps(hotline)

    def ivr(agi: HotlineAGI, script: str, query: dict[str, list[str]]) -> None:
        run_ivr_call(agi, deps, script)

    def published_menu(name: str) -> Handler | None:
        # live() is one Redis GET and a cached parse: no SQL query on every call's route lookup.
        try:
            hotline.menus.live(name)
        except MenuNotFound:
            return None
        return ivr

    return Routes(fallback=published_menu)


def create_agi_server(hotline: Hotline) -> FastAgiServer:
    s = hotline.settings
    server = FastAgiServer((s.agi_host, s.agi_port), build_routes(hotline), s.agi_env_timeout_s)
    log.info("FastAGI on %s:%d, scripts: agi://%s:%d/%s", s.agi_host, server.server_address[1],
             s.agi_host, server.server_address[1], s.menu_name)
    return server


def run_plain_agi(menu_name: str | None = None) -> None:
    """``AGI(hotline_agi.py)``: one call over this process's stdin/stdout, then exit."""
    from hotline.app import build_hotline
    from hotline.settings import Settings

    settings = Settings()
    agi = HotlineAGI(sys.stdin, sys.stdout)
    signal.signal(signal.SIGHUP, agi.note_sighup)
    try:
        run_ivr_call(agi, ivr_deps(build_hotline(settings)), menu_name or settings.menu_name)
    except AgiHangup:
        pass
