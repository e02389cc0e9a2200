"""The composition root: build every client and service once, hand them to the channels."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path

import redis
from flask import Blueprint, Flask, request
from rq import Queue
from sqlalchemy.orm import Session, sessionmaker

from admin.access import public
from admin.agents.api import create_api
from admin.agents.web import create_agents_web
from admin.audit import AuditLog
from admin.console.desk import Console, ConsoleDeps
from admin.console.web import create_console_web
from admin.hours.web import create_hours_web
from admin.live.board import LiveBoard
from admin.live.call_control import create_call_control_api
from admin.live.fanout import EVENT_FANOUT, EventFanout
from admin.live.monitor import create_monitor_api
from admin.live.sse import event_tail
from admin.live.web import create_live_web
from admin.menus.drafts import MenuDrafts
from admin.menus.lifecycle import MenuEditor
from admin.menus.try_it import Simulator
from admin.menus.web import create_menus_web, dry_run_services
from admin.pin_locks.web import create_pin_locks_web
from admin.quality.router_events import stream_reader
from admin.quality.web import QualityDeps, create_quality_web
from admin.recordings.pause import PauseDesk, RecordingSwitch, create_recording_pause_api
from admin.recordings.web import create_recordings_web
from admin.reports.api import create_reports_api
from admin.reports.web import create_reports_web
from admin.users.accounts import Accounts
from admin.users.login import create_auth_pages
from admin.users.throttle import LoginThrottle, ThrottleRules
from admin.users.web import create_users_web
from admin.web import finish_web, init_web
from admin.work_orders.api import create_complaints_api
from admin.work_orders.records_api import create_records_api
from admin.work_orders.web import create_work_orders_web
from bank.core_banking import DemoBank, HttpBank
from calls.answered_by import AnsweredByNotes
from calls.connector import AgentDialer, OfferConnector
from calls.control import CallControl
from calls.conversation_keeper import ConversationKeeper
from calls.conversations import Conversations
from calls.hours import HoursBook
from calls.menus import SURVEY_MENU_FILE, MenuRepository
from calls.pin_locks import PinLocks
from calls.pin_records import PinPolicy, PinRecords
from calls.sessions import SessionStore
from calls.tombstones import Tombstones
from complaints.calling_window import CallingWindow
from complaints.pending_writes import PendingWrites
from complaints.recording_links import record_recording, recording_known, work_order_for, work_order_of_call
from complaints.return_visits import OutcomesLater, ReturnVisits, VisitPolicy
from complaints.visit_calls import VisitDialer
from complaints.work_orders import WorkOrderDesk
from hotline.health import Readiness, readyz
from hotline.metrics_web import add_metrics
from hotline.settings import Settings
from ivr.engine import Engine
from ivr.services import KNOWN_SKILLS, CoreBanking, ServiceTable
from quality.evaluations import Evaluations
from quality.forms import FormBook
from quality.sampling import Sampler, SamplingRules
from recordings.store import RecordingStore
from recordings.twilio_fetch import PendingFetches, RecordingFetcher
from routing.agents import AgentRegistry
from routing.events import EventLog
from routing.keys import events_stream, router_prefix
from routing.router import Router
from store.cooperative import in_thread_if_gevent, reads_on_hub
from store.db import connect
from store.redis_clients import RedisClients
from store.redis_server import ensure_local_redis
from store.secret_files import installation_secret
from webhooks import TwilioConfig, create_blueprint
from webhooks.agent_legs import AgentLegConfig, TwilioAgentDialer
from webhooks.calls import ChannelConfig, TwilioCalls
from webhooks.conversation_recording import recording_params
from webhooks.fallbacks import FallbackConfig
from webhooks.hold import HoldConfig, TwilioHold
from workers.asterisk_control import AsteriskCallControl
from workers.dialers import AmiConfig, AmiVisitDialer, TwilioVisitConfig, TwilioVisitDialer
from workers.jobs import QUEUE, outcome_enqueuer, queue_deleter, recording_enqueuer, visit_enqueuer
from workers.recording_switch import AmiRecordingSwitch, TwilioRecordingSwitch
from workers.retention import Retention
from workers.twilio_control import TwilioCallControl, TwilioControlConfig
from workers.twilio_queues import TwilioQueues

MAX_WEBHOOK_BYTES = 64 * 1024
ADMIN_DIR = Path(__file__).resolve().parent.parent / "admin"


@dataclass
class Hotline:
    """Everything a process of the hotline shares, built once."""

    settings: Settings
    redis: redis.Redis
    redis_url: str
    redis_clients: RedisClients
    """Builds the process's other Redis clients (blocking reads, RQ) for any ``REDIS_URL`` mode."""
    sql: sessionmaker[Session]
    menus: MenuRepository
    engine: Engine
    sessions: SessionStore
    events: EventLog
    recordings: RecordingStore
    bank: CoreBanking
    router: Router
    agents: AgentRegistry
    connector: OfferConnector
    jobs: Queue
    desk: WorkOrderDesk
    visits: ReturnVisits
    retention: Retention
    accounts: Accounts
    audit: AuditLog
    recording_fetcher: RecordingFetcher
    twilio_queues: TwilioQueues | None
    """Deletes the per-caller Twilio queues; None without a Twilio account."""
    pin_locks: PinLocks
    """Wrong PINs per card across calls, channels and processes (both channels' ``bank.verify_pin``)."""
    hours: HoursBook
    """Opening hours per weekday and the holiday calendar (the admin's Hours page): inbound calls and return
    visits ask it."""
    forms: FormBook
    """The quality evaluation forms and their versions."""
    evaluations: Evaluations
    """The review queues, evaluations, calibration and the agents' answers."""
    sampler: Sampler
    """The sampling rules that fill the review queues (hourly job, the Quality page, ``hotline quality sample``)."""


