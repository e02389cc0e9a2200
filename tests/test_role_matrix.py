"""Who may call what, route by route: every route of the app against a policy written out here.

The policy below is the decision, not the views' own ``@allow`` (comparing with those would test
nothing). A route added without an entry fails the test until someone decides who may use it.
Allowed means the guard lets the request through (any status but 401/403: a 404 for a made-up id
is fine); refused means 401 for nobody logged in (JSON under /api, a redirect to /login for pages)
and 403 for a logged-in person of another role.
"""

from __future__ import annotations

import re
from typing import Any

from hotline.app import Hotline
from ivr.services import CallInfo
from routing.agents import Agent
from tests.conftest import API_TOKEN
from tests.web import PASSWORD, SessionClient, add_user

A, S, G, Q = "admin", "supervisor", "agent", "qa"
ALL = (A, S, G, Q)
STAFF = (A, S)
REVIEWERS = (A, S, Q)

POLICY: dict[tuple[str, str], tuple[str, ...]] = {
    # everyone logged in
    ("GET", "/"): ALL,
    ("POST", "/logout"): ALL,
    ("GET", "/api/me"): ALL,
    ("GET", "/account/password"): ALL,
    ("POST", "/account/password"): ALL,
    ("POST", "/api/me/password"): ALL,
    # the agent console: agents only (an admin is not an agent)
    ("GET", "/agent"): (G,),
    ("GET", "/api/agent/console"): (G,),
    ("GET", "/api/agent/stream"): (G,),
    ("POST", "/api/agent/state"): (G,),
    ("POST", "/api/agent/wrap-up"): (G,),
    ("PUT", "/api/agent/wrap-up/draft"): (G,),
    ("POST", "/api/agent/wrap-up/extend"): (G,),
    ("POST", "/api/agent/calls/<call_id>/accept"): (G,),
    ("POST", "/api/agent/calls/<call_id>/decline"): (G,),
    # dashboards, live queues and calls
    ("GET", "/admin/dashboard"): STAFF,
    ("GET", "/api/live"): STAFF,
    ("GET", "/api/live/stream"): STAFF,
    ("GET", "/api/queues"): STAFF,
    ("GET", "/api/calls/<call_id>"): STAFF,
    ("POST", "/api/calls/<call_id>/monitor"): STAFF,
    ("POST", "/api/calls/<call_id>/recording"): (A, S, G),  # an agent only on their own call (tested beside it)
    ("GET", "/api/calls/transfer-targets"): (A, S, G),
    ("POST", "/api/calls/<call_id>/hangup"): (A, S, G),
    ("POST", "/api/calls/<call_id>/hold"): (A, S, G),
    ("POST", "/api/calls/<call_id>/transfer"): (A, S, G),
    ("POST", "/api/calls/<call_id>/transfer/complete"): (A, S, G),
    ("POST", "/api/calls/<call_id>/transfer/cancel"): (A, S, G),
    # agents: supervisors read the list and set an agent's state; admins edit
    ("GET", "/admin/agents"): STAFF,
    ("GET", "/api/agents"): STAFF,
    ("GET", "/api/roster"): STAFF,
    ("GET", "/api/agents/<agent_id>"): STAFF,
    ("POST", "/api/agents/<agent_id>/state"): STAFF,
    ("PUT", "/api/agents/<agent_id>"): (A,),
    ("DELETE", "/api/agents/<agent_id>"): (A,),
    ("POST", "/api/agents/<agent_id>/deactivate"): (A,),
    ("POST", "/api/agents/<agent_id>/reactivate"): (A,),
    # reports and call records
    ("GET", "/admin/reports"): STAFF,
    ("GET", "/api/reports/summary"): STAFF,
    ("GET", "/api/reports/summary.csv"): STAFF,
    ("GET", "/api/records"): STAFF,
    ("GET", "/api/records/<call_id>"): STAFF,
    # work orders and their recordings
    ("GET", "/admin/work-orders"): STAFF,
    ("GET", "/admin/work-orders/<number>"): (A, S, G),  # agents: only the orders of the caller on their line
    ("POST", "/admin/work-orders/<number>"): STAFF,
    ("GET", "/api/complaints"): STAFF,
    ("GET", "/api/complaints/<number>"): STAFF,
    ("POST", "/api/complaints/<number>/<action>"): STAFF,
    ("POST", "/api/recordings/<ref>/link"): REVIEWERS,  # qa: calls of their review queue only (test_quality_web)
    ("GET", "/recordings/play/<token>"): REVIEWERS,
    # quality: reviewers score their queue; admins build forms; agents answer their own evaluations
    ("GET", "/admin/quality"): REVIEWERS,
    ("GET", "/api/quality/queue"): REVIEWERS,
    ("POST", "/admin/quality/sampling"): STAFF,
    ("POST", "/api/quality/sampling"): STAFF,
    ("POST", "/admin/quality/calibrations"): STAFF,
    ("GET", "/admin/quality/calibration/<call_id>"): REVIEWERS,
    ("GET", "/admin/quality/items/<int:item_id>"): REVIEWERS,
    ("POST", "/admin/quality/items/<int:item_id>"): REVIEWERS,
    ("GET", "/admin/quality/forms"): (A,),
    ("POST", "/admin/quality/forms"): (A,),
    ("GET", "/admin/quality/scorecards"): REVIEWERS,
    ("GET", "/api/quality/scorecards"): REVIEWERS,
    ("GET", "/api/quality/scorecards.csv"): REVIEWERS,
    ("GET", "/agent/evaluations"): (G,),
    ("POST", "/agent/evaluations/<int:evaluation_id>"): (G,),
    # cards whose PIN checks are locked: supervisors see them, admins reset them
    ("GET", "/admin/pin-locks"): STAFF,
    ("POST", "/admin/pin-locks/<card_key>/reset"): (A,),
    ("GET", "/admin/hours"): STAFF,
    ("POST", "/admin/hours/week"): (A,),
    ("POST", "/admin/hours/holidays"): (A,),
    ("POST", "/admin/hours/holidays/<day>/delete"): (A,),
    # menus: admins only
    ("GET", "/admin/menus"): (A,),
    ("GET", "/admin/menus/<name>"): (A,),
    ("GET", "/api/menus"): (A,),
    ("GET", "/api/menus/<name>"): (A,),
    ("POST", "/api/menus/<name>/check"): (A,),
    ("PUT", "/api/menus/<name>/draft"): (A,),
    ("DELETE", "/api/menus/<name>/draft"): (A,),
    ("POST", "/api/menus/<name>/publish"): (A,),
    ("POST", "/api/menus/<name>/rollback"): (A,),
    ("POST", "/api/menus/<name>/preview"): (A,),
    ("POST", "/api/menus/<name>/simulations"): (A,),
    ("POST", "/api/menus/<name>/simulations/<sim_id>"): (A,),
    ("GET", "/api/menus/<name>/versions"): (A,),
    ("GET", "/api/menus/<name>/versions/<int:version>"): (A,),
    # users and the audit log: admins only
    ("GET", "/admin/users"): (A,),
    ("GET", "/admin/audit"): (A,),
    ("GET", "/api/users"): (A,),
    ("POST", "/api/users"): (A,),
    ("GET", "/api/users/<name>"): (A,),
    ("POST", "/api/users/<name>/role"): (A,),
    ("POST", "/api/users/<name>/password"): (A,),
    ("POST", "/api/users/<name>/deactivate"): (A,),
    ("POST", "/api/users/<name>/reactivate"): (A,),
    ("POST", "/api/users/<name>/unlock"): (A,),
    ("GET", "/api/audit"): (A,),
}
"""(method, rule) -> the roles allowed. The bearer token acts as an admin."""

