"""``POST /api/calls/<id>/recording`` ``{"paused": true|false}``: the agent on the call (or a supervisor, an
admin) pauses the conversation's recording for a sensitive moment (card details) and resumes it.

Every pause and resume is audited with its offsets into the audio (``recording_paused`` / ``recording_resumed``);
the offsets are kept with the recording so the player shows the gap. A pause nobody ends is ended by itself
after ``HOTLINE_RECORDING_PAUSE_MAX`` seconds (a timer in this process; actor ``system``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Protocol

from flask import Blueprint, Response, jsonify
from flask_babel import gettext as _

from admin.access import allow, current
from admin.api_models import RecordingPauseBody, RecordingState
from admin.audit import AuditLog
from admin.json_replies import json_body, json_error
from admin.openapi import ErrorBody, doc
from calls.conversations import AlreadySo, Conversation, Conversations, NotRecording
from routing.router import CallView, Router
from workers.recording_switch import SwitchRefused

log = logging.getLogger(__name__)


class RecordingSwitch(Protocol):
    def set_paused(self, conversation: Conversation, paused: bool) -> None: ...


class PauseDesk:
    """Pauses and resumes at the channel, then notes it (offsets) and audits it; arms the automatic resume."""

    def __init__(self, conversations: Conversations, switches: Mapping[str, RecordingSwitch], audit: AuditLog,
                 pause_max_s: float) -> None:
        self.conversations, self.switches, self.audit, self.pause_max_s = conversations, switches, audit, pause_max_s

    def set_paused(self, call_id: str, agent_id: str, paused: bool, actor: str, role: str,
                   answered: tuple[str, float] | None = None) -> Conversation:
        """The conversation of ``agent_id`` (the agent on the call now) on ``call_id``. ``answered``: the agent's
        channel and the pick-up time, as the router knows them (an Asterisk leg's conversation learns them here).
        Raises NotRecording, AlreadySo, SwitchRefused (nothing noted then)."""
        talks = self.conversations
        found = talks.get(call_id, agent_id)
        if found is None or not found.started:  # a Twilio agent still hearing the whisper: nothing records yet
            raise NotRecording(call_id)
        if not found.leg and answered is not None and answered[0]:
            talks.answered(call_id, *answered, agent_id=agent_id)
            found = talks.get(call_id, agent_id) or found
        if (found.paused_at is not None) == paused:
            raise AlreadySo("paused" if paused else "recording")
        switch = self.switches.get(found.channel)
        if switch is None:
            raise SwitchRefused(f"no way to reach the {found.channel} channel is configured")
        asked = self.conversations.clock()
        switch.set_paused(found, paused)
        if paused:
            now = talks.pause(call_id, agent_id, at=asked)
            self.audit.write(actor, role, "recording_paused", call_id, agent=now.agent_id, at_s=now.paused_at)
            self._resume_later(call_id, agent_id, now.paused_at)
        else:
            now = talks.resume(call_id, agent_id)
            start, end = now.pauses[-1]
            self.audit.write(actor, role, "recording_resumed", call_id, agent=now.agent_id, from_s=start, to_s=end,
                             automatic=False)
        return now

    def _resume_later(self, call_id: str, agent_id: str, paused_at: float | None) -> None:
        timer = threading.Timer(self.pause_max_s, self.resume_overdue, args=(call_id, agent_id, paused_at))
        timer.daemon = True
        timer.start()

    def resume_overdue(self, call_id: str, agent_id: str, paused_at: float | None) -> None:
        """The automatic resume: only the pause it was armed for, if the agent has not ended it."""
        found = self.conversations.get(call_id, agent_id)
        if found is None or found.paused_at is None or found.paused_at != paused_at:
            return
        switch = self.switches.get(found.channel)
        try:
            if switch is not None:
                switch.set_paused(found, False)
            now = self.conversations.resume(call_id, agent_id, paused_at)
        except (SwitchRefused, NotRecording, AlreadySo) as exc:  # the call ended meanwhile: nothing to resume
            log.info("call %s: recording not resumed by itself (%s)", call_id, exc)
            return
        start, end = now.pauses[-1]
        self.audit.write("system", "system", "recording_resumed", call_id, agent=now.agent_id, from_s=start,
                         to_s=end, automatic=True)


def _answered(view: CallView) -> tuple[str, float] | None:
    leg, at = view.fields.get("answered_leg", ""), view.fields.get("answered_at", "")
    return (leg, float(at)) if leg and at else None


def create_recording_pause_api(router: Router, desk: PauseDesk) -> Blueprint:
    api = Blueprint("recording_pause", __name__, url_prefix="/api")

    @api.post("/calls/<call_id>/recording")
    @allow("admin", "supervisor", "agent")
    @doc({200: RecordingState, 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody},
         json=RecordingPauseBody, tags=("queues",))
    def pause_recording(call_id: str) -> tuple[Response, int]:
        """Pause (``{"paused": true}``) or resume the recording of a connected call's conversation."""
        paused = json_body().get("paused")
        if not isinstance(paused, bool):
            return json_error(400, _("paused must be true or false"))
        who = current()
        view = router.call(call_id)
        if view is None or view.state != "busy" or not view.agent:
            return json_error(404, _("call %(call_id)s is not connected to an agent", call_id=call_id[:64]))
        if who.role == "agent" and who.agent_id != view.agent:
            return json_error(403, _("only the agent on the call can pause its recording"))
        try:
            now = desk.set_paused(call_id, view.agent, paused, who.name, who.role, _answered(view))
        except NotRecording:
            return json_error(409, _("this call is not being recorded"))
        except AlreadySo:
            return json_error(409, _("the recording is already paused") if paused
                              else _("the recording is not paused"))
        except SwitchRefused as exc:
            return json_error(409, str(exc))
        return jsonify({"call_id": call_id, "paused": now.paused_at is not None,
                        "pauses": [list(p) for p in now.pauses], "paused_at": now.paused_at}), 200

    return api
