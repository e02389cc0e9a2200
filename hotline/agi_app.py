"""The FastAGI side of the composition root: routes for the published menus, served in threads."""

from __future__ import annotations

import logging

from agi_scripts.agi import HotlineAGI
from agi_scripts.ivr_call import IvrDeps, run_ivr_call
from agi_scripts.server import FastAgiServer, Routes
from hotline.app import Hotline, record_recording
from recordings.spool import RecordingSpool

log = logging.getLogger(__name__)


def ivr_deps(hotline: Hotline) -> IvrDeps:
    recordings_dir = hotline.settings.recordings_dir
    spool = RecordingSpool(
        recordings_dir / "spool", hotline.recordings, on_saved=lambda meta: record_recording(hotline.sql, meta)
    )
    return IvrDeps(hotline.engine, hotline.menus, hotline.events, spool, recordings_dir / "prompts")


def build_routes(hotline: Hotline) -> Routes:
    """``agi://host:port/<menu>`` runs that menu; today the configured one."""
    deps = ivr_deps(hotline)
    routes = Routes()

    def ivr(agi: HotlineAGI, script: str, query: dict[str, list[str]]) -> None:
        run_ivr_call(agi, deps, script)

    routes.register(hotline.settings.menu_name, ivr)
    return routes


def create_agi_server(hotline: Hotline) -> FastAgiServer:
    s = hotline.settings
    server = FastAgiServer((s.agi_host, s.agi_port), build_routes(hotline), s.agi_env_timeout_s)
    log.info("FastAGI on %s:%d, scripts: agi://%s:%d/%s", s.agi_host, server.server_address[1],
             s.agi_host, server.server_address[1], s.menu_name)
    return server