def login_throttle(settings: Settings, client: redis.Redis) -> LoginThrottle:
    rules = ThrottleRules(pair_free=settings.login_free_tries, account_free=settings.login_account_free_tries,
                          address_free=settings.login_address_free_tries, max_wait_s=settings.login_max_wait_s)
    return LoginThrottle(client, settings.hotline_name, rules)


def build_hotline(settings: Settings) -> Hotline:
    redis_url = settings.redis_url or ensure_local_redis(settings.data_dir)[0]
    redis_clients = RedisClients(redis_url, settings.rq_redis_url, settings.redis_timeout_s)
    client = redis_clients.shared()
    sql = connect(settings.sql_url, settings.db_timeout_s)
    card_secret = card_secret_of(settings)
    bank: CoreBanking
    if settings.bank_url:
        bank = HttpBank(settings.bank_url, settings.bank_token, settings.bank_timeout_s)
    else:
        bank = DemoBank(sql, card_secret)
    hours = hours_book(settings, sql)
    events = EventLog(client, settings.data_dir / "spool", events_stream(settings.hotline_name))
    pin_policy = PinPolicy(settings.pin_max_failures, settings.pin_failure_window_s, settings.pin_lock_s)
    pin_locks = PinLocks(client, PinRecords(sql, pin_policy), events, card_secret, pin_policy)
    jobs = Queue(QUEUE, connection=redis_clients.jobs(settings.redis_timeout_s))
    desk = WorkOrderDesk(sql, events, settings.deadlines, pending=PendingWrites(client, events))
    visits = ReturnVisits(sql, desk, visit_policy(settings, hours.holidays), visit_enqueuer(jobs),
                          _visit_dialers(settings))
    recordings = RecordingStore(settings.recordings_dir, in_thread_if_gevent)  # fsyncs off the hub
    desk.on_recording_linked = recordings.link
    router = Router(
        client, settings.hotline_name, settings.queue_configs, lease_s=settings.router_lease_s,
        vip_boost=settings.vip_boost, utc_offset_s=settings.utc_offset_s,
        wrapup_max_s=settings.wrapup_max_s, wrapup_release=settings.wrapup_release,
    )
    services = ServiceTable(bank, desk, hours, visits,
                            staffing=router if settings.unstaffed_queues == "announce" else None, pins=pin_locks)
    forms = FormBook(sql)
    return Hotline(
        settings=settings, redis=client, redis_url=redis_url, redis_clients=redis_clients, sql=sql,
        menus=MenuRepository(sql, client),
        engine=Engine(services), sessions=SessionStore(client, settings.session_ttl_s), events=events,
        recordings=recordings, bank=bank, router=router,
        agents=AgentRegistry(router, sorted(KNOWN_SKILLS), settings.agent_sip_domains),
        connector=OfferConnector(_agent_dialers(settings, router)), jobs=jobs, desk=desk, visits=visits,
        retention=Retention(sql, recordings, dt.timedelta(days=settings.record_retention_days),
                            conversation_max_age=dt.timedelta(days=settings.conversation_retention_days)),
        accounts=Accounts(sql, login_throttle(settings, client)), audit=AuditLog(sql),
        recording_fetcher=_recording_fetcher(settings, client, sql, recordings, desk, jobs),
        twilio_queues=TwilioQueues(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base)
        if settings.twilio_account_sid and settings.twilio_auth_token else None,
        pin_locks=pin_locks, hours=hours, forms=forms, evaluations=Evaluations(sql, forms, settings.timezone),
        sampler=Sampler(sql, SamplingRules(settings.quality_share_percent, settings.quality_long_call_s),
                        settings.timezone),
    )


