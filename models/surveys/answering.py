"""Answering a survey: progress kept in the database, one question at a time, submit once, points once.

Anonymous surveys: at Submit the member's participation is recorded (and points paid) and the answers are sealed
in the member's progress row; once `batch` sealed ballots wait (or the survey closes), `mix` moves them all to
`survey_response`/`survey_answer` in one transaction, in random order with random ids, and deletes the progress
rows. Named surveys write their response at once, with the member and the time.
"""

from __future__ import annotations

import random
import secrets
from datetime import date, datetime

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from config import PointsRule
from models import points
from models.audience import conditions
from models.errors import BadInput, DomainError, NotFound
from models.inbox import InboxUpdate
from models.members import Member
from models.surveys.tables import (
    RATING_HIGH,
    RATING_LOW,
    Kind,
    Listed,
    Phase,
    Question,
    Step,
    Submitted,
    Survey,
    SurveyAnswer,
    SurveyParticipation,
    SurveyProgress,
    SurveyResponse,
    SurveyStatus,
    age_band,
)

# Ids of anonymous rows: random 62-bit numbers (fit PostgreSQL's bigint; a clash is retried by the caller).
ID_BITS = 62
LIST_SIZE = 20
# What stays of an inbox row that carried an answer.
FORGOTTEN = "{}"


class AlreadyAnswered(DomainError):
    key = "survey_already_answered"


class SurveyClosed(DomainError):
    key = "survey_closed"


def start_preview(session: Session, member: Member, survey: Survey, now: datetime, today: date) -> Step:
    """A cadre walks through a draft as a member would (from the first question; nothing is kept at the end)."""
    progress = session.get(SurveyProgress, (survey.id, member.id))
    if progress is not None:
        session.delete(progress)
        session.flush()
    progress = SurveyProgress(survey_id=survey.id, member_id=member.id, unit_code=member.unit_code, updated_at=now)
    progress.age_band = age_band(member.birth_year, today)
    session.add(progress)
    session.flush()
    return _step(survey, progress)


def phase_of(survey: Survey, now: datetime) -> Phase:
    """Where the survey stands at `now`."""
    if survey.status == SurveyStatus.DRAFT:
        return Phase.DRAFT
    if survey.status == SurveyStatus.CANCELLED:
        return Phase.CANCELLED
    if now < survey.opens_at:
        return Phase.UPCOMING
    return Phase.OPEN if now < survey.closes_at else Phase.CLOSED


def in_audience(session: Session, survey: Survey, member: Member, today: date) -> bool:
    """Whether the member is one of the survey's audience."""
    query = select(func.count()).where(col(Member.id) == member.id, *conditions(survey.target, today))
    return bool(session.execute(query).scalar_one())


def _survey(session: Session, survey_id: int, *, drafts: bool = False) -> Survey:
    survey = session.get(Survey, survey_id)
    if survey is None or (survey.status == SurveyStatus.DRAFT and not drafts):
        raise NotFound("survey_unknown")
    return survey


def _answered(session: Session, survey_id: int, member_id: int) -> bool:
    return session.get(SurveyParticipation, (survey_id, member_id)) is not None


def member_surveys(session: Session, member: Member, now: datetime, today: date) -> list[Listed]:
    """Open surveys for me (answered or not) and recently closed ones I answered, newest closing first."""
    answered = exists().where(
        col(SurveyParticipation.survey_id) == col(Survey.id), col(SurveyParticipation.member_id) == member.id
    )
    query = (
        select(Survey, answered)
        .where(col(Survey.status) == SurveyStatus.PUBLISHED, col(Survey.opens_at) <= now)
        .order_by(col(Survey.closes_at).desc())
        .limit(LIST_SIZE * 3)
    )
    listed = []
    for survey, done in session.execute(query).all():
        phase = phase_of(survey, now)
        if phase == Phase.CLOSED and not done:
            continue
        if not done and not in_audience(session, survey, member, today):
            continue
        started = not done and session.get(SurveyProgress, (survey.id, member.id)) is not None
        listed.append(Listed(survey, phase, bool(done), started))
    open_first = sorted(listed, key=lambda e: (e.phase != Phase.OPEN, e.answered))
    return open_first[:LIST_SIZE]


