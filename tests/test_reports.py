"""Reports on SQLite and PostgreSQL: one synthetic day in Asia/Shanghai, every figure checked by hand.

The day is 2026-03-02 local = [2026-03-01 16:00, 2026-03-02 16:00) UTC. The report time is
2026-03-03 12:00 local, which decides which complaint deadlines have passed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import sessionmaker

from hotline.app import create_app, prepare
from hotline.cli import main
from hotline.settings import Settings
from reports.figures import Report
from reports.queries import build_report
from reports.render import csv_rows, summary_lines
from store.models import CallRecord, ReturnVisit, VisitAttempt, WorkOrder

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 3, 2)
TOKEN = "reports-token-for-tests-0123456789"


def at(day: int, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    """Local Shanghai time on 2026-03-<day>, as the UTC-aware time the call-record writer stores."""
    return dt.datetime(2026, 3, day, hh, mm, ss, tzinfo=SHANGHAI).astimezone(dt.UTC)


NOW = at(3, 12)

# id, local (day, h, m, s), direction, channel, intent, queue, outcome, wait_s, predicted_wait_s, talk_s, caller_key
CALLS = [
    ("c01", (2, 9, 5), "inbound", "twilio", "inquiry", "", "self_served", None, None, None, "kA"),
    ("c02", (2, 9, 20), "inbound", "asterisk", "inquiry", "", "self_served", None, None, None, "kB"),
    ("c03", (2, 9, 40), "inbound", "twilio", "loss", "", "self_served", None, None, None, "kC"),
    ("c04", (2, 10, 10), "inbound", "asterisk", "inquiry", "", "self_served", None, None, None, "kD"),
    ("c05", (2, 10, 30), "inbound", "twilio", "complaint", "", "self_served", None, None, None, "kE"),
    ("c06", (2, 10, 45), "inbound", "twilio", "", "", "abandoned", None, None, None, "kF"),  # hung up in the menu
    ("c07", (2, 11, 0), "inbound", "asterisk", "inquiry", "", "abandoned", None, None, None, ""),  # no caller key
    ("c08", (2, 11, 15), "inbound", "twilio", "inquiry", "", "failed", None, None, None, "kG"),
    ("c09", (2, 9, 10), "inbound", "twilio", "agent", "general", "routed", 5, 10, 100, "kH"),
    ("c10", (2, 9, 30), "inbound", "asterisk", "loss", "loss", "routed", 12, None, 200, "kI"),
    ("c11", (2, 9, 50), "inbound", "twilio", "inquiry", "general", "routed", 20, 15, 300, "kA"),
    ("c12", (2, 10, 20), "inbound", "asterisk", "complaint", "complaints", "routed", 25, 35, 150, "kJ"),
    ("c13", (2, 14, 0), "inbound", "twilio", "agent", "general", "routed", 40, 30, 250, "kK"),
    ("c14", (2, 14, 30), "inbound", "asterisk", "inquiry", "general", "routed", 8, None, 50, "kL"),
    ("c15", (2, 15, 10), "inbound", "twilio", "loss", "loss", "routed", 90, 60, 350, "kM"),
    ("c16", (2, 15, 30), "inbound", "asterisk", "agent", "general", "abandoned", None, 30, None, "kN"),
    ("c17", (2, 16, 0), "inbound", "twilio", "complaint", "complaints", "abandoned", None, None, None, "kO"),
    ("c18", (2, 16, 20), "inbound", "asterisk", "inquiry", "general", "failed", None, None, None, "kP"),
    # Return-visit surveys: outbound, answered by the customer; never in the queue KPIs or repeat callers.
    ("c19", (2, 11, 30), "outbound", "twilio", "survey", "", "survey_completed", None, None, 60, "kE"),
    ("c20", (2, 11, 40), "outbound", "asterisk", "survey", "", "failed", None, None, None, "kR"),
    ("c21", (2, 12, 0), "inbound", "twilio", "inquiry", "", "self_served", None, None, None, "kS"),
    ("c22", (2, 12, 30), "inbound", "asterisk", "loss", "", "self_served", None, None, None, "kT"),
    ("c23", (2, 13, 0), "inbound", "twilio", "", "", "abandoned", None, None, None, "kU"),
    ("c24", (2, 23, 59, 59), "inbound", "twilio", "inquiry", "", "self_served", None, None, None, "kV"),  # last second
    # Outside the day: never counted, but x2 and x3 are the follow-ups of c03 and c04.
    ("x1", (1, 23, 59, 59), "inbound", "twilio", "inquiry", "", "self_served", None, None, None, "kB"),
    ("x2", (3, 0, 0, 0), "inbound", "asterisk", "agent", "general", "routed", 100, 10, 500, "kC"),
    ("x3", (9, 10, 0), "inbound", "twilio", "inquiry", "", "self_served", None, None, None, "kD"),  # 6 d 23 h 50 min
    ("x4", (10, 9, 20), "inbound", "asterisk", "inquiry", "", "self_served", None, None, None, "kB"),  # 8 days
]

# number, category, created, first_contact_due, first_contact_at, resolve_due, resolved_at (local (day, h, m))
WORK_ORDERS = [
    ("w1", "service", (2, 9), (3, 9), (2, 10), (7, 9), (2, 15)),  # replied on time, resolved on time
    ("w2", "service", (2, 10), (3, 10), (3, 11), (7, 10), None),  # replied late; resolution not due yet
    ("w3", "fees", (2, 11), (3, 11), None, (3, 11, 30), None),  # both deadlines passed with nothing done
    ("w4", "card_account", (2, 13), (2, 17), (2, 17), (3, 10), (3, 9)),  # replied exactly at the deadline
    ("w5", "card_account", (2, 8), (2, 12), (2, 11), (3, 8), None),  # resolution late (passed, not done)
    ("w6", "other", (2, 20), (3, 20), None, (9, 20), None),  # nothing due yet: pending
    ("w7", "fees", (2, 12), (3, 12), (2, 12, 30), (2, 18), (2, 19)),  # resolved an hour late
    ("w8", "service", (2, 23, 30), None, None, None, None),  # no deadlines: never late
    ("w9", "service", (1, 23, 59), (2, 23), None, (6, 23), None),  # the day before
    ("w10", "fees", (3, 0), (4, 0), None, (8, 0), None),  # the day after
]

# status, finished (local (day, h, m)) or None, rating, dispositions of its dials
VISITS = [
    ("completed", (2, 10), 1, ["no-answer", "answered"]),
    ("completed", (2, 11), 2, ["answered"]),
    ("completed", (2, 12), 2, ["answered"]),
    ("completed", (2, 13), 4, ["busy", "answered"]),
    ("completed", (2, 14), 5, ["answered"]),
    ("refused", (2, 15), None, []),  # on the do-not-call list: never dialled
    ("unreachable", (2, 16), None, ["no-answer", "voicemail", "busy"]),
    ("completed", (2, 17), 3, ["answered"]),
    ("unreachable", (2, 18), None, ["no-answer"]),
    ("cancelled", (2, 19), None, ["no-answer"]),  # cancelled: not a finished visit
    ("completed", (3, 0), 1, ["answered"]),  # finished the day after
    ("scheduled", None, None, ["no-answer"]),  # not finished yet
    ("in_call", None, None, ["answered"]),
]


@pytest.fixture
def seeded(sql: sessionmaker) -> sessionmaker:
    seed(sql)
    return sql


def seed(sql: sessionmaker) -> None:
    """CALLS, WORK_ORDERS and VISITS as the writers would have stored them."""
    with sql.begin() as db:
        for call_id, when, direction, channel, intent, queue, outcome, wait, predicted, talk, caller in CALLS:
            started = at(*when)
            queued_at = started + dt.timedelta(seconds=40) if queue else None
            answered_at = None
            if wait is not None:
                answered_at = queued_at + dt.timedelta(seconds=wait)  # type: ignore[operator]
            elif direction == "outbound" and talk:
                answered_at = started + dt.timedelta(seconds=15)  # the customer picked up the survey call
            db.add(CallRecord(
                call_id=call_id, channel=channel, direction=direction, caller_key=caller, started_at=started,
                queued_at=queued_at, answered_at=answered_at, ended_at=started + dt.timedelta(minutes=10),
                intent=intent, queue=queue, wait_s=wait, predicted_wait_s=predicted, talk_s=talk, outcome=outcome,
            ))
        orders = {}
        for number, category, created, fc_due, fc_at, res_due, res_at in WORK_ORDERS:
            orders[number] = WorkOrder(
                number=number, call_id=f"CA-{number}", category=category, caller_masked="138****5678",
                callback_number="+8613812345678", language="zh-CN", recording_ref=f"rec-{number}",
                created_at=at(*created), **{name: at(*v) if v else None for name, v in (
                    ("first_contact_due", fc_due), ("first_contact_at", fc_at), ("resolve_due", res_due),
                    ("resolved_at", res_at))},
            )
            db.add(orders[number])
        db.flush()
        for i, (status, finished, rating, dials) in enumerate(VISITS):
            visit = ReturnVisit(
                work_order_id=orders["w1"].id, number="+8613812345678", number_key=f"n{i}", channel="twilio",
                language="zh-CN", status=status, due_at=at(2, 9), attempts=len(dials), rating=rating,
                finished_at=at(*finished) if finished else None,
            )
            db.add(visit)
            db.flush()
            for n, disposition in enumerate(dials, 1):
                db.add(VisitAttempt(visit_id=visit.id, attempt=n, number_key=f"n{i}", placed_at=at(2, 9, n),
                                    disposition=disposition))


def test_every_figure_of_the_day(seeded: sessionmaker) -> None:
    report = build_report(seeded, DAY, DAY, "Asia/Shanghai", 20, now=NOW).to_json()
    assert report["period"] == {
        "start": "2026-03-02", "end": "2026-03-02", "timezone": "Asia/Shanghai",
        "utc_from": "2026-03-01T16:00:00+00:00", "utc_to": "2026-03-02T16:00:00+00:00",
        "generated_at": NOW.isoformat(), "service_level_s": 20,
    }
    # c01..c24: x1 (one second before the day) and x2 (its first second after) are left out.
    assert report["calls"] == {
        "total": 24, "inbound": 22, "outbound": 2,  # c19 and c20 are the outbound surveys
        "by_intent": {"inquiry": 10, "loss": 4, "complaint": 3, "agent": 3, "survey": 2, "none": 2},
        "by_channel": {"twilio": 14, "asterisk": 10},
        "by_outcome": {"self_served": 8, "routed": 7, "abandoned": 5, "failed": 3, "survey_completed": 1},
        "by_intent_channel": {
            "inquiry": {"twilio": 5, "asterisk": 5},  # c01 c08 c11 c21 c24 | c02 c04 c07 c14 c18
            "loss": {"twilio": 2, "asterisk": 2},  # c03 c15 | c10 c22
            "complaint": {"twilio": 2, "asterisk": 1},  # c05 c17 | c12
            "agent": {"twilio": 2, "asterisk": 1},  # c09 c13 | c16
            "survey": {"twilio": 1, "asterisk": 1},  # c19 | c20
            "none": {"twilio": 2, "asterisk": 0},  # c06 c23
        },
    }
    queue = report["queue"]
    assert {k: v for k, v in queue.items() if k not in ("self_service_rate", "asa_s")} == {
        "inbound_calls": 22, "self_served": 8,
        "queued": 10, "answered": 7,  # c09..c18 queued; c09..c15 answered
        "answered_within_sl": 4, "service_level": 0.4,  # waits 5, 12, 20 (<= 20 counts), 8: 4 of 10 queued
        "abandoned": 2, "abandonment_rate": 0.2,  # c16, c17 hung up in the queue (c06 c07 c23 in the menu): 2 of 10
        "handled": 7, "aht_s": 200.0,  # (100+200+300+150+250+50+350) / 7 = 1400 / 7; c19's 60 s is outbound
    }
    assert queue["self_service_rate"] == pytest.approx(8 / 22)  # c01-c05 c21 c22 c24 of 22 inbound
    assert queue["asa_s"] == pytest.approx(200 / 7)  # (5+12+20+25+40+8+90) / 7 answered
    # predicted - actual for c09 (10-5), c11 (15-20), c12 (35-25), c13 (30-40), c15 (60-90); c16 was not answered
    assert report["wait_prediction"] == {"calls": 5, "mean_error_s": -6.0, "mean_abs_error_s": 12.0}  # -30/5, 60/5
    # 21 inbound calls with a caller key (not c07); repeated: c01 (c11 40 min later), c03 (x2, after the
    # period), c04 (x3, 6 d 23 h 50 min later); not c02 (x4 8 days later), not c05 (c19 is outbound).
    repeat = report["repeat_callers"]
    assert (repeat["calls"], repeat["repeated"]) == (21, 3)
    assert repeat["repeat_rate"] == pytest.approx(3 / 21) and repeat["fcr_proxy"] == pytest.approx(18 / 21)
    # w1..w8 (w9 the day before, w10 the day after); report time 2026-03-03 12:00.
    assert report["complaints"] == {
        "total": 8,
        "by_category": {"service": {"count": 3, "share": 0.375}, "fees": {"count": 2, "share": 0.25},
                        "card_account": {"count": 2, "share": 0.25}, "other": {"count": 1, "share": 0.125}},
        # on time w1 w4 w5 w7; late w2 (replied after), w3 (due passed); pending w6 (due ahead), w8 (no due)
        "replied_on_time": 4, "replied_late": 2, "reply_pending": 2, "replied_on_time_rate": 0.75,  # (8-2)/8
        # on time w1 w4; late w3 w5 (passed, not done), w7 (done after); pending w2 w6 w8
        "resolved_on_time": 2, "resolved_late": 3, "resolve_pending": 3, "resolved_on_time_rate": 0.625,  # (8-3)/8
    }
    visits = report["return_visits"]
    # finished in the day: 6 completed + 2 unreachable + 1 refused = 9 (cancelled, next day, unfinished left out)
    assert {k: v for k, v in visits.items() if k != "reach_rate"} == {
        "finished": 9, "completed": 6, "unreachable": 2, "refused": 1,
        "attempted": 8,  # all but the refused one
        "reached": 6,  # the 6 completed ones had an answered dial
        "rated": 6,
        "ratings": {"1": {"label": "very satisfied", "count": 1}, "2": {"label": "satisfied", "count": 2},
                    "3": {"label": "neutral", "count": 1}, "4": {"label": "dissatisfied", "count": 1},
                    "5": {"label": "very dissatisfied", "count": 1}},
        "csat": 0.5,  # ratings 1, 2, 2 of 6 rated
    }
    assert visits["reach_rate"] == pytest.approx(6 / 9)
    hourly = {h["hour"]: h for h in report["hourly"]}
    assert len(report["hourly"]) == 24
    assert {h: v["calls"] for h, v in hourly.items() if v["calls"]} == {
        9: 6, 10: 4, 11: 4, 12: 2, 13: 1, 14: 2, 15: 2, 16: 2, 23: 1}  # 24 calls
    assert {h: v["service_level"] for h, v in hourly.items() if v["queued"]} == {
        9: 1.0,  # c09 5 s, c10 12 s, c11 20 s: 3 of 3
        10: 0.0,  # c12 25 s: 0 of 1
        14: 0.5,  # c13 40 s, c14 8 s: 1 of 2
        15: 0.0,  # c15 90 s, c16 abandoned: 0 of 2
        16: 0.0,  # c17 abandoned, c18 failed: 0 of 2
    }
    assert hourly[12]["service_level"] is None  # nobody queued: no rate, not 0


def test_a_period_without_data_has_null_rates(sql: sessionmaker) -> None:
    report = build_report(sql, dt.date(2026, 4, 1), dt.date(2026, 4, 30), "Asia/Shanghai")
    body = json.loads(json.dumps(report.to_json()))
    rates = [body["queue"][k] for k in ("self_service_rate", "service_level", "asa_s", "abandonment_rate", "aht_s")]
    rates += [body["wait_prediction"]["mean_error_s"], body["wait_prediction"]["mean_abs_error_s"],
              body["repeat_callers"]["repeat_rate"], body["repeat_callers"]["fcr_proxy"],
              body["complaints"]["replied_on_time_rate"], body["complaints"]["resolved_on_time_rate"],
              body["return_visits"]["reach_rate"], body["return_visits"]["csat"],
              body["complaints"]["by_category"]["fees"]["share"], *(h["service_level"] for h in body["hourly"])]
    assert rates == [None] * len(rates)
    assert body["calls"]["total"] == 0 and body["calls"]["by_intent_channel"]["inquiry"] == {"twilio": 0,
                                                                                              "asterisk": 0}
    rows = dict(((s, m), v) for s, m, v in csv_rows(report))
    assert rows[("queue", "service_level")] == "" and rows[("queue", "queued")] == "0"
    assert rows[("hourly", "09.service_level")] == ""
    assert summary_lines(report)  # the text summary copes with no data too


def test_local_hours_and_bounds_follow_daylight_saving(sql: sessionmaker) -> None:
    # New York: 2026-03-08 has 23 hours (02:00 EST -> 03:00 EDT at 07:00 UTC); 2026-11-01 has 25 (01:00 twice).
    utc = [dt.datetime(*t, tzinfo=dt.UTC) for t in [
        (2026, 3, 8, 4, 59, 59),  # 23:59:59 EST the day before
        (2026, 3, 8, 5, 0), (2026, 3, 8, 6, 30), (2026, 3, 8, 7, 30), (2026, 3, 9, 3, 59, 59),  # 00:00 01:30 03:30 23:59
        (2026, 3, 9, 4, 0),  # 00:00 EDT the day after
        (2026, 11, 1, 5, 30), (2026, 11, 1, 6, 30),  # 01:30 EDT and 01:30 EST
    ]]
    with sql.begin() as db:
        for i, started in enumerate(utc):
            db.add(CallRecord(call_id=f"d{i}", channel="asterisk", direction="inbound", started_at=started,
                              queue="general", answered_at=started, wait_s=10, outcome="routed"))
    spring = build_report(sql, dt.date(2026, 3, 8), dt.date(2026, 3, 8), "America/New_York")
    assert (spring.period.utc_from, spring.period.utc_to) == (utc[1], utc[5])
    assert {h.hour: h.calls for h in spring.hourly if h.calls} == {0: 1, 1: 1, 3: 1, 23: 1}
    assert spring.queue.service_level == 1.0
    autumn = build_report(sql, dt.date(2026, 11, 1), dt.date(2026, 11, 1), "America/New_York")
    assert {h.hour: h.calls for h in autumn.hourly if h.calls} == {1: 2}
    both = build_report(sql, dt.date(2026, 3, 1), dt.date(2026, 11, 30), "America/New_York")
    # Three stretches of UTC offset (EST, EDT, EST): all 8 calls, each in its own local hour.
    assert both.calls.total == 8 and {h.hour: h.calls for h in both.hourly if h.calls} == {0: 2, 1: 3, 3: 1, 23: 2}


def _cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("REDIS_URL", settings.redis_url), ("DATABASE_URL", settings.database_url),
                        ("HOTLINE_DATA_DIR", str(settings.data_dir)), ("HOTLINE_TIMEZONE", "Asia/Shanghai"),
                        ("HOTLINE_SERVICE_LEVEL_SECONDS", "20")):
        monkeypatch.setenv(name, value or "")


def test_cli_prints_the_report_and_writes_csv(seeded: sessionmaker, settings: Settings, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_env(settings, monkeypatch)
    runner = CliRunner()
    out_file = tmp_path / "report.csv"
    result = runner.invoke(main, ["report", "--from", "2026-03-02", "--to", "2026-03-02", "--csv", str(out_file)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("hotline report 2026-03-02 .. 2026-03-02 (Asia/Shanghai")
    assert "  service level (20 s)             40.0 % (4 of 10 queued calls)" in lines
    assert "  abandonment rate                 20.0 % (2 of 10 queued calls)" in lines
    assert "  average handle time (talk only)  200.0 s (7 calls)" in lines
    # The CLI reports as of now (after every deadline but w8's, which has none): late also w6 (reply),
    # w2 and w6 (resolution), so (8-3)/8 and (8-5)/8.
    assert "  replied on time                  62.5 % (on time 4, late 3, pending 1)" in lines
    assert "  resolved on time                 37.5 % (on time 2, late 5, pending 1)" in lines
    assert "  total                            8" in lines  # work orders
    assert "  inquiry         5         5" in lines  # intent x channel
    assert "  09        6       3        100.0 %" in lines
    text = out_file.read_text(encoding="utf-8")
    assert text.startswith("section,metric,value\n")
    rows = list(csv.reader(io.StringIO(text)))[1:]
    values = {(s, m): v for s, m, v in rows}
    assert len(values) == len(rows)  # one row per (section, metric)
    assert values[("calls", "total")] == "24"
    assert values[("calls", "by_intent_channel.inquiry.twilio")] == "5"
    assert values[("queue", "service_level")] == "0.4"
    assert values[("queue", "asa_s")] == "28.571429"  # 200 / 7
    assert values[("queue", "self_service_rate")] == "0.363636"  # 8 / 22
    assert values[("wait_prediction", "mean_error_s")] == "-6"
    assert values[("repeat_callers", "repeated")] == "3"
    assert values[("complaints", "by_category.service.share")] == "0.375"
    assert values[("return_visits", "ratings.2.count")] == "2"
    assert values[("return_visits", "ratings.2.label")] == "satisfied"
    assert values[("hourly", "09.service_level")] == "1" and values[("hourly", "12.service_level")] == ""
    assert values[("period", "timezone")] == "Asia/Shanghai"
    expected = build_report(seeded, DAY, DAY, "Asia/Shanghai")
    assert [(s, m) for s, m, _ in rows] == [(s, m) for s, m, _ in csv_rows(expected)]

    as_json = runner.invoke(main, ["report", "--from", "2026-03-02", "--to", "2026-03-02", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["queue"]["answered_within_sl"] == 4


@pytest.mark.parametrize("args, message", [
    (["--from", "2026-03-32", "--to", "2026-04-01"], "from '2026-03-32' is not a date YYYY-MM-DD"),
    (["--from", "20260302", "--to", "2026-03-02"], "from '20260302' is not a date YYYY-MM-DD"),
    (["--from", "2026-03-03", "--to", "2026-03-02"], "from 2026-03-03 is after to 2026-03-02"),
])
def test_cli_refuses_bad_periods(database_url: str, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["report", *args])
    assert result.exit_code == 2 and message in result.output  # a usage error, before any database is touched


def test_api_serves_json_and_csv_behind_the_token(seeded: sessionmaker, settings: Settings) -> None:
    hotline = prepare(settings.model_copy(update={"api_token": TOKEN, "timezone": "Asia/Shanghai",
                                                  "service_level_s": 20}))
    app = create_app(hotline=hotline)
    app.testing = True
    client = app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}

    reply = client.get("/api/reports/summary?from=2026-03-02&to=2026-03-02", headers=auth)
    assert reply.status_code == 200
    assert reply.json["calls"]["total"] == 24 and reply.json["queue"]["service_level"] == 0.4
    assert reply.json["return_visits"]["csat"] == 0.5 and reply.json["period"]["timezone"] == "Asia/Shanghai"
    assert reply.json["queue"]["asa_s"] == pytest.approx(200 / 7)

    download = client.get("/api/reports/summary.csv?from=2026-03-02&to=2026-03-02", headers=auth)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == \
        'attachment; filename="hotline-report-2026-03-02-2026-03-02.csv"'
    text = download.get_data(as_text=True)
    assert text.splitlines()[0] == "section,metric,value" and "queue,abandonment_rate,0.2" in text.splitlines()

    for path in ("/api/reports/summary?from=2026-03-02&to=2026-03-02", "/api/reports/summary.csv"):
        refused = client.get(path)
        assert refused.status_code == 401 and "bearer token" in refused.json["error"]
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401

    for query, message in [
        ("", "both from and to are required"),
        ("?from=2026-03-02", "both from and to are required"),
        ("?from=2026-02-30&to=2026-03-02", "from '2026-02-30' is not a date"),
        ("?from=2026-03-02&to=yesterday", "to 'yesterday' is not a date"),
        ("?from=2026-03-03&to=2026-03-02", "from 2026-03-03 is after to 2026-03-02"),
        ("?from=2025-01-01&to=2026-01-02", "the period is 367 days; at most 366"),
    ]:
        for path in ("/api/reports/summary", "/api/reports/summary.csv"):
            bad = client.get(path + query, headers=auth)
            assert bad.status_code == 400 and message in bad.json["error"], (path, query, bad.json)
    leap = client.get("/api/reports/summary?from=2024-01-01&to=2024-12-31", headers=auth)  # 366 days is fine
    assert leap.status_code == 200 and leap.json["calls"]["total"] == 0


def test_report_type(seeded: sessionmaker) -> None:
    report = build_report(seeded, DAY, DAY, "Asia/Shanghai", 30, now=NOW)
    assert isinstance(report, Report)
    assert report.queue.answered_within_sl == 5 and report.queue.service_level == 0.5  # + c12's 25 s: 5 of 10
    with pytest.raises(ValueError, match="unknown time zone"):
        build_report(seeded, DAY, DAY, "Mars/Olympus_Mons")
