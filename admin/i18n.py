"""The pages' languages (zh-CN first, en-US) and one way of writing times on every page.

Texts are gettext messages (Flask-Babel): English in the code, the zh-CN catalogue in ``admin/translations``
(how to extract and compile: README, "Translations"). Who sees which language: a logged-in person's choice kept
with their account, else the choice made on this browser before logging in, else, for a program calling the API
with a bearer token, its ``Accept-Language``, else ``HOTLINE_UI_LANGUAGE``. The page scripts get their messages
from a JSON block of the page (the pages' CSP allows no inline script) and ``hotline._`` in ``hotline.js``.
Times are written ``YYYY-MM-DD HH:MM:SS`` in ``HOTLINE_TIMEZONE`` by ``when`` here and ``hotline.when`` there.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.support import Translations
from flask import Blueprint, Flask, Response, current_app, redirect, request, session
from flask_babel import Babel
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from admin.access import public
from admin.redirects import same_site_path
from admin.users.accounts import LANGUAGES, Accounts

TRANSLATIONS = Path(__file__).with_name("translations")
LOCALES = {"zh-CN": "zh_Hans_CN", "en-US": "en_US"}
"""Our language tags and the catalogue directories (gettext's locale names) they live in."""
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
JS_DOMAIN = "js"
"""The page scripts' messages have a catalogue of their own: only those are sent to the browser."""


LABELS = {
    # roles
    "admin": _l("admin"), "supervisor": _l("supervisor"), "agent": _l("agent"), "qa": _l("QA reviewer"),
    # agent states
    "offline": _l("offline"), "available": _l("available"), "offered": _l("offered"), "busy": _l("busy"),
    "wrap_up": _l("wrap-up"), "not_ready": _l("not ready"), "deactivated": _l("deactivated"),
    # work-order statuses, actions, overdue deadlines, complaint categories
    "open": _l("open"), "assigned": _l("assigned"), "in_progress": _l("in progress"), "resolved": _l("resolved"),
    "visited": _l("visited"), "closed": _l("closed"), "reopened": _l("reopened"),
    "assign": _l("assign"), "start": _l("start"), "resolve": _l("resolve"), "close": _l("close"),
    "visit": _l("visit"), "reopen": _l("reopen"), "created": _l("created"),
    "first_contact": _l("first contact"), "resolution": _l("resolution"),
    "service": _l("service"), "fees": _l("fees"), "card_account": _l("card or account"), "other": _l("other"),
    # wrap-up dispositions and not-ready reasons
    "follow_up": _l("follow-up"), "complaint_opened": _l("complaint opened"), "transferred": _l("transferred"),
    "wrong_number": _l("wrong number"), "break": _l("break"), "lunch": _l("lunch"), "meeting": _l("meeting"),
    "training": _l("training"), "coaching": _l("coaching"),
    # caller intents (the screen pop)
    "inquiry": _l("inquiry"), "loss": _l("loss report"), "complaint": _l("complaint"), "survey": _l("survey"),
    "general": _l("general"),  # the general queue (a transfer target on the console)
    "none": _l("none"),
    # return-visit ratings (complaints.visit_calls.RATING_LABELS)
    "very satisfied": _l("very satisfied"), "satisfied": _l("satisfied"), "neutral": _l("neutral"),
    "dissatisfied": _l("dissatisfied"), "very dissatisfied": _l("very dissatisfied"),
    # quality: why a call was picked, review and evaluation statuses, timeline moments, answers
    "share": _l("share of the agent's calls"), "long": _l("long call"), "calibration": _l("calibration"),
    "scored": _l("scored"), "disputed": _l("disputed"), "submitted": _l("submitted"),
    "acknowledged": _l("acknowledged"), "rescored": _l("scored again"),
    "started": _l("started"), "ivr": _l("IVR step"), "queued": _l("queued"), "answered": _l("answered"),
    "ended": _l("ended"), "yes": _l("yes"), "no": _l("no"), "na": _l("N/A"),
    # the router's events of a call (the scoring page's timeline)
    "call_queued": _l("queued"), "call_offered": _l("offered to an agent"),
    "call_offer_failed": _l("offer declined or timed out"), "call_accepted": _l("accepted by the agent"),
    "call_answered": _l("answered"), "call_requeued": _l("back in the queue"),
    "call_overflowed": _l("overflowed to another queue"), "call_completed": _l("completed"),
    "call_abandoned": _l("abandoned"), "callback_offered": _l("callback offered"),
    "callback_requested": _l("callback requested"),
}
"""Codes the pages show (roles, states, statuses, categories...) as people read them; the code stays in the
data and the API."""


REFUSALS: tuple[tuple[re.Pattern[str], Any], ...] = tuple((re.compile(pattern), message) for pattern, message in (
    (r"agent (?P<id>\S+): skill (?P<skill>\S+) level (?P<level>.+) is not 1-10",
     _l("agent %(id)s: skill %(skill)s level %(level)s is not 1-10")),
    (r"agent (?P<id>\S+): unknown skill (?P<skill>'.*') \(known: (?P<known>.*)\)",
     _l("agent %(id)s: unknown skill %(skill)s (known: %(known)s)")),
    (r"agent (?P<id>\S+): at least one skill is required", _l("agent %(id)s: at least one skill is required")),
    (r"agent (?P<id>\S+): at least one language is required", _l("agent %(id)s: at least one language is required")),
    (r"agent (?P<id>\S+): an endpoint to ring is required", _l("agent %(id)s: an endpoint to ring is required")),
    (r"agent (?P<id>\S+): voice agents take one call at a time \(max_calls 1\)",
     _l("agent %(id)s: voice agents take one call at a time (max_calls 1)")),
    (r"agent (?P<id>\S+): endpoint (?P<endpoint>'.*') is not one the hotline can ring: use (?P<rules>.*)",
     _l("agent %(id)s: endpoint %(endpoint)s is not one the hotline can ring: use %(rules)s")),
    (r"agent (?P<id>\S+): endpoint (?P<endpoint>'.*') is a bare name: write (?P<client>\S+) for a Twilio Client "
     r"identity or (?P<pjsip>\S+) for an Asterisk endpoint \(a bare extension is digits only\)",
     _l("agent %(id)s: endpoint %(endpoint)s is a bare name: write %(client)s for a Twilio Client identity or "
        "%(pjsip)s for an Asterisk endpoint (a bare extension is digits only)")),
    (r"agent (?P<id>\S+): endpoint (?P<endpoint>'.*') rings SIP domain (?P<domain>'.*'), which is not an allowed one "
     r"\((?P<allowed>.*)\)",
     _l("agent %(id)s: endpoint %(endpoint)s rings SIP domain %(domain)s, which is not an allowed one "
        "(%(allowed)s)")),
    (r"agent (?P<id>\S+): endpoint (?P<endpoint>'.*') is longer than 128 characters",
     _l("agent %(id)s: endpoint %(endpoint)s is longer than 128 characters")),
    (r"agent id (?P<id>'.*'): use 1-64 letters, digits, '\.', '_' or '-'",
     _l("agent id %(id)s: use 1-64 letters, digits, '.', '_' or '-'")),
    (r"work order (?P<number>\S+) is (?P<status>\S+): cannot (?P<action>\S+) \(allowed from (?P<sources>.*)\)",
     _l("work order %(number)s is %(status)s: cannot %(action)s (allowed from %(sources)s)")),
    (r"assign needs the assignee \(who takes the work order\)",
     _l("assign needs the assignee (who takes the work order)")),
    (r"resolve needs a note: what was done for the caller", _l("resolve needs a note: what was done for the caller")),
    (r"work order (?P<number>\S+) does not exist", _l("work order %(number)s does not exist")),
    (r"call (?P<call>\S+) is not waiting", _l("call %(call)s is not waiting")),
    # opening hours (calls.hours)
    (r"weekday (?P<day>\d) is missing", _l("weekday %(day)s is missing")),
    (r"a day needs both an opening and a closing time, or neither \(closed\)",
     _l("a day needs both an opening and a closing time, or neither (closed)")),
    (r"a day must open before it closes", _l("a day must open before it closes")),
    # the menu validator's problems (ivr.validate), shown at their line in the menu editor
    (r"unknown target '(?P<target>.*)' for (?P<what>.*)", _l("unknown target '%(target)s' for %(what)s")),
    (r"prompt is missing", _l("prompt is missing")),
    (r"(?P<field>\S+) has no text for language '(?P<language>.*)'",
     _l("%(field)s has no text for language '%(language)s'")),
    (r"(?P<field>\S+) is in language '(?P<language>.*)', which the menu does not declare",
     _l("%(field)s is in language '%(language)s', which the menu does not declare")),
    (r"(?P<field>\S+) \[(?P<language>[^\]]*)\]: (?P<reason>.*)", _l("%(field)s [%(language)s]: %(reason)s")),
    (r"bad placeholder: (?P<error>.*)", _l("bad placeholder: %(error)s")),
    (r"bad placeholder '(?P<placeholder>.*)'", _l("bad placeholder '%(placeholder)s'")),
    (r"placeholder '(?P<placeholder>.*)' has an unknown format \(use digits or label\)",
     _l("placeholder '%(placeholder)s' has an unknown format (use digits or label)")),
    (r"placeholder '(?P<placeholder>.*)' has no entry in labels",
     _l("placeholder '%(placeholder)s' has no entry in labels")),
    (r"unknown service '(?P<service>.*)'", _l("unknown service '%(service)s'")),
    (r"unknown skill '(?P<skill>.*)'", _l("unknown skill '%(skill)s'")),
    (r"language '(?P<language>.*)' is not declared by the menu",
     _l("language '%(language)s' is not declared by the menu")),
    (r"values has key (?P<key>\S+), which is not an option", _l("values has key %(key)s, which is not an option")),
    (r"max_visits and on_max_visits go together", _l("max_visits and on_max_visits go together")),
    (r"min_digits is larger than max_digits", _l("min_digits is larger than max_digits")),
    (r"sensitive input must lead straight to an action that uses '(?P<store>.*)'",
     _l("sensitive input must lead straight to an action that uses '%(store)s'")),
    (r"unreachable from start node '(?P<start>.*)'", _l("unreachable from start node '%(start)s'")),
    (r"loop without caller input: (?P<cycle>.*)", _l("loop without caller input: %(cycle)s")),
    # the call controls' refusals (calls.control.ControlRefused, from workers.asterisk_control,
    # workers.twilio_control and workers.monitor), shown on the console and the floor; the router's own first
    (r"call (?P<call_id>\S+) is not connected to agent (?P<agent>\S+)",
     _l("call %(call_id)s is not connected to agent %(agent)s")),
    (r"call (?P<call_id>\S+) is not connected to an agent", _l("call %(call_id)s is not connected to an agent")),
    (r"the call is not connected to an agent", _l("the call is not connected to an agent")),
    (r"agent (?P<id>\S+) is not available \(now (?P<status>\S+)\)",
     _l("agent %(id)s is not available (now %(status)s)")),
    (r"agent (?P<id>\S+) is (?P<status>[a-z_]+)", _l("agent %(id)s is %(status)s")),  # the router: not free
    (r"no other agent (?P<agent>'.*') to transfer to", _l("no other agent %(agent)s to transfer to")),
    (r"no other agent or supervisor (?P<agent>'.*') to transfer to",
     _l("no other agent or supervisor %(agent)s to transfer to")),
    (r"no queue (?P<queue>'.*')", _l("no queue %(queue)s")),
    (r"the caller is not bridged to the agent on Asterisk", _l("the caller is not bridged to the agent on Asterisk")),
    (r"no warm transfer is in progress on this call", _l("no warm transfer is in progress on this call")),
    (r"a warm transfer is already in progress on this call", _l("a warm transfer is already in progress on this call")),
    (r"the transfer target is no longer on the line", _l("the transfer target is no longer on the line")),
    (r"the caller is no longer on the line", _l("the caller is no longer on the line")),
    (r"a warm transfer goes to an agent or a supervisor; send a queue the call cold",
     _l("a warm transfer goes to an agent or a supervisor; send a queue the call cold")),
    (r"a warm transfer goes to a person: an agent or a supervisor",
     _l("a warm transfer goes to a person: an agent or a supervisor")),
    (r"agent (?P<agent>'.*') has no Asterisk phone to ring", _l("agent %(agent)s has no Asterisk phone to ring")),
    (r"Asterisk could not be asked: (?P<error>.*)", _l("Asterisk could not be asked: %(error)s")),
    (r"Asterisk refused (?P<command>\w+): (?P<message>.*)", _l("Asterisk refused %(command)s: %(message)s")),
    (r"Asterisk refused: (?P<message>.*)", _l("Asterisk refused: %(message)s")),
    (r"mode (?P<mode>'.*') is not one of (?P<modes>.*)", _l("mode %(mode)s is not one of %(modes)s")),
    (r"the agent's endpoint (?P<endpoint>'.*') is not an Asterisk channel",
     _l("the agent's endpoint %(endpoint)s is not an Asterisk channel")),
    (r"the supervisor's phone (?P<endpoint>'.*') is not an Asterisk channel: use PJSIP/<extension> or an extension",
     _l("the supervisor's phone %(endpoint)s is not an Asterisk channel: use PJSIP/<extension> or an extension")),
    (r"the agent's leg of this call is not known", _l("the agent's leg of this call is not known")),
    (r"the agent's leg of this call is not known: it cannot be coached",
     _l("the agent's leg of this call is not known: it cannot be coached")),
    (r"(?P<endpoint>'.*') cannot be rung through Twilio: use client:<name>, a \+number or a sip: address of an "
     r"allowed domain",
     _l("%(endpoint)s cannot be rung through Twilio: use client:<name>, a +number or a sip: address of an allowed "
        "domain")),
    (r"Twilio cannot ring (?P<agent>'.*') at their endpoint", _l("Twilio cannot ring %(agent)s at their endpoint")),
    (r"Twilio could not be asked for the call's conference: (?P<error>.*)",
     _l("Twilio could not be asked for the call's conference: %(error)s")),
    (r"the call is not in a conference \(not connected yet, or over\)",
     _l("the call is not in a conference (not connected yet, or over)")),
    (r"Twilio did not move the caller: the call has ended", _l("Twilio did not move the caller: the call has ended")),
    (r"Twilio did not (?P<step>[^:]+): (?P<error>.*)", _l("Twilio did not %(step)s: %(error)s")),
    # ... the steps Twilio may refuse (workers.twilio_control's _rest), inside the sentence above
    (r"hang up the caller", _l("hang up the caller")),
    (r"hold the caller", _l("hold the caller")),
    (r"take the caller back", _l("take the caller back")),
    (r"take the caller off hold", _l("take the caller off hold")),
    (r"hand the caller to the consulted party \(are they still on the line\?\)",
     _l("hand the caller to the consulted party (are they still on the line?)")),
    (r"let the agent go", _l("let the agent go")),
    (r"remove the agent from the call", _l("remove the agent from the call")),
    (r"ring the supervisor \(listen\)", _l("ring the supervisor (listen)")),
    (r"ring the supervisor \(whisper\)", _l("ring the supervisor (whisper)")),
    (r"ring the supervisor \(barge\)", _l("ring the supervisor (barge)")),
    (r"ring (?P<agent>\S+)", _l("ring %(agent)s")),
))
"""Refusals and problems worded by the rooms below the web (routing, complaints, the menu validator), which know
nothing of languages: the web translates them on their way to a person (each English pattern and its message are
the same sentence). The YAML parser's own messages are not among them."""


def refusal(text: str) -> str:
    """A refusal of a lower room in the request's language (unknown ones as they are)."""
    for pattern, message in REFUSALS:
        found = pattern.fullmatch(text)
        if found:  # codes in it (a status, an action) as words too
            values = found.groupdict()
            for name in ("status", "action"):
                if name in values:
                    values[name] = label(values[name])
            for name in ("reason", "step"):  # a problem (a channel's step) inside a problem
                if name in values:
                    values[name] = refusal(values[name])
            return str(message) % values
    return text


def label(code: str | None) -> str:
    """The code as the request's language writes it; an unknown code as it is."""
    if not code:
        return "–"
    found = LABELS.get(code)
    return str(found) if found is not None else code


def language() -> str:
    """The language of the request being served: zh-CN or en-US."""
    if current_user and current_user.is_authenticated and current_user.account.language in LANGUAGES:
        return str(current_user.account.language)
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return str(chosen)
    if request.headers.get("Authorization") and request.accept_languages:
        best = request.accept_languages.best_match(["zh-CN", "zh", "en-US", "en"])
        if best:
            return "zh-CN" if best.startswith("zh") else "en-US"
    return str(current_app.config["HOTLINE_UI_LANGUAGE"])


def init_i18n(app: Flask, default_language: str, timezone: str) -> None:
    app.config.update(HOTLINE_UI_LANGUAGE=default_language, HOTLINE_TIMEZONE=timezone,
                      BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS), BABEL_DEFAULT_TIMEZONE=timezone)
    Babel(app, locale_selector=lambda: LOCALES[language()])
    zone = ZoneInfo(timezone)
    app.jinja_env.filters["when"] = lambda value: when(value, zone)
    app.jinja_env.filters["label"] = label

    @app.context_processor
    def _languages() -> dict[str, Any]:
        current = language()
        return {"language": current, "timezone": timezone, "languages": LANGUAGES,
                "page_i18n": {"messages": js_messages(LOCALES[current]),
                              "labels": {code: str(text) for code, text in LABELS.items()}}}


