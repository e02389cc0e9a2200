"""`hotline call`: a scripted call from the terminal over FastAGI and over Twilio webhooks."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from hotline.app import Hotline, create_app
from hotline.cli import main
from hotline.settings import Settings
from tests.conftest import AUTH_TOKEN

CARD, PIN = "6222021234567894", "123456"


def env_of(settings: Settings, **extra: str) -> dict[str, str]:
    return {"REDIS_URL": settings.redis_url or "", "DATABASE_URL": settings.sql_url,
            "HOTLINE_DATA_DIR": str(settings.data_dir), **extra}


def test_scripted_call_over_fastagi_prints_the_prompts(
    agi_server: tuple[str, int], settings: Settings
) -> None:
    env = env_of(settings, HOTLINE_AGI_PORT=str(agi_server[1]))
    result = CliRunner(env=env).invoke(main, ["call", "--keys", f"1,{CARD}#,{PIN},"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == ["  < 您好，欢迎致电客户服务热线。For English, press 9.",
                         "  < 查询余额和卡片状态请按1，挂失请按2，投诉请按3，人工服务请按0。"]
    assert "  < (a prompt filled for this call)" in lines  # the balance
    assert lines[-1].endswith("AGI commands, last ['HANGUP']")


def test_interactive_call_reads_keys_from_the_terminal(agi_server: tuple[str, int], settings: Settings) -> None:
    env = env_of(settings, HOTLINE_AGI_PORT=str(agi_server[1]))
    result = CliRunner(env=env).invoke(main, ["call", "--language", "en"], input="0\n")
    assert result.exit_code == 0, result.output
    assert "  < Connecting you to an agent, please hold." in result.stdout


@pytest.fixture
def web(hotline: Hotline, settings: Settings) -> Iterator[str]:
    """The web app on a real socket, its public URL (what signatures cover) being that socket."""
    server = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    hotline.settings = settings.model_copy(update={"public_url": url})
    server.app = create_app(hotline=hotline)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()


def test_scripted_call_over_twilio_webhooks(web: str, settings: Settings) -> None:
    server_env = env_of(settings, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    result = CliRunner(env=server_env).invoke(main, ["call", "--channel", "twilio", "--url", web,
                                                     "--keys", f"1,{CARD}#,{PIN},,,"])
    assert result.exit_code == 0, result.output
    assert "  < 您的余额为12345.67元，卡片状态：正常。" in result.stdout
    assert result.stdout.splitlines()[-1].endswith("prompts")