def survey_card(session: Session, member: Member, survey_id: int, now: datetime, today: date) -> Listed:
    """One survey as the member sees it before starting; NotFound if it is not for them."""
    survey = _survey(session, survey_id)
    done = _answered(session, survey_id, member.id)
    if not done and not in_audience(session, survey, member, today):
        raise NotFound("survey_unknown")
    started = not done and session.get(SurveyProgress, (survey_id, member.id)) is not None
    return Listed(survey, phase_of(survey, now), done, started)


def _open_for(session: Session, member: Member, survey_id: int, now: datetime) -> Survey:
    survey = _survey(session, survey_id)
    phase = phase_of(survey, now)
    if phase == Phase.UPCOMING:
        raise DomainError("survey_not_open", opens_at=survey.opens_at)
    if phase != Phase.OPEN:
        raise SurveyClosed()
    if _answered(session, survey_id, member.id):
        raise AlreadyAnswered()
    return survey


def start(session: Session, member: Member, survey_id: int, now: datetime, today: date) -> Step:
    """Begin, or resume where I paused (the question I was on)."""
    survey = _open_for(session, member, survey_id, now)
    progress = session.get(SurveyProgress, (survey_id, member.id))
    if progress is None:
        if not in_audience(session, survey, member, today):
            raise NotFound("survey_unknown")
        progress = SurveyProgress(
            survey_id=survey_id,
            member_id=member.id,
            unit_code=member.unit_code,
            age_band=age_band(member.birth_year, today),
            updated_at=now,
        )
        session.add(progress)
        session.flush()
    return _step(survey, progress)


def _step(survey: Survey, progress: SurveyProgress) -> Step:
    total = len(survey.questions)
    return Step(survey, progress, progress.position if progress.position < total else None)


def _progress(session: Session, member: Member, survey_id: int, now: datetime, question: int | None) -> Step:
    """My open progress, checked against the question a button was made for (a stale or forged press is refused)."""
    # A draft is answered only in a cadre's preview (start_preview made the progress row).
    survey = _survey(session, survey_id, drafts=True)
    phase = phase_of(survey, now)
    if phase not in (Phase.OPEN, Phase.DRAFT):
        raise SurveyClosed()
    progress = session.get(SurveyProgress, (survey_id, member.id))
    if progress is None or progress.sealed:
        # Submitted (sealed, or stored and gone) or never started.
        if progress is not None or _answered(session, survey_id, member.id):
            raise AlreadyAnswered()
        raise NotFound("survey_not_started")
    if question is not None and progress.position != question:
        raise BadInput("survey_step_passed")
    return _step(survey, progress)


def _save(progress: SurveyProgress, answers: dict[str, object], position: int, now: datetime) -> None:
    progress.answers = answers
    progress.position = position
    progress.updated_at = now


def _next(survey: Survey, position: int) -> int:
    return min(position + 1, len(survey.questions))


def choose(session: Session, member: Member, survey_id: int, question: int, value: int, now: datetime) -> Step:
    """A button answer: an option (single: answer and go on; multiple: tick or untick) or a rating."""
    step = _progress(session, member, survey_id, now, question)
    asked = step.survey.question_list[question]
    answers = dict(step.progress.answers)
    key = str(question)
    if asked.kind == Kind.RATING:
        if not RATING_LOW <= value <= RATING_HIGH:
            raise BadInput("survey_step_passed")
        _save(step.progress, answers | {key: value}, _next(step.survey, question), now)
    elif asked.kind in (Kind.SINGLE, Kind.MULTI):
        if not 0 <= value < len(asked.options):
            raise BadInput("survey_step_passed")
        if asked.kind == Kind.SINGLE:
            _save(step.progress, answers | {key: value}, _next(step.survey, question), now)
        else:
            ticked = list(answers.get(key) or [])
            if value in ticked:
                ticked.remove(value)
            elif asked.max_choices is not None and len(ticked) >= asked.max_choices:
                raise BadInput("survey_too_many", max=asked.max_choices)
            else:
                ticked.append(value)
            _save(step.progress, answers | {key: sorted(ticked)}, question, now)
    else:
        raise BadInput("survey_type_answer")
    return _step(step.survey, step.progress)


