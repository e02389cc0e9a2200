"""The JSON API for agents, queues and calls, behind the bearer token."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from hotline.app import Hotline, prepare
from hotline.cli import main
from hotline.settings import Settings
from routing.router import CallRequest
from tests.conftest import api_caller

TOKEN = "api-token-for-tests-0123456789"
ANN = {"name": "Ann", "endpoint": "PJSIP/1001", "skills": {"loss": 9, "general": 5}, "languages": ["zh-CN"]}


@pytest.fixture
def hotline(settings: Settings) -> Hotline:
    return prepare(settings.model_copy(update={"api_token": TOKEN}))


@pytest.fixture
def api(hotline: Hotline) -> Any:
    return api_caller(hotline, TOKEN)


@pytest.mark.parametrize("token", [None, "wrong"])
def test_no_or_wrong_token_is_refused(api: Any, token: str | None) -> None:
    reply = api("GET", "/api/agents", token=token)
    assert reply.status_code == 401 and "bearer token" in reply.json["error"]
    assert api("PUT", "/api/agents/ann", ANN, token=token).status_code == 401


def test_agent_lifecycle(api: Any) -> None:
    created = api("PUT", "/api/agents/ann", ANN)
    assert created.status_code == 201
    assert (created.json["state"], created.json["skills"]) == ("offline", {"loss": 9, "general": 5})
    assert api("PUT", "/api/agents/ann", {**ANN, "name": "Ann Li"}).status_code == 200
    assert api("GET", "/api/agents/ann").json["name"] == "Ann Li"
    assert api("POST", "/api/agents/ann/state", {"state": "available"}).json["state"] == "available"
    assert [a["id"] for a in api("GET", "/api/agents").json] == ["ann"]
    assert api("DELETE", "/api/agents/ann").status_code == 204
    missing = api("GET", "/api/agents/ann")
    assert missing.status_code == 404 and missing.json["error"] == "agent ann does not exist"


@pytest.mark.parametrize("body, message", [
    ({**ANN, "skills": {"astrology": 5}}, "unknown skill 'astrology'"),
    ({**ANN, "skills": {"loss": 11}}, "level 11 is not 1-10"),
    ({**ANN, "endpoint": ""}, "an endpoint to ring is required"),
    ({**ANN, "languages": "zh-CN"}, "languages must be a list"),
    ("not an object", "the body must be a JSON object"),
])
def test_malformed_agent_is_rejected_with_the_reason(api: Any, body: object, message: str) -> None:
    reply = api("PUT", "/api/agents/ann", body)
    assert reply.status_code == 400 and message in reply.json["error"]
    assert api("GET", "/api/agents/ann").status_code == 404


def test_an_agent_language_no_published_menu_speaks_is_refused_naming_it_and_the_menus_languages(
    api: Any, hotline: Hotline,
) -> None:
    """``zh`` for ``zh-CN``: the router would never match that agent to a caller, and nobody would know why."""
    reply = api("PUT", "/api/agents/ann", {**ANN, "languages": ["zh-CN", "zh"]})
    assert reply.status_code == 400 and "language 'zh'" in reply.json["error"]
    assert "zh-CN" in reply.json["error"] and "en-US" in reply.json["error"]  # what the menus speak
    assert hotline.agents.get("ann") is None
    assert api("PUT", "/api/agents/ann", {**ANN, "languages": ["en-US", "zh-CN"]}).status_code == 201


def test_an_endpoint_that_no_channel_can_ring_is_refused(api: Any, hotline: Hotline) -> None:
    for endpoint in ("alice&Local/1@x", "sip:alice@evil.example", "alice bob"):
        reply = api("PUT", "/api/agents/ann", {**ANN, "endpoint": endpoint})
        assert reply.status_code == 400 and "endpoint" in reply.json["error"], endpoint
    assert hotline.agents.get("ann") is None


def test_state_changes_that_cannot_be_made(api: Any, hotline: Hotline) -> None:
    api("PUT", "/api/agents/ann", ANN)
    assert api("POST", "/api/agents/ann/state", {"state": "busy"}).status_code == 400
    api("POST", "/api/agents/ann/state", {"state": "available"})
    hotline.router.enqueue(CallRequest("c1", "general", "zh-CN", 5, "asterisk"))
    hotline.router.answer("c1", "ann")
    refused = api("POST", "/api/agents/ann/state", {"state": "offline"})
    assert refused.status_code == 409 and "on a call" in refused.json["error"]
    assert api("DELETE", "/api/agents/ann").status_code == 409


def test_queues_and_calls_show_what_callers_wait_for(api: Any, hotline: Hotline) -> None:
    api("PUT", "/api/agents/ann", ANN)
    for n in range(2):
        hotline.router.enqueue(CallRequest(f"c{n}", "loss", "zh-CN", 10, "asterisk", intent="loss"))
    (loss,) = [q for q in api("GET", "/api/queues").json if q["queue"] == "loss:zh-CN"]
    assert (loss["waiting"], loss["agents"]) == (2, {"offline": 1})
    assert loss["longest_wait_s"] >= 0
    second = api("GET", "/api/calls/c1").json
    assert (second["state"], second["queue"], second["position"], second["agent"]) == ("waiting", "loss:zh-CN", 2, None)
    api("POST", "/api/agents/ann/state", {"state": "available"})  # ann is offered the first caller
    assert api("GET", "/api/calls/c0").json["agent"] == "ann"
    assert api("GET", "/api/calls/c1").json["position"] == 1
    assert api("GET", "/api/calls/nope").status_code == 404


def test_cli_adds_lists_and_sets_agents_and_shows_queues(settings: Settings, hotline: Hotline,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("REDIS_URL", settings.redis_url), ("DATABASE_URL", settings.database_url),
                        ("HOTLINE_DATA_DIR", str(settings.data_dir))):
        monkeypatch.setenv(name, value or "")
    runner = CliRunner()
    added = runner.invoke(main, ["agents", "add", "ann", "--endpoint", "PJSIP/1001", "--skill", "loss:9",
                                 "--skill", "general:5", "--language", "zh-CN", "--language", "en-US"])
    assert added.exit_code == 0, added.output
    assert runner.invoke(main, ["agents", "state", "ann", "available"]).exit_code == 0
    listed = runner.invoke(main, ["agents", "list"]).output.splitlines()
    assert listed[0].split() == ["ID", "NAME", "STATE", "SKILLS", "LANGUAGES", "TODAY", "ENDPOINT"]
    assert listed[1].split() == ["ann", "ann", "available", "loss:9,general:5", "zh-CN,en-US", "0", "PJSIP/1001"]
    table = runner.invoke(main, ["queues"]).output
    assert "loss:en-US" in table and "available=1" in table
    bad = runner.invoke(main, ["agents", "add", "bob", "--endpoint", "PJSIP/1002", "--skill", "loss:12"])
    assert bad.exit_code != 0 and "level 12 is not 1-10" in bad.output
    unspoken = runner.invoke(main, ["agents", "add", "bob", "--endpoint", "PJSIP/1002", "--skill", "loss:5",
                                    "--language", "zh"])  # the menus speak zh-CN: no caller would ever reach bob
    assert unspoken.exit_code != 0 and "language 'zh' is spoken by no published menu" in unspoken.output
    assert runner.invoke(main, ["agents", "remove", "ann"]).exit_code == 0
    assert "ann" not in runner.invoke(main, ["agents", "list"]).output


def test_call_records_are_read_through_the_api_with_their_recordings(api: Any, hotline: Hotline) -> None:
    from complaints.recording_links import record_recording
    from tests.fakes.call_events import call_ended, routed_call
    from workers.records import RecordWriter

    RecordWriter(hotline.sql).write(routed_call("CA-api") + [call_ended("CA-self", at=1_800_000_500.0)])
    record_recording(hotline.sql, hotline.recordings.save("RE-api", "CA-api", b"RIFF", 2.0))

    one = api("GET", "/api/records/CA-api").json
    assert (one["caller_masked"], one["outcome"], one["queue"], one["agent_id"], one["wait_s"]) == (
        "138****5678", "routed", "general", "a7", 12.5)
    assert one["recordings"] == [{"ref": "RE-api", "duration_s": 2.0, "work_order": None}]
    assert "caller_key" not in one and "13812345678" not in json.dumps(one)
    routed = api("GET", "/api/records?outcome=routed").json
    assert [r["call_id"] for r in routed] == ["CA-api"]
    assert api("GET", "/api/records/nope").status_code == 404
    assert api("GET", "/api/records?since=yesterday").status_code == 400
    assert api("GET", "/api/records", token=None).status_code == 401
