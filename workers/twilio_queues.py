"""Deleting the per-caller Twilio queues once their calls end.

Each Twilio caller waits in a queue of their own (``hotline-<CallSid>``) until their call is moved into their agent's
conference. ``<Enqueue>`` creates a queue on demand and Twilio keeps it: "queues persist; delete inactive ones"
(https://www.twilio.com/docs/voice/api/queue-resource#delete-a-queue-resource). Each is deleted when its call
ends, and a sweep deletes the stragglers (a job lost, a delete that failed).
"""

from __future__ import annotations

import datetime as dt
import logging

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

log = logging.getLogger(__name__)

QUEUE_PREFIX = "hotline-CA"
"""The per-caller queues (``webhooks.hold.TwilioHold.queue_name``); other queues of the account are not ours."""
IDLE_BEFORE_SWEEP = dt.timedelta(hours=1)


class TwilioQueues:
    def __init__(self, account_sid: str, auth_token: str, api_base: str, timeout_s: float = 15.0) -> None:
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout_s))
        self.client.api.base_url = api_base.rstrip("/")

    def delete(self, queue_sid: str) -> bool:
        """Delete one queue; False when Twilio refused (it still holds a caller: the sweep tries later)."""
        try:
            self.client.queues(queue_sid).delete()
        except TwilioRestException as exc:
            if exc.status == 404:
                return True  # deleted already
            log.info("Twilio queue %s not deleted (HTTP %s)", queue_sid, exc.status)
            return False
        return True

    def sweep(self, now: dt.datetime | None = None) -> int:
        """Delete every per-caller queue that is empty and idle for an hour; returns how many."""
        cutoff = (now or dt.datetime.now(dt.UTC)) - IDLE_BEFORE_SWEEP
        deleted = 0
        try:
            for queue in self.client.queues.stream():
                if (queue.friendly_name or "").startswith(QUEUE_PREFIX) and not queue.current_size and (
                        queue.date_updated is None or queue.date_updated < cutoff) and queue.sid:
                    deleted += self.delete(queue.sid)
        except (TwilioException, OSError) as exc:
            log.warning("Twilio queue sweep stopped: %s", type(exc).__name__)
        return deleted