def conversations_of(hotline: Hotline) -> Conversations:
    """The agent conversations being recorded (Redis, under the router's prefix: one hash tag for a Cluster)."""
    return Conversations(hotline.redis, hotline.router.key(""))


def conversation_keeper(hotline: Hotline) -> ConversationKeeper:
    """Keeps Asterisk's MixMonitor files from the recordings spool, as ``RecordingSpool`` keeps complaints'."""
    sql = hotline.sql
    return ConversationKeeper(
        conversations_of(hotline), hotline.settings.recordings_dir / "spool", hotline.recordings,
        on_saved=lambda meta: record_recording(sql, meta, hotline.desk.pending),
        work_order_for_call=lambda call_id: work_order_of_call(sql, call_id),
    )


def hours_book(settings: Settings, sql: sessionmaker[Session]) -> HoursBook:
    """The admin's calendar; the settings' hours and holidays until the admin first saves it."""
    return HoursBook(sql, settings.timezone, settings.business_opens, settings.business_closes, settings.holidays)


def card_secret_of(settings: Settings) -> str:
    """``HOTLINE_CARD_SECRET``, else the one generated into the data folder at first start."""
    return settings.card_secret or installation_secret(settings.data_dir, "card_secret")


def _recording_fetcher(settings: Settings, client: redis.Redis, sql: sessionmaker[Session],
                       recordings: RecordingStore, desk: WorkOrderDesk, jobs: Queue) -> RecordingFetcher:
    return RecordingFetcher(
        recordings, settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base,
        known=lambda ref: recording_known(sql, ref), work_order_for=lambda ref: work_order_for(sql, ref),
        on_saved=lambda meta: record_recording(sql, meta, desk.pending),
        pending=PendingFetches(client), retry_later=recording_enqueuer(jobs),
        work_order_for_call=lambda call_id: work_order_of_call(sql, call_id),
        conversation_pauses=lambda call_id, agent_id: _conversation_pauses(
            Conversations(client, router_prefix(settings.hotline_name)), call_id, agent_id),
    )


def _conversation_pauses(conversations: Conversations, call_id: str, agent_id: str) -> list[list[float]]:
    """The pauses of a conversation whose recording Twilio has finished (its state is over with it)."""
    ended = conversations.end(call_id, agent_id or None)
    return [list(p) for p in ended.pauses] if ended else []


