"""Complaint intake: a recorded complaint becomes a work order in the SQL store."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from hotline.store.models import Recording, WorkOrder
from ivr.masking import mask_phone
from ivr.services import COMPLAINT_CATEGORIES, CallInfo


class WorkOrderIntake:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    def open_work_order(self, call: CallInfo, category: str, recording_ref: str) -> str:
        """One work order per call: a replayed step gets the number already given."""
        if category not in COMPLAINT_CATEGORIES:
            category = "other"
        try:
            with self._sessions.begin() as db:
                order = WorkOrder(
                    number="", call_id=call.call_id, category=category,
                    caller_masked=mask_phone(call.caller), callback_number=call.caller,
                    language=call.language, recording_ref=recording_ref, status="open",
                )
                db.add(order)
                db.flush()
                order.number = f"{dt.datetime.now(dt.UTC):%y%m%d}{order.id:06d}"
                # Twilio's recording callback may have come first: link the stored audio now.
                db.execute(update(Recording).where(Recording.ref == recording_ref).values(work_order=order.number))
                return order.number
        except IntegrityError:
            with self._sessions() as db:
                number = db.scalar(select(WorkOrder.number).where(WorkOrder.call_id == call.call_id))
            if number is None:
                raise
            return number

