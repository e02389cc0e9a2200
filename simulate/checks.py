"""What the end of the day must show: nothing lost, nothing doubled, the reports true to the event log,
and no card number or PIN anywhere the hotline keeps anything."""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, func, or_, select, text
from sqlalchemy.engine import Engine

from store.models import CallRecord, ReturnVisit, VisitAttempt, WorkOrder

KPI_TOLERANCE = 1e-6


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Verdict:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def check_records(engine: Engine, started: set[str], verdict: Verdict, since: dt.datetime) -> dict[str, int]:
    """Every call that reached the hotline has exactly one call record; no record of a call never made
    (among the records of calls since ``since``: the database may hold earlier days)."""
    of_the_day = or_(CallRecord.started_at >= since, CallRecord.started_at.is_(None))
    with engine.connect() as db:
        rows = db.execute(select(CallRecord.call_id, func.count()).where(of_the_day)
                          .group_by(CallRecord.call_id)).all()
    recorded = {call_id for call_id, _ in rows}
    doubled = [call_id for call_id, n in rows if n > 1]
    lost, unknown = started - recorded, recorded - started
    verdict.add("call records = calls started", not lost and not doubled,
                f"{len(started)} calls started, {len(recorded)} records; lost {len(lost)} {_some(lost)}, "
                f"doubled {len(doubled)} {_some(doubled)}")
    verdict.add("no record of a call never started", not unknown, f"{len(unknown)} {_some(unknown)}")
    return {"started": len(started), "records": len(recorded), "lost": len(lost), "doubled": len(doubled)}


def check_work_orders(engine: Engine, complaints: set[str], verdict: Verdict) -> dict[str, int]:
    """Every complaint a caller recorded has exactly one work order."""
    with engine.connect() as db:
        rows = db.execute(select(WorkOrder.call_id, func.count()).group_by(WorkOrder.call_id)).all()
    opened = {call_id for call_id, _ in rows}
    doubled = [call_id for call_id, n in rows if n > 1]
    missing = complaints - opened
    verdict.add("every complaint has a work order", not missing and not doubled,
                f"{len(complaints)} complaints recorded, {len(opened)} work orders; missing {len(missing)} "
                f"{_some(missing)}, doubled {len(doubled)}")
    return {"complaints": len(complaints), "work_orders": len(opened)}


def check_visits(engine: Engine, due_before: dt.datetime, verdict: Verdict) -> dict[str, int]:
    """Every return visit due before ``due_before`` was dialled at least once; no attempt placed twice."""
    with engine.connect() as db:
        visits = db.execute(select(ReturnVisit.id, ReturnVisit.status, ReturnVisit.due_at, ReturnVisit.attempts,
                                   ReturnVisit.rating)).all()
        attempts = db.execute(select(VisitAttempt.visit_id, VisitAttempt.attempt, VisitAttempt.disposition)).all()
        resolved = db.scalar(select(func.count()).select_from(WorkOrder).where(WorkOrder.resolved_at.is_not(None)))
    dialled = {visit_id for visit_id, _, _ in attempts}
    due = [v for v in visits if v.status != "cancelled" and _aware(v.due_at) <= due_before]
    not_tried = visits_not_attempted(engine, due_before)
    pairs = [(v, a) for v, a, _ in attempts]
    twice = len(pairs) - len(set(pairs))
    verdict.add("every due return visit was attempted", not not_tried and twice == 0,
                f"{len(visits)} visits for {resolved} resolved work orders, {len(due)} due, {len(dialled)} dialled "
                f"({len(attempts)} attempts); not attempted {len(not_tried)} {_some(not_tried)}; placed twice {twice}")
    verdict.add("a return visit for every resolved work order", len(visits) >= (resolved or 0),
                f"{len(visits)} visits, {resolved} resolved")
    ratings = [v.rating for v in visits if v.rating]
    return {"visits": len(visits), "due": len(due), "attempts": len(attempts), "rated": len(ratings),
            "answered": sum(1 for _, _, d in attempts if d == "answered")}


def visits_not_attempted(engine: Engine, due_before: dt.datetime) -> list[int]:
    with engine.connect() as db:
        visits = db.execute(select(ReturnVisit.id, ReturnVisit.status, ReturnVisit.due_at)).all()
        dialled = set(db.scalars(select(VisitAttempt.visit_id)))
    return [v.id for v in visits if v.status != "cancelled" and _aware(v.due_at) <= due_before
            and v.id not in dialled]


