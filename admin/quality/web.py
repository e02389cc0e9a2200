"""The quality pages: evaluation forms (admins), the reviewer's queue and scoring page, calibration, sampling on
demand, scorecards (page, JSON, CSV), and the agent's own evaluations (acknowledge or dispute).

Who may see what beyond the role is decided by ``quality.evaluations`` (own queue, own calls, blind calibration);
this module turns its refusals into pages: another person's item or evaluation is a 404, like one that does not
exist.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request
from flask_babel import gettext as _

from admin.access import allow, current
from admin.audit import AuditLog
from admin.json_replies import json_error
from admin.openapi import ErrorBody, doc
from admin.quality.models import ReviewQueue, SamplingBody, SamplingResult, ScorecardBody, ScorecardQuery
from admin.quality.router_events import CallEvents
from admin.recordings.web import signed_link
from quality.evaluations import Comment, Evaluations, NotAllowed, NotYours, OwnCall, Person
from quality.forms import EXAMPLE, FormBook, FormInvalid, FormNotFound, load_text
from quality.sampling import Sampler
from quality.scorecards import build_scorecard, to_csv
from quality.scoring import AnswersInvalid
from quality.weeks import parse_week
from reports.queries import parse_period

log = logging.getLogger(__name__)

REVIEWERS = ("admin", "supervisor", "qa")
MAX_DAYS = 366


@dataclass(frozen=True)
class QualityDeps:
    forms: FormBook
    evaluations: Evaluations
    sampler: Sampler
    audit: AuditLog
    timezone: str
    router_events: CallEvents | None = None
    """The call's events from the router's stream for the timeline (``admin.quality.router_events``)."""


def _person() -> Person:
    who = current()
    return Person(who.name, who.role, who.agent_id)


def create_quality_web(deps: QualityDeps) -> Blueprint:
    bp = Blueprint("quality_web", __name__)
    forms, evaluations = deps.forms, deps.evaluations

    # -- the reviewer's queue --------------------------------------------------------------------------------
    @bp.get("/admin/quality")
    @allow(*REVIEWERS)
    def index() -> str:
        who = current()
        return render_template("quality.html", items=evaluations.queue(who.name), forms=forms.names(),
                               may_manage=who.role in ("admin", "supervisor"))

    @bp.get("/api/quality/queue")
    @allow(*REVIEWERS)
    @doc({200: ReviewQueue}, tags=("quality",))
    def queue_api() -> Response:
        """The caller's review queue: items to score (open) or to look at again (disputed)."""
        return jsonify(_jsonable(evaluations.queue(current().name)))

    # -- sampling and calibration ----------------------------------------------------------------------------
    @bp.post("/admin/quality/sampling")
    @allow("admin", "supervisor")
    def sample_now() -> Response | tuple[str, int]:
        try:
            week = parse_week(request.form["week"]) if request.form.get("week") else None
        except ValueError:
            return _refused(400, _("Give the week as YYYY-Www, e.g. 2026-W49."))
        result = deps.sampler.run(week)
        who = current()
        deps.audit.write(who.name, who.role, "quality_sampled", result.week, picked=result.picked, added=result.added)
        flash(_("Week %(week)s: %(picked)s calls picked, %(added)s new in the review queues", week=result.week,
                picked=result.picked, added=result.added), "ok")
        return redirect("/admin/quality", code=303)  # type: ignore[return-value]

    @bp.post("/api/quality/sampling")
    @allow("admin", "supervisor")
    @doc({200: SamplingResult, 400: ErrorBody}, json=SamplingBody, tags=("quality",))
    def sample_api() -> Response | tuple[Response, int]:
        """Run the sampling rules over a week (``week``: YYYY-Www, default this week); the job does it hourly."""
        body = request.get_json(silent=True) or {}
        try:
            week = parse_week(str(body["week"])) if body.get("week") else None
        except ValueError as exc:
            return json_error(400, str(exc))
        result = deps.sampler.run(week)
        who = current()
        deps.audit.write(who.name, who.role, "quality_sampled", result.week, picked=result.picked, added=result.added)
        return jsonify(vars(result))

    @bp.post("/admin/quality/calibrations")
    @allow("admin", "supervisor")
    def calibrate() -> Response | tuple[str, int]:
        call_id = request.form.get("call_id", "").strip()
        names = [n.strip() for n in request.form.get("reviewers", "").replace("，", ",").split(",") if n.strip()]
        try:
            added = evaluations.start_calibration(call_id, names)
        except (NotAllowed, OwnCall) as exc:
            return _refused(400, str(exc))
        who = current()
        deps.audit.write(who.name, who.role, "quality_calibration", call_id, reviewers=names)
        flash(_("Calibration of %(call)s: %(n)s reviewers", call=call_id, n=len(added)), "ok")
        return redirect("/admin/quality", code=303)  # type: ignore[return-value]

    @bp.get("/admin/quality/calibration/<call_id>")
    @allow(*REVIEWERS)
    def calibration(call_id: str) -> str | tuple[str, int]:
        try:
            side_by_side = evaluations.calibration(call_id, _person())
        except NotYours:
            return _refused(404, _("No calibration of call %(call)s for you.", call=call_id))
        except NotAllowed:
            return _refused(403, _("The other reviewers' answers are shown once you have submitted yours."))
        return render_template("quality_calibration.html", c=side_by_side)

    # -- scoring ---------------------------------------------------------------------------------------------
    @bp.get("/admin/quality/items/<int:item_id>")
    @allow(*REVIEWERS)
    def item(item_id: int) -> str | tuple[str, int]:
        try:
            shown = evaluations.item(item_id, _person())
        except NotYours:
            return _refused(404, _("Review item %(id)s is not in your queue.", id=item_id))
        form_name = request.args.get("form") or (shown["evaluation"] or {}).get("form") or next(
            iter(forms.names()), None)
        form = forms.live(form_name) if form_name and form_name in forms.names() else None
        audio = signed_link(shown["recording"], current().name) if shown["recording"] else None
        shown["timeline"] = _with_router_events(shown, deps.router_events)
        return render_template("quality_item.html", s=shown, form=form, forms=forms.names(), audio=audio,
                               scale=range(1, 6))

    @bp.post("/admin/quality/items/<int:item_id>")
    @allow(*REVIEWERS)
    def submit(item_id: int) -> Response | tuple[str, int]:
        name = request.form.get("form", "")
        try:
            form = forms.live(name)
            answers = {q.id: _answer(request.form.get(f"q_{q.id}", "")) for q in form.form.questions()
                       if request.form.get(f"q_{q.id}")}
            comments = _comments(request.form)
            done = evaluations.submit(item_id, _person(), name, answers, comments)
        except NotYours:
            return _refused(404, _("Review item %(id)s is not in your queue.", id=item_id))
        except OwnCall:
            return _refused(403, _("You took this call yourself: a reviewer does not score their own calls."))
        except (FormNotFound, AnswersInvalid, NotAllowed, ValueError) as exc:
            return _refused(400, str(exc))
        who = current()
        deps.audit.write(who.name, who.role, "evaluation_submitted", done["call_id"], evaluation=done["id"],
                         total=done["total"], form=f"{done['form']} v{done['form_version']}")
        total = "–" if done["total"] is None else format(done["total"], "g")
        flash(_("Evaluation of %(call)s submitted: %(total)s", call=done["call_id"], total=total), "ok")
        if done["calibration"]:
            return redirect(f"/admin/quality/calibration/{done['call_id']}", code=303)  # type: ignore[return-value]
        return redirect("/admin/quality", code=303)  # type: ignore[return-value]

    # -- forms -----------------------------------------------------------------------------------------------
    @bp.get("/admin/quality/forms")
    @allow("admin")
    def forms_page() -> str:
        name = request.args.get("name", "")
        history = forms.history(name) if name else []
        source = request.args.get("source") or (_yaml(history[0].definition) if history else EXAMPLE)
        return render_template("quality_forms.html", names=forms.names(), name=name, history=history, source=source)

    @bp.post("/admin/quality/forms")
    @allow("admin")
    def publish() -> Response | tuple[str, int]:
        name, source = request.form.get("name", "").strip(), request.form.get("source", "")
        try:
            version = forms.publish(name, load_text(source), current().name)
        except FormInvalid as exc:
            return render_template("quality_forms.html", names=forms.names(), name=name,
                                   history=forms.history(name) if name in forms.names() else [], source=source,
                                   problems=exc.problems), 400
        who = current()
        deps.audit.write(who.name, who.role, "quality_form_published", name, version=version)
        flash(_("Form %(name)s version %(version)s published", name=name, version=version), "ok")
        return redirect(f"/admin/quality/forms?name={name}", code=303)  # type: ignore[return-value]

    # -- scorecards ------------------------------------------------------------------------------------------
    def scorecard() -> Any:
        today = dt.datetime.now(ZoneInfo(deps.timezone)).date()
        start, end = parse_period(request.args.get("from") or str(today - dt.timedelta(days=27)),
                                  request.args.get("to") or str(today), MAX_DAYS)
        return build_scorecard(evaluations.sql, start, end, deps.timezone, request.args.get("group", "agent"),
                               request.args.get("bucket", "week"), request.args.get("only") or None)

    @bp.get("/admin/quality/scorecards")
    @allow(*REVIEWERS)
    def scorecards_page() -> str | tuple[str, int]:
        try:
            card = scorecard()
        except ValueError as exc:
            return _refused(400, str(exc))
        return render_template("quality_scorecards.html", card=card, chart=_chart(card))

    @bp.get("/api/quality/scorecards")
    @allow(*REVIEWERS)
    @doc({200: ScorecardBody, 400: ErrorBody}, query=ScorecardQuery, tags=("quality",))
    def scorecards_api() -> Response | tuple[Response, int]:
        """Average score, automatic-fail rate, section scores and trend per agent or queue, beside calls handled,
        AHT and CSAT: every figure defined in quality/scorecards.py."""
        try:
            return jsonify(scorecard().to_json())
        except ValueError as exc:
            return json_error(400, str(exc))

    @bp.get("/api/quality/scorecards.csv")
    @allow(*REVIEWERS)
    @doc({200: None, 400: ErrorBody}, query=ScorecardQuery, tags=("quality",))
    def scorecards_csv() -> Response | tuple[Response, int]:
        """The scorecards as CSV: a line per agent or queue, a column per section and per trend bucket."""
        try:
            card = scorecard()
        except ValueError as exc:
            return json_error(400, str(exc))
        name = f"hotline-quality-{card.group}-{card.start}-{card.end}.csv"
        return Response(to_csv(card), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    # -- the agent's own evaluations -------------------------------------------------------------------------
    @bp.get("/agent/evaluations")
    @allow("agent")
    def mine() -> str:
        return render_template("agent_evaluations.html", rows=evaluations.of_agent(current().agent_id or ""))

    @bp.post("/agent/evaluations/<int:evaluation_id>")
    @allow("agent")
    def answer(evaluation_id: int) -> Response | tuple[str, int]:
        action = request.form.get("action", "")
        try:
            done = evaluations.answer(evaluation_id, current().agent_id or "", action, request.form.get("note", ""))
        except NotYours:
            return _refused(404, _("Evaluation %(id)s is not one of yours.", id=evaluation_id))
        except NotAllowed as exc:
            return _refused(400, str(exc))
        who = current()
        deps.audit.write(who.name, who.role, f"evaluation_{done['status']}", done["call_id"], evaluation=done["id"])
        flash(_("Evaluation acknowledged") if action == "acknowledge" else
              _("Evaluation disputed: it is back with the reviewer"), "ok")
        return redirect("/agent/evaluations", code=303)  # type: ignore[return-value]

    return bp


def _with_router_events(shown: dict[str, Any], events: CallEvents | None) -> list[dict[str, Any]]:
    """The record's moments and the router's events on one line, by time (the IVR steps, which have no time of
    their own, right after the start)."""
    timeline: list[dict[str, Any]] = shown["timeline"]
    moments = [m for m in timeline if m["at"] is not None]
    if events is None or not moments:
        return timeline
    origin = next((m["at"] for m in moments if m["kind"] == "answered"), moments[0]["at"])
    routed = [{**e, "offset_s": round((e["at"] - origin).total_seconds(), 1)}
              for e in events(shown["item"]["call_id"], min(m["at"] for m in moments), max(m["at"] for m in moments))]
    steps = [m for m in timeline if m["at"] is None]
    ordered = sorted(moments + routed, key=lambda m: m["at"])
    return ordered[:1] + steps + ordered[1:]


def _answer(raw: str) -> Any:
    return int(raw) if raw.isdigit() else raw


def _comments(form: Any) -> list[Comment]:
    """The comment rows of the scoring form: an offset (seconds, or m:ss) and a text; empty rows skipped."""
    out = []
    for at, text in zip(form.getlist("comment_at"), form.getlist("comment_text"), strict=False):
        if not text.strip():
            continue
        out.append(Comment(_seconds(at), text.strip()))
    return out


def _seconds(text: str) -> float:
    text = text.strip() or "0"
    if ":" in text:
        minutes, _sep, seconds = text.partition(":")
        return int(minutes) * 60 + float(seconds)
    return float(text)


def _yaml(definition: dict[str, Any]) -> str:
    import yaml
    return str(yaml.safe_dump(definition, allow_unicode=True, sort_keys=False))


def _chart(card: Any) -> dict[str, Any]:
    """Chart.js data: the trend of the average score per bucket, one line per agent or queue (the first 10)."""
    return {"labels": card.buckets,
            "datasets": [{"label": r.key, "data": [r.trend.get(b) for b in card.buckets]} for r in card.rows[:10]
                         if r.evaluations]}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _refused(status: int, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, message=message), status