def visit_policy(settings: Settings, holidays: Container[dt.date] | None = None) -> VisitPolicy:
    """``holidays``: the admin's calendar (``HoursBook.holidays``, shared with inbound calls); else the settings'."""
    window = CallingWindow(settings.calling_window_start, settings.calling_window_end,
                           settings.holidays if holidays is None else holidays, settings.timezone)
    return VisitPolicy(
        window=window, delay=dt.timedelta(seconds=settings.visit_delay_s), retries=settings.visit_retries,
        backoff=tuple(dt.timedelta(seconds=s) for s in settings.visit_backoff_s),
        max_calls=settings.max_calls_per_number, period=dt.timedelta(days=settings.max_calls_period_days),
        channel=settings.visit_channel, stale_after=dt.timedelta(seconds=settings.visit_stale_s),
    )


def _visit_dialers(settings: Settings) -> dict[str, VisitDialer]:
    """Return visits go out on the channel the complaint came in on, when that channel is configured."""
    dialers: dict[str, VisitDialer] = {}
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_number:
        dialers["twilio"] = TwilioVisitDialer(TwilioVisitConfig(
            settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base,
            settings.twilio_number, settings.public_url, settings.ring_timeout_s))
    if settings.ami_secret:
        dialers["asterisk"] = AmiVisitDialer(AmiConfig(
            settings.ami_host, settings.ami_port, settings.ami_username, settings.ami_secret,
            channel_template=settings.ami_channel, caller_id=settings.ami_caller_id,
            ring_timeout_s=settings.ring_timeout_s))
    return dialers


def _agent_dialers(settings: Settings, router: Router) -> dict[str, AgentDialer]:
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        return {}  # no Twilio account: Twilio callers cannot be connected (logged when one queues)
    if not settings.twilio_number:
        # Every ring would go out with From="" and fail: say so once, loudly, instead of failing each offer.
        logging.getLogger(__name__).error(
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are set but HOTLINE_TWILIO_NUMBER is not: Twilio callers "
            "will not be connected to agents until it is set to the hotline's Twilio number")
        return {}
    offer_timeout = int(settings.queue_configs["general"].offer_timeout)
    return {"twilio": TwilioAgentDialer(AgentLegConfig(
        settings.public_url, settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base,
        settings.twilio_number, offer_timeout, settings.twilio_sip_domain,
        screen=frozenset(settings.twilio_screen_agents), sip_domains=tuple(settings.agent_sip_domains),
    ), router)}


def prepare(settings: Settings) -> Hotline:
    """One-time set-up before serving: tables, demo cards, the default menu published."""
    hotline = build_hotline(settings)
    if isinstance(hotline.bank, DemoBank):
        hotline.bank.seed()
    hotline.menus.ensure_published(settings.menu_name)
    hotline.menus.ensure_published(settings.survey_menu, SURVEY_MENU_FILE)
    hotline.router.configure()
    return hotline