def confirm(session: Session, member: Member, survey_id: int, question: int, now: datetime) -> Step:
    """Done with a multiple-choice question (at least one tick unless it is optional)."""
    step = _progress(session, member, survey_id, now, question)
    asked = step.survey.question_list[question]
    if asked.kind != Kind.MULTI:
        raise BadInput("survey_step_passed")
    if asked.required and not step.progress.answers.get(str(question)):
        raise BadInput("survey_answer_required")
    _save(step.progress, dict(step.progress.answers), _next(step.survey, question), now)
    return _step(step.survey, step.progress)


def type_answer(session: Session, member: Member, survey_id: int, text: str, now: datetime) -> Step:
    """A typed answer to the free-text question being asked."""
    step = _progress(session, member, survey_id, now, None)
    if step.question is None:
        raise BadInput("survey_use_buttons")
    asked = step.survey.question_list[step.question]
    if asked.kind != Kind.TEXT:
        raise BadInput("survey_use_buttons")
    text = text.strip()
    if not text:
        raise BadInput("survey_text_empty")
    if len(text) > asked.max_length:
        raise BadInput("survey_text_too_long", max=asked.max_length, length=len(text))
    answers = dict(step.progress.answers) | {str(step.question): text}
    _save(step.progress, answers, _next(step.survey, step.question), now)
    return _step(step.survey, step.progress)


def skip(session: Session, member: Member, survey_id: int, question: int, now: datetime) -> Step:
    """Leave an optional question unanswered."""
    step = _progress(session, member, survey_id, now, question)
    if step.survey.question_list[question].required:
        raise BadInput("survey_answer_required")
    answers = {k: v for k, v in step.progress.answers.items() if k != str(question)}
    _save(step.progress, answers, _next(step.survey, question), now)
    return _step(step.survey, step.progress)


def back(session: Session, member: Member, survey_id: int, position: int, now: datetime) -> Step:
    """Go to the previous question (its answer is kept, to be changed)."""
    step = _progress(session, member, survey_id, now, position)
    if position == 0:
        raise BadInput("survey_step_passed")
    _save(step.progress, dict(step.progress.answers), position - 1, now)
    return _step(step.survey, step.progress)


def current(session: Session, member: Member, survey_id: int, now: datetime) -> Step:
    """Where I am in a survey I started."""
    return _progress(session, member, survey_id, now, None)


def missing_required(survey: Survey, answers: dict[str, object]) -> list[int]:
    """Required questions without an answer (1-based numbers)."""
    return [i + 1 for i, q in enumerate(survey.question_list) if q.required and answers.get(str(i)) in (None, [])]


def submit(
    session: Session, member: Member, survey_id: int, now: datetime, today: date, rule: PointsRule, batch: int
) -> Submitted:
    """Send my answers: once (the participation row's key), points once (idempotency key), then the answers:
    named at once; anonymous sealed until `batch` of them can be mixed."""
    step = _progress(session, member, survey_id, now, None)
    if step.question is not None:
        raise BadInput("survey_step_passed")
    survey, progress = step.survey, step.progress
    if missing_required(survey, progress.answers):
        raise BadInput("survey_answer_required")
    if survey.status == SurveyStatus.DRAFT:
        # The end of a preview: nothing is stored, nothing is paid.
        session.delete(progress)
        return Submitted(0, 0, preview=True)
    try:
        with session.begin_nested():
            session.add(SurveyParticipation(survey_id=survey_id, member_id=member.id))
            session.flush()
    except IntegrityError:
        raise AlreadyAnswered() from None
    paid = 0
    if survey.points:
        result = points.award(session, member.id, rule, f"survey:{survey_id}:{member.id}", today, amount=survey.points)
        paid = result.amount
    if not survey.anonymous:
        _write_response(session, survey, progress.answers, progress.unit_code, progress.age_band, member.id, now)
        session.delete(progress)
        return Submitted(paid, 0)
    progress.sealed = True
    progress.updated_at = now.replace(hour=0, minute=0, second=0, microsecond=0)
    session.flush()
    mixed = 0
    if _sealed_count(session, survey_id) >= batch:
        mixed = mix(session, survey_id)
    return Submitted(paid, mixed)


