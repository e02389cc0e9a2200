"""The Grafana dashboard and the Prometheus alert rules in ``ops/``: valid, and reading only metrics the hotline
exposes (a renamed metric would leave a panel blank or an alert silent, without any error)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client.parser import text_string_to_metric_families

from tests.test_metrics import scrape

OPS = Path(__file__).resolve().parents[1] / "ops"
DASHBOARD = OPS / "grafana" / "hotline.json"
RULES = OPS / "prometheus" / "hotline-rules.yml"
RULE_TESTS = OPS / "prometheus" / "hotline-rules.test.yml"
METRIC = re.compile(r"\bhotline_[a-z0-9_]+\b")

PANEL_SCHEMA: dict[str, Any] = {
    # From Grafana's dashboard JSON model (https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/
    # view-dashboard-json-model/: panels, gridPos on a 24-column grid, targets with refId; datasource references
    # by type and uid), for what this dashboard uses; the SDK's model below catches misspelled keys.
    "type": "object",
    "required": ["id", "type", "title", "gridPos", "targets", "datasource"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "type": {"enum": ["timeseries", "stat", "gauge", "bargauge", "table", "row"]},
        "title": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "gridPos": {"type": "object", "required": ["h", "w", "x", "y"], "additionalProperties": False,
                    "properties": {"h": {"type": "integer", "minimum": 1}, "w": {"type": "integer", "minimum": 1,
                                   "maximum": 24}, "x": {"type": "integer", "minimum": 0, "maximum": 23},
                                   "y": {"type": "integer", "minimum": 0}}},
        "datasource": {"$ref": "#/$defs/datasource"},
        "targets": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["refId", "expr", "datasource"],
            "properties": {"refId": {"type": "string", "pattern": "^[A-Z]$"}, "expr": {"type": "string", "minLength": 1},
                           "legendFormat": {"type": "string"}, "datasource": {"$ref": "#/$defs/datasource"}}}},
        "fieldConfig": {"type": "object", "required": ["defaults", "overrides"]},
        "options": {"type": "object"},
    },
}
DASHBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,40}$"},
        "title": {"type": "string"},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "refresh": {"type": "string"},
        "time": {"type": "object", "required": ["from", "to"]},
        "templating": {"type": "object", "required": ["list"]},
        "panels": {"type": "array", "minItems": 1, "items": PANEL_SCHEMA},
    },
    "$defs": {"datasource": {"type": "object", "required": ["type", "uid"], "additionalProperties": False,
                             "properties": {"type": {"const": "prometheus"}, "uid": {"type": "string"}}}},
}


def exposed_names(text: str) -> set[str]:
    """Every series name the exposition can hold, from its TYPE lines (a counter no call has touched yet has
    no sample, but its name is declared)."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
                "gauge": ("",), "unknown": ("",)}
    return {family.name + suffix for family in text_string_to_metric_families(text)
            for suffix in suffixes.get(family.type, ("",))}


@pytest.fixture
def exposition(token_app: Any) -> str:
    return scrape(token_app)


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    data = dashboard()
    jsonschema.validate(data, DASHBOARD_SCHEMA)
    # Grafana's own model (grafana-foundation-sdk) decodes it and encodes it back with every key we wrote:
    # a key Grafana does not know (a typo) is dropped on the way and shows here.
    model = Dashboard.from_json(data)
    again = json.loads(json.dumps(model, cls=JSONEncoder))
    assert _lost(data, again) == []
    assert len({p["id"] for p in data["panels"]}) == len(data["panels"])
    titles = {p["title"] for p in data["panels"]}
    for wanted in ("Calls waiting per queue", "Longest wait", "Agents by state", "Service level", "Abandonment",
                   "Step latency p50 / p99", "Calls by outcome", "Menu errors", "Call records lag",
                   "RQ jobs and workers", "Redis and database errors"):
        assert wanted in titles


def _lost(mine: Any, decoded: Any, path: str = "") -> list[str]:
    if isinstance(mine, dict):
        if not isinstance(decoded, dict):
            return [path]
        return [p for key, value in mine.items()
                for p in ([f"{path}/{key}"] if key not in decoded else _lost(value, decoded[key], f"{path}/{key}"))]
    if isinstance(mine, list):
        if not isinstance(decoded, list) or len(mine) != len(decoded):
            return [path]
        return [p for i, (a, b) in enumerate(zip(mine, decoded, strict=True)) for p in _lost(a, b, f"{path}[{i}]")]
    return [] if mine == decoded else [f"{path}: {mine!r} != {decoded!r}"]


def test_every_metric_of_the_dashboard_is_exposed(exposition: str) -> None:
    used = {name for panel in dashboard()["panels"] for target in panel["targets"]
            for name in METRIC.findall(target["expr"])}
    assert len(used) >= 15
    assert sorted(used - exposed_names(exposition)) == []


def test_every_metric_of_the_alert_rules_is_exposed(exposition: str) -> None:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    used = {name for group in rules["groups"] for rule in group["rules"] for name in METRIC.findall(rule["expr"])}
    assert {"hotline_queue_waiting_calls", "hotline_record_writer_oldest_unwritten_seconds"} <= used
    assert sorted(used - exposed_names(exposition)) == []
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"HotlineServiceLevelLow", "HotlineQueueWithoutAgents", "HotlineRecordsLagging", "HotlineWorkerDown",
            "HotlineRedisErrors", "HotlineDatabaseErrors"} <= alerts


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool missing: scripts/_venv.sh installs Debian's prometheus package for the tests")
        pytest.skip("promtool not installed (Debian package prometheus; CI=true requires it)")
    return found


def test_the_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    promtool = _promtool()
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                            capture_output=True, text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr
