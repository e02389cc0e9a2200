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

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

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


