"""Fixtures against real services: a redis-server process, SQLite or PostgreSQL, the real twilio library."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy
from sqlalchemy.orm import sessionmaker

from agi_scripts.server import FastAgiServer
from hotline.agi_app import create_agi_server
from hotline.app import Hotline, create_app, prepare
from hotline.settings import Settings
from recordings.prompts import write_placeholder_prompts
from softphone.agi_peer import AsteriskPeer
from store.db import connect
from store.redis_server import redis_server_binary
from tests.fakes.private_postgres import BIN_GLOB, PrivatePostgres, postgres_bin_dir
from tests.fakes.twilio_caller import TwilioCaller

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "ACtest0123456789abcdef0123456789ab"
PUBLIC_URL = "https://hotline.example.com"
POSTGRES_URL = os.environ.get("HOTLINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# The FastAGI shared secret (issue 17), set once here: every hotline the tests start (in this process, or as
# a process that inherits the environment) expects it, and every scripted Asterisk call sends it.
AGI_SECRET = "tests-fastagi-secret-0123456789abcdef"
os.environ["HOTLINE_AGI_SECRET"] = AGI_SECRET
AsteriskPeer.default_secret = AGI_SECRET


class RedisProcess:
    """A real redis-server on a free loopback port, which a test may stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.persistent = False
        """Keep the data over a stop and start (append-only file, stopped with SIGTERM), as a restart would."""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persistent else "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate() if self.persistent else self.proc.kill()
            self.proc.wait()
            self.proc = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test alone: for tests that stop it and start it again."""
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.flushall()


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hotline.db'}"
    if request.param == "private_postgres":
        return str(request.getfixturevalue("private_postgres_url"))
    return fresh_postgres()


def fresh_postgres() -> str:
    """The PostgreSQL test database, emptied. Required in CI; skipped on a machine without one."""
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    except sqlalchemy.exc.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {exc.orig}")
    finally:
        engine.dispose()
    return POSTGRES_URL


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the session's own (initdb + pg_ctl on a free loopback port, trust auth, fsync off)
    that a test may stop and start: ``.stop()``, ``.start()``, ``with .outage():``. Required in CI; skipped
    where the server binaries are not installed."""
    if postgres_bin_dir() is None:
        if os.environ.get("CI"):
            raise RuntimeError(f"no PostgreSQL server binaries under {BIN_GLOB}: .ci/run needs Debian's postgresql")
        pytest.skip(f"PostgreSQL server binaries are not installed ({BIN_GLOB})")
    server = PrivatePostgres()
    server.start()
    yield server
    server.close()


@pytest.fixture
def private_postgres_url(private_postgres: PrivatePostgres) -> str:
    """The private server's database, running and emptied."""
    if not private_postgres.running():
        private_postgres.start()  # a test that failed mid-outage left it stopped
    engine = sqlalchemy.create_engine(private_postgres.url)
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return private_postgres.url


@pytest.fixture
def sql(database_url: str) -> Iterator[sessionmaker]:
    """The SQL store alone (tables created), for tests that need no hotline around it."""
    sessions = connect(database_url)
    yield sessions
    sessions.kw["bind"].dispose()


@pytest.fixture
def settings(redis_url: str, database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url, database_url=database_url, data_dir=tmp_path / "data",
        twilio_auth_token=AUTH_TOKEN, twilio_account_sid=ACCOUNT_SID, public_url=PUBLIC_URL,
        business_opens="00:00", business_closes="23:59:59",
        # Tests of the queues themselves hold callers with nobody staffed; the default (announce) has its own.
        unstaffed_queues="hold",
        # The tests read the pages' English; tests/test_i18n.py walks them in zh-CN, the default.
        ui_language="en-US",
    )


@pytest.fixture
def hotline(settings: Settings) -> Hotline:
    return prepare(settings)


@pytest.fixture
def app(hotline: Hotline):  # noqa: ANN201
    app = create_app(hotline=hotline)
    app.testing = True
    return app


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    return app.test_client()


@pytest.fixture
def caller(client) -> TwilioCaller:  # noqa: ANN001
    return TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL)


@pytest.fixture
def prompts(settings: Settings, hotline: Hotline) -> Path:
    """Every prompt of the live menu as a short WAV, where Asterisk would play it from."""
    root = settings.recordings_dir / "prompts"
    write_placeholder_prompts(hotline.menus.live(settings.menu_name), root)
    return root


@pytest.fixture
def agi_server(settings: Settings, hotline: Hotline, prompts: Path) -> Iterator[tuple[str, int]]:
    with serve_agi(hotline) as address:
        yield address


@contextlib.contextmanager
def serve_agi(hotline: Hotline, **settings: object) -> Iterator[tuple[str, int]]:
    """A FastAGI server for ``hotline`` on a free port, in a thread, with test-sized timeouts."""
    hotline.settings = hotline.settings.model_copy(update={
        "agi_port": 0, "agi_env_timeout_s": 1.0, "agi_play_timeout_s": 1.0, **settings})
    server: FastAgiServer = create_agi_server(hotline)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def api_caller(hotline: Hotline, token: str) -> Any:
    """``call(method, path, body=None, token=<token>, **kwargs)`` against the hotline's web app, with a bearer token."""
    app = create_app(hotline=hotline)
    app.testing = True
    client = app.test_client()

    def call(method: str, path: str, body: object = None, token: str | None = token, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:
            kwargs["json"] = body
        return client.open(path, method=method, headers=headers, **kwargs)

    return call


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright. Required in CI; skipped where it is not installed."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (own cookies) and page; fails the test on any script error in the page."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # a script or style the page's Content-Security-Policy blocked is a broken page too
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield page
    context.close()
    assert not errors, f"script errors in the page: {errors}"


@pytest.fixture
def site(app: Any) -> Iterator[str]:
    """The hotline's web app served on a loopback port for the browser; yields its base URL."""
    from tests.web import live_server

    with live_server(app) as url:
        yield url


@pytest.fixture
def twilio_api() -> Iterator[Any]:
    """Twilio's REST API on loopback (``tests.fakes.twilio_api.TwilioApi``), started and stopped."""
    from tests.fakes.twilio_api import TwilioApi

    api = TwilioApi()
    api.server.start()
    yield api
    api.server.stop()


@pytest.fixture
def media() -> Iterator[Any]:
    """Twilio's recording media and Recording resource on loopback (``tests.fakes.twilio_media.MediaServer``);
    a test points ``TWILIO_API_BASE`` at ``media.base``."""
    from tests.fakes.twilio_media import MediaServer

    server = MediaServer(ACCOUNT_SID, AUTH_TOKEN)
    yield server
    server.http.stop()


API_TOKEN = "test-api-token-0123456789"


@pytest.fixture
def token_app(hotline: Hotline) -> Any:
    """The web app with ``HOTLINE_API_TOKEN`` set to ``API_TOKEN``."""
    hotline.settings = hotline.settings.model_copy(update={"api_token": API_TOKEN})
    app = create_app(hotline=hotline)
    app.testing = True
    return app
