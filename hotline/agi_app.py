"""The FastAGI side of the composition root: routes for the published menus, served in threads."""

from __future__ import annotations

import logging
import signal
import sys

from agi_scripts.agent_login import agent_login
from agi_scripts.agi import HotlineAGI
from agi_scripts.exceptions import AgiHangup
from agi_scripts.gate import Admission
from agi_scripts.hold import HoldDeps, agent_answered
from agi_scripts.ivr_call import IvrDeps, record_failed_call, run_ivr_call, transfer_to_queue
from agi_scripts.server import FastAgiServer, Handler, Routes
from calls.menus import MenuNotFound
from complaints.recording_links import record_recording
from hotline.app import Hotline, conversation_keeper
from hotline.settings import Settings
from recordings.prompts import render_wav
from recordings.spool import RecordingSpool
from routing.leases import LeaseKeeper
from store.db import UNAVAILABLE
from store.secret_files import made_installation_secret
from workers.asterisk_control import consult_channel_id

log = logging.getLogger(__name__)

ANSWERED_SCRIPT, LOGIN_SCRIPT, SURVEY_SCRIPT = "agent-answered", "agent-login", "survey"
CONSULT_ENDED_SCRIPT = "consult-ended"
"""Script names the dialplan (asterisk_conf/) and the AMI dialers call."""


def ivr_deps(hotline: Hotline) -> IvrDeps:
    recordings_dir = hotline.settings.recordings_dir
    spool = RecordingSpool(
        recordings_dir / "spool", hotline.recordings,
        on_saved=lambda meta: record_recording(hotline.sql, meta, hotline.desk.pending),
    )
    return IvrDeps(hotline.engine, hotline.menus, hotline.events, spool, recordings_dir / "prompts", render_wav,
                   hold=hold_deps(hotline), play_timeout_s=hotline.settings.agi_play_timeout_s,
                   sessions=hotline.sessions)


def hold_deps(hotline: Hotline) -> HoldDeps:
    s = hotline.settings
    poll_s = 1.0
    # Blocking reads get their own pooled connections: the shared client is one locked connection.
    waiting = hotline.redis_clients.blocking(poll_s + 2)
    return HoldDeps(
        hotline.router, hotline.agents, hotline.connector, LeaseKeeper(hotline.router), waiting,
        announce_every_s=s.hold_announce_every_s, max_wait_s=s.hold_max_wait_s, poll_s=poll_s,
        recorded=conversation_keeper(hotline),
    )


def build_routes(hotline: Hotline) -> Routes:
    """``agi://host:port/<menu>`` runs that menu: any published one, also those published after start."""
    deps = ivr_deps(hotline)

    def ivr(agi: HotlineAGI, script: str, query: dict[str, list[str]]) -> None:
        run_ivr_call(agi, deps, script)

    def answered(agi: HotlineAGI, script: str, query: dict[str, list[str]]) -> None:
        agent_answered(agi, hotline.router, query, hotline.router.lease_s)

    def login(agi: HotlineAGI, script: str, query: dict[str, list[str]]) -> None:
        agent_login(agi, hotline.agents, hotline.router, query)

    def queue(agi: HotlineAGI, script: str, query: dict[str, list[str]]) -> None:
        transfer_to_queue(agi, deps, hotline.menus.live(hotline.settings.menu_name), query)

    def consult_ended(agi: HotlineAGI, script: str, query: dict[str, list[str]]) -> None:
        # The h extension of hotline-consult: a warm transfer's target hung up before the hand-over. Only from
        # the consultation's own channel (its uniqueid is the call's consult id).
        call_id = (query.get("call") or [""])[0][:64]
        if not call_id or agi.env.get("agi_uniqueid") != consult_channel_id(call_id):
            log.warning("consult-ended refused: channel %r is not the consultation of call %r",
                        agi.env.get("agi_uniqueid", "?")[:64], call_id)
            return
        released = hotline.router.release_consult(call_id)
        if released is not None:
            hotline.router.note_hold(call_id, True)  # the caller still hears the music: the console shows Resume
            log.info("call %s: %s hung up during the consultation: released", call_id, released.agent_id)
            hotline.connector.connect(released.offers)  # a Twilio caller waiting for them (Asterisk's dial themselves)

    def survey(agi: HotlineAGI, script: str, query: dict[str, list[str]]) -> None:
        # AMI Originate of a return visit, answered: hotline-outbound runs
        # survey?visit=<id>&attempt=<n>&token=<the dial's one-time token>.
        visit, attempt = _row_id(query, "visit"), _row_id(query, "attempt")
        token = (query.get("token") or [""])[0]
        call_id = agi.env.get("agi_uniqueid", "?")
        if visit is None or attempt is None or not token:
            log.warning("call %s: survey refused: no usable visit, attempt and token (%r, %r): hanging up",
                        call_id, (query.get("visit") or [""])[0][:24], (query.get("attempt") or [""])[0][:24])
            return
        try:
            allowed = hotline.visits.start_survey(visit, attempt, token)
        except UNAVAILABLE:
            log.warning("call %s: survey of return visit %d not run: database unavailable", call_id, visit)
            return
        if not allowed:
            log.warning("call %s: survey refused: return visit %d attempt %d is not being dialled with that "
                        "token (unknown, used or expired): hanging up", call_id, visit, attempt)
            return
        try:
            run_ivr_call(agi, deps, hotline.settings.survey_menu, (("visit", str(visit)),), direction="outbound")
        finally:
            try:
                hotline.visits.call_ended(visit)
            except UNAVAILABLE:  # the visits' sweep ends it once the database is back
                log.warning("return visit %s: end not written, database unavailable", visit)

    def published_menu(name: str) -> Handler | None:
        # live() is one Redis GET and a cached parse: no SQL query on every call's route lookup.
        try:
            hotline.menus.live(name)
        except MenuNotFound:
            return None
        return ivr

    routes = Routes(fallback=published_menu)
    routes.register(ANSWERED_SCRIPT, answered)
    routes.register(LOGIN_SCRIPT, login)
    routes.register("queue", queue)
    routes.register(SURVEY_SCRIPT, survey)
    routes.register(CONSULT_ENDED_SCRIPT, consult_ended)
    return routes