def _sealed_count(session: Session, survey_id: int) -> int:
    query = select(func.count()).where(col(SurveyProgress.survey_id) == survey_id, col(SurveyProgress.sealed))
    return int(session.execute(query).scalar_one())


def _write_response(
    session: Session,
    survey: Survey,
    answers: dict[str, object],
    unit_code: str | None,
    band: str,
    member_id: int | None,
    at: datetime | None,
) -> None:
    """One response and its answers (a random id)."""
    response = SurveyResponse(
        id=secrets.randbits(ID_BITS),
        survey_id=survey.id,
        member_id=member_id,
        submitted_at=at,
        unit_code=unit_code,
        age_band=band,
    )
    session.add(response)
    # No ORM relationship orders the two inserts: the response goes first (the answers' foreign key).
    session.flush()
    for index, question in enumerate(survey.question_list):
        for row in _answer_rows(question, answers.get(str(index))):
            session.add(SurveyAnswer(response_id=response.id, question=index, **row))
    session.flush()


def _answer_rows(question: Question, value: object) -> list[dict[str, object]]:
    if value is None or value == []:
        return []
    if question.kind == Kind.MULTI:
        return [{"item": int(v)} for v in value]  # type: ignore[union-attr]
    if question.kind == Kind.SINGLE:
        return [{"item": int(value)}]  # type: ignore[call-overload]
    if question.kind == Kind.RATING:
        return [{"rating": int(value)}]  # type: ignore[call-overload]
    return [{"text": str(value)}]


def mix(session: Session, survey_id: int) -> int:
    """Move every sealed ballot of an anonymous survey to the responses, shuffled, and forget whose they were."""
    sealed = list(
        session.scalars(
            select(SurveyProgress).where(col(SurveyProgress.survey_id) == survey_id, col(SurveyProgress.sealed))
        )
    )
    if not sealed:
        return 0
    survey = session.get(Survey, survey_id)
    random.SystemRandom().shuffle(sealed)
    ballots = [(p.answers, p.unit_code, p.age_band) for p in sealed]
    session.execute(
        delete(SurveyProgress).where(col(SurveyProgress.survey_id) == survey_id, col(SurveyProgress.sealed))
    )
    for answers, unit_code, band in ballots:
        _write_response(session, survey, answers, unit_code, band, None, None)
    return len(ballots)


def forget_update(session: Session, update_id: int) -> None:
    """Blank the stored copy of an update that carried an answer (models/inbox.py keeps updates for a while, with
    the sender's id): a processed update is never read again, so only its id needs to stay."""
    session.execute(
        update(InboxUpdate)
        .where(col(InboxUpdate.update_id) == update_id)
        .values(payload=FORGOTTEN)
        .execution_options(synchronize_session=False)
    )


def pause(session: Session, member: Member, survey_id: int, now: datetime) -> Survey:
    """Stop for now; the answers so far stay (the progress row)."""
    return _progress(session, member, survey_id, now, None).survey


def sealed_surveys(session: Session, now: datetime) -> list[int]:
    """Closed anonymous surveys with ballots still waiting to be mixed."""
    query = (
        select(col(SurveyProgress.survey_id))
        .join(Survey, col(Survey.id) == col(SurveyProgress.survey_id))
        .where(col(SurveyProgress.sealed), col(Survey.closes_at) <= now)
        .distinct()
    )
    return [int(i) for i in session.execute(query).scalars()]
