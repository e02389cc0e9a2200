"""The quality pages as their users meet them: a reviewer scores from their queue and plays only those calls, never
their own; an agent sees only their own evaluations and answers them; calibration is blind until you submit;
forms are refused with the question and the reason; the scorecard shows the evaluation."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from hotline.app import Hotline
from quality.forms import EXAMPLE
from tests.quality_floor import ANSWERS, AUDIO, floor, queue_item, recorded_call
from tests.web import SessionClient

AT = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def items(hotline: Hotline) -> dict[str, int]:
    return floor(hotline, AT)


def form_post(who: SessionClient, path: str, data: dict[str, Any]) -> Any:
    return who.client.post(path, data={"csrf_token": who.csrf, **data})


def test_a_qa_reviewer_scores_a_call_of_their_queue_and_plays_only_those(app: Any, hotline: Hotline,
                                                                        items: dict[str, int]) -> None:
    quinn = SessionClient(app.test_client(), "quinn")
    queue = quinn("GET", "/admin/quality").get_data(as_text=True)
    assert 'data-call="CA-ann"' in queue and 'data-call="CA-bob"' not in queue
    page = quinn("GET", f"/admin/quality/items/{items['ann']}").get_data(as_text=True)
    assert 'id="player"' in page and "node=main input=0" in page  # the recording, the IVR path on the timeline
    audio = page.split('id="player" controls preload="metadata" src="')[1].split('"')[0]
    assert quinn("GET", audio).data == AUDIO
    assert hotline.audit.entries(action="recording_played")[0]["actor"] == "quinn"
    # the recording of a call in nobody's queue: no link, no audio
    assert quinn("POST", "/api/recordings/RE-CA-bob/link").status_code == 403
    assert quinn("POST", "/api/recordings/RE-CA-ann/link").status_code == 200
    # someone else's item is not found
    assert quinn("GET", f"/admin/quality/items/{items['sue']}").status_code == 404

    done = form_post(quinn, f"/admin/quality/items/{items['ann']}",
                     {"form": "standard", **ANSWERS, "comment_at": ["0:42", ""], "comment_text": ["no name", ""]})
    assert done.status_code == 303
    [evaluation] = hotline.evaluations.of_agent("ann")
    assert (evaluation["total"], evaluation["form"], evaluation["form_version"]) == (68.75, "standard", 1)
    assert evaluation["comments"] == [{"at_s": 42.0, "text": "no name"}]
    assert 'data-call="CA-ann"' not in quinn("GET", "/admin/quality").get_data(as_text=True)  # scored: out of the queue
    # a second submit of the same item is refused
    assert form_post(quinn, f"/admin/quality/items/{items['ann']}", {"form": "standard", **ANSWERS}).status_code == 400


def test_a_reviewer_cannot_score_their_own_call(app: Any, hotline: Hotline, items: dict[str, int]) -> None:
    sue = SessionClient(app.test_client(), "sue")
    page = sue("GET", f"/admin/quality/items/{items['sue']}").get_data(as_text=True)
    assert 'id="own-call"' in page
    refused = form_post(sue, f"/admin/quality/items/{items['sue']}", {"form": "standard", **ANSWERS})
    assert refused.status_code == 403 and "their own calls" in refused.get_data(as_text=True)
    assert hotline.evaluations.of_agent("sue") == []


def test_an_incomplete_answer_sheet_is_refused_naming_the_question(app: Any, hotline: Hotline,
                                                                  items: dict[str, int]) -> None:
    quinn = SessionClient(app.test_client(), "quinn")
    refused = form_post(quinn, f"/admin/quality/items/{items['ann']}",
                        {"form": "standard", **{**ANSWERS, "q_greeting": "na"}})
    assert refused.status_code == 400 and "question greeting: N/A is not allowed" in refused.get_data(as_text=True)


def test_an_agent_sees_only_their_own_evaluations_and_a_dispute_goes_back_to_the_reviewer(
        app: Any, hotline: Hotline, items: dict[str, int]) -> None:
    quinn = SessionClient(app.test_client(), "quinn")
    form_post(quinn, f"/admin/quality/items/{items['ann']}", {"form": "standard", **ANSWERS})
    [evaluation] = hotline.evaluations.of_agent("ann")
    bob, ann = SessionClient(app.test_client(), "bob"), SessionClient(app.test_client(), "ann")
    assert "CA-ann" not in bob("GET", "/agent/evaluations").get_data(as_text=True)
    assert form_post(bob, f"/agent/evaluations/{evaluation['id']}", {"action": "acknowledge"}).status_code == 404
    assert "CA-ann" in ann("GET", "/agent/evaluations").get_data(as_text=True)
    assert form_post(ann, f"/agent/evaluations/{evaluation['id']}", {"action": "dispute"}).status_code == 400
    disputed = form_post(ann, f"/agent/evaluations/{evaluation['id']}",
                         {"action": "dispute", "note": "the caller refused to give a name"})
    assert disputed.status_code == 303
    queue = quinn("GET", "/admin/quality").get_data(as_text=True)
    assert 'data-call="CA-ann"' in queue and "disputed" in queue
    page = quinn("GET", f"/admin/quality/items/{items['ann']}").get_data(as_text=True)
    assert "the caller refused to give a name" in page
    again = form_post(quinn, f"/admin/quality/items/{items['ann']}",
                      {"form": "standard", **{**ANSWERS, "q_resolution": "yes"}})
    assert again.status_code == 303
    [rescored] = hotline.evaluations.of_agent("ann")
    assert (rescored["id"], rescored["status"], rescored["total"]) == (evaluation["id"], "rescored", 93.75)
    assert form_post(ann, f"/agent/evaluations/{evaluation['id']}", {"action": "acknowledge"}).status_code == 303
    assert hotline.evaluations.of_agent("ann")[0]["status"] == "acknowledged"


def test_calibration_hides_the_others_answers_until_you_submit(app: Any, hotline: Hotline,
                                                              items: dict[str, int]) -> None:
    from tests.web import add_user
    add_user(hotline, "quentin", "qa")
    boss = SessionClient(app.test_client(), "boss")
    assert form_post(boss, "/admin/quality/calibrations",
                     {"call_id": "CA-bob", "reviewers": "quinn, quentin"}).status_code == 303
    quinn, quentin = SessionClient(app.test_client(), "quinn"), SessionClient(app.test_client(), "quentin")
    mine = hotline.evaluations.queue("quinn")
    item = next(i for i in mine if i["call_id"] == "CA-bob")
    other = next(i for i in hotline.evaluations.queue("quentin") if i["call_id"] == "CA-bob")
    assert quinn("GET", "/admin/quality/calibration/CA-bob").status_code == 403  # before submitting: hidden
    form_post(quentin, f"/admin/quality/items/{other['id']}", {"form": "standard", **ANSWERS})
    assert quinn("GET", "/admin/quality/calibration/CA-bob").status_code == 403  # still hidden from quinn
    form_post(quinn, f"/admin/quality/items/{item['id']}",
              {"form": "standard", **{**ANSWERS, "q_courtesy": "2"}})
    side = quinn("GET", "/admin/quality/calibration/CA-bob").get_data(as_text=True)
    assert "quentin" in side and "quinn" in side
    row = side.split('data-question="courtesy"')[1].split("</tr>")[0]
    assert '<td class="spread">0.5</td>' in row  # 4 -> 0.75, 2 -> 0.25: spread 0.5
    # calibrations are not the agent's evaluations
    assert hotline.evaluations.of_agent("bob") == []
    # the agent's own supervisor cannot be put in a calibration of their call
    refused = form_post(boss, "/admin/quality/calibrations", {"call_id": "CA-sue", "reviewers": "sue, quinn"})
    assert refused.status_code == 400


def test_forms_are_versioned_and_refused_with_the_question_and_the_reason(app: Any, hotline: Hotline,
                                                                         items: dict[str, int]) -> None:
    boss = SessionClient(app.test_client(), "boss")
    bad = EXAMPLE.replace("type: scale, weight: 2", "type: scale, weight: 2, auto_fail: true")
    refused = form_post(boss, "/admin/quality/forms", {"name": "standard", "source": bad})
    assert refused.status_code == 400
    assert "question courtesy: only a yes_no question can be an automatic fail" in refused.get_data(as_text=True)
    better = EXAMPLE.replace("weight: 3", "weight: 4")
    assert form_post(boss, "/admin/quality/forms", {"name": "standard", "source": better}).status_code == 303
    assert hotline.forms.live("standard").version == 2
    # an evaluation scored with version 1 keeps it
    quinn = SessionClient(app.test_client(), "quinn")
    form_post(quinn, f"/admin/quality/items/{items['ann']}", {"form": "standard", **ANSWERS})
    assert hotline.evaluations.of_agent("ann")[0]["form_version"] == 2
    assert hotline.forms.version("standard", 1).form.question("verified").weight == 3  # type: ignore[union-attr]


def test_the_scorecard_shows_the_evaluation_beside_the_calls(app: Any, hotline: Hotline,
                                                            items: dict[str, int]) -> None:
    quinn = SessionClient(app.test_client(), "quinn")
    form_post(quinn, f"/admin/quality/items/{items['ann']}", {"form": "standard", **ANSWERS})
    card = quinn("GET", "/api/quality/scorecards").json
    ann = next(r for r in card["rows"] if r["key"] == "ann")
    assert (ann["evaluations"], ann["average"], ann["auto_fail_rate"], ann["calls_handled"], ann["aht_s"]) == (
        1, 68.75, 0.0, 1, 120.0)
    assert ann["sections"] == {"handling": 37.5, "opening": 100.0}
    page = quinn("GET", "/admin/quality/scorecards").get_data(as_text=True)
    assert 'data-key="ann"' in page and "68.75" in page
    csv = quinn("GET", "/api/quality/scorecards.csv").get_data(as_text=True)
    assert csv.splitlines()[0].startswith("agent,evaluations,average,auto_fail_rate")
    assert any(line.startswith("ann,1,68.75,0,") for line in csv.splitlines())


def test_sampling_runs_from_the_page_and_the_api(app: Any, hotline: Hotline, items: dict[str, int]) -> None:
    sue = SessionClient(app.test_client(), "sue")
    ran = sue("POST", "/api/quality/sampling", {})
    assert ran.status_code == 200 and ran.json["picked"] >= 1
    assert sue("POST", "/api/quality/sampling", {"week": "2026-W99"}).status_code == 400


def test_the_timeline_shows_the_routers_events_of_the_call(app: Any, hotline: Hotline,
                                                           items: dict[str, int]) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    recorded_call(hotline, "CA-now", "ann", now - dt.timedelta(seconds=25), talk_s=30.0)  # queued -5 s, answered +5 s
    item = queue_item(hotline, "CA-now", "ann", "quinn", now)
    hotline.events.emit("call_offered", call_id="CA-now", agent="bob", skill="general")
    hotline.events.emit("call_offer_failed", call_id="CA-now", agent="bob", reason="offer_timeout")
    hotline.events.emit("call_offered", call_id="CA-other", agent="ann", skill="general")  # another call
    page = SessionClient(app.test_client(), "quinn")("GET", f"/admin/quality/items/{item}").get_data(as_text=True)
    timeline = page.split('id="timeline"')[1].split("</table>")[0]
    kinds = re.findall(r'data-kind="([a-z_]+)"', timeline)
    assert kinds == ["started", "ivr", "ivr", "queued", "call_offered", "call_offer_failed", "answered", "ended"]
    assert "agent=bob skill=general" in timeline and "agent=bob reason=offer_timeout" in timeline
    assert "offer declined or timed out" in timeline
