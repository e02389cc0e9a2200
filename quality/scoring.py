"""The score of an evaluation: every rule in one place.

For question q with weight w_q and the reviewer's answer a_q, the points are

    p_q = 1             if a_q = yes
    p_q = 0             if a_q = no
    p_q = (v - 1) / 4   if the question is a 1-5 scale and a_q = v   (1 -> 0, 3 -> 0.5, 5 -> 1)
    a_q = N/A           the question leaves both the numerator and the denominator

and over the answered (not N/A) questions A of a section S, or of the whole form F,

    section score(S) = 100 * sum_{q in A ∩ S} w_q p_q / sum_{q in A ∩ S} w_q
    total            = 100 * sum_{q in A}     w_q p_q / sum_{q in A}     w_q

(None where no question was answered). An automatic-fail question answered "no" makes the total 0, whatever the
rest; the section scores are still shown as computed, so the agent sees what else went well. The form's check
(``quality.forms``) allows automatic fail only on yes/no questions and N/A only where the form says so; this
module refuses an answer sheet that breaks either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quality.forms import Form, Question

NA = "na"


class AnswersInvalid(ValueError):
    """The answers cannot be scored with this form; ``problems`` names each question and the reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Score:
    total: float | None
    """0-100, rounded to 2 places; None when every question was N/A."""
    sections: dict[str, float | None]
    auto_failed: bool
    failed_questions: tuple[str, ...]
    """The automatic-fail questions answered "no"."""


def points(question: Question, answer: Any) -> float | None:
    """The points of one answer (0..1), None for N/A; AnswersInvalid for an answer the question does not take."""
    if answer == NA:
        if not question.na:
            raise AnswersInvalid([f"question {question.id}: N/A is not allowed"])
        return None
    if question.kind == "yes_no":
        if answer == "yes":
            return 1.0
        if answer == "no":
            return 0.0
        raise AnswersInvalid([f"question {question.id}: answer yes or no, not {answer!r}"])
    value = _scale(answer)
    if value is None:
        raise AnswersInvalid([f"question {question.id}: answer 1-5, not {answer!r}"])
    return (value - 1) / 4


def score(form: Form, answers: dict[str, Any]) -> Score:
    """The score of ``answers`` (question id -> yes / no / 1-5 / na) by the rules of the module docstring."""
    problems = [f"question {q.id}: not answered" for q in form.questions() if q.id not in answers]
    problems += [f"question {qid}: not on this form" for qid in answers if form.question(qid) is None]
    earned = weight = 0.0
    sections: dict[str, float | None] = {}
    failed: list[str] = []
    for section in form.sections:
        s_earned = s_weight = 0.0
        for q in section.questions:
            if q.id not in answers:
                continue
            try:
                p = points(q, answers[q.id])
            except AnswersInvalid as exc:
                problems += exc.problems
                continue
            if p is None:
                continue
            s_earned += q.weight * p
            s_weight += q.weight
            if q.auto_fail and p == 0.0:
                failed.append(q.id)
        sections[section.id] = _percent(s_earned, s_weight)
        earned += s_earned
        weight += s_weight
    if problems:
        raise AnswersInvalid(problems)
    total = 0.0 if failed else _percent(earned, weight)
    return Score(total, sections, bool(failed), tuple(failed))


def _percent(earned: float, weight: float) -> float | None:
    return round(100 * earned / weight, 2) if weight else None


def _scale(answer: Any) -> int | None:
    if isinstance(answer, bool):
        return None
    if isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer)
    return answer if isinstance(answer, int) and 1 <= answer <= 5 else None
