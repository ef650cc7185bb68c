"""Cadres' side of surveys: checking and storing a survey, scope, lists, and who to invite or remind."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlmodel import Session, col

from models import audience as audiences
from models import clubs
from models.errors import BadInput, NotAllowed, NotFound
from models.members import Actor, Member
from models.surveys.tables import (
    INTRO_MAX,
    OPTION_MAX,
    OPTIONS_MAX,
    POINTS_MAX,
    QUESTION_MAX,
    QUESTIONS_MAX,
    TEXT_LIMIT_MAX,
    TITLE_MAX,
    Kind,
    Question,
    Survey,
    SurveyAnswer,
    SurveyDraft,
    SurveyParticipation,
    SurveyProgress,
    SurveyResponse,
    SurveyStatus,
)

ADMIN_LIST_SIZE = 20
# (where, problem key, detail): `where` is a question number (0: the survey itself) or a line in an import file.
Problem = tuple[int, str, str]


def check_question(question: Question) -> list[tuple[str, str]]:
    """What is wrong with one question: (problem key, field)."""
    found: list[tuple[str, str]] = []
    if not question.text.strip():
        found.append(("missing", "text"))
    elif len(question.text) > QUESTION_MAX:
        found.append(("too_long", "text"))
    if question.kind in (Kind.SINGLE, Kind.MULTI):
        if not 2 <= len(question.options) <= OPTIONS_MAX:
            found.append(("options_count", "options"))
        if any(not o.strip() or len(o) > OPTION_MAX for o in question.options):
            found.append(("too_long", "options"))
        if len(set(question.options)) != len(question.options):
            found.append(("duplicate_option", "options"))
    elif question.options:
        found.append(("choice_only", "options"))
    if question.max_choices is not None and (
        question.kind != Kind.MULTI or not 1 <= question.max_choices <= len(question.options)
    ):
        found.append(("out_of_range", "max_choices"))
    if not 1 <= question.max_length <= TEXT_LIMIT_MAX:
        found.append(("out_of_range", "max_length"))
    return found


def check_draft(draft: SurveyDraft, now: datetime, units: Iterable[str]) -> list[tuple[str, str]]:
    """What is wrong with the survey as a whole: (problem key, field)."""
    found: list[tuple[str, str]] = []
    if not draft.title.strip():
        found.append(("missing", "title"))
    elif len(draft.title) > TITLE_MAX:
        found.append(("too_long", "title"))
    if len(draft.intro) > INTRO_MAX:
        found.append(("too_long", "intro"))
    if not 1 <= len(draft.questions) <= QUESTIONS_MAX:
        found.append(("questions_count", "question"))
    if not 0 <= draft.points <= POINTS_MAX:
        found.append(("out_of_range", "points"))
    if draft.closes_at <= draft.opens_at:
        found.append(("before_open", "closes_at"))
    if draft.closes_at <= now:
        found.append(("in_past", "closes_at"))
    unknown = set(draft.audience.units) - set(units)
    if unknown:
        found.append(("unknown_unit", "units"))
    return found


def store_survey(
    session: Session, actor: Actor, draft: SurveyDraft, all_units: Iterable[str], now: datetime, *, check: bool = True
) -> Survey:
    """Publish a survey (it opens at its time), its audience narrowed to what this cadre may reach."""
    all_units = tuple(all_units)
    problems = check_draft(draft, now, all_units) + [p for q in draft.questions for p in check_question(q)]
    if check and problems:
        key, field = problems[0]
        raise BadInput("survey_invalid", problem=key, field=field)
    target = audiences.in_scope(actor, draft.audience, all_units)
    survey = Survey(
        title=draft.title,
        intro=draft.intro,
        questions=[q.to_dict() for q in draft.questions],
        audience=target.to_json(),
        anonymous=draft.anonymous,
        results_public=draft.results_public,
        points=draft.points,
        status=SurveyStatus.PUBLISHED,
        opens_at=draft.opens_at,
        closes_at=draft.closes_at,
        created_by=actor.telegram_id,
        created_at=now,
    )
    session.add(survey)
    session.flush()
    return survey


def may_manage(actor: Actor, survey: Survey) -> bool:
    """A bureau cadre any survey; a unit cadre one whose audience lies within their units."""
    if actor.is_bureau:
        return True
    units = survey.target.units
    return bool(actor.cadre_units) and bool(units) and set(units) <= set(actor.cadre_units)


def managed_survey(session: Session, actor: Actor, survey_id: int) -> Survey:
    """A survey this cadre may read the results of; NotAllowed outside their scope."""
    actor.require_cadre()
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise NotFound("survey_unknown")
    if not may_manage(actor, survey):
        raise NotAllowed()
    return survey


def cadre_surveys(session: Session, actor: Actor) -> list[Survey]:
    """The newest surveys this cadre manages."""
    actor.require_cadre()
    query = select(Survey).order_by(col(Survey.opens_at).desc()).limit(ADMIN_LIST_SIZE * 5)
    return [s for s in session.scalars(query) if may_manage(actor, s)][:ADMIN_LIST_SIZE]


def respondents(session: Session, survey_id: int) -> int:
    """How many members responded."""
    query = select(func.count()).where(col(SurveyParticipation.survey_id) == survey_id)
    return int(session.execute(query).scalar_one())


def recipients(session: Session, survey: Survey, today: date, *, only_missing: bool) -> list[Any]:
    """The audience (id, telegram_id, unit_code, language, blocked_bot); `only_missing`: those who have not answered."""
    query = audiences.members(survey.target, today).where(~col(Member.blocked_bot))
    if only_missing:
        answered = exists().where(
            col(SurveyParticipation.survey_id) == survey.id, col(SurveyParticipation.member_id) == col(Member.id)
        )
        query = query.where(~answered)
    return list(session.execute(query).all())


def claim_mark(session: Session, survey_id: int, column: str, now: datetime) -> bool:
    """Set invited_at or reminded_at once (a compare-and-set): True for the one caller that did."""
    field = getattr(Survey, column)
    result = session.execute(update(Survey).where(col(Survey.id) == survey_id, field.is_(None)).values({column: now}))
    return result.rowcount == 1


def due_invitations(session: Session, now: datetime) -> list[Survey]:
    query = select(Survey).where(
        col(Survey.status) == SurveyStatus.PUBLISHED,
        col(Survey.invited_at).is_(None),
        col(Survey.opens_at) <= now,
        col(Survey.closes_at) > now,
    )
    return list(session.scalars(query))


def due_reminders(session: Session, now: datetime, before: Any) -> list[Survey]:
    query = select(Survey).where(
        col(Survey.status) == SurveyStatus.PUBLISHED,
        col(Survey.reminded_at).is_(None),
        col(Survey.invited_at).is_not(None),
        col(Survey.closes_at) > now,
        col(Survey.closes_at) <= now + before,
    )
    return list(session.scalars(query))


def erase_member(session: Session, member_id: int) -> None:
    """Account deletion: unfinished answers go; submitted ones stay as statistics (named responses lose the member,
    participation stays so response rates hold, sealed anonymous ballots still go into their batch)."""
    session.execute(
        delete(SurveyProgress).where(col(SurveyProgress.member_id) == member_id, ~col(SurveyProgress.sealed))
    )
    session.execute(
        update(SurveyResponse)
        .where(col(SurveyResponse.member_id) == member_id)
        .values(member_id=None, submitted_at=None)
    )


def export_member(session: Session, member_id: int) -> dict[str, Any]:
    """ "Export my data": the surveys the member responded to, their named responses with the answers, and answers
    in progress. Anonymous answers are nobody's: nothing links them to the member, so they cannot be exported."""
    responded = session.execute(
        select(Survey.id, Survey.title, Survey.anonymous)
        .join(SurveyParticipation, col(SurveyParticipation.survey_id) == col(Survey.id))
        .where(col(SurveyParticipation.member_id) == member_id)
        .order_by(col(Survey.id))
    ).all()
    named = session.execute(
        select(SurveyResponse.id, SurveyResponse.survey_id, SurveyResponse.submitted_at)
        .where(col(SurveyResponse.member_id) == member_id)
        .order_by(col(SurveyResponse.survey_id))
    ).all()
    answers: dict[int, list[dict[str, Any]]] = {}
    if named:
        rows = session.execute(
            select(SurveyAnswer).where(col(SurveyAnswer.response_id).in_([r.id for r in named]))
        ).scalars()
        for a in rows:
            answers.setdefault(a.response_id, []).append(
                {"question": a.question, "option": a.item, "rating": a.rating, "text": a.text}
            )
    progress = session.execute(
        select(SurveyProgress).where(col(SurveyProgress.member_id) == member_id, ~col(SurveyProgress.sealed))
    ).scalars()
    return {
        "responded": [{"survey": sid, "title": title, "anonymous": anonymous} for sid, title, anonymous in responded],
        "named_responses": [
            {"survey": r.survey_id, "submitted_at": r.submitted_at, "answers": answers.get(r.id, [])} for r in named
        ],
        "in_progress": [{"survey": p.survey_id, "answers": p.answers, "question": p.position} for p in progress],
    }


