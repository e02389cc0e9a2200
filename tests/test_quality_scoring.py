"""quality/scoring.py by hand: each example writes out its arithmetic; and the form check's refusals."""

from __future__ import annotations

import pytest

from quality.forms import EXAMPLE, FormInvalid, load_text, parse_form
from quality.scoring import AnswersInvalid, score

# opening:  greeting  yes/no  weight 1
#           verified  yes/no  weight 3  automatic fail
# handling: courtesy  1-5     weight 2
#           resolution yes/no weight 2  N/A allowed
FORM = parse_form(load_text(EXAMPLE))


def test_yes_no_and_scale_points_with_weights() -> None:
    result = score(FORM, {"greeting": "yes", "verified": "yes", "courtesy": 4, "resolution": "no"})
    # opening  = (1*1 + 3*1) / (1 + 3)                      = 4/4   = 100
    # handling = (2*(4-1)/4 + 2*0) / (2 + 2) = (1.5 + 0)/4  = 0.375 = 37.5
    # total    = (1 + 3 + 1.5 + 0) / (1 + 3 + 2 + 2)         = 5.5/8 = 68.75
    assert result.sections == {"opening": 100.0, "handling": 37.5}
    assert result.total == 68.75 and not result.auto_failed


def test_not_applicable_leaves_numerator_and_denominator() -> None:
    result = score(FORM, {"greeting": "no", "verified": "yes", "courtesy": 3, "resolution": "na"})
    # opening  = (1*0 + 3*1) / (1 + 3)          = 3/4 = 75
    # handling = (2*(3-1)/4) / 2  (resolution out) = 1/2 = 50
    # total    = (0 + 3 + 1) / (1 + 3 + 2)       = 4/6 = 66.666.. -> 66.67
    assert result.sections == {"opening": 75.0, "handling": 50.0}
    assert result.total == 66.67


def test_an_automatic_fail_answered_no_makes_the_total_zero_and_keeps_the_sections() -> None:
    result = score(FORM, {"greeting": "yes", "verified": "no", "courtesy": 5, "resolution": "yes"})
    # opening  = (1*1 + 3*0) / 4 = 25;  handling = (2*1 + 2*1) / 4 = 100
    # total without the rule = (1 + 0 + 2 + 2) / 8 = 62.5, but "verified" is an automatic fail answered no -> 0
    assert result.sections == {"opening": 25.0, "handling": 100.0}
    assert result.total == 0.0 and result.auto_failed and result.failed_questions == ("verified",)


def test_the_scale_ends_and_a_section_of_only_na() -> None:
    form = parse_form({"title": "t", "sections": [
        {"id": "a", "title": "A", "questions": [{"id": "s", "text": "scale", "type": "scale", "weight": 1}]},
        {"id": "b", "title": "B", "questions": [{"id": "n", "text": "maybe", "type": "yes_no", "na": True}]}]})
    assert score(form, {"s": 1, "n": "na"}).sections == {"a": 0.0, "b": None}  # (1-1)/4 = 0; B: nothing answered
    assert score(form, {"s": 5, "n": "na"}).total == 100.0  # (5-1)/4 = 1 -> 100 (B leaves the total)
    everything_na = parse_form({"title": "t", "sections": [
        {"id": "b", "title": "B", "questions": [{"id": "n", "text": "maybe", "type": "yes_no", "na": True}]}]})
    assert score(everything_na, {"n": "na"}).total is None


def test_answers_the_form_does_not_take_are_refused_naming_the_question() -> None:
    with pytest.raises(AnswersInvalid) as refused:
        score(FORM, {"greeting": "na", "verified": "maybe", "courtesy": 6, "extra": "yes"})
    assert refused.value.problems == [
        "question resolution: not answered", "question extra: not on this form",
        "question greeting: N/A is not allowed", "question verified: answer yes or no, not 'maybe'",
        "question courtesy: answer 1-5, not 6"]


def test_the_form_check_names_the_question_and_the_reason() -> None:
    with pytest.raises(FormInvalid) as refused:
        parse_form({"title": "t", "sections": [{"id": "a", "title": "A", "questions": [
            {"id": "q1", "text": "x", "type": "scale", "auto_fail": True},
            {"id": "q2", "text": "y", "weight": 0},
            {"id": "q1", "text": "z"},
            {"id": "q3", "text": "w", "type": "stars"}]}]})
    assert refused.value.problems == [
        "question q1: only a yes_no question can be an automatic fail",
        "question q2: weight must be a number above 0, not 0",
        "question q1: id is used twice",
        "question q3: type must be yes_no or scale, not 'stars'"]
    with pytest.raises(FormInvalid, match="sections: at least one section"):
        parse_form({"title": "t"})