def create_app(settings: Settings | None = None, hotline: Hotline | None = None) -> Flask:
    """The web app: Twilio's webhooks, the admin and agent pages, the JSON API."""
    hotline = hotline or build_hotline(settings or Settings())
    s = hotline.settings
    hotline.menus.ensure_published(s.menu_name)
    app = Flask("hotline", template_folder=str(ADMIN_DIR / "templates"), static_folder=str(ADMIN_DIR / "static"))
    app.config["MAX_CONTENT_LENGTH"] = MAX_WEBHOOK_BYTES
    app.extensions["hotline"] = hotline
    init_web(app, hotline)
    hotline.router.configure()
    music_url, music_s = s.hold_music
    if not music_s:
        logging.getLogger(__name__).warning(
            "HOTLINE_TWILIO_HOLD_MUSIC_SECONDS is not set: callers on hold hear their position once per track, not "
            "every %.0f s (docs/twilio.md)", s.hold_announce_every_s)
    twilio_control = twilio_call_control(hotline, music_url)
    hold = TwilioHold(HoldConfig(
        s.public_url, s.twilio_number, music_url, s.hold_announce_every_s, hold_music_s=music_s,
        callback_lifetime_s=s.callback_lifetime_s,
    ), hotline.router, hotline.connector, queue_deleter(hotline.jobs), conversations_of(hotline),
        **({"redirect": twilio_control.redirect} if twilio_control else {}))
    if s.twilio_account_sid and s.twilio_auth_token:  # the agent leg's conversation is recorded by REST
        hold.start_recording = TwilioRecordingSwitch(
            s.twilio_account_sid, s.twilio_auth_token, s.twilio_api_base).start
    calls = TwilioCalls(
        ChannelConfig(s.public_url, s.menu_name, s.survey_menu, s.visit_machine_message, s.visit_unknown_answer),
        hotline.engine, hotline.menus, hotline.sessions, hotline.events, hold, Tombstones(hotline.redis),
        AnsweredByNotes(hotline.redis),
    )
    config = TwilioConfig(s.public_url, s.twilio_auth_token, FallbackConfig(s.backup_number, music_url),
                          s.twilio_webhook_key_secret)
    controls = call_controls(hotline)
    if twilio_control is not None:
        controls["twilio"] = twilio_control
    # Every blueprint of the app, here and only here.
    for blueprint in (
        create_auth_pages(hotline.accounts, hotline.audit),
        create_blueprint(calls, hotline.recording_fetcher, config,
                         OutcomesLater(hotline.visits, outcome_enqueuer(hotline.jobs))),
        create_api(hotline.router, hotline.agents, hotline.connector, hotline.audit, hotline.menus.spoken_languages),
        create_monitor_api(hotline.router, hotline.agents, hotline.audit, controls),
        create_call_control_api(hotline.router, hotline.agents, hotline.accounts, hotline.audit, controls),
        create_recording_pause_api(hotline.router, pause_desk(hotline)),
        create_complaints_api(hotline.desk, hotline.audit, hotline.accounts),
        create_records_api(hotline.sql),
        create_reports_api(hotline.sql, s.timezone, s.service_level_s),
        *_pages(hotline, app),
    ):
        app.register_blueprint(blueprint)
    _webhooks_read_on_hub(app)
    # Liveness: the process answers (no Redis, no SQL). Readiness: it can take calls (hotline.health).
    app.get("/healthz")(public(lambda: {"status": "ok"}))
    app.get("/readyz")(public(readyz(readiness_of(hotline))))
    add_metrics(app, hotline)
    finish_web(app)
    logging.getLogger(__name__).info("hotline web app ready, public URL %s", s.public_url)
    return app


def call_controls(hotline: Hotline) -> dict[str, CallControl]:
    """Hang-up, hold, transfer and monitor of connected calls, per channel (``calls.control``). Asterisk: over
    the same AMI login as the return visits (none without ``HOTLINE_AMI_SECRET``: the API then answers 409);
    Twilio's (``twilio_call_control``) is added by ``create_app``, which knows the hold music."""
    s = hotline.settings
    controls: dict[str, CallControl] = {}
    if s.ami_secret:
        controls["asterisk"] = AsteriskCallControl(
            AmiConfig(s.ami_host, s.ami_port, s.ami_username, s.ami_secret, ring_timeout_s=s.ring_timeout_s),
            hotline.router, hotline.agents, recorded=conversation_keeper(hotline))
    return controls


def pause_desk(hotline: Hotline) -> PauseDesk:
    """Pausing conversation recordings: AMI ``MixMonitorMute`` on Asterisk, the Recording resource on Twilio."""
    s = hotline.settings
    switches: dict[str, RecordingSwitch] = {}
    if s.ami_secret:
        switches["asterisk"] = AmiRecordingSwitch(AmiConfig(s.ami_host, s.ami_port, s.ami_username, s.ami_secret))
    if s.twilio_account_sid and s.twilio_auth_token:
        switches["twilio"] = TwilioRecordingSwitch(s.twilio_account_sid, s.twilio_auth_token, s.twilio_api_base)
    return PauseDesk(conversations_of(hotline), switches, hotline.audit, s.recording_pause_max_s)


