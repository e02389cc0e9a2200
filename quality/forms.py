"""Evaluation forms: their shape, the check that refuses a bad one (naming the question and the reason), and their
versions in SQL (publishing makes a new version; an evaluation keeps the version it was scored with).

A form is written as YAML (or JSON)::

    title: Customer call standard
    sections:
      - id: identity
        title: Identity and security
        questions:
          - id: verified
            text: Verified identity before disclosing the balance
            type: yes_no        # yes_no or scale (1-5)
            weight: 3           # > 0, default 1
            na: false           # may the reviewer answer N/A (default false)
            auto_fail: true     # a "no" makes the whole evaluation 0 (yes_no questions only)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store.models import EvaluationForm

FORM_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
ITEM_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
KINDS = ("yes_no", "scale")
MAX_QUESTIONS = 200


class FormInvalid(ValueError):
    """The form cannot be published; ``problems`` says where and why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class FormNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    kind: str
    """yes_no or scale (1-5)."""
    weight: float = 1.0
    na: bool = False
    auto_fail: bool = False


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Form:
    title: str
    sections: tuple[Section, ...]

    def questions(self) -> list[Question]:
        return [q for s in self.sections for q in s.questions]

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions() if q.id == question_id), None)


@dataclass(frozen=True)
class FormVersion:
    name: str
    version: int
    form: Form
    definition: dict[str, Any]
    published_by: str
    published_at: dt.datetime


def load_text(source: str) -> dict[str, Any]:
    """The form written as YAML or JSON (JSON is YAML) as a mapping; FormInvalid if it is not one."""
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise FormInvalid([f"not valid YAML: {str(exc).splitlines()[0]}"]) from None
    if not isinstance(data, dict):
        raise FormInvalid(["the form must be a mapping with a title and sections"])
    return data


def parse_form(data: dict[str, Any]) -> Form:
    """The form ``data`` describes, or FormInvalid listing every problem (question and reason)."""
    problems: list[str] = []
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append("title is missing")
    raw_sections = data.get("sections")
    if not isinstance(raw_sections, list) or not raw_sections:
        raise FormInvalid([*problems, "sections: at least one section is required"])
    sections: list[Section] = []
    seen_sections: set[str] = set()
    seen_questions: set[str] = set()
    for n, raw in enumerate(raw_sections, 1):
        if not isinstance(raw, dict):
            problems.append(f"section {n}: must be a mapping with id, title and questions")
            continue
        sid = str(raw.get("id", ""))
        where = f"section {sid or n}"
        if not ITEM_ID.fullmatch(sid):
            problems.append(f"{where}: id must be 1-32 letters, digits, '_' or '-', starting with a letter")
        elif sid in seen_sections:
            problems.append(f"{where}: id is used twice")
        seen_sections.add(sid)
        stitle = raw.get("title")
        if not isinstance(stitle, str) or not stitle.strip():
            problems.append(f"{where}: title is missing")
        questions = [_question(q, f"{where} question {i}", seen_questions, problems)
                     for i, q in enumerate(raw.get("questions") or [], 1)]
        if not raw.get("questions"):
            problems.append(f"{where}: at least one question is required")
        sections.append(Section(sid, str(stitle or ""), tuple(q for q in questions if q is not None)))
    if len(seen_questions) > MAX_QUESTIONS:
        problems.append(f"a form has at most {MAX_QUESTIONS} questions")
    if problems:
        raise FormInvalid(problems)
    return Form(str(title).strip(), tuple(sections))


