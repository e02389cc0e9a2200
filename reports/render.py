"""A report as CSV (section, metric, value) and as aligned text for a terminal."""

from __future__ import annotations

import csv
import io
from typing import Any

from reports.figures import (
    CSV_HEADER,
    KNOWN_CATEGORIES,
    Report,
)


def csv_rows(report: Report) -> list[tuple[str, str, str]]:
    """(section, metric, value): nested keys joined with '.', hours as ``09.calls``, None as ''."""
    rows: list[tuple[str, str, str]] = []
    for section, body in report.to_json().items():
        if section == "hourly":
            body = {f"{h['hour']:02d}": {k: v for k, v in h.items() if k != "hour"} for h in body}
        elif section == "weekly":
            body = {w["week"]: {k: v for k, v in w.items() if k != "week"} for w in body}
        for metric, value in _flatten(body):
            rows.append((section, metric, _csv_value(value)))
    return rows


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(report))
    return out.getvalue()


def summary_lines(report: Report) -> list[str]:
    """The report as aligned text for a terminal."""
    p, c, q, w, r, co, v = (report.period, report.calls, report.queue, report.wait_prediction,
                            report.repeat_callers, report.complaints, report.return_visits)
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
        for h in report.hourly if h.calls]))
    lines.append("")
    lines.append("Complaints per week")
    lines.extend(_table(("week", "from", "to", "total", *KNOWN_CATEGORIES), [
        (w.week, str(w.start), str(w.end), str(w.complaints), *(str(w.by_category.get(c, 0))
                                                                for c in KNOWN_CATEGORIES))
        for w in report.weekly]))
    return lines


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
