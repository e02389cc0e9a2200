"""The day's database: a PostgreSQL schema of its own (the database named may hold anything, the checks
see only the day's rows), filled with an earlier day when asked, as a production database is."""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from calls.menus import DEFAULT_MENU_FILE, SURVEY_MENU_FILE
from ivr.loader import parse_menu
from ivr.masking import mask_phone, number_key
from store.db import connect
from store.models import CallRecord, MenuVersion, Recording, ReturnVisit, VisitAttempt, WorkOrder

FILL_DAYS_AGO = 3
"""The earlier day lies before the report period the checks read (yesterday and today)."""
MENU_EDITS = 3
"""Versions of each menu the earlier days published: calls start on the last one."""


@contextmanager
def own_schema(url: str, keep: bool = False) -> Iterator[str]:
    """``url`` with its search path set to a new schema, dropped afterwards unless ``keep``."""
    name = f"hotline_day_{secrets.token_hex(4)}"
    admin = create_engine(url)
    with admin.begin() as db:
        db.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield make_url(url).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False)
    finally:
        if not keep:
            with admin.begin() as db:
                db.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def fill_with_an_earlier_day(url: str, calls: int, seed: int) -> dict[str, int]:
    """What a hotline in service already holds: its menus published (so a new Redis beside it knows no live
    version), ``calls`` call records, a tenth of them complaints with work orders resolved, return visits
    made and recordings kept, all from ``FILL_DAYS_AGO`` days ago. Returns the row counts."""
    rng = random.Random(seed)
    sql = connect(url)
    day = dt.datetime.now(dt.UTC).replace(hour=1, minute=0, second=0, microsecond=0) - dt.timedelta(days=FILL_DAYS_AGO)
    nonce = secrets.token_hex(4)
    Rows = list[dict[str, Any]]
    menus: Rows = []
    records: Rows = []
    orders: Rows = []
    visits: Rows = []
    attempts: Rows = []
    recordings: Rows = []
    for path in (DEFAULT_MENU_FILE, SURVEY_MENU_FILE):
        source = path.read_text(encoding="utf-8")
        name = parse_menu(source).name
        menus += [{"menu": name, "version": v, "source": source, "published_by": "admin",
                   "published_at": day - dt.timedelta(days=MENU_EDITS - v)} for v in range(1, MENU_EDITS + 1)]
    for i in range(calls):
        caller = f"139{rng.randrange(10**8):08d}"
        started = day + dt.timedelta(seconds=i * 50_000 / max(calls, 1))
        call_id = f"earlier-{nonce}-{i}"
        complaint = i % 10 == 0
        outcome = "self_served" if complaint else rng.choice(["self_served", "routed", "routed", "abandoned"])
        records.append({
            "call_id": call_id, "channel": rng.choice(["twilio", "asterisk"]), "caller_masked": mask_phone(caller),
            "caller_key": number_key(caller), "called": "95555", "started_at": started,
            "ended_at": started + dt.timedelta(seconds=rng.uniform(20, 400)), "menu_version": MENU_EDITS,
            "ivr_path": [{"node": "main", "input": "key 3" if complaint else "key 0", "at": f"{started:%FT%TZ}"}],
            "intent": "complaint" if complaint else "agent", "outcome": outcome, "ivr_outcome": outcome,
            "end_status": "completed", "language": "zh-CN", "queue": "" if complaint else "general",
        })
        if complaint:
            number = f"{started:%y%m%d}0{i:06d}"
            orders.append({"number": number, "call_id": call_id, "category": rng.choice(["fees", "service", "card"]),
                           "caller_masked": mask_phone(caller), "callback_number": caller, "language": "zh-CN",
                           "channel": "twilio", "recording_ref": f"RE{nonce}{i:024d}", "status": "closed",
                           "created_at": started, "resolved_at": started + dt.timedelta(hours=2)})
            recordings.append({"ref": f"RE{nonce}{i:024d}", "call_id": call_id, "work_order": number,
                               "path": f"complaints/earlier/{nonce}-{i}.wav", "duration_s": 21.0,
                               "sha256": "0" * 64, "size_bytes": 336_044, "created_at": started})
    with sql.begin() as db:
        db.execute(insert(MenuVersion), menus)
        db.execute(insert(CallRecord), records)
        if orders:
            db.execute(insert(WorkOrder), orders)
            db.execute(insert(Recording), recordings)
            ids = dict(db.execute(select(WorkOrder.number, WorkOrder.id)).all())
            for order in orders:
                visits.append({"work_order_id": ids[order["number"]], "number": order["callback_number"],
                               "number_key": number_key(order["callback_number"]), "channel": "twilio",
                               "language": "zh-CN", "status": "completed", "attempts": 1, "rating": 1,
                               "due_at": order["resolved_at"] + dt.timedelta(hours=1),
                               "finished_at": order["resolved_at"] + dt.timedelta(hours=1, minutes=2)})
            db.execute(insert(ReturnVisit), visits)
            for visit_id, key, due in db.execute(select(ReturnVisit.id, ReturnVisit.number_key, ReturnVisit.due_at)):
                attempts.append({"visit_id": visit_id, "attempt": 1, "number_key": key, "placed_at": due,
                                 "disposition": "answered", "finished_at": due + dt.timedelta(minutes=2)})
            db.execute(insert(VisitAttempt), attempts)
    sql.kw["bind"].dispose()
    return {"menu_versions": len(menus), "call_records": len(records), "work_orders": len(orders),
            "return_visits": len(visits), "recordings": len(recordings)}


def describe(counts: dict[str, int]) -> str:
    return json.dumps(counts).strip("{}").replace('"', "")
