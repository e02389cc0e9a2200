"""The menu editor's API as an admin uses it: drafts, live checks, publish with diff and audit, calls in
progress on their old version, rollback, the TRY IT simulator that changes nothing, prompt audio, roles."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from calls.menus import DEFAULT_MENU_FILE
from hotline.app import Hotline, build_hotline, create_app
from hotline.settings import Settings
from recordings.prompts import content_hash, is_dynamic, write_placeholder_prompts
from routing.keys import EVENTS_STREAM
from softphone.agi_peer import AsteriskPeer
from store.models import CallRecord, CardFreeze, DemoCard, MenuVersion, ReturnVisit, WorkOrder
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_caller import TwilioCaller
from tests.web import SessionClient, add_user
from workers import jobs
from workers.runner import JobWorker

DEFAULT = DEFAULT_MENU_FILE.read_text(encoding="utf-8")
OLD_MAIN = "查询余额和卡片状态请按1，挂失请按2，投诉请按3，人工服务请按0。"
NEW_MAIN = "新菜单：查询余额请按1，挂失请按2，投诉请按3，人工服务请按0。"
CHANGED = DEFAULT.replace(OLD_MAIN, NEW_MAIN)
BROKEN = DEFAULT.replace('      "3": complaint_category\n', '      "3": complaint_category\n      "4": nowhere\n')
CARD, ID_LAST6 = "6222021234567894", "12345*"


@pytest.fixture
def admin(hotline: Hotline, client: Any) -> SessionClient:
    add_user(hotline, "ada", "admin")
    return SessionClient(client, "ada")


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def new_caller(client: Any) -> TwilioCaller:
    return TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL)


# -- drafts and live checks ------------------------------------------------------------------------

def test_a_saved_draft_comes_back_with_who_and_its_base_version(admin: SessionClient, hotline: Hotline) -> None:
    assert admin("GET", "/api/menus/hotline").get_json()["draft"] is None

    saved = admin("PUT", "/api/menus/hotline/draft", {"source": CHANGED})

    assert saved.status_code == 200
    shown = admin("GET", "/api/menus/hotline").get_json()
    assert shown["live_version"] == 1 and shown["live_source"] == DEFAULT
    assert {k: shown["draft"][k] for k in ("source", "base_version", "updated_by", "stale")} == {
        "source": CHANGED, "base_version": 1, "updated_by": "ada", "stale": False}
    (entry,) = hotline.audit.entries(action="menu_draft_saved")
    assert (entry["actor"], entry["target"], entry["detail"]["base_version"]) == ("ada", "hotline", 1)
    listed = admin("GET", "/api/menus").get_json()
    assert [(m["name"], m["live_version"], m["draft"] and m["draft"]["updated_by"]) for m in listed] == [
        ("hotline", 1, "ada"), ("survey", 1, None)]


def test_every_problem_names_its_node_and_line(admin: SessionClient) -> None:
    checked = admin("POST", "/api/menus/hotline/check", {"source": BROKEN}).get_json()

    assert checked["valid"] is False
    assert checked["problems"] == [{"node": "main", "reason": "unknown target 'nowhere' for key 4",
                                    "line": line_of(BROKEN, '"4": nowhere')}]
    bad_service = DEFAULT.replace("service: bank.freeze_card", "service: bank.close_account")
    (problem,) = admin("POST", "/api/menus/hotline/check", {"source": bad_service}).get_json()["problems"]
    assert (problem["node"], problem["line"]) == ("loss_freeze", line_of(bad_service, "bank.close_account"))
    not_yaml = admin("POST", "/api/menus/hotline/check", {"source": "name: hotline\nnodes: [open\n"}).get_json()
    assert not_yaml["problems"][0]["reason"].startswith("not valid YAML") and not_yaml["problems"][0]["line"] == 3


def test_a_valid_draft_gives_the_graph_of_nodes_and_keys(admin: SessionClient) -> None:
    checked = admin("POST", "/api/menus/hotline/check", {"source": CHANGED}).get_json()

    assert checked["valid"] is True and checked["problems"] == []
    nodes = {n["id"]: n for n in checked["graph"]["nodes"]}
    assert len(nodes) == 33
    assert nodes["main"]["label"].startswith("main\nmenu\n新菜单：")
    edges = {(e["source"], e["label"]): e["target"] for e in checked["graph"]["edges"]}
    assert edges[("main", "key 1")] == "inquiry_card"
    assert edges[("main", "key 9")] == "switch_language"  # a global key, as the engine sees it
    assert edges[("inquiry_lookup", "result not_found")] == "inquiry_failed"


def test_a_draft_named_after_another_menu_is_a_problem(admin: SessionClient) -> None:
    renamed = DEFAULT.replace("name: hotline", "name: other", 1)
    checked = admin("POST", "/api/menus/hotline/check", {"source": renamed}).get_json()
    assert checked["valid"] is False
    assert checked["problems"][0] == {"node": None, "line": line_of(renamed, "name: other"),
                                      "reason": "name is 'other', but this is the draft of menu 'hotline'"}


# -- publish, calls on their version, rollback -------------------------------------------------------

def test_an_invalid_draft_is_not_published_and_the_live_menu_stays(admin: SessionClient, hotline: Hotline,
                                                                   caller: TwilioCaller) -> None:
    admin("PUT", "/api/menus/hotline/draft", {"source": BROKEN})

    refused = admin("POST", "/api/menus/hotline/publish", {})

    assert refused.status_code == 400
    assert refused.get_json()["problems"] == [{"node": "main", "reason": "unknown target 'nowhere' for key 4",
                                               "line": line_of(BROKEN, '"4": nowhere')}]
    assert hotline.menus.live_version("hotline") == 1
    with hotline.sql() as db:
        assert db.scalar(select(func.count()).select_from(MenuVersion).where(MenuVersion.menu == "hotline")) == 1
    caller.dial()
    assert OLD_MAIN in caller.said()
    assert admin("GET", "/api/menus/hotline").get_json()["draft"]["source"] == BROKEN  # the work is kept


def test_publish_makes_a_version_with_its_diff_and_an_audit_entry(admin: SessionClient, hotline: Hotline) -> None:
    admin("PUT", "/api/menus/hotline/draft", {"source": CHANGED})

    published = admin("POST", "/api/menus/hotline/publish", {})

    assert published.status_code == 201
    body = published.get_json()
    assert (body["version"], body["published_by"], body["live"]) == (2, "ada", True)
    assert f"-      zh-CN: {OLD_MAIN}\n+      zh-CN: {NEW_MAIN}\n" in body["diff"]
    versions = admin("GET", "/api/menus/hotline/versions").get_json()
    assert [(v["version"], v["published_by"], v["live"]) for v in versions] == [
        (2, "ada", True), (1, "hotline (default menu)", False)]
    assert versions[0]["diff"] == body["diff"]
    assert versions[0]["diff"].startswith("--- hotline v1\n+++ hotline v2\n")
    (entry,) = hotline.audit.entries(action="menu_published")
    assert (entry["actor"], entry["role"], entry["target"]) == ("ada", "admin", "hotline")
    assert entry["detail"]["version"] == 2 and entry["detail"]["diff"] == body["diff"]
    assert admin("GET", "/api/menus/hotline").get_json()["draft"] is None  # published: nothing left to publish
    assert admin("GET", "/api/menus/hotline/versions/2").get_json()["source"] == CHANGED


def test_a_call_in_progress_keeps_its_version_while_new_calls_in_any_process_hear_the_new_one(
        admin: SessionClient, client: Any, settings: Settings) -> None:
    before = new_caller(client)
    before.dial()
    assert OLD_MAIN in before.said()
    other_process = create_app(hotline=build_hotline(settings))  # its own menu cache and Redis connection
    other_process.testing = True
    new_caller(other_process.test_client()).dial()  # that process has served a call on version 1

    assert admin("POST", "/api/menus/hotline/publish", {"source": CHANGED}).status_code == 201

    before.wait()  # silence: the menu is said again, from the version the call began on
    assert OLD_MAIN in before.said()
    after = new_caller(client)
    after.dial()
    assert NEW_MAIN in after.said() and OLD_MAIN not in after.said()
    elsewhere = new_caller(other_process.test_client())
    elsewhere.dial()
    assert NEW_MAIN in elsewhere.said()


def test_publishing_over_a_newer_live_version_asks_first(admin: SessionClient, hotline: Hotline) -> None:
    admin("PUT", "/api/menus/hotline/draft", {"source": CHANGED})
    hotline.menus.publish(DEFAULT.replace("感谢您的来电，再见。", "再见。"), published_by="bo")

    assert admin("GET", "/api/menus/hotline").get_json()["draft"]["stale"] is True
    conflict = admin("POST", "/api/menus/hotline/publish", {})
    assert conflict.status_code == 409
    assert "version 2 was published by bo" in conflict.get_json()["error"]
    assert hotline.menus.live_version("hotline") == 2

    assert admin("POST", "/api/menus/hotline/publish", {"overwrite": True}).get_json()["version"] == 3


def test_rollback_republishes_an_old_version_as_a_new_one(admin: SessionClient, hotline: Hotline,
                                                          client: Any) -> None:
    admin("POST", "/api/menus/hotline/publish", {"source": CHANGED})

    rolled = admin("POST", "/api/menus/hotline/rollback", {"version": 1})

    assert rolled.status_code == 201
    assert (rolled.get_json()["version"], rolled.get_json()["live"]) == (3, True)
    assert f"-      zh-CN: {NEW_MAIN}\n+      zh-CN: {OLD_MAIN}\n" in rolled.get_json()["diff"]
    call = new_caller(client)
    call.dial()
    assert OLD_MAIN in call.said()
    (entry,) = hotline.audit.entries(action="menu_rolled_back")
    assert (entry["actor"], entry["detail"]["version"], entry["detail"]["restored"]) == ("ada", 3, 1)
    assert [v["version"] for v in admin("GET", "/api/menus/hotline/versions").get_json() if v["live"]] == [3]
    assert admin("POST", "/api/menus/hotline/rollback", {"version": 9}).status_code == 404
    assert admin("POST", "/api/menus/hotline/rollback", {"version": 3}).get_json() == {
        "error": "version 3 of hotline is live already"}


def test_a_rollback_is_marked_in_the_versions_and_a_preview_shows_what_would_change(admin: SessionClient) -> None:
    admin("POST", "/api/menus/hotline/publish", {"source": CHANGED})
    draft = admin("POST", "/api/menus/hotline/preview", {"source": CHANGED.replace(NEW_MAIN, "again")}).get_json()
    assert draft["live_version"] == 2
    assert draft["diff"].startswith("--- hotline v2 (live)\n+++ hotline draft\n")
    assert f"-      zh-CN: {NEW_MAIN}\n+      zh-CN: again\n" in draft["diff"]
    back = admin("POST", "/api/menus/hotline/preview", {"version": 1}).get_json()
    assert f"-      zh-CN: {NEW_MAIN}\n+      zh-CN: {OLD_MAIN}\n" in back["diff"]
    assert "+++ hotline v1\n" in back["diff"]
    assert admin("POST", "/api/menus/hotline/preview", {"source": CHANGED}).get_json()["diff"] == ""
    assert admin("POST", "/api/menus/hotline/preview", {"version": 9}).status_code == 404
    assert admin("POST", "/api/menus/hotline/preview", {}).status_code == 400

    assert admin("POST", "/api/menus/hotline/rollback", {"version": 1}).get_json()["restored_from"] == 1
    versions = admin("GET", "/api/menus/hotline/versions").get_json()
    assert [(v["version"], v["restored_from"]) for v in versions] == [(3, 1), (2, None), (1, None)]
    assert admin("GET", "/api/menus/hotline/versions/3").get_json()["restored_from"] == 1


# -- TRY IT --------------------------------------------------------------------------------------------

def real_state(hotline: Hotline) -> dict[str, Any]:
    """What a real call would have changed: rows, the event stream, every Redis key but the simulator's."""
    client = redis.Redis.from_url(hotline.redis_url, decode_responses=True)
    with hotline.sql() as db:
        rows = {model.__name__: db.scalar(select(func.count()).select_from(model))
                for model in (WorkOrder, CardFreeze, ReturnVisit, CallRecord)}
        cards = sorted(db.execute(select(DemoCard.last4, DemoCard.status, DemoCard.freeze_reference)).all())
    keys = {key for key in client.scan_iter() if not key.startswith("hotline:sim:")}
    return {"rows": rows, "cards": cards, "keys": keys,
            "events": client.xlen(EVENTS_STREAM) if client.exists(EVENTS_STREAM) else 0}


