"""The SQL behind the reports: one query per section, over the local days of a period (definitions in
``reports.figures``)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Integer, case, cast, exists, extract, func, literal_column, select
from sqlalchemy.orm import Session, sessionmaker

from complaints.visit_calls import RATING_LABELS
from reports.figures import (
    FINISHED_VISITS,
    KNOWN_CATEGORIES,
    KNOWN_CHANNELS,
    KNOWN_INTENTS,
    KNOWN_OUTCOMES,
    REPEAT_WINDOW,
    CallCounts,
    CategoryShare,
    Complaints,
    HourFigures,
    Period,
    QueueFigures,
    RatingCount,
    RepeatCallers,
    Report,
    ReturnVisits,
    WaitPrediction,
    WeekFigures,
    _ratio,
)
from store.models import CallRecord, ReturnVisit, VisitAttempt, WorkOrder

# -- building it ------------------------------------------------------------------------------

def build_report(sql: sessionmaker[Session], start: dt.date, end: dt.date, timezone: str, service_level_s: float = 20,
                 *, now: dt.datetime | None = None) -> Report:
    """The report of the local days ``start``..``end`` in ``timezone``; ``now`` decides which deadlines passed."""
    if start > end:
        raise ValueError(f"the period starts ({start}) after it ends ({end})")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    lo = _utc_midnight(start, zone)
    hi = _utc_midnight(end + dt.timedelta(days=1), zone)
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    period = Period(start, end, timezone, lo, hi, now, service_level_s)
    with sql() as db:
        dialect = db.get_bind().dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"reports need SQLite or PostgreSQL, not {dialect}")
        if dialect == "postgresql":  # one snapshot for every query: the sections agree while calls are written
            db.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        calls, queue, prediction = _call_figures(db, lo, hi, service_level_s)
        return Report(
            period=period, calls=calls, queue=queue, wait_prediction=prediction,
            repeat_callers=_repeat_callers(db, dialect, lo, hi),
            complaints=_complaints(db, lo, hi, now),
            return_visits=_return_visits(db, lo, hi),
            hourly=_hourly(db, dialect, zone, lo, hi, service_level_s),
            weekly=_weekly(db, dialect, zone, start, end, lo, hi),
        )


def queue_figures_of_day(sql: sessionmaker[Session], day: dt.date, zone: ZoneInfo,
                         service_level_s: float) -> QueueFigures:
    """Service level, abandonment and their counts for one local day, as the report computes them
    (the live dashboard shows today's without building the whole report)."""
    lo, hi = _utc_midnight(day, zone), _utc_midnight(day + dt.timedelta(days=1), zone)
    with sql() as db:
        return _call_figures(db, lo, hi, service_level_s)[1]


def parse_period(start: str | None, end: str | None, max_days: int | None = None) -> tuple[dt.date, dt.date]:
    """``YYYY-MM-DD`` strings as dates; ValueError with the reason when missing, malformed or reversed."""
    if not start or not end:
        raise ValueError("both from and to are required, as YYYY-MM-DD")
    days = []
    for name, text in (("from", start), ("to", end)):
        try:
            days.append(dt.date.fromisoformat(text))
        except ValueError:
            raise ValueError(f"{name} {text!r} is not a date YYYY-MM-DD") from None
        if len(text) != 10:  # fromisoformat also takes 20260302 and 2026-W10-1
            raise ValueError(f"{name} {text!r} is not a date YYYY-MM-DD")
    first, last = days
    if first > last:
        raise ValueError(f"from {first} is after to {last}")
    if max_days is not None and (last - first).days + 1 > max_days:
        raise ValueError(f"the period is {(last - first).days + 1} days; at most {max_days} days per report")
    return first, last


def _call_figures(db: Session, lo: dt.datetime, hi: dt.datetime,
                  service_level_s: float) -> tuple[CallCounts, QueueFigures, WaitPrediction]:
    r = CallRecord
    queued = r.queue != ""
    answered = queued & r.answered_at.is_not(None)
    waited = answered & r.wait_s.is_not(None)
    predicted = waited & r.predicted_wait_s.is_not(None)
    talked = r.answered_at.is_not(None) & r.talk_s.is_not(None)
    error = r.predicted_wait_s - r.wait_s
    sums: dict[str, ColumnElement[Any]] = {
        "queued": _count(queued),
        "answered": _count(answered),
        "within_sl": _count(answered & (r.wait_s <= service_level_s)),
        "waited": _count(waited),
        "wait_sum": _sum(waited, r.wait_s),
        "abandoned": _count(queued & r.answered_at.is_(None) & (r.outcome == "abandoned")),
        "talked": _count(talked),
        "talk_sum": _sum(talked, r.talk_s),
        "predicted": _count(predicted),
        "error_sum": _sum(predicted, error),
        "abs_error_sum": _sum(predicted, func.abs(error)),
    }
    # A few dozen groups at most: the per-call work stays in the database.
    rows = db.execute(
        select(r.direction, r.intent, r.channel, r.outcome, func.count().label("n"),
               *(column.label(name) for name, column in sums.items()))
        .where(r.started_at >= lo, r.started_at < hi)
        .group_by(r.direction, r.intent, r.channel, r.outcome)
    ).mappings().all()
    calls = CallCounts(by_intent=dict.fromkeys(KNOWN_INTENTS, 0), by_channel=dict.fromkeys(KNOWN_CHANNELS, 0),
                       by_outcome=dict.fromkeys(KNOWN_OUTCOMES, 0))
    inbound = dict.fromkeys(["self_served", *sums], 0.0)
    for row in rows:
        n, intent, channel, outcome = row["n"], row["intent"] or "none", row["channel"] or "none", row["outcome"]
        calls.total += n
        calls.by_intent[intent] = calls.by_intent.get(intent, 0) + n
        calls.by_channel[channel] = calls.by_channel.get(channel, 0) + n
        calls.by_outcome[outcome or "none"] = calls.by_outcome.get(outcome or "none", 0) + n
        if row["direction"] != "inbound":
            calls.outbound += n
            continue
        calls.inbound += n
        inbound["self_served"] += n if outcome == "self_served" else 0
        for name in sums:
            inbound[name] += float(row[name] or 0)
    calls.by_intent_channel = {intent: dict.fromkeys(calls.by_channel, 0) for intent in calls.by_intent}
    for row in rows:
        calls.by_intent_channel[row["intent"] or "none"][row["channel"] or "none"] += row["n"]
    s = inbound
    queue = QueueFigures(
        inbound_calls=calls.inbound, self_served=int(s["self_served"]),
        self_service_rate=_ratio(s["self_served"], calls.inbound),
        queued=int(s["queued"]), answered=int(s["answered"]), answered_within_sl=int(s["within_sl"]),
        service_level=_ratio(s["within_sl"], s["queued"]), asa_s=_ratio(s["wait_sum"], s["waited"]),
        abandoned=int(s["abandoned"]), abandonment_rate=_ratio(s["abandoned"], s["queued"]),
        handled=int(s["talked"]), aht_s=_ratio(s["talk_sum"], s["talked"]),
    )
    prediction = WaitPrediction(int(s["predicted"]), _ratio(s["error_sum"], s["predicted"]),
                                _ratio(s["abs_error_sum"], s["predicted"]))
    return calls, queue, prediction


def _repeat_callers(db: Session, dialect: str, lo: dt.datetime, hi: dt.datetime) -> RepeatCallers:
    r = CallRecord
    # Each call's caller's next inbound call, looking up to 7 days past the period for it.
    calls = (
        select(r.started_at.label("started_at"),
               func.lead(r.started_at).over(partition_by=r.caller_key, order_by=(r.started_at, r.id))
               .label("next_at"))
        .where(r.direction == "inbound", r.caller_key != "", r.started_at >= lo, r.started_at <= hi + REPEAT_WINDOW)
        .subquery()
    )
    if dialect == "sqlite":  # no time arithmetic on its text timestamps; julianday is exact to the millisecond
        soon = func.julianday(calls.c.next_at) <= func.julianday(calls.c.started_at, "+7 days")
    else:  # seconds, not days: '7 days' would follow the session time zone's daylight saving changes
        soon = calls.c.next_at <= calls.c.started_at + literal_column(
            f"interval '{int(REPEAT_WINDOW.total_seconds())} seconds'")
    total, repeated = db.execute(
        select(func.count(), _count(calls.c.next_at.is_not(None) & soon))
        .where(calls.c.started_at >= lo, calls.c.started_at < hi)
    ).one()
    rate = _ratio(repeated, total)
    return RepeatCallers(total, int(repeated or 0), rate, None if rate is None else 1 - rate)


def _complaints(db: Session, lo: dt.datetime, hi: dt.datetime, now: dt.datetime) -> Complaints:
    w = WorkOrder

    def on_time_late(done: Any, due: Any) -> tuple[ColumnElement[int], ColumnElement[int]]:
        on_time = done.is_not(None) & (due.is_(None) | (done <= due))
        late = due.is_not(None) & ((done.is_not(None) & (done > due)) | (done.is_(None) & (due < now)))
        return _count(on_time), _count(late)

    rows = db.execute(
        select(w.category, func.count(), *on_time_late(w.first_contact_at, w.first_contact_due),
               *on_time_late(w.resolved_at, w.resolve_due))
        .where(w.created_at >= lo, w.created_at < hi)
        .group_by(w.category)
    ).all()
    out = Complaints(by_category={c: CategoryShare() for c in KNOWN_CATEGORIES})
    for category, n, replied_on_time, replied_late, resolved_on_time, resolved_late in rows:
        out.total += n
        out.by_category.setdefault(category or "other", CategoryShare()).count += n
        out.replied_on_time += int(replied_on_time or 0)
        out.replied_late += int(replied_late or 0)
        out.resolved_on_time += int(resolved_on_time or 0)
        out.resolved_late += int(resolved_late or 0)
    for share in out.by_category.values():
        share.share = _ratio(share.count, out.total)
    out.reply_pending = out.total - out.replied_on_time - out.replied_late
    out.resolve_pending = out.total - out.resolved_on_time - out.resolved_late
    out.replied_on_time_rate = _ratio(out.total - out.replied_late, out.total)
    out.resolved_on_time_rate = _ratio(out.total - out.resolved_late, out.total)
    return out


def _return_visits(db: Session, lo: dt.datetime, hi: dt.datetime) -> ReturnVisits:
    v, a = ReturnVisit, VisitAttempt
    dialed = exists().where(a.visit_id == v.id)
    answered = exists().where(a.visit_id == v.id, a.disposition == "answered")
    rows = db.execute(
        select(v.status, v.rating, func.count(), _count(dialed), _count(answered))
        .where(v.finished_at >= lo, v.finished_at < hi, v.status.in_(FINISHED_VISITS))
        .group_by(v.status, v.rating)
    ).all()
    out = ReturnVisits(ratings={str(k): RatingCount(label) for k, label in RATING_LABELS.items()})
    for status, rating, n, attempted, reached in rows:
        out.finished += n
        setattr(out, status, getattr(out, status) + n)
        out.attempted += int(attempted or 0)
        out.reached += int(reached or 0)
        if rating in RATING_LABELS:
            out.ratings[str(rating)].count += n
            out.rated += n
    out.reach_rate = _ratio(out.reached, out.finished)
    out.csat = _ratio(out.ratings["1"].count + out.ratings["2"].count, out.rated)
    return out


def _hourly(db: Session, dialect: str, zone: ZoneInfo, lo: dt.datetime, hi: dt.datetime,
            service_level_s: float) -> list[HourFigures]:
    r = CallRecord
    queued = (r.direction == "inbound") & (r.queue != "")
    within = queued & r.answered_at.is_not(None) & (r.wait_s <= service_level_s)
    hours = [HourFigures(hour) for hour in range(24)]
    if dialect == "postgresql":
        pieces = [(lo, hi, cast(extract("hour", func.timezone(zone.key, r.started_at)), Integer))]
    else:  # SQLite knows no time zones: one query per stretch of the period with a constant UTC offset
        pieces = [(a, b, cast(func.strftime("%H", r.started_at, f"{offset:+d} seconds"), Integer))
                  for a, b, offset in _offset_stretches(zone, lo, hi)]
    for a, b, local_hour in pieces:
        # Grouped through a subquery: PostgreSQL would not match a GROUP BY expression with its own parameters.
        flags = (select(local_hour.label("hour"), case((queued, 1), else_=0).label("queued"),
                        case((within, 1), else_=0).label("within"))
                 .where(r.started_at >= a, r.started_at < b).subquery())
        for hour, n, n_queued, n_within in db.execute(
                select(flags.c.hour, func.count(), func.sum(flags.c.queued), func.sum(flags.c.within))
                .group_by(flags.c.hour)).all():
            h = hours[int(hour)]
            h.calls += n
            h.queued += int(n_queued or 0)
            h.answered_within_sl += int(n_within or 0)
    for h in hours:
        h.service_level = _ratio(h.answered_within_sl, h.queued)
    return hours


def _weekly(db: Session, dialect: str, zone: ZoneInfo, start: dt.date, end: dt.date, lo: dt.datetime,
            hi: dt.datetime) -> list[WeekFigures]:
    w = WorkOrder
    weeks: dict[dt.date, WeekFigures] = {}
    monday = start - dt.timedelta(days=start.weekday())
    while monday <= end:
        year, number, _ = monday.isocalendar()
        sunday = monday + dt.timedelta(days=6)
        weeks[monday] = WeekFigures(f"{year}-W{number:02d}", max(monday, start), min(sunday, end),
                                    by_category=dict.fromkeys(KNOWN_CATEGORIES, 0))
        monday += dt.timedelta(days=7)
    if dialect == "postgresql":
        pieces = [(lo, hi, func.date(func.timezone(zone.key, w.created_at)))]
    else:
        pieces = [(a, b, func.date(w.created_at, f"{offset:+d} seconds"))
                  for a, b, offset in _offset_stretches(zone, lo, hi)]
    for a, b, local_day in pieces:
        days = select(local_day.label("day"), w.category.label("category")).where(
            w.created_at >= a, w.created_at < b).subquery()
        for day, category, n in db.execute(
                select(days.c.day, days.c.category, func.count()).group_by(days.c.day, days.c.category)).all():
            local = dt.date.fromisoformat(str(day))
            week = weeks[local - dt.timedelta(days=local.weekday())]
            week.complaints += n
            key = category or "other"
            week.by_category[key] = week.by_category.get(key, 0) + n
    return list(weeks.values())


# -- helpers ----------------------------------------------------------------------------------

def _utc_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def _offset(zone: ZoneInfo, at: dt.datetime) -> int:
    offset = at.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def _offset_stretches(zone: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> list[tuple[dt.datetime, dt.datetime, int]]:
    """[lo, hi) cut where the zone's UTC offset changes (daylight saving), with each stretch's offset."""
    stretches: list[tuple[dt.datetime, dt.datetime, int]] = []
    start, offset, at = lo, _offset(zone, lo), lo
    while at < hi:
        step = min(at + dt.timedelta(hours=1), hi)
        if _offset(zone, step) == offset:
            at = step
            continue
        before, after = at, step  # the change is in (before, after]: narrow it to the second
        while after - before > dt.timedelta(seconds=1):
            middle = before + (after - before) / 2
            before, after = (middle, after) if _offset(zone, middle) == offset else (before, middle)
        stretches.append((start, after, offset))
        start, offset, at = after, _offset(zone, after), after
    if start < hi:
        stretches.append((start, hi, offset))
    return stretches


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)




def _sum(condition: ColumnElement[bool], value: Any) -> ColumnElement[float]:
    return func.sum(case((condition, value), else_=None))  # SUM skips the NULLs