def _question(raw: Any, where: str, seen: set[str], problems: list[str]) -> Question | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping with id, text and type")
        return None
    qid = str(raw.get("id", ""))
    where = f"question {qid}" if qid else where
    before = len(problems)
    if not ITEM_ID.fullmatch(qid):
        problems.append(f"{where}: id must be 1-32 letters, digits, '_' or '-', starting with a letter")
    elif qid in seen:
        problems.append(f"{where}: id is used twice")
    seen.add(qid)
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}: text is missing")
    kind = raw.get("type", "yes_no")
    if kind not in KINDS:
        problems.append(f"{where}: type must be yes_no or scale, not {kind!r}")
    weight = raw.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
        problems.append(f"{where}: weight must be a number above 0, not {weight!r}")
    na, auto_fail = raw.get("na", False), raw.get("auto_fail", False)
    for flag, value in (("na", na), ("auto_fail", auto_fail)):
        if not isinstance(value, bool):
            problems.append(f"{where}: {flag} must be true or false")
    if auto_fail is True and kind != "yes_no":
        problems.append(f"{where}: only a yes_no question can be an automatic fail")
    unknown = sorted(set(raw) - {"id", "text", "type", "weight", "na", "auto_fail"})
    if unknown:
        problems.append(f"{where}: unknown field {unknown[0]!r}")
    if len(problems) > before:
        return None
    return Question(qid, str(text).strip(), str(kind), float(weight), bool(na), bool(auto_fail))


class FormBook:
    """The forms' versions in SQL."""

    def __init__(self, sql: sessionmaker[Session]) -> None:
        self.sql = sql

    def publish(self, name: str, data: dict[str, Any], published_by: str) -> int:
        """Check ``data`` and keep it as the next version of ``name``; returns the version."""
        if not FORM_NAME.fullmatch(name):
            raise FormInvalid([f"form name {name!r}: use a-z, digits, '_' or '-' (starting with a letter)"])
        parse_form(data)
        with self.sql() as db:
            latest = db.scalar(select(func.max(EvaluationForm.version)).where(EvaluationForm.name == name)) or 0
            db.add(EvaluationForm(name=name, version=latest + 1, definition=data, published_by=published_by))
            try:
                db.commit()
            except IntegrityError:  # someone published the same version a moment before: say so, don't guess
                raise FormInvalid([f"form {name}: version {latest + 1} was published meanwhile, try again"]) from None
            return latest + 1

    def names(self) -> list[str]:
        with self.sql() as db:
            return sorted(db.scalars(select(EvaluationForm.name).distinct()))

    def live(self, name: str) -> FormVersion:
        with self.sql() as db:
            row = db.scalar(select(EvaluationForm).where(EvaluationForm.name == name)
                            .order_by(EvaluationForm.version.desc()).limit(1))
            if row is None:
                raise FormNotFound(f"there is no form {name!r}")
            return _version(row)

    def version(self, name: str, version: int) -> FormVersion:
        with self.sql() as db:
            row = db.scalar(select(EvaluationForm).where(EvaluationForm.name == name,
                                                         EvaluationForm.version == version))
            if row is None:
                raise FormNotFound(f"form {name!r} has no version {version}")
            return _version(row)

    def history(self, name: str) -> list[FormVersion]:
        with self.sql() as db:
            return [_version(r) for r in db.scalars(select(EvaluationForm).where(EvaluationForm.name == name)
                                                    .order_by(EvaluationForm.version.desc()))]


def _version(row: EvaluationForm) -> FormVersion:
    return FormVersion(row.name, row.version, parse_form(row.definition), row.definition, row.published_by,
                       row.published_at)


EXAMPLE = """\
title: 来电服务标准 Customer call standard
sections:
  - id: opening
    title: 开场 Opening
    questions:
      - {id: greeting, text: 使用标准问候语 Used the standard greeting, type: yes_no, weight: 1}
      - {id: verified, text: 告知余额前核实身份 Verified identity before disclosing the balance, type: yes_no,
         weight: 3, auto_fail: true}
  - id: handling
    title: 处理 Handling
    questions:
      - {id: courtesy, text: 礼貌与耐心 Courtesy and patience, type: scale, weight: 2}
      - {id: resolution, text: 一次解决 Resolved on this call, type: yes_no, weight: 2, na: true}
"""
"""What the form page offers to start from."""
