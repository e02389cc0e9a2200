"""Contact-center reports: every figure's definition lives here, and only here.

A report covers the local days ``start``..``end`` (inclusive) in the hotline's time zone, i.e. the UTC
interval [local midnight of ``start``, local midnight after ``end``). Calls are taken by ``started_at``,
work orders by ``created_at``, return visits by ``finished_at``. Every rate is ``None`` (JSON null, CSV
empty) when its denominator is 0. The figures, all over the period:

calls (inbound and outbound)
  total, inbound, outbound, by_intent, by_channel, by_outcome, by_intent_channel: counts of calls
  (an empty intent, a caller who hung up before choosing, is counted as ``none``).

queue (inbound calls only; queued = ``queue != ''``, answered = ``answered_at`` set)
  self_service_rate = inbound calls with outcome ``self_served`` / inbound calls
  service_level     = queued calls answered with ``wait_s <= service_level_s`` / queued calls
  asa_s             = mean ``wait_s`` over answered queued calls
  abandonment_rate  = queued calls not answered with outcome ``abandoned`` / queued calls
  aht_s             = mean ``talk_s`` over answered calls (talk time only: wrap-up is not included)

wait_prediction (answered queued inbound calls that have ``predicted_wait_s``)
  mean_error_s = mean(predicted_wait_s - wait_s), mean_abs_error_s = mean(|predicted_wait_s - wait_s|)

repeat_callers (first-contact-resolution proxy; inbound calls with a ``caller_key``)
  repeat_rate = calls whose caller's next inbound call starts within 7 days (7 x 24 h) after it
                (that next call may fall after the period) / those calls;  fcr_proxy = 1 - repeat_rate

complaints (work orders created in the period; ``now`` is the report time)
  by_category[c].share = orders of category c / all orders
  a reply is late when ``first_contact_at > first_contact_due``, or there is no reply and the due
  time has passed at ``now``; on time when ``first_contact_at <= first_contact_due`` (or there is no
  due time); pending when there is no reply and the due time is still ahead (or there is none).
  replied_on_time_rate = (replied_on_time + reply_pending) / all orders = 1 - replied_late / all orders:
  an order counts against the rate only once it is actually late, so the rate can still fall later.
  resolved_on_time_rate: the same with ``resolved_at`` and ``resolve_due``.

return_visits (visits finished in the period with status completed, unreachable or refused;
cancelled visits are left out)
  attempted = those with at least one dial; reached = those with an ``answered`` dial
  reach_rate = reached / finished
  ratings = counts of ratings 1 very satisfied .. 5 very dissatisfied; rated = visits with a rating 1-5
  csat = visits rated 1 or 2 / rated

hourly (per local hour of the day 0-23, summed over the days of the period)
  calls = all calls started in that hour; service_level as above, for the calls queued in that hour.

weekly (per ISO week, Monday to Sunday, of the local day a work order was created; every week the
period touches, in order, clipped to the period: ``start``/``end`` are its first and last days in it)
  complaints = work orders created in those days; by_category = the same per category.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Integer, case, cast, exists, extract, func, literal_column, select
from sqlalchemy.orm import Session, sessionmaker

from complaints.visit_calls import RATING_LABELS
from store.models import CallRecord, ReturnVisit, VisitAttempt, WorkOrder

REPEAT_WINDOW = dt.timedelta(days=7)
KNOWN_INTENTS = ("inquiry", "loss", "complaint", "agent", "survey", "none")
KNOWN_CHANNELS = ("twilio", "asterisk")
KNOWN_OUTCOMES = ("self_served", "routed", "abandoned", "failed", "survey_completed")
KNOWN_CATEGORIES = ("service", "fees", "card_account", "other")
FINISHED_VISITS = ("completed", "unreachable", "refused")
CSV_HEADER = ("section", "metric", "value")


# -- the report -------------------------------------------------------------------------------

@dataclass
class Period:
    start: dt.date
    end: dt.date
    timezone: str
    utc_from: dt.datetime
    utc_to: dt.datetime
    """Exclusive: local midnight after ``end``."""
    generated_at: dt.datetime
    service_level_s: float


@dataclass
class CallCounts:
    total: int = 0
    inbound: int = 0
    outbound: int = 0
    by_intent: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    by_intent_channel: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class QueueFigures:
    inbound_calls: int = 0
    self_served: int = 0
    self_service_rate: float | None = None
    queued: int = 0
    answered: int = 0
    answered_within_sl: int = 0
    service_level: float | None = None
    asa_s: float | None = None
    abandoned: int = 0
    abandonment_rate: float | None = None
    handled: int = 0
    """Answered calls with a talk time: the denominator of AHT."""
    aht_s: float | None = None


@dataclass
class WaitPrediction:
    calls: int = 0
    mean_error_s: float | None = None
    mean_abs_error_s: float | None = None


@dataclass
class RepeatCallers:
    calls: int = 0
    repeated: int = 0
    repeat_rate: float | None = None
    fcr_proxy: float | None = None


@dataclass
class CategoryShare:
    count: int = 0
    share: float | None = None


@dataclass
class Complaints:
    total: int = 0
    by_category: dict[str, CategoryShare] = field(default_factory=dict)
    replied_on_time: int = 0
    replied_late: int = 0
    reply_pending: int = 0
    replied_on_time_rate: float | None = None
    resolved_on_time: int = 0
    resolved_late: int = 0
    resolve_pending: int = 0
    resolved_on_time_rate: float | None = None


@dataclass
class RatingCount:
    label: str
    count: int = 0


@dataclass
class ReturnVisits:
    finished: int = 0
    completed: int = 0
    unreachable: int = 0
    refused: int = 0
    attempted: int = 0
    reached: int = 0
    reach_rate: float | None = None
    rated: int = 0
    ratings: dict[str, RatingCount] = field(default_factory=dict)
    csat: float | None = None


@dataclass
class HourFigures:
    hour: int
    calls: int = 0
    queued: int = 0
    answered_within_sl: int = 0
    service_level: float | None = None


@dataclass
class WeekFigures:
    week: str
    """ISO week, e.g. ``2026-W10``."""
    start: dt.date
    end: dt.date
    complaints: int = 0
    by_category: dict[str, int] = field(default_factory=dict)


@dataclass
class Report:
    period: Period
    calls: CallCounts
    queue: QueueFigures
    wait_prediction: WaitPrediction
    repeat_callers: RepeatCallers
    complaints: Complaints
    return_visits: ReturnVisits
    hourly: list[HourFigures]
    weekly: list[WeekFigures]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = _jsonable(asdict(self))
        return body

    def csv_rows(self) -> list[tuple[str, str, str]]:
        """(section, metric, value): nested keys joined with '.', hours as ``09.calls``, None as ''."""
        rows: list[tuple[str, str, str]] = []
        for section, body in self.to_json().items():
            if section == "hourly":
                body = {f"{h['hour']:02d}": {k: v for k, v in h.items() if k != "hour"} for h in body}
            elif section == "weekly":
                body = {w["week"]: {k: v for k, v in w.items() if k != "week"} for w in body}
            for metric, value in _flatten(body):
                rows.append((section, metric, _csv_value(value)))
        return rows

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(self.csv_rows())
        return out.getvalue()

    def summary_lines(self) -> list[str]:
        """The report as aligned text for a terminal."""
        p, c, q, w, r, co, v = (self.period, self.calls, self.queue, self.wait_prediction, self.repeat_callers,
                                self.complaints, self.return_visits)
        lines = [f"hotline report {p.start} .. {p.end} ({p.timezone}; UTC {p.utc_from:%Y-%m-%d %H:%M} .. "
                 f"{p.utc_to:%Y-%m-%d %H:%M})", ""]
        sections: list[tuple[str, list[tuple[str, str]]]] = [
            ("Calls", [
                ("total", str(c.total)),
                ("inbound / outbound", f"{c.inbound} / {c.outbound}"),
                ("by intent", _counts(c.by_intent)),
                ("by channel", _counts(c.by_channel)),
                ("by outcome", _counts(c.by_outcome)),
            ]),
            ("Queue (inbound calls)", [
                ("self-service rate", _rate(q.self_service_rate, q.self_served, q.inbound_calls, "inbound calls")),
                (f"service level ({p.service_level_s:g} s)",
                 _rate(q.service_level, q.answered_within_sl, q.queued, "queued calls")),
                ("average speed of answer", _seconds(q.asa_s, f"{q.answered} answered")),
                ("abandonment rate", _rate(q.abandonment_rate, q.abandoned, q.queued, "queued calls")),
                ("average handle time (talk only)", _seconds(q.aht_s, f"{q.handled} calls")),
                ("wait prediction error", "-" if w.mean_error_s is None else
                 f"mean {w.mean_error_s:+.1f} s, absolute {w.mean_abs_error_s:.1f} s ({w.calls} calls)"),
                ("repeat callers within 7 days", _rate(r.repeat_rate, r.repeated, r.calls, "calls")),
                ("FCR proxy", _percent(r.fcr_proxy)),
            ]),
            ("Complaints (work orders)", [
                ("total", str(co.total)),
                ("by category", ", ".join(f"{k} {s.count} ({_percent(s.share)})" for k, s in co.by_category.items())),
                ("replied on time", f"{_percent(co.replied_on_time_rate)} (on time {co.replied_on_time}, late "
                                    f"{co.replied_late}, pending {co.reply_pending})"),
                ("resolved on time", f"{_percent(co.resolved_on_time_rate)} (on time {co.resolved_on_time}, late "
                                     f"{co.resolved_late}, pending {co.resolve_pending})"),
            ]),
            ("Return visits", [
                ("finished", f"{v.finished} (completed {v.completed}, unreachable {v.unreachable}, "
                             f"refused {v.refused})"),
                ("attempted", str(v.attempted)),
                ("reach rate", _rate(v.reach_rate, v.reached, v.finished, "finished")),
                ("ratings", ", ".join(f"{k} {rc.label}: {rc.count}" for k, rc in v.ratings.items())),
                ("CSAT (rated 1-2)", _rate(v.csat, sum(v.ratings[k].count for k in ("1", "2")), v.rated, "rated")),
            ]),
        ]
        width = max(len(label) for _, items in sections for label, _ in items)
        for title, items in sections:
            lines.append(title)
            lines.extend(f"  {label.ljust(width)}  {value}".rstrip() for label, value in items)
            lines.append("")
        channels = list(c.by_channel)
        lines.append("Calls by intent and channel")
        lines.extend(_table(("intent", *channels), [
            (intent, *(str(row.get(ch, 0)) for ch in channels)) for intent, row in c.by_intent_channel.items()]))
        lines.append("")
        lines.append("Per local hour")
        lines.extend(_table(("hour", "calls", "queued", "service level"), [
            (f"{h.hour:02d}", str(h.calls), str(h.queued), _percent(h.service_level))
            for h in self.hourly if h.calls]))
        lines.append("")
        lines.append("Complaints per week")
        lines.extend(_table(("week", "from", "to", "total", *KNOWN_CATEGORIES), [
            (w.week, str(w.start), str(w.end), str(w.complaints), *(str(w.by_category.get(c, 0))
                                                                    for c in KNOWN_CATEGORIES))
            for w in self.weekly]))
        return lines


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


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by."""
    if not denominator:
        return None
    return float(numerator or 0) / float(denominator)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    return value


def _flatten(body: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if not isinstance(body, dict):
        return [(prefix, body)]
    out: list[tuple[str, Any]] = []
    for key, value in body.items():
        out.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.6f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    return str(value)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def _rate(rate: float | None, numerator: int, denominator: int, of: str) -> str:
    return f"{_percent(rate)} ({numerator} of {denominator} {of})"


def _seconds(value: float | None, note: str) -> str:
    return "-" if value is None else f"{value:.1f} s ({note})"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in counts.items())


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    return ["  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                             enumerate(zip(row, widths, strict=False))).rstrip() for row in (header, *rows)]