def _check_settings(
    session: Session, actor: Actor, draft: SurveyDraft, all_units: tuple[str, ...], now: datetime
) -> None:
    """A draft's settings (questions come later): BadInput for a bad field, NotAllowed outside the cadre's scope."""
    problems = [p for p in check_draft(draft, now, all_units) if p[0] != "questions_count"]
    if problems:
        key, field = problems[0]
        raise BadInput("survey_invalid", problem=key, field=field)
    # Clubs within the cadre's scope only (a forged or stale club id is refused, nothing is stored).
    if not set(draft.audience.clubs) <= {c.id for c in clubs.managed_clubs(session, actor)}:
        raise NotAllowed()
    audiences.in_scope(actor, draft.audience, all_units)


def create_draft(session: Session, actor: Actor, draft: SurveyDraft, all_units: Iterable[str], now: datetime) -> Survey:
    """A survey being built in chat: kept in the database as a draft (questions added one by one)."""
    all_units = tuple(all_units)
    _check_settings(session, actor, draft, all_units, now)
    survey = store_survey(session, actor, draft, all_units, now, check=False)
    survey.status = SurveyStatus.DRAFT
    session.flush()
    return survey


def _draft(session: Session, actor: Actor, survey_id: int) -> Survey:
    survey = managed_survey(session, actor, survey_id)
    if survey.status != SurveyStatus.DRAFT:
        raise BadInput("survey_not_draft")
    return survey


