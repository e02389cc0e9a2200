"""Scorecards: quality scores per agent or team (queue) over a period, beside the calls they handled.

For the evaluations E of a group whose call started in the period (calibration evaluations left out: they
measure the reviewers, not the agent):

    average          = mean of total over E (evaluations with a total; all-N/A ones have none)
    auto_fail_rate   = |{e in E : automatic fail}| / |E|
    section score(s) = mean of e.sections[s] over E where it has one
    trend[b]         = average over the evaluations of bucket b (ISO week ``2026-W49`` or month ``2026-12``, local)

and beside them, over the group's calls answered by an agent that started in the period (reports/figures.py):

    calls_handled    = count of those calls
    aht_s            = mean talk_s over them (talk time only)
    csat             = return visits rated 1 or 2 / return visits rated, for the work orders of those calls
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from store.models import CallRecord, Evaluation, ReturnVisit, WorkOrder

GROUPS = ("agent", "queue")
BUCKETS = ("week", "month")


@dataclass
class ScorecardRow:
    key: str
    evaluations: int = 0
    average: float | None = None
    auto_fail_rate: float | None = None
    sections: dict[str, float | None] = field(default_factory=dict)
    trend: dict[str, float | None] = field(default_factory=dict)
    calls_handled: int = 0
    aht_s: float | None = None
    csat: float | None = None
    rated: int = 0


@dataclass(frozen=True)
class Scorecard:
    group: str
    bucket: str
    start: dt.date
    end: dt.date
    buckets: list[str]
    sections: list[str]
    rows: list[ScorecardRow]

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "bucket": self.bucket, "start": str(self.start), "end": str(self.end),
                "buckets": self.buckets, "sections": self.sections, "rows": [vars(r) for r in self.rows]}


def build_scorecard(sql: sessionmaker[Session], start: dt.date, end: dt.date, timezone: str, group: str = "agent",
                    bucket: str = "week", only: str | None = None) -> Scorecard:
    """The scorecard of the local days start..end (inclusive); ``only``: one agent or queue."""
    if group not in GROUPS or bucket not in BUCKETS:
        raise ValueError(f"group is agent or queue, bucket week or month (not {group!r}, {bucket!r})")
    zone = ZoneInfo(timezone)
    lo = dt.datetime.combine(start, dt.time(), zone).astimezone(dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    rows: dict[str, ScorecardRow] = {}

    def row(key: str) -> ScorecardRow:
        return rows.setdefault(key, ScorecardRow(key))

    with sql() as db:
        _scores(db, lo, hi, zone, group, bucket, only, row)
        _calls(db, lo, hi, group, only, row)
    sections = sorted({s for r in rows.values() for s in r.sections})
    buckets = sorted({b for r in rows.values() for b in r.trend})
    return Scorecard(group, bucket, start, end, buckets, sections, sorted(rows.values(), key=lambda r: r.key))


def _scores(db: Session, lo: dt.datetime, hi: dt.datetime, zone: ZoneInfo, group: str, bucket: str,
            only: str | None, row: Any) -> None:
    column = Evaluation.agent_id if group == "agent" else Evaluation.queue
    query = select(column, Evaluation.call_started_at, Evaluation.total, Evaluation.auto_failed,
                   Evaluation.sections).where(Evaluation.calibration.is_(False), Evaluation.call_started_at >= lo,
                                              Evaluation.call_started_at < hi)
    if only:
        query = query.where(column == only)
    totals: dict[str, list[float]] = defaultdict(list)
    fails: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    sections: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    trend: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for key, started, total, failed, by_section in db.execute(query):
        counts[key] += 1
        fails[key] += bool(failed)
        for sid, value in (by_section or {}).items():
            if value is not None:
                sections[key][sid].append(float(value))
        if total is not None:
            totals[key].append(float(total))
            trend[key][_bucket(started, zone, bucket)].append(float(total))
    for key, n in counts.items():
        r = row(key)
        r.evaluations = n
        r.average = _mean(totals[key])
        r.auto_fail_rate = round(fails[key] / n, 4)
        r.sections = {sid: _mean(values) for sid, values in sorted(sections[key].items())}
        r.trend = {b: _mean(values) for b, values in sorted(trend[key].items())}


def _calls(db: Session, lo: dt.datetime, hi: dt.datetime, group: str, only: str | None, row: Any) -> None:
    column = CallRecord.agent_id if group == "agent" else CallRecord.queue
    handled = (CallRecord.started_at >= lo, CallRecord.started_at < hi, CallRecord.agent_id != "",
               CallRecord.answered_at.is_not(None), *((column == only,) if only else ()))
    for key, n, aht in db.execute(select(column, func.count(), func.avg(CallRecord.talk_s))
                                  .where(*handled).group_by(column)):
        r = row(key)
        r.calls_handled, r.aht_s = int(n), round(float(aht), 1) if aht is not None else None
    satisfied = func.sum(case((ReturnVisit.rating <= 2, 1), else_=0))
    for key, rated, happy in db.execute(
            select(column, func.count(ReturnVisit.id), satisfied)
            .join(WorkOrder, WorkOrder.call_id == CallRecord.call_id)
            .join(ReturnVisit, ReturnVisit.work_order_id == WorkOrder.id)
            .where(*handled, ReturnVisit.rating.is_not(None)).group_by(column)):
        r = row(key)
        r.rated, r.csat = int(rated), round(int(happy or 0) / int(rated), 4) if rated else None


def _bucket(started: dt.datetime | None, zone: ZoneInfo, bucket: str) -> str:
    if started is None:
        return "-"
    local = (started if started.tzinfo else started.replace(tzinfo=dt.UTC)).astimezone(zone)
    if bucket == "month":
        return f"{local.year}-{local.month:02d}"
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def to_csv(card: Scorecard) -> str:
    """One line per agent or queue: the figures, a column per section and per trend bucket."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([card.group, "evaluations", "average", "auto_fail_rate", *(f"section.{s}" for s in card.sections),
                     *(f"trend.{b}" for b in card.buckets), "calls_handled", "aht_s", "csat", "rated"])
    for r in card.rows:
        writer.writerow([r.key, r.evaluations, _cell(r.average), _cell(r.auto_fail_rate),
                         *(_cell(r.sections.get(s)) for s in card.sections),
                         *(_cell(r.trend.get(b)) for b in card.buckets),
                         r.calls_handled, _cell(r.aht_s), _cell(r.csat), r.rated])
    return out.getvalue()


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
