"""`hotline call`: a scripted call from the terminal over FastAGI and over Twilio webhooks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from werkzeug.serving import make_server

from hotline.app import Hotline, create_app
from hotline.cli import main
from hotline.settings import Settings
from routing.keys import EVENTS_STREAM
from tests.conftest import AUTH_TOKEN, free_port

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
    assert "  < 您的余额为12345.67元，卡片状态：正常。" in lines  # filled for this call, printed as said
    assert lines[-1].endswith("AGI commands, last ['HANGUP']")


def test_interactive_call_reads_keys_from_the_terminal(agi_server: tuple[str, int], settings: Settings) -> None:
    env = env_of(settings, HOTLINE_AGI_PORT=str(agi_server[1]))
    result = CliRunner(env=env).invoke(main, ["call", "--language", "en", "--hold", "1"], input="0\n")
    assert result.exit_code == 0, result.output
    assert "  < Connecting you to an agent, please hold." in result.stdout
    assert "  ~ on hold (music); hanging up after 1 s" in result.stdout  # held, not hung up at once
    assert "  ~ hung up on hold" in result.stdout


def test_calls_one_after_another_are_separate_calls(
    agi_server: tuple[str, int], settings: Settings, redis_url: str,
) -> None:
    """Each call a fresh id: a second complaint is a second work order, not a clash with the first."""
    env = env_of(settings, HOTLINE_AGI_PORT=str(agi_server[1]))
    outputs = [CliRunner(env=env).invoke(main, ["call", "--keys", "3,2,record:5,"]) for _ in range(2)]
    assert [o.exit_code for o in outputs] == [0, 0], [o.output for o in outputs]
    ids = [o.stdout.splitlines()[-1].split()[1] for o in outputs]
    assert ids[0] != ids[1]
    ended = [f for _, f in redis.Redis.from_url(redis_url, decode_responses=True).xrange(EVENTS_STREAM)
             if f["type"] == "work_order_opened"]
    assert len({e["work_order"] for e in ended}) == 2


def test_no_hotline_running_is_one_clear_line_and_starts_nothing(settings: Settings, tmp_path: Path) -> None:
    env = {"HOTLINE_DATA_DIR": str(tmp_path / "var"), "HOTLINE_AGI_PORT": str(free_port()), "REDIS_URL": ""}
    result = CliRunner(env=env).invoke(main, ["call", "--keys", "1"])
    assert result.exit_code == 1
    assert "no FastAGI server answers at 127.0.0.1:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "var" / "redis").exists()  # no redis-server left behind
    twilio = CliRunner(env={**env, "TWILIO_AUTH_TOKEN": "x"}).invoke(
        main, ["call", "--channel", "twilio", "--url", f"http://127.0.0.1:{free_port()}", "--keys", "1"])
    assert twilio.exit_code == 1 and "no hotline answers at http://127.0.0.1:" in twilio.output


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


def test_twilio_call_in_english_and_with_the_wrong_token(web: str, settings: Settings) -> None:
    english = CliRunner(env=env_of(settings, TWILIO_AUTH_TOKEN=AUTH_TOKEN)).invoke(
        main, ["call", "--channel", "twilio", "--url", web, "--language", "en", "--hold", "0", "--keys", ""])
    assert english.exit_code == 0, english.output
    assert english.stdout.splitlines()[0].startswith("  < Welcome")
    wrong = CliRunner(env=env_of(settings, TWILIO_AUTH_TOKEN="not-the-hotlines")).invoke(
        main, ["call", "--channel", "twilio", "--url", web, "--keys", "1"])
    assert wrong.exit_code == 1 and "refused the webhook" in wrong.output and "(403)" in wrong.output
    assert "Traceback" not in wrong.output