def kpis_from_events(events: Iterable[Mapping[str, str]], service_level_s: float) -> dict[str, Any]:
    """Queue figures computed from the raw event stream alone, by the definitions in ``reports/figures.py``:
    queued inbound calls; answered = their first ``call_answered``; service level = answered within the
    threshold / queued; ASA = mean wait of the answered; abandoned = queued, never answered, and left
    (``call_abandoned``, or ended without being put through, served, or failing)."""
    inbound: set[str] = set()
    queued: set[str] = set()
    first_answer: dict[str, tuple[str, float]] = {}
    abandoned_event: set[str] = set()
    ended_outcome: dict[str, str] = {}
    for event in events:
        kind, call = event.get("type", ""), event.get("call_id", "")
        if kind == "call_started" and event.get("direction", "inbound") == "inbound":
            inbound.add(call)
        elif kind == "call_queued":
            queued.add(call)
        elif kind == "call_answered":
            queued.add(call)
            ts = event.get("ts", "")
            if call not in first_answer or ts < first_answer[call][0]:
                first_answer[call] = (ts, float(event.get("wait_s") or 0))
        elif kind == "call_abandoned":
            abandoned_event.add(call)
        elif kind == "call_ended":
            ended_outcome[call] = event.get("outcome", "")
    queued &= inbound
    answered = {c: w for c, (_, w) in first_answer.items() if c in queued}
    put_through = {"routed", "transferred", "self_served", "failed", "error", "survey_completed"}
    abandoned = {c for c in queued - answered.keys()
                 if c in abandoned_event or (c in ended_outcome and ended_outcome[c] not in put_through)}
    within = sum(1 for w in answered.values() if w <= service_level_s)
    return {
        "queued": len(queued), "answered": len(answered), "answered_within_sl": within, "abandoned": len(abandoned),
        "service_level": within / len(queued) if queued else None,
        "asa_s": statistics.fmean(answered.values()) if answered else None,
        "abandonment_rate": len(abandoned) / len(queued) if queued else None,
    }


def check_kpis(reported: Mapping[str, Any], computed: Mapping[str, Any], verdict: Verdict) -> None:
    differ = []
    for name, value in computed.items():
        mine, theirs = value, reported.get(name)
        same = (mine is None and theirs is None) or (
            mine is not None and theirs is not None and abs(float(mine) - float(theirs)) <= KPI_TOLERANCE * max(
                1.0, abs(float(mine))))
        if not same:
            differ.append(f"{name}: report {theirs} vs events {mine}")
    verdict.add("queue KPIs of the report = KPIs from the event log", not differ,
                "; ".join(differ) or ", ".join(f"{k} {_fmt(v)}" for k, v in computed.items()))


def stream_events(client: Any, stream: str) -> list[dict[str, str]]:
    """``client``: a bytes client (redis-py types its replies for both kinds at once)."""
    out: list[dict[str, str]] = []
    start = "-"
    while True:
        batch = client.xrange(stream, min=start, count=5000)
        if not batch:
            return out
        out += [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in batch]
        last = batch[-1][0].decode()
        ms, seq = last.split("-")
        start = f"{ms}-{int(seq) + 1}"


# -- privacy ------------------------------------------------------------------------------------


class SecretFinder:
    """Finds any of ``secrets`` standing alone: not inside a longer run of digits or hex, nor the fraction of a
    decimal number (a timestamp's microseconds may well be a six-digit PIN). One pass for digit runs, then a set
    lookup: fast over gigabytes of recordings, whatever the number of secrets."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = {s.encode() for s in secrets}
        # Hex digits around a run make it part of a hash or id (sha256s, caller keys), not a number.
        self._runs = re.compile(rb"(?<![0-9a-fA-F])(?<![0-9][.])[0-9]{6,19}(?![0-9a-fA-F])")

    def finditer(self, data: bytes) -> Iterator[re.Match[bytes]]:
        return (m for m in self._runs.finditer(data) if m.group() in self.secrets)

    def search(self, data: bytes) -> re.Match[bytes] | None:
        return next(self.finditer(data), None)


def secret_patterns(secrets: Iterable[str]) -> SecretFinder:
    return SecretFinder(secrets)


REDIS_SNAPSHOTS = ("*.rdb",)
"""Redis's snapshots are LZF-compressed binary, where digits of unrelated values meet across their seams:
what they hold is searched through the server instead (``find_in_redis``). The append-only files stay
searched: plain text, and they keep what was deleted since."""


def find_in_files(folder: Path, pattern: SecretFinder, also: Iterable[Path] = ()) -> list[str]:
    hits = []
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(p.match(g) for g in REDIS_SNAPSHOTS))
    for path in [*files, *also]:
        data = path.read_bytes()
        for match in pattern.finditer(data):
            hits.append(f"{path}: ...{_context(data, match)}...")
    return hits


def find_in_redis(client: Any, pattern: SecretFinder) -> list[str]:
    """``client``: a bytes client."""
    hits = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            values: list[bytes] = [client.get(key) or b""]
        elif kind == "hash":
            values = [b"%s=%s" % kv for kv in client.hgetall(key).items()]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            values = [b" ".join(b"%s=%s" % kv for kv in f.items()) for _, f in client.xrange(key)]
        else:
            values = []
        for value in [key, *values]:
            for match in pattern.finditer(value):
                hits.append(f"redis {key.decode(errors='replace')}: ...{_context(value, match)}...")
    return hits


def find_in_database(engine: Engine, pattern: SecretFinder) -> list[str]:
    hits = []
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as db:
        for table in meta.sorted_tables:
            for row in db.execute(select(table)):
                line = json.dumps([str(v) for v in row], ensure_ascii=False).encode()
                for match in pattern.finditer(line):
                    hits.append(f"table {table.name}: ...{_context(line, match)}...")
    return hits


def database_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as db:
            db.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001
        return False


def _context(data: bytes, match: re.Match[bytes]) -> str:
    """Where it was found, with the secret itself masked: the report must not leak it either."""
    before, after = data[max(0, match.start() - 40):match.start()], data[match.end():match.end() + 40]
    return (before + b"<" + b"#" * (match.end() - match.start()) + b">" + after).decode(errors="replace")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _some(items: Iterable[object], n: int = 3) -> str:
    listed = sorted(str(i) for i in items)[:n]
    return f"(e.g. {', '.join(listed)})" if listed else ""


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