def test_the_simulator_runs_the_draft_and_changes_nothing_real(admin: SessionClient, hotline: Hotline) -> None:
    before = real_state(hotline)

    started = admin("POST", "/api/menus/hotline/simulations", {"source": CHANGED})
    assert started.status_code == 201
    sim = started.get_json()
    assert [s["text"] for s in sim["said"]][-1] == NEW_MAIN  # the draft, not the live menu
    assert sim["waiting"]["kind"] == "keys" and sim["waiting"]["max_digits"] == 1

    def step(**event: Any) -> dict[str, Any]:
        reply = admin("POST", f"/api/menus/hotline/simulations/{sim['id']}", event)
        assert reply.status_code == 200, reply.get_json()
        return reply.get_json()  # type: ignore[no-any-return]

    assert step(event="keys", digits="2")["waiting"] == {
        "kind": "keys", "max_digits": 19, "min_digits": 16, "finish_on_key": "#", "timeout_s": 10, "sensitive": True}
    step(event="keys", digits=CARD + "#")
    frozen = step(event="keys", digits=ID_LAST6)
    assert frozen["said"][0]["text"].startswith("您的卡片已冻结。挂失编号：S I M -")
    assert "would freeze the card; simulated: nothing frozen" in frozen["effects"]
    assert [p["node"] for p in frozen["path"]] == [
        "opening_check", "main", "loss_card", "loss_lookup", "loss_id", "loss_freeze"]
    assert CARD not in str(frozen) and "6222********7894" in str(frozen)  # masked like a real session

    step(event="keys", digits="2")  # back to the main menu, then a complaint
    step(event="keys", digits="3")
    step(event="keys", digits="1")
    opened = step(event="recording", seconds=12)
    assert opened["said"][0]["text"].startswith("我们已受理您的投诉，工单号：S I M -")
    assert "would open a service work order; simulated: none opened" in opened["effects"]

    queued = step(event="keys", digits="0")
    assert queued["waiting"] == {"kind": "queue", "skills": ["complaint"]}
    assert any(e.startswith("would queue the call for complaint") for e in queued["effects"])
    assert hotline.router.call(f"SIM-{sim['id']}") is None
    ended = step(event="hangup")
    assert (ended["ended"], ended["outcome"]) == (True, "abandoned")

    assert real_state(hotline) == before


