"""Settings: defaults <- .env <- environment. The only module that reads ``os.environ``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from complaints.deadlines import DEFAULT_DEADLINES, ComplaintDeadline
from routing.config import DEFAULT_QUEUES, QueueConfig

PROCESS_NAME_VARIABLE = "HOTLINE_PROCESS_NAME"
"""The alias of ``Settings.process_name``: ``hotline up`` sets it in the environment of each process it starts."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True, populate_by_name=True)

    redis_url: str | None = None
    """``redis://`` one server, ``redis+sentinel://`` a master found by Sentinel, ``redis+cluster://`` a
    Redis Cluster (``hotline.redis_clients``); unset: the hotline starts its own local redis-server."""
    rq_redis_url: str | None = Field(default=None, alias="HOTLINE_RQ_REDIS_URL")
    """RQ's jobs (``redis://`` or ``redis+sentinel://``); unset: ``REDIS_URL``, which then must not be a cluster."""
    database_url: str | None = None
    data_dir: Path = Field(default=Path("var"), alias="HOTLINE_DATA_DIR")
    public_url: str = Field(default="http://127.0.0.1:8000", alias="HOTLINE_PUBLIC_URL")
    web_host: str = Field(default="127.0.0.1", alias="HOTLINE_WEB_HOST")
    web_port: int = Field(default=8000, alias="HOTLINE_WEB_PORT")
    web_workers: int = Field(default=2, alias="HOTLINE_WEB_WORKERS")
    worker_processes: int = Field(default=1, ge=1, alias="HOTLINE_WORKERS")
    """RQ worker processes ``hotline up`` runs (each also writes call records and runs the job clock)."""
    agi_host: str = Field(default="127.0.0.1", alias="HOTLINE_AGI_HOST")
    agi_port: int = Field(default=4573, alias="HOTLINE_AGI_PORT")
    agi_processes: int = Field(default=1, ge=1, alias="HOTLINE_AGI_PROCESSES")
    """FastAGI server processes ``hotline up`` runs on the one port (the kernel spreads calls over them)."""
    agi_drain_s: float = Field(default=30.0, ge=0, alias="HOTLINE_AGI_DRAIN")
    """On SIGTERM a FastAGI process stops taking calls and gives those in progress this long to end."""
    agi_env_timeout_s: float = Field(default=10.0, alias="HOTLINE_AGI_ENV_TIMEOUT")
    """A FastAGI peer that has not sent its whole environment by then is dropped."""
    agi_play_timeout_s: float = Field(default=120.0, alias="HOTLINE_AGI_PLAY_TIMEOUT")
    """A peer still 'playing' a prompt after this long is stuck: the call is ended, the thread freed."""
    # -- FastAGI hardening (issue 17) --------------------------------------------------------------
    agi_secret: str | None = Field(default=None, min_length=16, alias="HOTLINE_AGI_SECRET")
    """The shared secret every FastAGI call must carry as its first AGI argument
    (``AGI(agi://host:4573/hotline,${HOTLINE_AGI_SECRET})``); unset: generated once into the data folder
    (``hotline agi-secret`` shows it)."""
    agi_max_connections: int = Field(default=1000, ge=1, alias="HOTLINE_AGI_MAX_CONNECTIONS")
    """FastAGI connections one process holds at once (calls and connections still sending their environment);
    more are refused at once."""
    agi_max_per_peer: int = Field(default=1000, ge=1, alias="HOTLINE_AGI_MAX_PER_PEER")
    """FastAGI connections one address holds at once (an Asterisk box carries all its calls on one address)."""
    agi_max_unauthenticated: int = Field(default=64, ge=1, alias="HOTLINE_AGI_MAX_UNAUTHENTICATED")
    """Connections that have not yet sent a whole environment with the secret: beyond this a new one pushes out
    the oldest that has waited a quarter of ``HOTLINE_AGI_ENV_TIMEOUT``, so idle connections cannot crowd out
    Asterisk's calls (which send theirs in milliseconds)."""
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_api_base: str = "https://api.twilio.com"
    twilio_webhook_key_secret: str | None = Field(default=None, alias="HOTLINE_TWILIO_WEBHOOK_KEY_SECRET")
    """The secret of the SharedKey a Twilio Webhook Setting signs the hotline's webhooks with (HMAC-SHA256);
    unset: only webhooks signed with TWILIO_AUTH_TOKEN are accepted."""
    api_token: str | None = Field(default=None, alias="HOTLINE_API_TOKEN")
    metrics_token: str | None = Field(default=None, alias="HOTLINE_METRICS_TOKEN")
    """Bearer token Prometheus scrapes ``/metrics`` with: read-only, unlike the API token (an admin), which
    is accepted too. Neither set: ``/metrics`` answers 401 to everyone."""
    timezone: str = Field(default="Asia/Shanghai", alias="HOTLINE_TIMEZONE")
    ui_language: Literal["zh-CN", "en-US"] = Field(default="zh-CN", alias="HOTLINE_UI_LANGUAGE")
    """The pages' language for whoever has not chosen one (each user's choice is kept with the account)."""
    business_opens: dt.time = Field(default=dt.time(8, 0), alias="HOTLINE_BUSINESS_OPENS")
    business_closes: dt.time = Field(default=dt.time(22, 0), alias="HOTLINE_BUSINESS_CLOSES")
    menu_name: str = Field(default="hotline", alias="HOTLINE_MENU")
    session_ttl_s: int = Field(default=3600, alias="HOTLINE_SESSION_TTL")
    redis_timeout_s: float = Field(default=0.5, alias="HOTLINE_REDIS_TIMEOUT")
    db_timeout_s: float = Field(default=5.0, gt=0, alias="HOTLINE_DB_TIMEOUT")
    """How long SQL waits for the database (connect, pooled connection, SQLite lock) before the caller's
    fallback runs: an outage costs a webhook at most this, well inside Twilio's 15 s."""
    bank_url: str | None = Field(default=None, alias="HOTLINE_BANK_URL")
    """Base URL of a real core-banking system; unset: the embedded demo bank."""
    bank_token: str | None = Field(default=None, alias="HOTLINE_BANK_TOKEN")
    bank_timeout_s: float = Field(default=3.0, alias="HOTLINE_BANK_TIMEOUT")
    twilio_queue_prefix: str = Field(default="hotline", alias="HOTLINE_TWILIO_QUEUE_PREFIX")
    twilio_number: str = Field(default="", alias="HOTLINE_TWILIO_NUMBER")
    """The hotline's Twilio number: caller id of the calls that ring agents and dial callbacks."""
    twilio_screen_agents: list[Literal["number", "sip", "client"]] = Field(
        default=["number"], alias="HOTLINE_TWILIO_SCREEN_AGENTS")
    """Agent endpoints (JSON list of kinds) whose leg must press 1 before it takes a caller: a phone number's
    voicemail would otherwise answer within the ring timeout and be bridged to the caller."""
    backup_number: str = Field(default="", alias="HOTLINE_BACKUP_NUMBER")
    """Where Twilio callers go (``<Dial>``) when the hotline cannot serve them; unset: an apology, goodbye."""
    twilio_sip_domain: str = Field(default="", alias="HOTLINE_TWILIO_SIP_DOMAIN")
    """Lets Twilio ring agents whose endpoint is a PJSIP extension (``sip:1001@<domain>``)."""
    twilio_agent_sip_domains: list[str] = Field(default_factory=list, alias="HOTLINE_TWILIO_AGENT_SIP_DOMAINS")
    """Besides ``HOTLINE_TWILIO_SIP_DOMAIN``, the hosts an agent's ``sip:user@host`` endpoint may point at (a JSON
    list); any other host is refused when the agent is saved and never rung (issue 17)."""

    @field_validator("agi_secret", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        """``HOTLINE_AGI_SECRET=`` (empty) means unset: the generated secret, not a refusal to start."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Settings:
        """Each alert level lies beyond its warning level, or a figure would turn red before amber."""
        if self.wait_alert_s < self.wait_warn_s:
            raise ValueError("HOTLINE_WAIT_ALERT_SECONDS must be at least HOTLINE_WAIT_WARN_SECONDS")
        if self.service_level_alert > self.service_level_warn:
            raise ValueError("HOTLINE_SERVICE_LEVEL_ALERT must be at most HOTLINE_SERVICE_LEVEL_WARN")
        if self.abandonment_alert < self.abandonment_warn:
            raise ValueError("HOTLINE_ABANDONMENT_ALERT must be at least HOTLINE_ABANDONMENT_WARN")
        return self

    @property
    def dashboard_thresholds(self) -> dict[str, dict[str, float]]:
        """The dashboard's warn and alert levels, as its script reads them."""
        return {"wait_s": {"warn": self.wait_warn_s, "alert": self.wait_alert_s},
                "service_level": {"warn": self.service_level_warn, "alert": self.service_level_alert},
                "abandonment": {"warn": self.abandonment_warn, "alert": self.abandonment_alert}}

    @property
    def agent_sip_domains(self) -> list[str]:
        return [d for d in (self.twilio_sip_domain, *self.twilio_agent_sip_domains) if d]

    twilio_hold_music_url: str = Field(default="", alias="HOTLINE_TWILIO_HOLD_MUSIC")
    """A short slice of hold music (played in a loop between announcements); unset: the hotline's own
    10-second slice at ``<public URL>/twilio/hold-music.wav``."""
    twilio_hold_music_seconds: float = Field(default=0, ge=0, alias="HOTLINE_TWILIO_HOLD_MUSIC_SECONDS")
    """The length of ``HOTLINE_TWILIO_HOLD_MUSIC``: keep it well under ``HOTLINE_HOLD_ANNOUNCE_EVERY``. 0 (unknown):
    played once per hold document, so announcements come once per track (a warning at start)."""
    hotline_name: str = Field(default="hotline", alias="HOTLINE_NAME")
    """Names this hotline's router keys (their Redis Cluster hash tag)."""
    queues: dict[str, QueueConfig] = Field(default_factory=dict, alias="HOTLINE_QUEUES")
    """Per-skill routing settings as JSON, over the defaults in ``routing.config.DEFAULT_QUEUES``."""
    router_lease_s: float = Field(default=30, alias="HOTLINE_ROUTER_LEASE")
    """A call whose channel stops renewing it for this long is ended and its agent freed."""
    router_tick_s: float = Field(default=0.5, alias="HOTLINE_ROUTER_TICK")
    wrapup_max_s: float = Field(default=600, ge=1, alias="HOTLINE_WRAPUP_MAX")
    """The longest an agent's wrap-up countdown runs, their extensions included (the queue's ``wrap_up`` is
    where it starts). The wrap-up itself lasts until the agent submits it."""
    wrapup_release: bool = Field(default=False, alias="HOTLINE_WRAPUP_RELEASE")
    """At ``HOTLINE_WRAPUP_MAX``, make an agent still in wrap-up available (their unsubmitted notes are kept as a
    ``not_submitted`` disposition when the next call comes). Off: they stay in wrap-up, visible on the
    dashboard with their time in state, until they submit or a supervisor changes their state."""
    hold_announce_every_s: float = Field(default=45, alias="HOTLINE_HOLD_ANNOUNCE_EVERY")
    hold_max_wait_s: float = Field(default=1800, alias="HOTLINE_HOLD_MAX_WAIT")
    unstaffed_queues: Literal["announce", "hold"] = Field(default="announce", alias="HOTLINE_UNSTAFFED_QUEUES")
    """A caller reaching a queue that no working agent (available, ringing, talking, in wrap-up) of the skill,
    its overflow queue and the caller's language serves: ``announce`` says so and goes on (the menu's
    ``no_agent_prompt``, the node's ``next``); ``hold`` holds them for an agent who logs in."""
    """A caller still waiting after this long leaves the line for the menu's next node."""
    callback_lifetime_s: float = Field(default=4 * 3600, alias="HOTLINE_CALLBACK_LIFETIME")
    vip_boost: int = Field(default=3, alias="HOTLINE_VIP_BOOST")

    # -- records, work orders, return visits, reports (issue 5) ------------------------------
    service_level_s: float = Field(default=20, alias="HOTLINE_SERVICE_LEVEL_SECONDS")
    """Service level counts calls answered within this many seconds of queuing."""
    # the live dashboard's thresholds (issue 18): past "warn" a figure shows amber with a warning mark, past
    # "alert" red with an alert mark
    wait_warn_s: float = Field(default=20, gt=0, alias="HOTLINE_WAIT_WARN_SECONDS")
    """A caller waiting longer than this is a warning on the dashboard (longest wait, queue rows)."""
    wait_alert_s: float = Field(default=60, gt=0, alias="HOTLINE_WAIT_ALERT_SECONDS")
    service_level_warn: float = Field(default=0.8, ge=0, le=1, alias="HOTLINE_SERVICE_LEVEL_WARN")
    """Today's service level (a fraction) below this is a warning."""
    service_level_alert: float = Field(default=0.6, ge=0, le=1, alias="HOTLINE_SERVICE_LEVEL_ALERT")
    abandonment_warn: float = Field(default=0.05, ge=0, le=1, alias="HOTLINE_ABANDONMENT_WARN")
    """Today's abandonment rate (a fraction) above this is a warning."""
    abandonment_alert: float = Field(default=0.10, ge=0, le=1, alias="HOTLINE_ABANDONMENT_ALERT")
    dashboard_refresh_s: float = Field(default=1.0, ge=0, le=10, alias="HOTLINE_DASHBOARD_REFRESH_SECONDS")
    """An open dashboard gets a fresh picture at most this often (the events in between fold into it); its
    snapshots are the live pages' main cost to the webhooks on the same web worker (docs/performance.md)."""
    quality_share_percent: float = Field(default=5.0, ge=0, le=100, alias="HOTLINE_QA_SHARE_PERCENT")
    """Quality sampling: the share of each agent's calls per week queued for review (``quality.sampling``)."""
    quality_long_call_s: float | None = Field(default=600.0, gt=0, alias="HOTLINE_QA_LONG_CALL_SECONDS")
    """Quality sampling: every call talked longer than this is queued for review (unset: the rule is off)."""
    record_retention_days: int = Field(default=365, alias="HOTLINE_RECORD_RETENTION_DAYS")
    """Call records (and their recordings) older than this are purged by a scheduled job."""
    conversation_retention_days: int = Field(default=90, ge=1, alias="HOTLINE_CONVERSATION_RETENTION_DAYS")
    """Agent conversation recordings older than this are deleted (their call record stays); a conversation on
    a complaint still being worked is kept, as complaint messages are."""
    recording_pause_max_s: float = Field(default=120, gt=0, alias="HOTLINE_RECORDING_PAUSE_MAX")
    """A conversation's recording paused this long resumes by itself (the agent forgot to resume it)."""
    records_claim_idle_s: float = Field(default=30, alias="HOTLINE_RECORDS_CLAIM_IDLE")
    """Events a record writer read but did not acknowledge for this long are taken over by another."""
    complaint_deadlines: dict[str, ComplaintDeadline] = Field(default_factory=dict, alias="HOTLINE_COMPLAINT_DEADLINES")
    """Per-category deadlines as JSON, over ``DEFAULT_DEADLINES``."""
    survey_menu: str = Field(default="survey", alias="HOTLINE_SURVEY_MENU")
    visit_delay_s: float = Field(default=3600, alias="HOTLINE_VISIT_DELAY")
    """How long after a work order is resolved its return visit is due (then moved into the window)."""
    calling_window_start: dt.time = Field(default=dt.time(9, 0), alias="HOTLINE_CALLING_WINDOW_START")
    calling_window_end: dt.time = Field(default=dt.time(20, 0), alias="HOTLINE_CALLING_WINDOW_END")
    holidays: list[dt.date] = Field(default_factory=list, alias="HOTLINE_HOLIDAYS")
    """Days without return-visit calls, as a JSON list of ISO dates."""
    visit_retries: int = Field(default=3, alias="HOTLINE_VISIT_RETRIES")
    visit_backoff_s: list[float] = Field(
        default_factory=lambda: [1800.0, 7200.0, 86400.0], alias="HOTLINE_VISIT_BACKOFF")
    """Wait before retry 1, 2, 3... after no answer, busy or voicemail (the last value repeats)."""
    visit_stale_s: float = Field(default=900, gt=0, alias="HOTLINE_VISIT_STALE_AFTER")
    """A due visit without its job (lost with Redis), or a dial without an outcome, is taken up again by
    the sweep after this long."""
    max_calls_per_number: int = Field(default=7, alias="HOTLINE_MAX_CALLS_PER_NUMBER")
    max_calls_period_days: int = Field(default=7, alias="HOTLINE_MAX_CALLS_PERIOD_DAYS")
    visit_channel: str = Field(default="auto", alias="HOTLINE_VISIT_CHANNEL")
    """auto (the channel the complaint came in on), twilio or asterisk."""
    visit_machine_message: str = Field(default="", alias="HOTLINE_VISIT_MACHINE_MESSAGE")
    """Left on an answering machine a return visit reaches (say who called, never the complaint); empty: hang up."""
    visit_unknown_answer: Literal["human", "machine"] = Field(default="machine", alias="HOTLINE_VISIT_UNKNOWN_ANSWER")
    """A return visit Twilio's detection could not classify (``AnsweredBy=unknown``): ``machine`` hangs up and
    retries later (no work order read into a mailbox); ``human`` runs the survey."""
    ring_timeout_s: int = Field(default=30, alias="HOTLINE_RING_TIMEOUT")
    ami_host: str = Field(default="127.0.0.1", alias="HOTLINE_AMI_HOST")
    ami_port: int = Field(default=5038, alias="HOTLINE_AMI_PORT")
    ami_username: str = Field(default="hotline", alias="HOTLINE_AMI_USERNAME")
    ami_secret: str | None = Field(default=None, alias="HOTLINE_AMI_SECRET")
    """Unset: Asterisk return visits are not placed (logged and retried later)."""
    ami_channel: str = Field(default="PJSIP/{number}@hotline-trunk", alias="HOTLINE_AMI_CHANNEL")
    """The outbound channel of a return visit; ``{number}`` is the customer's number."""
    ami_caller_id: str = Field(default="", alias="HOTLINE_AMI_CALLER_ID")

    # -- admin and agent web (issue 6) ----------------------------------------------------------
    secret_key: str | None = Field(default=None, alias="HOTLINE_SECRET_KEY")
    """Signs session cookies, CSRF tokens and recording links; unset: generated once into the data folder."""
    secure_cookies: bool = Field(default=False, alias="HOTLINE_SECURE_COOKIES")
    """Set it when the admin pages are served over HTTPS: cookies are then never sent in clear."""
    session_hours: float = Field(default=9, alias="HOTLINE_SESSION_HOURS")
    """A login lasts one shift; then the person logs in again."""
    login_free_tries: int = Field(default=3, ge=1, alias="HOTLINE_LOGIN_FREE_TRIES")
    """Failed logins one address may make at one account before it waits 1 s, 2 s, 4 s ... between tries."""
    login_account_free_tries: int = Field(default=10, ge=1, alias="HOTLINE_LOGIN_ACCOUNT_FREE_TRIES")
    """Failed logins at one account from anywhere before addresses it never logged in from wait (its owner's
    usual addresses do not: nobody can keep the owner out)."""
    login_address_free_tries: int = Field(default=30, ge=1, alias="HOTLINE_LOGIN_ADDRESS_FREE_TRIES")
    """Failed logins one address may make at any accounts before it waits (password spraying)."""
    login_max_wait_s: float = Field(default=900, gt=0, alias="HOTLINE_LOGIN_MAX_WAIT")
    """The longest wait between tries; counts are forgotten a day after the last failure."""
    live_streams_per_person: int = Field(default=4, ge=1, alias="HOTLINE_LIVE_STREAMS_PER_PERSON")
    """Live pages (dashboard, console) one person may keep open at once in one web process; more get 429."""
    asterisk_group: str | None = Field(default=None, alias="HOTLINE_ASTERISK_GROUP")
    """Unset: the data folder is the hotline user's alone (600/700). Set when Asterisk runs as another user on
    this machine: that group may read the prompts and write the spool, nothing else (``hotline.files``)."""
    recording_link_s: int = Field(default=300, alias="HOTLINE_RECORDING_LINK_SECONDS")
    """How long a signed recording link plays."""
    web_runtime: Literal["gevent", "threads"] = Field(default="gevent", alias="HOTLINE_WEB_RUNTIME")
    """``gevent`` (gunicorn's gevent worker: every request and every open dashboard or agent console is a greenlet)
    or ``threads`` (gunicorn's gthread worker, as before issue 20: each open page holds one of
    ``HOTLINE_WEB_THREADS``)."""
    web_threads: int = Field(default=64, alias="HOTLINE_WEB_THREADS")
    """``HOTLINE_WEB_RUNTIME=threads`` only: threads per web worker. Each open dashboard or agent console holds one
    (its event stream); all but 8 of them may, the rest always serve webhooks. Open pages at once: workers x
    (threads - 8)."""
    live_stream_memory_mb: int = Field(default=128, ge=1, alias="HOTLINE_LIVE_STREAM_MEMORY_MB")
    """``HOTLINE_WEB_RUNTIME=gevent``: the memory one web worker may spend on open live pages (dashboards, agent
    consoles). Each costs about ``admin.live.sse.STREAM_KB``; beyond the number that fits, new pages get 503 and
    retry. 128 MB: 1,310 pages per worker."""

    # -- PIN guessing and card hashes (issue 17) ---------------------------------------------------
    pin_max_failures: int = Field(default=5, ge=1, alias="HOTLINE_PIN_MAX_FAILURES")
    """Wrong PINs a card may get within the window, over all calls and channels, before its PIN checks lock."""
    pin_failure_window_s: float = Field(default=86400, gt=0, alias="HOTLINE_PIN_FAILURE_WINDOW")
    """Failures count within this long of the card's first one; a right PIN clears the count."""
    pin_lock_s: float = Field(default=86400, ge=0, alias="HOTLINE_PIN_LOCK")
    """How long a lock holds (callers of the card go to an agent); 0: until an admin resets it."""
    card_secret: str | None = Field(default=None, alias="HOTLINE_CARD_SECRET")
    """Keys the hashes of card numbers (the PIN-failure counters, the demo bank) and peppers the demo bank's
    PIN and ID hashes; unset: generated once into the data folder (``card_secret``). Every process of a
    hotline needs the same one; losing it loses the demo bank's cards and the failure counts."""

    # -- health and logs (issue 21) ------------------------------------------------------------------
    ready_records_lag_s: float = Field(default=60, gt=0, alias="HOTLINE_READY_RECORDS_LAG")
    """``/readyz`` and ``hotline status`` say not ready while the oldest call event not yet written into the
    call records is older than this (record writers stopped, or the database away)."""
    process_name: str = Field(default="", alias="HOTLINE_PROCESS_NAME")
    """Set by ``hotline up`` in each process it starts (``agi-1``, ``router``, ``worker-1``): its heartbeat name."""
    log_format: Literal["text", "json"] = Field(default="text", alias="HOTLINE_LOG_FORMAT")
    """``json``: one JSON object per line (with ``call_id``, ``channel`` and ``step`` on lines about a call), for
    a log system; ``text``: lines for people. Every process ``hotline up`` starts, gunicorn's own logs too."""

    @property
    def hold_music(self) -> tuple[str, float]:
        """The hold music's URL and length in seconds (0: unknown)."""
        if self.twilio_hold_music_url:
            return self.twilio_hold_music_url, self.twilio_hold_music_seconds
        return f"{self.public_url.rstrip('/')}/twilio/hold-music.wav", 10.0

    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'hotline.db').resolve()}"

    @property
    def queue_configs(self) -> dict[str, QueueConfig]:
        return {**DEFAULT_QUEUES, **self.queues}

    @property
    def deadlines(self) -> dict[str, ComplaintDeadline]:
        return {**DEFAULT_DEADLINES, **self.complaint_deadlines}

    @property
    def utc_offset_s(self) -> int:
        offset = dt.datetime.now(ZoneInfo(self.timezone)).utcoffset()
        return int(offset.total_seconds()) if offset else 0

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"