def add_question(session: Session, actor: Actor, survey_id: int, question: Question) -> Survey:
    """Add a question to a draft (editing ends when it is published)."""
    survey = _draft(session, actor, survey_id)
    problems = check_question(question)
    if problems:
        key, field = problems[0]
        raise BadInput("survey_invalid", problem=key, field=field)
    if len(survey.questions) >= QUESTIONS_MAX:
        raise BadInput("survey_invalid", problem="questions_count", field="question")
    survey.questions = [*survey.questions, question.to_dict()]
    session.flush()
    return survey


def publish(session: Session, actor: Actor, survey_id: int, now: datetime) -> Survey:
    """Publish a draft: it opens at its time (its audience is told then)."""
    survey = _draft(session, actor, survey_id)
    draft = SurveyDraft(survey.title, survey.opens_at, survey.closes_at, tuple(survey.question_list))
    problems = check_draft(draft, now, ())
    if problems:
        key, field = problems[0]
        raise BadInput("survey_invalid", problem=key, field=field)
    survey.status = SurveyStatus.PUBLISHED
    session.flush()
    return survey


def update_draft(
    session: Session, actor: Actor, survey_id: int, draft: SurveyDraft, all_units: Iterable[str], now: datetime
) -> Survey:
    """New settings for a draft (title, intro, audience, anonymity, times, points); its questions stay."""
    survey = _draft(session, actor, survey_id)
    all_units = tuple(all_units)
    _check_settings(session, actor, draft, all_units, now)
    survey.title, survey.intro = draft.title, draft.intro
    survey.audience = audiences.in_scope(actor, draft.audience, all_units).to_json()
    survey.anonymous, survey.points = draft.anonymous, draft.points
    survey.opens_at, survey.closes_at = draft.opens_at, draft.closes_at
    session.flush()
    return survey


def remove_last_question(session: Session, actor: Actor, survey_id: int) -> Survey:
    """Take the last question off a draft."""
    survey = _draft(session, actor, survey_id)
    if not survey.questions:
        raise BadInput("survey_no_questions")
    survey.questions = survey.questions[:-1]
    session.flush()
    return survey


def unpublish(session: Session, actor: Actor, survey_id: int, now: datetime) -> Survey:
    """Take a published survey back to a draft to edit it: only before it opens and before anyone is told
    (a conditional UPDATE, so the opening run and this press cannot both win)."""
    survey = managed_survey(session, actor, survey_id)
    changed = session.execute(
        update(Survey)
        .where(
            col(Survey.id) == survey_id,
            col(Survey.status) == SurveyStatus.PUBLISHED,
            col(Survey.opens_at) > now,
            col(Survey.invited_at).is_(None),
        )
        .values(status=SurveyStatus.DRAFT)
    )
    if changed.rowcount != 1:
        raise BadInput("survey_already_open")
    session.refresh(survey)
    return survey


def draft_survey(session: Session, actor: Actor, survey_id: int) -> Survey:
    """A draft this cadre may edit, preview and publish."""
    return _draft(session, actor, survey_id)