def test_the_simulator_reads_demo_cards_but_refuses_an_invalid_draft(admin: SessionClient) -> None:
    sim = admin("POST", "/api/menus/hotline/simulations", {"source": DEFAULT}).get_json()
    path = f"/api/menus/hotline/simulations/{sim['id']}"
    admin("POST", path, {"event": "keys", "digits": "1"})
    admin("POST", path, {"event": "keys", "digits": CARD + "#"})
    balance = admin("POST", path, {"event": "keys", "digits": "123456"}).get_json()
    assert balance["said"][0]["text"] == "您的余额为12345.67元，卡片状态：正常。"

    refused = admin("POST", "/api/menus/hotline/simulations", {"source": BROKEN})
    assert refused.status_code == 400 and refused.get_json()["problems"][0]["node"] == "main"
    assert admin("POST", "/api/menus/hotline/simulations/nope", {"event": "timeout"}).status_code == 404


# -- prompt audio ----------------------------------------------------------------------------------

def test_publishing_re_renders_only_the_changed_prompt(admin: SessionClient, hotline: Hotline,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = hotline.settings.recordings_dir / "prompts"
    live = hotline.menus.live("hotline")
    write_placeholder_prompts(live, root)  # as built before: every file there with the hash of its text
    for prompt_id, texts in live.prompts().items():
        for language, text in texts.items():
            if not is_dynamic(text):
                marker = root / "hotline" / language / f"{prompt_id}.sha256"
                marker.write_text(content_hash(text, language) + "\n")
    kept = {path: path.read_bytes() for path in root.rglob("*.wav")}
    changed = root / "hotline" / "zh-CN" / "main.wav"

    published = admin("POST", "/api/menus/hotline/publish", {"source": CHANGED}).get_json()
    monkeypatch.setattr(jobs, "_context", hotline)  # what `hotline worker` installs
    JobWorker([hotline.jobs], connection=hotline.jobs.connection).work(burst=True)

    job = hotline.jobs.fetch_job(published["prompt_job"])
    static = sum(not is_dynamic(text) for texts in live.prompts().values() for text in texts.values())
    assert job is not None and job.return_value() == {"rendered": 1, "unchanged": static - 1, "dynamic": 6, "failed": 0}
    with wave.open(str(changed)) as audio:
        assert (audio.getframerate(), audio.getnchannels()) == (8000, 1)
        assert audio.getnframes() / 8000 > 2  # the new words, spoken
    assert changed.with_suffix(".sha256").read_text().strip() == content_hash(NEW_MAIN, "zh-CN")
    assert [p for p, data in kept.items() if p.read_bytes() != data] == [changed]


# -- who may -------------------------------------------------------------------------------------------

MENU_CALLS = [
    ("GET", "/api/menus", None), ("GET", "/api/menus/hotline", None),
    ("PUT", "/api/menus/hotline/draft", {"source": DEFAULT}), ("DELETE", "/api/menus/hotline/draft", None),
    ("POST", "/api/menus/hotline/check", {"source": DEFAULT}), ("POST", "/api/menus/hotline/publish", {}),
    ("POST", "/api/menus/hotline/rollback", {"version": 1}), ("GET", "/api/menus/hotline/versions", None),
    ("GET", "/api/menus/hotline/versions/1", None), ("POST", "/api/menus/hotline/simulations", {}),
    ("POST", "/api/menus/hotline/simulations/x", {"event": "timeout"}),
    ("GET", "/admin/menus", None), ("GET", "/admin/menus/hotline", None),
]


@pytest.mark.parametrize("role", ["supervisor", "agent"])
def test_only_admins_use_the_menu_editor(role: str, hotline: Hotline, client: Any) -> None:
    add_user(hotline, "sam", role, agent_id="sam" if role == "agent" else None)
    user = SessionClient(client, "sam")
    refused = {(method, path): user(method, path, body).status_code for method, path, body in MENU_CALLS}
    assert set(refused.values()) == {403}, refused
    assert hotline.menus.live_version("hotline") == 1


def test_a_write_without_the_csrf_token_is_refused(admin: SessionClient, client: Any) -> None:
    refused = client.put("/api/menus/hotline/draft", json={"source": CHANGED})
    assert refused.status_code == 400 and "CSRF" in refused.get_json()["error"]
    assert admin("GET", "/api/menus/hotline").get_json()["draft"] is None


def test_pages_list_the_menus_and_open_the_editor(admin: SessionClient) -> None:
    listing = admin("GET", "/admin/menus").get_data(as_text=True)
    assert 'href="/admin/menus/hotline"' in listing and "v1" in listing
    editor = admin("GET", "/admin/menus/hotline")
    assert editor.status_code == 200 and "Call the draft" in editor.get_data(as_text=True)
    assert admin("GET", "/admin/menus/nothing").status_code == 404


# -- FastAGI: the same publish, seen by a running FastAGI server ----------------------------------------

WEALTH = CHANGED.replace('      "3": complaint_category\n', '      "3": complaint_category\n      "4": wealth\n') + """
  wealth:
    type: say
    prompt:
      zh-CN: 理财服务即将上线。
      en-US: Wealth management is coming soon.
    next: main
"""


def test_a_running_fastagi_server_starts_new_calls_on_a_publish_and_finishes_old_ones_on_theirs(
        admin: SessionClient, hotline: Hotline, agi_server: tuple[str, int], prompts: Path) -> None:
    def publish_then_press(waiting_for: str) -> str:
        assert admin("POST", "/api/menus/hotline/publish", {"source": WEALTH}).status_code == 201
        write_placeholder_prompts(hotline.menus.live("hotline"), prompts)  # the prompt job's work, tested above
        return "4"

    during = AsteriskPeer([], ask=publish_then_press).dial(*agi_server)
    after = AsteriskPeer(["4"]).dial(*agi_server)

    def played(call: object, sound: str) -> bool:
        return any(c.startswith(("EXEC Read", "STREAM FILE")) and f"hotline/hotline/zh-CN/{sound}" in c
                   for c in call.commands)  # type: ignore[attr-defined]

    assert played(during, "defaults.invalid")  # no key 4 in v1
    assert not any("wealth" in command for command in during.commands)
    assert played(after, "wealth")
