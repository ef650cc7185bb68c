"""Results: counts and percentages per question, breakdowns by unit and age band (small groups hidden), the
response rate per unit, and the CSV export. Nothing here names who answered an anonymous survey."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from models import audience as audiences
from models.members import Member
from models.surveys.tables import (
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
TEXTS_SHOWN = 3


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
    # A few free-text answers (all of them are in the CSV), and how many more there are.
    texts: list[str] = field(default_factory=list)
    more_texts: int = 0


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


def _bar_column() -> Any:
    """The bar an answer falls in: the option's index, or the rating (a text answer has neither)."""
    return func.coalesce(col(SurveyAnswer.rating), col(SurveyAnswer.item))


def survey_results(
    session: Session, survey: Survey, today: date, min_group: int, *, breakdowns: bool = True
) -> Results:
    """Everything the results screen, the charts and the CSV show, counted by the database (GROUP BY);
    breakdowns=False leaves out the groups and rates (the charts need only the counts)."""
    questions = survey.question_list
    of_survey = col(SurveyResponse.survey_id) == survey.id
    joined = (
        select().select_from(SurveyAnswer).join(SurveyResponse, col(SurveyResponse.id) == col(SurveyAnswer.response_id))
    )
    bar = _bar_column()
    counts = [[0] * len(_labels(q)) for q in questions]
    # Per unit and per age band (one scan each); the overall counts are the sum over the units.
    group_counts: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(
        lambda: {i: [0] * len(_labels(q)) for i, q in enumerate(questions) if q.kind != Kind.TEXT}
    )
    columns = (("unit", col(SurveyResponse.unit_code)), ("age", col(SurveyResponse.age_band)))
    for kind, column in columns if breakdowns else columns[:1]:
        for key, question, value, n in session.execute(
            joined.add_columns(column, col(SurveyAnswer.question), bar, func.count())
            .where(of_survey, col(SurveyAnswer.text).is_(None))
            .group_by(column, col(SurveyAnswer.question), bar)
        ).all():
            index = value - RATING_LOW if questions[question].kind == Kind.RATING else value
            group_counts[(kind, key or "")][question][index] += n
            if kind == "unit":
                counts[question][index] += n
    answered = dict(
        session.execute(
            joined.add_columns(col(SurveyAnswer.question), func.count(func.distinct(col(SurveyAnswer.response_id))))
            .where(of_survey)
            .group_by(col(SurveyAnswer.question))
        ).all()
    )
    texts: dict[int, list[str]] = defaultdict(list)
    text_questions = [i for i, q in enumerate(questions) if q.kind == Kind.TEXT]
    for question in text_questions:
        shown = session.execute(
            joined.add_columns(col(SurveyAnswer.text))
            .where(of_survey, col(SurveyAnswer.question) == question)
            .order_by(col(SurveyAnswer.response_id))
            .limit(TEXTS_SHOWN)
        ).scalars()
        texts[question] = [t or "" for t in shown]
    results = []
    for i, question in enumerate(questions):
        n = int(answered.get(i, 0))
        bars = [Bar(label, c, _percent(c, n)) for label, c in zip(_labels(question), counts[i], strict=True)]
        mean = None
        if question.kind == Kind.RATING and sum(counts[i]):
            mean = round(sum((RATING_LOW + k) * c for k, c in enumerate(counts[i])) / sum(counts[i]), 2)
        results.append(QuestionResult(i + 1, question, n, bars, mean, texts.get(i, []), max(0, n - TEXTS_SHOWN)))
    groups = []
    for kind, column in columns if breakdowns else ():
        sizes = dict(session.execute(select(column, func.count()).where(of_survey).group_by(column)).all())
        for key, size in sorted(sizes.items(), key=lambda kv: kv[0] or ""):
            shown = size >= min_group
            groups.append(
                Group(kind, key or "", size if shown else None, group_counts[(kind, key or "")] if shown else None)
            )
    responses = int(session.execute(select(func.count()).where(of_survey)).scalar_one())
    respondents = int(
        session.execute(select(func.count()).where(col(SurveyParticipation.survey_id) == survey.id)).scalar_one()
    )
    return Results(
        survey,
        responses,
        respondents,
        respondents - responses,
        results,
        groups,
        unit_rates(session, survey, today, min_group) if breakdowns else [],
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
    cells: dict[int, dict[int, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for response_id, question, item, rating, answer_text in session.execute(
        select(
            col(SurveyAnswer.response_id),
            col(SurveyAnswer.question),
            col(SurveyAnswer.item),
            col(SurveyAnswer.rating),
            col(SurveyAnswer.text),
        )
        .join(SurveyResponse, col(SurveyResponse.id) == col(SurveyAnswer.response_id))
        .where(col(SurveyResponse.survey_id) == survey.id)
        .order_by(col(SurveyAnswer.response_id), col(SurveyAnswer.question), col(SurveyAnswer.item))
    ).all():
        kind = questions[question].kind
        value = (
            answer_text if kind == Kind.TEXT else rating if kind == Kind.RATING else questions[question].options[item]
        )
        cells[response_id][question].append(value)
    responses = session.execute(
        select(
            col(SurveyResponse.id),
            col(SurveyResponse.member_id),
            col(SurveyResponse.submitted_at),
            col(SurveyResponse.unit_code),
            col(SurveyResponse.age_band),
        )
        .where(col(SurveyResponse.survey_id) == survey.id)
        .order_by(col(SurveyResponse.id))
    ).all()
    for response_id, member_id, submitted_at, unit_code, band in responses:
        row = [f"{response_id:x}"]
        if not survey.anonymous:
            name, employee_no = names.get(member_id or 0, ("", ""))
            row += [name, employee_no, submitted_at.isoformat() if submitted_at else "", unit_code or "", band]
        mine = cells.get(response_id, {})
        row += ["; ".join(str(v) for v in mine.get(i, [])) for i in range(len(questions))]
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
