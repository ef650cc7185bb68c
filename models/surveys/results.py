"""Results: counts and percentages per question, breakdowns by unit and age band (small groups hidden), the
response rate per unit, and the CSV export. Nothing here names who answered an anonymous survey."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session, col

from models import audience as audiences
from models.members import Member
from models.surveys.tables import (
    AGE_UNKNOWN,
    RATING_HIGH,
    RATING_LOW,
    Kind,
    Question,
    Survey,
    SurveyAnswer,
    SurveyParticipation,
    SurveyResponse,
)

# Free-text answers listed on the results screen (all of them are in the CSV).
TEXTS_SHOWN = 10


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    percent: float


@dataclass(frozen=True)
class QuestionResult:
    number: int
    question: Question
    answered: int
    bars: list[Bar] = field(default_factory=list)
    mean: float | None = None
    texts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Group:
    """One group of a breakdown: None counts when it has fewer respondents than the threshold (hidden)."""

    kind: str
    key: str
    respondents: int | None
    # Per choice or rating question: counts of each bar, None when hidden.
    counts: dict[int, list[int]] | None


@dataclass(frozen=True)
class UnitRate:
    unit_code: str
    audience: int
    responded: int | None
    percent: float | None


@dataclass(frozen=True)
class Results:
    survey: Survey
    responses: int
    respondents: int
    waiting: int
    questions: list[QuestionResult]
    groups: list[Group]
    rates: list[UnitRate]


def _percent(count: int, total: int) -> float:
    return round(100 * count / total, 1) if total else 0.0


def _labels(question: Question) -> list[str]:
    if question.kind == Kind.RATING:
        return [str(r) for r in range(RATING_LOW, RATING_HIGH + 1)]
    return list(question.options)


def _bar_index(question: Question, answer: SurveyAnswer) -> int:
    return answer.rating - RATING_LOW if question.kind == Kind.RATING else answer.item


def _answers(session: Session, survey_id: int) -> list[tuple[SurveyAnswer, str | None, str]]:
    query = (
        select(SurveyAnswer, SurveyResponse.unit_code, SurveyResponse.age_band)
        .join(SurveyResponse, col(SurveyResponse.id) == col(SurveyAnswer.response_id))
        .where(col(SurveyResponse.survey_id) == survey_id)
        .order_by(col(SurveyAnswer.response_id), col(SurveyAnswer.question), col(SurveyAnswer.item))
    )
    return [tuple(row) for row in session.execute(query).all()]  # type: ignore[misc]


def survey_results(session: Session, survey: Survey, today: date, min_group: int) -> Results:
    """Everything the results screen, the charts and the CSV show."""
    questions = survey.question_list
    groups_of: dict[tuple[str, str], set[int]] = defaultdict(set)
    responses = list(
        session.execute(
            select(SurveyResponse.id, SurveyResponse.unit_code, SurveyResponse.age_band).where(
                col(SurveyResponse.survey_id) == survey.id
            )
        ).all()
    )
    for response_id, unit_code, band in responses:
        groups_of[("unit", unit_code or "")].add(response_id)
        groups_of[("age", band or AGE_UNKNOWN)].add(response_id)
    counts = [[0] * len(_labels(q)) for q in questions]
    answered: list[set[int]] = [set() for _ in questions]
    ratings: list[list[int]] = [[] for _ in questions]
    texts: list[list[str]] = [[] for _ in questions]
    by_group: dict[tuple[str, str], list[list[int]]] = {
        key: [[0] * len(_labels(q)) for q in questions] for key in groups_of
    }
    for answer, unit_code, band in _answers(session, survey.id):
        question = questions[answer.question]
        answered[answer.question].add(answer.response_id)
        if question.kind == Kind.TEXT:
            texts[answer.question].append(answer.text or "")
            continue
        index = _bar_index(question, answer)
        counts[answer.question][index] += 1
        by_group[("unit", unit_code or "")][answer.question][index] += 1
        by_group[("age", band or AGE_UNKNOWN)][answer.question][index] += 1
        if question.kind == Kind.RATING:
            ratings[answer.question].append(answer.rating)
    results = []
    for i, question in enumerate(questions):
        n = len(answered[i])
        bars = [Bar(label, c, _percent(c, n)) for label, c in zip(_labels(question), counts[i], strict=True)]
        mean = round(sum(ratings[i]) / len(ratings[i]), 2) if ratings[i] else None
        results.append(QuestionResult(i + 1, question, n, bars, mean, texts[i]))
    groups = []
    for (kind, key), members in sorted(groups_of.items()):
        shown = len(members) >= min_group
        group_counts = {i: by_group[(kind, key)][i] for i, q in enumerate(questions) if q.kind != Kind.TEXT}
        groups.append(Group(kind, key, len(members) if shown else None, group_counts if shown else None))
    respondents = int(
        session.execute(select(func.count()).where(col(SurveyParticipation.survey_id) == survey.id)).scalar_one()
    )
    return Results(
        survey,
        len(responses),
        respondents,
        respondents - len(responses),
        results,
        groups,
        unit_rates(session, survey, today, min_group),
    )


def unit_rates(session: Session, survey: Survey, today: date, min_group: int) -> list[UnitRate]:
    """Response rate per unit (who was asked, how many answered); for an anonymous survey a unit with fewer
    respondents than the threshold shows no figure, so a count never points to a person."""
    asked = audiences.members(survey.target, today).subquery()
    sizes = dict(
        session.execute(select(asked.c.unit_code, func.count()).group_by(asked.c.unit_code)).all()  # type: ignore[arg-type]
    )
    answered = dict(
        session.execute(
            select(Member.unit_code, func.count())
            .join(SurveyParticipation, col(SurveyParticipation.member_id) == col(Member.id))
            .where(col(SurveyParticipation.survey_id) == survey.id)
            .group_by(col(Member.unit_code))
        ).all()
    )
    rates = []
    for unit_code in sorted(set(sizes) | set(answered)):
        n, done = int(sizes.get(unit_code, 0)), int(answered.get(unit_code, 0))
        hidden = survey.anonymous and done < min_group
        rates.append(UnitRate(unit_code, n, None if hidden else done, None if hidden else _percent(done, max(n, done))))
    return rates


def _cell(question: Question, rows: list[SurveyAnswer]) -> str:
    if question.kind == Kind.TEXT:
        return rows[0].text or "" if rows else ""
    if question.kind == Kind.RATING:
        return str(rows[0].rating) if rows else ""
    return "; ".join(question.options[r.item] for r in rows)


def export_csv(session: Session, survey: Survey, results: Results, headers: dict[str, str]) -> bytes:
    """All responses, one row each (named surveys: who, when and the unit; anonymous: a random id and the answers
    only, so no row can be narrowed down by its group), then the breakdown counts of the groups of at least
    `min_group` respondents (smaller groups are listed as hidden)."""
    questions = survey.question_list
    names: dict[int, tuple[str, str]] = {}
    if not survey.anonymous:
        query = (
            select(Member.id, Member.name, Member.employee_no)
            .join(SurveyResponse, col(SurveyResponse.member_id) == col(Member.id))
            .where(col(SurveyResponse.survey_id) == survey.id)
        )
        names = {row[0]: (row[1], row[2]) for row in session.execute(query).all()}
    out = io.StringIO()
    writer = csv.writer(out)
    head = [headers["response"]]
    if not survey.anonymous:
        head += [headers["name"], headers["employee_no"], headers["submitted_at"]]
        head += [headers["unit"], headers["age_band"]]
    head += [f"Q{i + 1} {q.text}" for i, q in enumerate(questions)]
    writer.writerow(head)
    by_response: dict[int, list[SurveyAnswer]] = defaultdict(list)
    for answer, _unit, _band in _answers(session, survey.id):
        by_response[answer.response_id].append(answer)
    responses = session.scalars(
        select(SurveyResponse).where(col(SurveyResponse.survey_id) == survey.id).order_by(col(SurveyResponse.id))
    )
    for response in responses:
        row = [f"{response.id:x}"]
        if not survey.anonymous:
            name, employee_no = names.get(response.member_id or 0, ("", ""))
            at = response.submitted_at.isoformat() if response.submitted_at else ""
            row += [name, employee_no, at, response.unit_code or "", response.age_band]
        mine = by_response.get(response.id, [])
        row += [_cell(q, [a for a in mine if a.question == i]) for i, q in enumerate(questions)]
        writer.writerow(row)
    writer.writerow([])
    writer.writerow(
        [headers["group"], headers["respondents"], headers["question"], headers["answer"], headers["count"]]
    )
    for group in results.groups:
        if group.respondents is None or group.counts is None:
            writer.writerow([f"{group.kind}:{group.key}", headers["hidden"]])
            continue
        for index, values in group.counts.items():
            for label, value in zip(_labels(questions[index]), values, strict=True):
                writer.writerow([f"{group.kind}:{group.key}", group.respondents, f"Q{index + 1}", label, value])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