MAX_ROW_ID = 2**31 - 1
"""The largest id an Integer column holds (PostgreSQL: 32 bits): a bigger one is refused here, not by an
OverflowError (SQLite) or an out-of-range error (PostgreSQL)."""


def _row_id(query: dict[str, list[str]], name: str) -> int | None:
    value = (query.get(name) or [""])[0]
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or not 0 < int(value) <= MAX_ROW_ID:
        return None
    return int(value)


AGENT_LEG_SCRIPTS = frozenset({ANSWERED_SCRIPT, LOGIN_SCRIPT, CONSULT_ENDED_SCRIPT})
"""Scripts run on an agent's own channel: not a customer's call, so no call record of their own."""


def _record_failed_call(hotline: Hotline, script: str, env: dict[str, str]) -> None:
    if script not in AGENT_LEG_SCRIPTS:
        record_failed_call(hotline.events, env, outbound=script == SURVEY_SCRIPT)


AGI_SECRET_FILE = "agi_secret"


def agi_secret(settings: Settings) -> tuple[str, bool]:
    """The FastAGI shared secret (``HOTLINE_AGI_SECRET``, or one generated into the data folder at the first
    start and kept), and whether it was generated just now (then the operator is told once)."""
    if settings.agi_secret:
        return settings.agi_secret, False
    return made_installation_secret(settings.data_dir, AGI_SECRET_FILE, nbytes=32)


def create_agi_server(hotline: Hotline) -> FastAgiServer:
    s = hotline.settings
    secret, created = agi_secret(s)
    if created:  # the secret itself stays out of the log: `hotline agi-secret` shows it to whoever runs the hotline
        log.warning("FastAGI secret generated into %s: put it in the dialplan (`hotline agi-secret` shows it); "
                    "calls without it are refused", s.data_dir / AGI_SECRET_FILE)
    admission = Admission(s.agi_max_connections, s.agi_max_per_peer, s.agi_max_unauthenticated,
                          evict_after_s=s.agi_env_timeout_s / 4)
    server = FastAgiServer((s.agi_host, s.agi_port), build_routes(hotline), s.agi_env_timeout_s,
                           on_failure=lambda script, env: _record_failed_call(hotline, script, env),
                           secret=secret, admission=admission)
    log.info("FastAGI on %s:%d, scripts: agi://%s:%d/%s", s.agi_host, server.server_address[1],
             s.agi_host, server.server_address[1], s.menu_name)
    return server


def run_plain_agi(menu_name: str | None = None) -> None:
    """``AGI(hotline-agi)`` (the launcher runs ``hotline.plain_agi``): one call over stdin/stdout, then exit."""
    from hotline.app import build_hotline

    settings = Settings()
    if not settings.redis_url:  # the local redis-server `hotline up` started, found through its data folder
        from store.redis_server import running_local_redis

        url = running_local_redis(settings.data_dir)
        if url:
            settings = settings.model_copy(update={"redis_url": url})
    agi = HotlineAGI(sys.stdin, sys.stdout)
    signal.signal(signal.SIGHUP, agi.note_sighup)
    try:
        run_ivr_call(agi, ivr_deps(build_hotline(settings)), menu_name or settings.menu_name)
    except AgiHangup:
        pass
