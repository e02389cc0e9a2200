"""When the hotline cannot serve a Twilio webhook, each route answers what its verb allows: a caller on hold keeps
holding, an agent's leg hangs up, a new caller goes to the backup number; Twilio's queue errors re-enqueue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.app import Hotline, create_app, prepare
from hotline.settings import Settings
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, RedisProcess
from tests.fakes.twilio_caller import TwilioCaller

BACKUP = "+861012345678"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.persistent = True  # a blip: Redis comes back with its data
    server.start()
    yield server
    server.stop()


def hotline_on(own_redis: RedisProcess, settings: Settings, **more: object) -> Hotline:
    return prepare(settings.model_copy(update={"redis_url": own_redis.url, **more}))


def dial_in(hotline: Hotline) -> TwilioCaller:
    return TwilioCaller(create_app(hotline=hotline).test_client(), AUTH_TOKEN, PUBLIC_URL)


def test_a_redis_blip_keeps_every_waiting_caller_on_hold(own_redis: RedisProcess, settings: Settings) -> None:
    hotline = hotline_on(own_redis, settings)
    caller = dial_in(hotline)
    caller.dial()
    caller.press("0")
    queue = caller.verb("Enqueue").text
    caller.hold()

    own_redis.stop()
    caller.hold()  # the wait URL fails: the hold goes on (no verb a waitUrl may not use, so no QueueResult=error)
    assert caller.verbs() == ["Play"]
    own_redis.start()

    caller.hold()
    assert caller.verbs() == ["Play"]
    view = hotline.router.call(caller.call_sid)
    assert view is not None and view.state == "waiting" and queue == f"hotline-{caller.call_sid}"


@pytest.mark.parametrize("result", ["error", "system-error"])
def test_twilio_failing_to_hold_the_caller_enqueues_them_again(result: str, caller: TwilioCaller,
                                                                 hotline: Hotline) -> None:
    caller.dial()
    caller.press("0")
    queue = caller.verb("Enqueue").text
    caller.leave_queue(result)
    assert caller.verbs() == ["Enqueue"] and caller.verb("Enqueue").text == queue
    assert hotline.router.call(caller.call_sid).state == "waiting"  # type: ignore[union-attr]
    caller.leave_queue("bridged")  # and the next result is read as usual
    assert caller.verbs() == ["Hangup"]


def test_twilio_failing_again_and_again_ends_the_hold_as_the_menu_says(caller: TwilioCaller) -> None:
    caller.dial()
    caller.press("0")
    for _ in range(3):
        caller.leave_queue("error")
        assert caller.verbs() == ["Enqueue"]
    caller.leave_queue("error")
    assert "Enqueue" not in caller.verbs()


def test_an_agent_leg_the_hotline_cannot_serve_hangs_up(own_redis: RedisProcess, settings: Settings) -> None:
    hotline = hotline_on(own_redis, settings)
    agent = dial_in(hotline)
    own_redis.stop()
    for path in ("/twilio/agent/connect?call=CAx&agent=ann", "/twilio/agent/done?call=CAx&agent=ann"):
        agent.post(path, DialCallStatus="completed")
        assert agent.verbs() == ["Hangup"]


@pytest.mark.parametrize("backup", [BACKUP, ""])
def test_a_new_caller_the_hotline_cannot_serve_goes_to_the_backup_number_or_hears_goodbye(
    backup: str, own_redis: RedisProcess, settings: Settings,
) -> None:
    hotline = hotline_on(own_redis, settings, backup_number=backup)
    caller = dial_in(hotline)
    own_redis.stop()
    caller.dial()
    if backup:
        assert caller.verbs() == ["Say", "Say", "Dial", "Hangup"] and caller.verb("Dial").text == BACKUP
        assert caller.said()[1] == "Sorry, something went wrong. Connecting you to an agent."
    else:
        assert caller.verbs() == ["Say", "Say", "Hangup"]  # no queue nobody dequeues
        assert caller.said()[1] == "Sorry, something went wrong. Please call again later."


def test_the_voice_fallback_url_serves_the_backup_without_redis(own_redis: RedisProcess, settings: Settings) -> None:
    hotline = hotline_on(own_redis, settings, backup_number=BACKUP)
    caller = dial_in(hotline)
    own_redis.stop()
    # Twilio asks the fallback URL with ErrorCode/ErrorUrl after the voice URL failed
    # (https://www.twilio.com/docs/usage/webhooks/voice-webhooks#fallback-url).
    caller.post("/twilio/fallback", ErrorCode="11200", ErrorUrl=f"{PUBLIC_URL}/twilio/voice")
    assert caller.verb("Dial").text == BACKUP
