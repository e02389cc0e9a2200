"""The OpenAPI document at /api/openapi.json and the API agree: schemathesis calls every operation.

Generated requests go through the real app (bearer token, so every operation is reachable) and each
answer must be documented: no 5xx, a documented status, the documented content type, a body that
matches the schema. Event streams are left out by name: they never end.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hotline.app import Hotline
from ivr.services import CallInfo
from routing.agents import Agent
from store.models import CallRecord, Recording
from tests.conftest import API_TOKEN

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 25
STREAMS = frozenset({"GET /api/live/stream", "GET /api/agent/stream"})
"""Server-sent events: an answer that never ends."""
MAIN_PATHS = ("/api/agents", "/api/complaints", "/api/records", "/api/reports/summary", "/api/users", "/api/audit",
              "/api/me")


@pytest.fixture
def api_schema(token_app: Any) -> Any:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", token_app)


def test_document_lists_the_main_paths_and_is_open_to_all(client: Any) -> None:
    document = client.get("/api/openapi.json")
    assert document.status_code == 200 and document.json["openapi"].startswith("3.")
    missing = [path for path in MAIN_PATHS if path not in document.json["paths"]]
    assert not missing, f"not in the document: {missing}"


def test_every_api_route_is_in_the_document(client: Any, app: Any) -> None:
    paths = client.get("/api/openapi.json").json["paths"]
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.rule.startswith("/api/docs/") or rule.rule == "/api/openapi.json":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        missing += [f"{method} {path}" for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
                    if method.lower() not in paths.get(path, {})]
    assert not missing, f"views without @doc: {missing}"


def test_every_operation_answers_as_documented(hotline: Hotline, api_schema: Any) -> None:
    known = _seed(hotline)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:
        if _is_stream(operation):
            continue
        # Random path values mostly find nothing (404); a second round uses ids that exist.
        names = [p.name for p in operation.path_parameters]
        for path in ({}, _known_path(known, operation.path, names)) if names else ({},):
            try:
                _explore(operation, path)
            except Exception as exc:  # noqa: BLE001 - every operation is explored, failures are listed together
                failures[f"{operation.label} {path or ''}"] = str(exc)[:1500]
    assert len(operations) >= 15
    assert not failures, "\n\n".join(f"{label}:\n{why}" for label, why in failures.items())


def _explore(operation: Any, path: dict[str, str]) -> None:
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(path_parameters=path or None))
    def run(case: Any) -> None:
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    run()


def _is_stream(operation: Any) -> bool:
    return operation.label in STREAMS


def _seed(hotline: Hotline) -> dict[str, str]:
    """Something in every list, so the answers are checked with rows in them; returns ids that exist."""
    hotline.agents.put(Agent("li", "Li", "PJSIP/1001", {"general": 5}, ["zh-CN"]))
    number = hotline.desk.open_work_order(CallInfo("CA-seed", "+8613800001111", "twilio", "zh-CN"), "fees", "RE-seed")
    hotline.accounts.add("ana", "admin", "correct horse battery")
    hotline.accounts.add("bo", "supervisor", "correct horse battery")
    hotline.audit.write("ana", "admin", "seeded", "li", note="seed")
    with hotline.sql.begin() as db:
        db.add(CallRecord(call_id="CA-seed", channel="twilio", caller_masked="138****1111", intent="complaint",
                          started_at=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), ivr_path=[{"node": "main"}],
                          outcome="self_served"))
        db.add(Recording(ref="RE-seed", call_id="CA-seed", work_order=number, path="x.wav", duration_s=3.5,
                         sha256="0" * 64, size_bytes=10))
    return {"agent_id": "li", "number": number, "call_id": "CA-seed", "ref": "RE-seed", "action": "assign",
            "/api/users/name": "bo", "/api/menus/name": hotline.settings.menu_name}


def _known_path(known: dict[str, str], path: str, names: list[str]) -> dict[str, str]:
    """The seeded value of each path parameter, by name (or by the path's first two parts and name)."""
    area = "/".join(path.split("/")[:3])
    found = {name: known.get(f"{area}/{name}", known.get(name)) for name in names}
    return {name: value for name, value in found.items() if value is not None}