OPEN = re.compile(r"^/(static|twilio)/|^/healthz$|^/readyz$|^/metrics$|^/login$|^/api/openapi\.json$|^/api/docs/"
                  r"|^/favicon\.ico$|^/language$")
"""Not behind a login: assets, Twilio (its own signature), health, Prometheus's scrape (its own token, 401
without: tests/test_metrics.py), the login form, the API document, the browser's favicon request, the language
switch (on the login page too; CSRF-checked, tests/test_i18n.py)."""
PARAMS = {"name": "nobody", "number": "999999999999", "call_id": "CA-nobody", "agent_id": "nobody",
          "action": "assign", "sim_id": "nosuchsim", "version": "1", "ref": "RE-nobody", "token": "not-a-token",
          "item_id": "999999", "evaluation_id": "999999"}
"""Ids that exist nowhere: an allowed call may answer 404, it must not change anything."""


def routes(app: Any) -> list[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if OPEN.search(rule.rule):
            continue
        found |= {(method, rule.rule) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return sorted(found, key=lambda r: (r[1], r[0]))


def concrete(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: PARAMS.get(m.group(1), "x"), rule)


def test_every_route_has_a_decision_in_the_policy(token_app: Any) -> None:
    present = routes(token_app)
    missing = [f"add {method} {rule} to POLICY" for method, rule in present if (method, rule) not in POLICY]
    assert not missing, "\n".join(missing)
    gone = [f"{method} {rule} is in POLICY but not in the app" for method, rule in POLICY if (method, rule)
            not in present]
    assert not gone, "\n".join(gone)


def test_every_route_lets_in_exactly_the_roles_of_the_policy(hotline: Hotline, token_app: Any) -> None:
    people = (("ana", A), ("bo", S), ("cy", G), ("quinn", Q))
    for name, role in people:
        add_user(hotline, name, role)
    clients = {role: SessionClient(token_app.test_client(), name) for name, role in people}
    anonymous, bearer = token_app.test_client(), token_app.test_client()
    wrong: list[str] = []
    for method, rule in routes(token_app):
        path, allowed = concrete(rule), POLICY.get((method, rule), ())
        for who, call in [(role, clients[role]) for role in ALL] + [("token", _bearer(bearer))]:
            reply = call(method, path, {} if method in ("POST", "PUT", "PATCH") else None)
            wrong += _judge(method, path, who, A if who == "token" else who, allowed, reply)
            if rule == "/logout" and who != "token":
                clients[who] = SessionClient(token_app.test_client(), {A: "ana", S: "bo", G: "cy", Q: "quinn"}[who])
        reply = anonymous.open(path, method=method, json={} if method in ("POST", "PUT") else None)
        wrong += _judge_anonymous(method, path, reply)
    assert not wrong, "\n".join(wrong)


def _bearer(client: Any) -> Any:
    def call(method: str, path: str, body: object = None) -> Any:
        return client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {API_TOKEN}"})
    return call


def _judge(method: str, path: str, who: str, role: str, allowed: tuple[str, ...], reply: Any) -> list[str]:
    status = reply.status_code
    try:
        if role in allowed:
            return [f"{who}: {method} {path} refused ({status}), policy allows"] if _guard_refused(reply) else []
        if status != 403:
            return [f"{who}: {method} {path} answered {status}, policy refuses (403 expected)"]
        if path.startswith("/api/") and "error" not in (reply.get_json(silent=True) or {}):
            return [f"{who}: {method} {path} 403 without a JSON error"]
        if not path.startswith("/api/") and "text/html" not in reply.content_type:
            return [f"{who}: {method} {path} 403 is not an HTML page"]
        return []
    finally:
        reply.close()  # an event stream that was let through is not read


def _guard_refused(reply: Any) -> bool:
    """401, or the guard's 403 (a view may answer 403 itself, e.g. to a forged playback link)."""
    return reply.status_code == 401 or (reply.status_code == 403 and "may not use" in reply.get_data(as_text=True))


def _judge_anonymous(method: str, path: str, reply: Any) -> list[str]:
    status = reply.status_code
    reply.close()
    if path.startswith("/api/"):
        if status != 401 or "error" not in (reply.get_json(silent=True) or {}):
            return [f"anonymous: {method} {path} answered {status}, a JSON 401 expected"]
        return []
    if status != 302 or not reply.headers["Location"].startswith("/login?next="):
        return [f"anonymous: {method} {path} answered {status}, a redirect to /login expected"]
    return []


def test_the_favicon_answers_anyone_and_every_page_links_it(token_app: Any) -> None:
    """Browsers ask /favicon.ico on every page: a 404 there fills logs and consoles with noise."""
    anonymous = token_app.test_client()
    asked = anonymous.get("/favicon.ico")
    assert asked.status_code in (200, 301, 302, 308)
    icon = anonymous.get(asked.headers["Location"]) if asked.status_code != 200 else asked
    assert icon.status_code == 200 and icon.content_type.startswith("image/")
    login_page = anonymous.get("/login").get_data(as_text=True)
    assert re.search(r'<link rel="icon"[^>]*href="/static/favicon\.svg"', login_page)


def test_a_wrong_bearer_token_is_refused_even_where_anyone_logged_in_may_go(token_app: Any) -> None:
    client = token_app.test_client()
    for path in ("/api/me", "/api/users", "/api/agents"):
        reply = client.get(path, headers={"Authorization": f"Bearer {API_TOKEN}x"})
        assert reply.status_code == 401 and reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {API_TOKEN}"}).json["name"] == "api-token"


# -- CSRF: a cookie-authenticated write without the token is refused and changes nothing ----------

AGENT = {"name": "Li", "endpoint": "PJSIP/1001", "skills": {"general": 5}, "languages": ["zh-CN"]}


def test_cookie_writes_without_the_csrf_token_are_refused_and_change_nothing(hotline: Hotline,
                                                                            token_app: Any) -> None:
    for name, role in (("ana", A), ("bo", S), ("cy", G)):
        add_user(hotline, name, role)
    hotline.agents.put(Agent("cy", "Cy", "PJSIP/1003", {"general": 5}, ["zh-CN"]))
    number = hotline.desk.open_work_order(CallInfo("CA-1", "+8613800001111", "twilio", "zh-CN"), "fees", "RE-1")
    admin, supervisor, agent = (SessionClient(token_app.test_client(), n) for n in ("ana", "bo", "cy"))
    audited = len(hotline.audit.entries())
    samples = [
        (admin, "PUT", "/api/agents/li", {"json": AGENT}),
        (admin, "POST", "/api/users", {"json": {"name": "ed", "role": "admin", "password": PASSWORD}}),
        (admin, "POST", "/api/users/bo/deactivate", {"json": {}}),
        (admin, "POST", f"/api/menus/{hotline.settings.menu_name}/publish", {"json": {}}),
        (supervisor, "POST", f"/api/complaints/{number}/assign", {"json": {"to": "bo"}}),
        (supervisor, "POST", f"/admin/work-orders/{number}", {"data": {"action": "assign", "to": "bo"}}),
        (agent, "POST", "/api/agent/state", {"json": {"state": "available"}}),
        (agent, "POST", "/logout", {"data": {}}),
    ]
    for who, method, path, kwargs in samples:
        for headers in ({}, {"X-CSRFToken": "forged-token"}):
            reply = who.client.open(path, method=method, headers=headers, **kwargs)
            assert reply.status_code == 400 and "CSRF" in reply.get_data(as_text=True), (method, path, headers)
    assert hotline.agents.get("li") is None and hotline.accounts.get("ed") is None
    assert hotline.accounts.get("bo").active  # type: ignore[union-attr]
    assert hotline.desk.show(number)["status"] == "open"
    assert hotline.agents.get("cy").state == "offline"  # type: ignore[union-attr]
    assert agent("GET", "/api/me").status_code == 200  # still logged in: the forged logout did nothing
    assert len(hotline.audit.entries()) == audited
    assert agent("POST", "/api/agent/state", {"state": "available"}).status_code == 200  # with the token: fine


def test_health_and_readiness_answer_anyone_and_tell_no_secret(token_app: Any) -> None:
    """Load balancers and orchestrators probe without credentials; readiness says only what failed."""
    anonymous = token_app.test_client()
    assert anonymous.get("/healthz").status_code == 200
    ready = anonymous.get("/readyz")
    assert ready.status_code in (200, 503) and set(ready.json["checks"]) == {"redis", "database", "records", "menu"}
    settings = token_app.extensions["hotline"].settings
    for secret in (settings.redis_url, settings.sql_url, settings.api_token, str(settings.data_dir)):
        assert secret and secret not in ready.get_data(as_text=True)