def when_here(value: dt.datetime | str | float | None) -> str:
    """``when`` in the app's ``HOTLINE_TIMEZONE`` (during a request)."""
    return when(value, ZoneInfo(current_app.config["HOTLINE_TIMEZONE"]))


def when(value: dt.datetime | str | float | None, zone: ZoneInfo) -> str:
    """A time as every page writes it: ``2026-12-06 22:52:03`` in ``HOTLINE_TIMEZONE``; '–' for none. Accepts
    a datetime (naive ones are UTC, as SQLite returns them), an ISO 8601 text or Unix seconds."""
    if value is None or value == "":
        return "–"
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    elif isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(zone).strftime(TIME_FORMAT)


@functools.cache
def js_messages(locale: str) -> dict[str, str]:
    """The page scripts' messages in ``locale``: {English: translation}; empty for English."""
    catalogue = Translations.load(str(TRANSLATIONS), [locale], domain=JS_DOMAIN)
    found = getattr(catalogue, "_catalog", {})
    return {key: text for key, text in found.items() if isinstance(key, str) and key and text}


def create_language_switch(accounts: Accounts) -> Blueprint:
    """``POST /language``: the switch on every page (the login page too). Kept with the account when logged in,
    in this browser's session otherwise."""
    pages = Blueprint("language", __name__)

    @pages.post("/language")
    @public
    def switch() -> Response:
        chosen = request.form.get("language", "")
        if chosen in LANGUAGES:
            session["language"] = chosen
            if current_user.is_authenticated:
                accounts.set_language(current_user.account.id, chosen)
        return redirect(same_site_path(request.form.get("next", "")) or "/")  # type: ignore[return-value]

    return pages