def twilio_call_control(hotline: Hotline, music_url: str) -> TwilioCallControl | None:
    """Hold, hang-up, transfer and monitor of Twilio calls over the REST API; None without a Twilio account."""
    s = hotline.settings
    if not (s.twilio_account_sid and s.twilio_auth_token):
        return None
    recorder = TwilioRecordingSwitch(s.twilio_account_sid, s.twilio_auth_token, s.twilio_api_base)
    return TwilioCallControl(TwilioControlConfig(
        s.public_url, s.twilio_account_sid, s.twilio_auth_token, s.twilio_api_base, s.twilio_number,
        music_url, s.ring_timeout_s, tuple(s.agent_sip_domains),
    ), hotline.router, hotline.connector, hotline.agents, conversations=conversations_of(hotline),
        start_recording=lambda leg, call_id, agent_id: recorder.start(
            leg, recording_params(s.public_url, call_id, agent_id)))


def _webhooks_read_on_hub(app: Flask) -> None:
    """In a gevent web worker, Twilio's webhooks keep their SQLite point lookups on the hub; every other request's
    reads (reports, the dashboard's figures) run in threads, beside the webhooks (``store.cooperative``)."""

    @app.before_request
    def _on_hub() -> None:
        reads_on_hub(request.blueprint == "twilio")

    @app.teardown_request
    def _off_hub(_: BaseException | None) -> None:
        reads_on_hub(False)


def readiness_of(hotline: Hotline) -> Readiness:
    """The readiness checks of this hotline, over a Redis client without the shared one's retries."""
    s = hotline.settings
    probe = hotline.redis_clients.blocking(s.redis_timeout_s)
    return Readiness(probe, hotline.sql, MenuRepository(hotline.sql, probe), s.menu_name, hotline.events.stream,
                     s.db_timeout_s, s.ready_records_lag_s)


def _pages(hotline: Hotline, app: Flask) -> list[Blueprint]:
    """The admin and agent pages, each handed only what it uses."""
    h, s = hotline, hotline.settings
    events = EventFanout(event_tail(h.redis_clients, h.events.stream))  # one reader of the stream for all pages
    app.extensions[EVENT_FANOUT] = events  # a stopping web worker ends its pages' streams (hotline.web_gevent)
    return [
        create_menus_web(MenuEditor(h.menus, MenuDrafts(h.sql), h.audit, h.jobs),
                         Simulator(h.redis, dry_run_services(h.sql, h.hours, h.visits, card_secret_of(s)))),
        create_live_web(LiveBoard(h.router, h.agents, h.sessions, h.sql, s.timezone, s.service_level_s), events,
                        s.service_level_s, s.dashboard_thresholds, refresh_s=s.dashboard_refresh_s),
        create_agents_web(h.agents, h.connector, h.sql, h.audit),
        create_reports_web(s.timezone, s.service_level_s),
        create_work_orders_web(h.desk, h.audit, h.accounts, Console(
            ConsoleDeps(h.agents, h.router, h.connector, h.redis, h.sql, h.events, s.ring_timeout_s)).orders_on_line),
        create_recordings_web(h.sql, h.audit, s.recordings_dir, s.recording_link_s, h.evaluations.may_hear),
        create_console_web(ConsoleDeps(h.agents, h.router, h.connector, h.redis, h.sql, h.events, s.ring_timeout_s),
                           events, h.audit),
        create_users_web(h.accounts, h.audit, lambda agent_id: h.agents.get(agent_id) is not None),
        create_pin_locks_web(h.pin_locks, h.audit),
        create_hours_web(h.hours, h.audit),
        create_quality_web(QualityDeps(h.forms, h.evaluations, h.sampler, h.audit, s.timezone,
                                       stream_reader(h.redis, h.events.stream))),
    ]
