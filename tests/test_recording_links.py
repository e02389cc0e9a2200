"""Recordings are served only through short-lived links signed for the person who asked, and every play is audited."""

from __future__ import annotations

import time
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from admin.recordings.web import SALT
from complaints.recording_links import record_recording
from hotline.app import Hotline
from store.models import Recording
from tests.web import SessionClient, add_user

AUDIO = b"RIFF" + bytes(range(256)) * 40


@pytest.fixture
def stored(hotline: Hotline) -> str:
    meta = hotline.recordings.save("RE0001", "CA0001", AUDIO, 3.5, work_order="261125000001")
    record_recording(hotline.sql, meta)
    return meta.ref


def session(app: Any, hotline: Hotline, name: str, role: str) -> SessionClient:
    add_user(hotline, name, role)
    return SessionClient(app.test_client(), name)


def test_supervisor_plays_the_recording_through_a_link_issued_to_them(app: Any, hotline: Hotline, stored: str) -> None:
    sue = session(app, hotline, "sue", "supervisor")
    reply = sue("POST", f"/api/recordings/{stored}/link")
    assert reply.status_code == 200
    link = reply.json
    assert link["url"].startswith("/recordings/play/") and link["work_order"] == "261125000001"

    played = sue("GET", link["url"])
    assert played.status_code == 200 and played.data == AUDIO
    assert played.headers["Cache-Control"] == "private, no-store"
    assert played.headers["Content-Type"].startswith("audio/")
    part = sue("GET", link["url"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == AUDIO[100:200]

    entries = hotline.audit.entries(action="recording_played")
    assert len(entries) == 1  # the range request of the same play is not a second play
    assert (entries[0]["actor"], entries[0]["target"]) == ("sue", stored)
    assert entries[0]["detail"]["work_order"] == "261125000001"


def test_an_admin_may_play_too_and_the_file_is_never_static(app: Any, hotline: Hotline, stored: str) -> None:
    ana = session(app, hotline, "ana", "admin")
    assert ana("GET", f"/static/../recordings/{stored}.wav").status_code == 404
    url = ana("POST", f"/api/recordings/{stored}/link").json["url"]
    assert ana("GET", url).data == AUDIO


def test_links_of_someone_else_expired_or_altered_are_refused_with_a_reason(
    app: Any, hotline: Hotline, stored: str,
) -> None:
    sue, sam = session(app, hotline, "sue", "supervisor"), session(app, hotline, "sam", "supervisor")
    url = sue("POST", f"/api/recordings/{stored}/link").json["url"]

    other = sam("GET", url)
    assert other.status_code == 403 and "issued to someone else" in other.get_data(as_text=True)

    altered = sue("GET", url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb"))
    assert altered.status_code == 403 and "not valid" in altered.get_data(as_text=True)

    old = _token_from_the_past(app.secret_key, {"ref": stored, "user": "sue"},
                               hotline.settings.recording_link_s + 1)
    expired = sue("GET", f"/recordings/play/{old}")
    assert expired.status_code == 403 and "expired" in expired.get_data(as_text=True)
    assert hotline.audit.entries(action="recording_played") == []


def test_agents_get_no_link_and_no_audio(app: Any, hotline: Hotline, stored: str) -> None:
    sue = session(app, hotline, "sue", "supervisor")
    url = sue("POST", f"/api/recordings/{stored}/link").json["url"]
    amy = session(app, hotline, "amy", "agent")
    assert amy("POST", f"/api/recordings/{stored}/link").status_code == 403
    assert amy("GET", url).status_code == 403
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_unknown_or_deleted_recordings_are_404(app: Any, hotline: Hotline, stored: str) -> None:
    sue = session(app, hotline, "sue", "supervisor")
    assert sue("POST", "/api/recordings/RE404/link").status_code == 404
    url = sue("POST", f"/api/recordings/{stored}/link").json["url"]
    for wav in hotline.settings.recordings_dir.rglob("*.wav"):
        wav.unlink()
    assert sue("GET", url).status_code == 404


def _token_from_the_past(secret: str, claim: dict[str, str], age_s: int) -> str:
    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_s

    return URLSafeTimedSerializer(secret, salt=SALT, signer=Earlier).dumps(claim)


def test_a_recording_indexed_again_is_harmless_and_a_name_taken_by_other_audio_keeps_the_first(
        hotline: Hotline, stored: str, caplog: pytest.LogCaptureFixture) -> None:
    again = hotline.recordings.save(stored, "CA0001", AUDIO, 3.5, work_order="261125000001")
    record_recording(hotline.sql, again)  # a replayed write: nothing to say
    other = hotline.recordings.save(stored, "CA0002", AUDIO[::-1], 2.0)  # call ids repeating across servers
    record_recording(hotline.sql, other)  # the caller's call must not fail over it
    assert "another recording has that name" in caplog.text and caplog.text.count("another recording") == 1
    with hotline.sql() as db:
        assert [(r.call_id, r.sha256) for r in db.scalars(select(Recording))] == [("CA0001", again.sha256)]


@pytest.mark.parametrize("first_range", [
    None, "bytes=0-", "bytes=00-", "BYTES=0-", "bytes=1-", "bytes=100-199", "bytes=-500", "bytes = 0-",
    "bytes=0-0,100-", "bytes=abc", "items=0-",  # werkzeug answers these 416: refused, but audited all the same
])
def test_every_link_played_is_audited_once_whatever_the_ranges_asked(
    app: Any, hotline: Hotline, stored: str, first_range: str | None,
) -> None:
    sue = session(app, hotline, "sue", "supervisor")
    url = sue("POST", f"/api/recordings/{stored}/link").json["url"]

    first = sue("GET", url, headers={"Range": first_range} if first_range else {})
    assert first.status_code in (200, 206, 416)
    assert first.data in AUDIO if first.status_code != 416 else AUDIO[:16] not in first.data
    for seek in ("bytes=0-", "bytes=2000-", "bytes=-10", None):  # the player seeking: no flood of entries
        assert sue("GET", url, headers={"Range": seek} if seek else {}).status_code in (200, 206)

    [entry] = hotline.audit.entries(action="recording_played")
    assert (entry["actor"], entry["role"], entry["target"]) == ("sue", "supervisor", stored)
    assert entry["detail"]["work_order"] == "261125000001" and entry["detail"]["call_id"] == "CA0001"


@pytest.mark.parametrize("database_url", ["sqlite", "private_postgres"], indirect=True)  # dates and JSON differ
def test_each_link_and_each_person_gets_an_entry(app: Any, hotline: Hotline, stored: str) -> None:
    sue, sam = session(app, hotline, "sue", "supervisor"), session(app, hotline, "sam", "supervisor")
    sue_url = sue("POST", f"/api/recordings/{stored}/link").json["url"]
    sam_url = sam("POST", f"/api/recordings/{stored}/link").json["url"]
    earlier = _token_from_the_past(app.secret_key, {"ref": stored, "user": "sue"}, 30)  # another link of sue's
    assert sue("GET", sue_url, headers={"Range": "bytes=1-"}).status_code == 206
    assert sam("GET", sam_url, headers={"Range": "bytes=1000-"}).status_code == 206
    assert sue("GET", f"/recordings/play/{earlier}", headers={"Range": "bytes=5-9"}).status_code == 206
    assert sue("GET", sue_url).status_code == 200
    entries = hotline.audit.entries(action="recording_played")
    assert sorted(e["actor"] for e in entries) == ["sam", "sue", "sue"]
    assert len({e["detail"]["link"] for e in entries}) == 3


def test_a_replaced_recording_is_refused_logged_and_audited_never_played(
    app: Any, hotline: Hotline, stored: str, caplog: pytest.LogCaptureFixture,
) -> None:
    sue = session(app, hotline, "sue", "supervisor")
    url = sue("POST", f"/api/recordings/{stored}/link").json["url"]
    [wav] = hotline.settings.recordings_dir.rglob("*.wav")
    forged = bytes(reversed(AUDIO))  # same size, other words
    wav.write_bytes(forged)

    for asked in (None, "bytes=0-", "bytes=100-199"):
        refused = sue("GET", url, headers={"Range": asked} if asked else {})
        assert refused.status_code == 409
        assert "checksum" in refused.get_data(as_text=True)
        assert forged[:200] not in refused.data and forged[100:200] not in refused.data
    assert hotline.audit.entries(action="recording_played") == []
    [entry] = hotline.audit.entries(action="recording_refused")[-1:]
    assert (entry["actor"], entry["target"]) == ("sue", stored)
    assert f"recording {stored}" in caplog.text and "checksum" in caplog.text

    wav.write_bytes(AUDIO)  # put back as stored: it plays again
    assert sue("GET", url).data == AUDIO
