"""Issue 17, the web side: logins that cannot be used to lock owners out or to learn names, sessions that end on
the server, password rules, safe ``next=``, the API token's actor, a per-person live-stream cap, no 500s, the API
viewer under the pages' CSP, and a data folder only the hotline's user can read."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from admin.users.accounts import AccountError, Accounts, LoginRefused, check_password
from admin.users.throttle import LoginThrottle, ThrottleRules
from hotline.app import Hotline, create_app
from hotline.files import secure_data_dir
from store.db import connect
from tests.conftest import API_TOKEN
from tests.fakes.clock import Clock
from tests.test_live import next_snapshot, stream
from tests.web import PASSWORD, SessionClient, add_user, csrf_of, live_server, login

OWNER, ATTACKER = "10.0.0.1", "10.9.9.9"
_ERROR = re.compile(r'<p class="error" role="alert">([^<]*)</p>')


def post_login(client: Any, name: str, password: str, address: str = "127.0.0.1", **extra: str) -> Any:
    token = csrf_of(client)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token, **extra},
                       environ_base={"REMOTE_ADDR": address})


def refusal(reply: Any) -> tuple[int, str]:
    found = _ERROR.search(reply.get_data(as_text=True))
    return reply.status_code, found.group(1) if found else ""


# -- Medium 3: no lock-out anyone can cause, no name the answers give away -----------------------------------

def test_guessing_from_elsewhere_never_locks_the_owner_out_and_the_owner_is_told(hotline: Hotline, app: Any) -> None:
    add_user(hotline, "ana", "admin")
    owner = app.test_client()
    assert post_login(owner, "ana", PASSWORD, OWNER).status_code == 302  # ana's usual address
    owner.post("/logout", data={"csrf_token": csrf_of(owner, "/admin/menus")})
    attacker = app.test_client()
    answers = {refusal(post_login(attacker, "ana", f"guess number {n}", f"10.9.9.{n % 8}")) for n in range(40)}
    assert len(answers) == 1 and next(iter(answers))[0] == 401  # one answer for all 40, throttled or not
    landed = post_login(owner, "ana", PASSWORD, OWNER)
    assert landed.status_code == 302 and landed.headers["Location"] == "/admin/menus"  # not locked out
    page = owner.get("/admin/menus").get_data(as_text=True)
    assert re.search(r"40 failed login attempts since your last login, last from 10\.9\.9\.7 at \d{4}-\d\d-\d\d", page)
    failed = hotline.audit.entries(action="login_failed", target="ana", limit=1000)
    assert len(failed) == 40 and {e["detail"]["address"] for e in failed} == {f"10.9.9.{n}" for n in range(8)}
    assert "guess number" not in str(hotline.audit.entries(limit=1000))
    # the notice comes once: the next login has nothing new to tell
    other = app.test_client()
    assert post_login(other, "ana", PASSWORD, OWNER).status_code == 302
    assert "failed login attempt" not in other.get("/admin/menus").get_data(as_text=True)


def test_every_refused_login_gets_the_same_answer_in_the_same_time(hotline: Hotline, app: Any) -> None:
    add_user(hotline, "ana", "admin")
    add_user(hotline, "bo", "supervisor")
    add_user(hotline, "gone", "supervisor")
    hotline.accounts.set_active("gone", False)
    client = app.test_client()
    for _ in range(12):  # ana is now throttled from the attacker's address for 900 s, even with her password
        hotline.accounts.throttle.failed("ana", ATTACKER)  # type: ignore[union-attr]
    timings: dict[str, list[float]] = {}
    answers = set()
    for n in range(5):
        for case, (name, password, address) in {
            "unknown name": ("nobody", PASSWORD, f"10.1.{n}.1"),
            "wrong password": ("bo", "not his password", f"10.1.{n}.2"),
            "throttled": ("ana", PASSWORD, ATTACKER),
            "deactivated": ("gone", PASSWORD, f"10.1.{n}.3"),
        }.items():
            started = time.perf_counter()
            answers.add(refusal(post_login(client, name, password, address)))
            timings.setdefault(case, []).append(time.perf_counter() - started)
    assert len(answers) == 1 and next(iter(answers))[0] == 401
    assert "wrong name or password" in next(iter(answers))[1]
    usual = statistics.median(timings["wrong password"])
    for case, seconds in timings.items():  # each runs one password hash check: none answers much sooner
        assert 0.5 < statistics.median(seconds) / usual < 2, (case, timings)
    reasons = {e["detail"]["reason"] for e in hotline.audit.entries(action="login_failed", limit=1000)}
    assert reasons == {"unknown name", "wrong password", "throttled", "deactivated"}


def test_a_wrong_password_with_no_wait_due_never_refuses_the_next_try_as_throttled(hotline: Hotline) -> None:
    clock = Clock(1_000.0006)  # stored as "1000.001": after "now" for the next half millisecond
    accounts = Accounts(hotline.sql, LoginThrottle(hotline.redis, "t17r", ThrottleRules(), clock))
    accounts.add("bo", "supervisor", PASSWORD)
    with pytest.raises(LoginRefused):
        accounts.authenticate("bo", "wrong password", OWNER)
    assert accounts.authenticate("bo", PASSWORD, OWNER).name == "bo"  # the first mistake costs no wait


def test_waits_grow_per_address_and_account_and_spare_the_owners_address(hotline: Hotline) -> None:
    clock = Clock()
    accounts = Accounts(hotline.sql, LoginThrottle(hotline.redis, "t17", ThrottleRules(), clock))
    accounts.add("bo", "supervisor", PASSWORD)
    accounts.authenticate("bo", PASSWORD, OWNER)
    for _ in range(3):
        with pytest.raises(LoginRefused):
            accounts.authenticate("bo", "wrong password", ATTACKER)
    with pytest.raises(LoginRefused) as refused:  # the right password, but this address must wait 1 s
        accounts.authenticate("bo", PASSWORD, ATTACKER)
    assert refused.value.reason == "throttled"
    clock.advance(1.01)
    with pytest.raises(LoginRefused):  # the 4th failure: now 2 s
        accounts.authenticate("bo", "wrong password", ATTACKER)
    clock.advance(1.01)
    with pytest.raises(LoginRefused):
        accounts.authenticate("bo", PASSWORD, ATTACKER)
    clock.advance(1.01)
    assert accounts.authenticate("bo", PASSWORD, ATTACKER).name == "bo"
    for n in range(6):  # 10 failures at bo in all: addresses bo never logged in from must wait now
        with pytest.raises(LoginRefused):
            accounts.authenticate("bo", "wrong password", f"10.8.8.{n}")
    with pytest.raises(LoginRefused, match="wrong name or password") as refused:
        accounts.authenticate("bo", PASSWORD, "10.7.7.7")
    assert refused.value.reason == "throttled"
    assert accounts.get("bo").locked_until is not None  # type: ignore[union-attr]
    assert accounts.authenticate("bo", PASSWORD, OWNER).name == "bo"  # the owner's address is spared
    assert accounts.authenticate("bo", PASSWORD, ATTACKER).name == "bo"  # and so is any bo logged in from
    accounts.unlock("bo")  # an admin lifts the wait
    assert accounts.get("bo").locked_until is None  # type: ignore[union-attr]
    assert accounts.authenticate("bo", PASSWORD, "10.7.7.7").name == "bo"


# -- Low: sessions end on the server; own password change; password rules ------------------------------------

def test_a_copy_of_the_cookie_is_worth_nothing_after_logout(hotline: Hotline, app: Any) -> None:
    add_user(hotline, "bo", "supervisor")
    client = app.test_client()
    token = login(client, "bo")
    kept = client.get_cookie("session").value
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", kept)
    assert thief.get("/api/me").status_code == 401


def test_people_change_their_own_password_and_their_other_sessions_end(hotline: Hotline, app: Any) -> None:
    add_user(hotline, "bo", "supervisor")
    elsewhere = app.test_client()
    login(elsewhere, "bo")
    bo = SessionClient(app.test_client(), "bo")
    wrong = bo("POST", "/api/me/password", {"current_password": "not it at all", "new_password": "a fresh long one"})
    assert wrong.status_code == 400 and "current password is wrong" in wrong.json["error"]
    for weak, reason in (("          ", "different characters"), ("password1234", "commonly used"),
                         ("Qwertyuiop", "commonly used"), ("bo-the-supervisor", "user name")):
        reply = bo("POST", "/api/me/password", {"current_password": PASSWORD, "new_password": weak})
        assert reply.status_code == 400 and reason in reply.json["error"], (weak, reply.json)
    changed = bo("POST", "/api/me/password", {"current_password": PASSWORD, "new_password": "a fresh long one"})
    assert changed.status_code == 200 and changed.json["name"] == "bo"
    assert bo.client.get("/api/me").status_code == 200  # this session goes on
    assert elsewhere.get("/api/me").status_code == 401  # the other one has ended
    assert login(app.test_client(), "bo", "a fresh long one")
    entry = hotline.audit.entries(action="password_changed")[0]
    assert (entry["actor"], entry["target"]) == ("bo", "bo") and "fresh" not in str(entry)


def test_the_password_page_changes_the_password(hotline: Hotline, app: Any) -> None:
    add_user(hotline, "cy", "agent")
    client = app.test_client()
    login(client, "cy")
    token = csrf_of(client, "/account/password")
    form = {"csrf_token": token, "current_password": PASSWORD, "new_password": "another long phrase",
            "repeat_password": "another long phrase"}
    assert client.post("/account/password", data={**form, "repeat_password": "x"}).status_code == 400
    assert client.post("/account/password", data=form).headers["Location"] == "/agent"
    assert login(app.test_client(), "cy", "another long phrase")


@pytest.mark.parametrize(("password", "reason"), [
    ("          ", "different characters"), ("1234567890", "commonly used"), ("iloveyou12", "commonly used"),
    ("aaaaaaaaaaaa", "different characters"), ("my name is bo ok", "user name"),
])
def test_admins_cannot_give_weak_passwords_either(hotline: Hotline, client: Any, password: str, reason: str) -> None:
    add_user(hotline, "ana", "admin")
    admin = SessionClient(client, "ana")
    reply = admin("POST", "/api/users", {"name": "bo", "role": "supervisor", "password": password})
    assert reply.status_code == 400 and reason in reply.json["error"]
    with pytest.raises(AccountError, match=reason):
        check_password(password, "bo")


# -- Low: login next= -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example",
                                    "/admin\r\nSet-Cookie: x=1", "/\x00/evil.example", "javascript:alert(1)",
                                    "/\\/evil.example"])
def test_login_next_stays_on_this_site_whatever_the_browser_strips(hotline: Hotline, client: Any,
                                                                   target: str) -> None:
    add_user(hotline, "ana", "admin")
    reply = post_login(client, "ana", PASSWORD, next=target)
    assert reply.status_code == 302 and reply.headers["Location"] == "/admin/menus"


def test_login_next_keeps_a_path_of_this_site(hotline: Hotline, client: Any) -> None:
    add_user(hotline, "ana", "admin")
    reply = post_login(client, "ana", PASSWORD, next="/admin/audit?actor=bo")
    assert reply.headers["Location"] == "/admin/audit?actor=bo"


# -- Low: the API token's actor -------------------------------------------------------------------------------

def test_nobody_may_be_called_api_token_and_the_token_is_the_audited_actor(hotline: Hotline,
                                                                            token_app: Any) -> None:
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    api = token_app.test_client()
    for name in ("api-token", "API-Token"):
        reply = api.post("/api/users", json={"name": name, "role": "admin", "password": PASSWORD}, headers=bearer)
        assert reply.status_code == 400 and "reserved" in reply.json["error"]
    from ivr.services import CallInfo

    number = hotline.desk.open_work_order(CallInfo("CA-t", "+8613812345678", "twilio", "zh-CN"), "fees", "RE-t")
    add_user(hotline, "bob", "supervisor")  # an assignee must be a person who works orders
    acted = api.post(f"/api/complaints/{number}/assign", json={"by": "mallory", "to": "bob"}, headers=bearer)
    assert acted.status_code == 200
    entry = hotline.audit.entries(action="work_order_assign")[0]
    assert (entry["actor"], entry["detail"]["by"]) == ("api-token", "mallory")


# -- Low: one person cannot take every live stream ------------------------------------------------------------

def test_one_person_gets_429_past_their_share_of_live_streams_and_others_still_get_one(hotline: Hotline) -> None:
    hotline.settings = hotline.settings.model_copy(update={"live_streams_per_person": 2})
    app = create_app(hotline=hotline)
    add_user(hotline, "sue", "supervisor")
    add_user(hotline, "sam", "supervisor")
    with live_server(app) as url, stream(url, "sue") as first, stream(url, "sue") as second:
        next_snapshot(first), next_snapshot(second)
        sue = requests.Session()
        token = re.search(r'name="csrf-token" content="([^"]+)"', sue.get(f"{url}/login").text)
        sue.post(f"{url}/login", data={"name": "sue", "password": PASSWORD, "csrf_token": token.group(1)})  # type: ignore[union-attr]
        refused = sue.get(f"{url}/api/live/stream", stream=True, timeout=5)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
        assert "2 live pages open" in refused.json()["error"]
        with stream(url, "sam") as sams:
            assert next_snapshot(sams)  # the cap is per person: another supervisor's dashboard still opens


# -- Low: no 500s ---------------------------------------------------------------------------------------------

def test_acting_on_an_unknown_work_order_page_is_404(hotline: Hotline, client: Any) -> None:
    add_user(hotline, "sue", "supervisor")
    token = login(client, "sue")
    reply = client.post("/admin/work-orders/209912310000001", data={"csrf_token": token, "action": "start"})
    assert reply.status_code == 404 and "209912310000001" in reply.get_data(as_text=True)


def test_a_call_hash_left_as_a_stub_after_an_agent_leg_is_not_a_500(hotline: Hotline, token_app: Any) -> None:
    hotline.router.note_agent_leg("CA-stub", "leg-1")  # after the call ended: only the leg's field is left
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    assert token_app.test_client().get("/api/calls/CA-stub", headers=bearer).status_code == 404
    add_user(hotline, "ag1", "agent")
    agent = SessionClient(token_app.test_client(), "ag1")
    declined = agent("POST", "/api/agent/calls/CA-stub/decline")
    assert declined.status_code in (404, 409) and "error" in declined.json


# -- Low: the API viewer runs this site's own copy under the pages' CSP ----------------------------------------

def test_the_api_viewer_is_served_from_this_site_under_the_pages_csp(client: Any) -> None:
    page = client.get("/api/docs/swagger/")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "script-src" not in page.headers.get("Content-Security-Policy", "x")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "unpkg" not in body and "cdn" not in body and "<script>" not in body
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', body):
        assert client.get(asset).status_code == 200, asset
    assert re.findall(r'src="([^"]+)"', body) == ["/static/vendor/swagger-ui-bundle.js", "/static/api_docs.js"]


def test_browser_shows_the_api_viewer_without_a_blocked_script(site: str, page: Any) -> None:
    page.goto(f"{site}/api/docs/swagger/")
    # the viewer ran, read the document and lists the operations (the page fixture fails on any CSP block)
    page.locator('[data-path="/api/me"]').first.wait_for()


# -- Low: the data folder is the hotline user's alone ----------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: files would be 644
    try:
        connect(f"sqlite:///{tmp_path / 'var' / 'hotline.db'}")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "var" / "hotline.db") == 0o600 and _mode(tmp_path / "var") == 0o700


def test_hotline_up_closes_a_data_folder_left_open_and_keeps_new_files_private(tmp_path: Path) -> None:
    data = tmp_path / "var"
    (data / "recordings" / "2026").mkdir(parents=True)
    for path in (data / "hotline.db", data / "recordings" / "2026" / "RE1.wav"):
        path.write_bytes(b"x")
        path.chmod(0o644)
    for folder in (data, data / "recordings", data / "recordings" / "2026"):
        folder.chmod(0o755)
    old = os.umask(0o022)
    try:
        secure_data_dir(data)
        (data / "recordings" / "new.wav").write_bytes(b"x")
        (data / "recordings" / "new").mkdir()
    finally:
        os.umask(old)
    assert {p.name: _mode(p) for p in data.rglob("*")} == {
        "hotline.db": 0o600, "recordings": 0o700, "2026": 0o700, "RE1.wav": 0o600, "new.wav": 0o600, "new": 0o700}
    assert _mode(data) == 0o700


def test_with_an_asterisk_group_only_the_prompts_and_spool_are_shared(tmp_path: Path) -> None:
    import grp

    data = tmp_path / "var"
    (data / "recordings" / "prompts" / "hotline").mkdir(parents=True)
    (data / "recordings" / "prompts" / "hotline" / "welcome.wav").write_bytes(b"x")
    (data / "hotline.db").write_bytes(b"x")
    old = os.umask(0o022)
    try:
        secure_data_dir(data, grp.getgrgid(os.getgid()).gr_name)
    finally:
        os.umask(old)
    modes = {str(p.relative_to(data)): _mode(p) for p in data.rglob("*")}
    assert modes == {"hotline.db": 0o600, "recordings": 0o710, "recordings/prompts": 0o2750,
                     "recordings/prompts/hotline": 0o2750, "recordings/prompts/hotline/welcome.wav": 0o640,
                     "recordings/spool": 0o2770}
    assert _mode(data) == 0o710


def test_the_unlock_command_lifts_the_wait_in_redis(hotline: Hotline, tmp_path: Path) -> None:
    import subprocess
    import sys

    add_user(hotline, "bo", "supervisor")
    _long_waits(hotline)
    for n in range(hotline.settings.login_account_free_tries):
        with pytest.raises(LoginRefused):
            hotline.accounts.authenticate("bo", "wrong password", f"10.6.6.{n}")
    assert hotline.accounts.get("bo").locked_until is not None  # type: ignore[union-attr]
    env = {**os.environ, "DATABASE_URL": hotline.settings.sql_url, "REDIS_URL": hotline.redis_url,
           "HOTLINE_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "hotline.cli", "users", "unlock", "bo"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "bo unlocked" in done.stdout, done.stderr
    assert hotline.accounts.get("bo").locked_until is None  # type: ignore[union-attr]


def _long_waits(hotline: Hotline) -> None:
    """A first wait of minutes, not 1 s: a loaded machine may take a second between the last failure and the check."""
    throttle = hotline.accounts.throttle
    assert throttle is not None
    throttle.rules = dataclasses.replace(throttle.rules, base_s=300.0)
