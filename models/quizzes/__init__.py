"""Quizzes (知识竞赛): a question bank, timed attempts, best scores, points once, member and unit rankings.

An attempt draws N questions from the quiz's bank. Each question is shown at `shown_at` and must be answered within
the quiz's seconds per question: a press after that is recorded as not counted. Only the attempt's current question
can be answered; the answer moves the attempt on by a conditional UPDATE (WHERE current = position), so a double
click, a stale button or a forged press for another question changes nothing. A member has at most one attempt in
progress per quiz (a partial UNIQUE index) and at most attempts_per_day attempts per local day (UNIQUE on the
attempt's number of the day).

Score = correct answers; ties are broken by the time taken (sum of answer times, a timed-out question counts the
full limit). The best attempt per member and quiz is kept in quiz_best; points (rule quiz_best, per correct answer)
are paid for the best score once: a better attempt pays only the difference, each score level under its own
idempotency key.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, UniqueConstraint, func, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from config import PointsRule
from models import audit, points
from models.errors import BadInput, DomainError, NotFound
from models.members import Actor, Member, Status

TITLE_MAX = 60
INTRO_MAX = 500
KEY_MAX = 64
QUESTION_MAX = 300
OPTION_MAX = 80
EXPLANATION_MAX = 200
MIN_OPTIONS, MAX_OPTIONS = 2, 6
MAX_QUESTIONS = 500
MAX_PER_ATTEMPT = 50
MIN_SECONDS, MAX_SECONDS = 5, 300
MAX_ATTEMPTS_PER_DAY = 20
# A press this little after the limit still counts: the time the press took to reach the bot.
GRACE = timedelta(seconds=1)
RANKING_SIZE = 10
# Quizzes listed to a member at once (their list template fits this many).
LIST_SIZE = 20
_MS = timedelta(milliseconds=1)
POINTS_RULE = "quiz_best"


class QuizStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CLOSED = "closed"


class Quiz(SQLModel, table=True):
    __tablename__ = "quiz"
    __table_args__ = (
        CheckConstraint("questions_per_attempt >= 1", name="ck_quiz_per_attempt"),
        CheckConstraint("seconds_per_question >= 1", name="ck_quiz_seconds"),
        CheckConstraint("attempts_per_day >= 1", name="ck_quiz_attempts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=KEY_MAX, unique=True)
    title: str = Field(max_length=TITLE_MAX)
    intro: str = Field(default="", max_length=INTRO_MAX)
    # Whose quiz it is and who may take it: one unit, or None for every unit (a bureau quiz).
    unit_code: str | None = Field(default=None, foreign_key="unit.code", max_length=16)
    questions_per_attempt: int
    seconds_per_question: int
    attempts_per_day: int
    status: str = Field(default=QuizStatus.DRAFT, max_length=12, index=True)
    opens_at: datetime
    closes_at: datetime
    created_by: int = Field(sa_type=BigInteger)
    created_at: datetime


class QuizQuestion(SQLModel, table=True):
    __tablename__ = "quiz_question"
    __table_args__ = (UniqueConstraint("quiz_id", "position", name="uq_quiz_question_position"),)

    id: int | None = Field(default=None, primary_key=True)
    quiz_id: int = Field(foreign_key="quiz.id", index=True)
    position: int
    text: str = Field(max_length=QUESTION_MAX)
    options: list[str] = Field(sa_column=Column(JSON, nullable=False))
    correct: int
    explanation: str = Field(default="", max_length=EXPLANATION_MAX)


class QuizAttempt(SQLModel, table=True):
    __tablename__ = "quiz_attempt"
    __table_args__ = (
        UniqueConstraint("quiz_id", "member_id", "day", "number", name="uq_quiz_attempt_of_day"),
        Index(
            "uq_quiz_attempt_active",
            "quiz_id",
            "member_id",
            unique=True,
            sqlite_where=text("finished_at IS NULL"),
            postgresql_where=text("finished_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    quiz_id: int = Field(foreign_key="quiz.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    day: date
    number: int
    question_ids: list[int] = Field(sa_column=Column(JSON, nullable=False))
    current: int = 0
    shown_at: datetime
    score: int = 0
    elapsed_ms: int = 0
    started_at: datetime
    finished_at: datetime | None = None


class QuizAnswer(SQLModel, table=True):
    __tablename__ = "quiz_answer"

    attempt_id: int = Field(foreign_key="quiz_attempt.id", primary_key=True)
    position: int = Field(primary_key=True)
    question_id: int = Field(foreign_key="quiz_question.id")
    # None: the time ran out (or the member moved on) without an answer.
    chosen: int | None = None
    correct: bool
    in_time: bool
    elapsed_ms: int


class QuizBest(SQLModel, table=True):
    """Each member's best attempt per quiz (the ranking), with the unit they belonged to then."""

    __tablename__ = "quiz_best"

    quiz_id: int = Field(foreign_key="quiz.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    unit_code: str = Field(foreign_key="unit.code", max_length=16, index=True)
    score: int
    elapsed_ms: int
    attempt_id: int = Field(foreign_key="quiz_attempt.id")
    achieved_at: datetime


class QuizUnknown(NotFound):
    key = "quiz_unknown"


class QuizNotOpen(DomainError):
    key = "quiz_not_open"


class LimitReached(DomainError):
    """params: limit."""

    key = "quiz_limit_reached"


class NotCurrent(DomainError):
    """A press for a question that is not the attempt's current one (answered already, stale, forged)."""

    key = "quiz_not_current"


class AttemptOver(DomainError):
    key = "quiz_attempt_over"


@dataclass(frozen=True)
class Shown:
    """The question to show now in an attempt."""

    attempt_id: int
    position: int
    total: int
    question: QuizQuestion
    shown_at: datetime
    deadline: datetime


@dataclass(frozen=True)
class Outcome:
    """What an answer did: counted or late, right or wrong, and the next question or the result."""

    position: int
    chosen: int | None
    correct: bool
    in_time: bool
    right_option: int
    # The answered question: its right option's text and the explanation the bank gives (may be empty).
    right_text: str
    explanation: str
    next: Shown | None
    result: Result | None


@dataclass(frozen=True)
class Result:
    score: int
    total: int
    elapsed_ms: int
    best_score: int
    best_elapsed_ms: int
    new_best: bool
    points: int
    attempts_left: int


def phase(quiz: Quiz, now: datetime) -> str:
    """draft, upcoming, open, ended or closed."""
    if quiz.status == QuizStatus.DRAFT:
        return "draft"
    if quiz.status == QuizStatus.CLOSED:
        return "closed"
    if now < quiz.opens_at:
        return "upcoming"
    return "open" if now < quiz.closes_at else "ended"


def _quiz_for(session: Session, member: Member, quiz_id: int) -> Quiz:
    """A published quiz this member may see (their unit's or every unit's)."""
    quiz = session.get(Quiz, quiz_id)
    if quiz is None or quiz.status == QuizStatus.DRAFT or quiz.unit_code not in (None, member.unit_code):
        raise QuizUnknown()
    return quiz


def open_quizzes(session: Session, member: Member, now: datetime) -> list[Quiz]:
    """Published quizzes of my unit (or of every unit) that have not ended, soonest closing first."""
    rows = session.exec(
        select(Quiz)
        .where(
            Quiz.status == QuizStatus.PUBLISHED,
            col(Quiz.closes_at) > now,
            (col(Quiz.unit_code).is_(None)) | (col(Quiz.unit_code) == member.unit_code),
        )
        .order_by(col(Quiz.closes_at), col(Quiz.id))
        .limit(LIST_SIZE)
    )
    return list(rows)


def attempts_today(session: Session, quiz_id: int, member_id: int, day: date) -> int:
    """How many attempts this member started today."""
    return session.exec(
        select(func.count()).where(
            QuizAttempt.quiz_id == quiz_id, QuizAttempt.member_id == member_id, QuizAttempt.day == day
        )
    ).one()


def best_of(session: Session, quiz_id: int, member_id: int) -> QuizBest | None:
    """My best attempt in a quiz, if any."""
    return session.get(QuizBest, (quiz_id, member_id))


@dataclass(frozen=True)
class Card:
    quiz: Quiz
    left: int
    best: QuizBest | None
    in_progress: bool


def quiz_card(session: Session, member: Member, quiz_id: int, day: date) -> Card:
    """A quiz as a member sees it: the quiz, attempts left today, my best, whether I have one in progress."""
    quiz = _quiz_for(session, member, quiz_id)
    left = max(0, quiz.attempts_per_day - attempts_today(session, quiz_id, member.id, day))
    active = _active(session, quiz_id, member.id) is not None
    return Card(quiz, left, best_of(session, quiz_id, member.id), active)


def _shown(session: Session, attempt: QuizAttempt, quiz: Quiz) -> Shown:
    question = session.get(QuizQuestion, attempt.question_ids[attempt.current])
    deadline = attempt.shown_at + timedelta(seconds=quiz.seconds_per_question)
    return Shown(attempt.id, attempt.current, len(attempt.question_ids), question, attempt.shown_at, deadline)


def _active(session: Session, quiz_id: int, member_id: int) -> QuizAttempt | None:
    return session.exec(
        select(QuizAttempt).where(
            QuizAttempt.quiz_id == quiz_id, QuizAttempt.member_id == member_id, col(QuizAttempt.finished_at).is_(None)
        )
    ).first()


def start(
    session: Session, member: Member, quiz_id: int, now: datetime, day: date, rng: random.Random | None = None
) -> Shown:
    """Start an attempt (or go back to the one in progress): N questions drawn from the bank, the first shown now.

    Refused when the quiz is not open or today's attempts are used up.
    """
    quiz = _quiz_for(session, member, quiz_id)
    if phase(quiz, now) != "open":
        raise QuizNotOpen()
    active = _active(session, quiz_id, member.id)
    if active is not None:
        return _shown(session, active, quiz)
    used = attempts_today(session, quiz_id, member.id, day)
    if used >= quiz.attempts_per_day:
        raise LimitReached(limit=quiz.attempts_per_day)
    bank = session.exec(select(QuizQuestion.id).where(QuizQuestion.quiz_id == quiz_id)).all()
    drawn = (rng or random.SystemRandom()).sample(list(bank), min(quiz.questions_per_attempt, len(bank)))
    attempt = QuizAttempt(
        quiz_id=quiz_id,
        member_id=member.id,
        day=day,
        number=used + 1,
        question_ids=drawn,
        shown_at=now,
        started_at=now,
    )
    try:
        with session.begin_nested():
            session.add(attempt)
            session.flush()
    except IntegrityError:
        # A concurrent start of the same member (double click): the other one won; show it.
        active = _active(session, quiz_id, member.id)
        if active is None:
            raise LimitReached(limit=quiz.attempts_per_day) from None
        return _shown(session, active, quiz)
    return _shown(session, attempt, quiz)


def _mine(session: Session, member: Member, attempt_id: int) -> tuple[QuizAttempt, Quiz]:
    attempt = session.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.member_id != member.id:
        raise NotCurrent()
    return attempt, session.get(Quiz, attempt.quiz_id)


def answer(
    session: Session,
    member: Member,
    attempt_id: int,
    position: int,
    chosen: int | None,
    now: datetime,
    day: date,
    rule: PointsRule | None,
) -> Outcome:
    """Answer the current question (chosen None: move on without answering). Late answers are stored as not
    counted; anything but the current question of my attempt in progress is refused and changes nothing."""
    attempt, quiz = _mine(session, member, attempt_id)
    if attempt.finished_at is not None:
        raise AttemptOver()
    if quiz.status == QuizStatus.CLOSED:
        raise QuizNotOpen()
    if position != attempt.current:
        raise NotCurrent()
    question = session.get(QuizQuestion, attempt.question_ids[position])
    if chosen is not None and not 0 <= chosen < len(question.options):
        raise NotCurrent()
    limit = timedelta(seconds=quiz.seconds_per_question)
    took = now - attempt.shown_at
    # No answer (the time ran out and the member moved on) is never in time; it costs the full limit.
    in_time = chosen is not None and took <= limit + GRACE
    correct = in_time and chosen == question.correct
    elapsed_ms = int(min(took, limit) / _MS) if in_time else int(limit / _MS)
    last = position + 1 == len(attempt.question_ids)
    moved = session.exec(
        update(QuizAttempt)
        .where(
            col(QuizAttempt.id) == attempt_id,
            col(QuizAttempt.current) == position,
            col(QuizAttempt.finished_at).is_(None),
        )
        .values(
            current=position + 1 if not last else position,
            shown_at=now,
            score=col(QuizAttempt.score) + int(correct),
            elapsed_ms=col(QuizAttempt.elapsed_ms) + elapsed_ms,
            finished_at=now if last else None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        raise NotCurrent()
    session.add(
        QuizAnswer(
            attempt_id=attempt_id,
            position=position,
            question_id=question.id,
            chosen=chosen,
            correct=correct,
            in_time=in_time,
            elapsed_ms=elapsed_ms,
        )
    )
    session.flush()
    session.refresh(attempt)
    outcome: dict[str, Any] = {"next": None, "result": None}
    if last:
        outcome["result"] = _finish(session, member, attempt, quiz, now, day, rule)
    else:
        outcome["next"] = _shown(session, attempt, quiz)
    right_text = question.options[question.correct]
    return Outcome(position, chosen, correct, in_time, question.correct, right_text, question.explanation, **outcome)


def _finish(
    session: Session,
    member: Member,
    attempt: QuizAttempt,
    quiz: Quiz,
    now: datetime,
    day: date,
    rule: PointsRule | None,
) -> Result:
    """The attempt is done: keep it as the best if it is, and pay the points the better score earns (once)."""
    best = best_of(session, quiz.id, member.id)
    before = best.score if best is not None else 0
    new_best = best is None or (attempt.score, -attempt.elapsed_ms) > (best.score, -best.elapsed_ms)
    if best is None:
        best = QuizBest(
            quiz_id=quiz.id,
            member_id=member.id,
            unit_code=member.unit_code,
            score=attempt.score,
            elapsed_ms=attempt.elapsed_ms,
            attempt_id=attempt.id,
            achieved_at=now,
        )
        session.add(best)
    elif new_best:
        best.score, best.elapsed_ms, best.attempt_id, best.achieved_at = (
            attempt.score,
            attempt.elapsed_ms,
            attempt.id,
            now,
        )
        session.add(best)
    session.flush()
    paid = 0
    if rule is not None and rule.amount > 0 and attempt.score > before:
        key = f"quiz:{quiz.id}:{member.id}:{attempt.score}"
        award = points.award(session, member.id, rule, key, day, amount=(attempt.score - before) * rule.amount)
        paid = award.amount
    left = max(0, quiz.attempts_per_day - attempts_today(session, quiz.id, member.id, day))
    return Result(
        attempt.score,
        len(attempt.question_ids),
        attempt.elapsed_ms,
        best.score,
        best.elapsed_ms,
        new_best,
        paid,
        left,
    )


def still_current(session: Session, attempt_id: int, position: int) -> bool:
    """Whether this question is still the one the attempt waits for (the countdown stops otherwise)."""
    attempt = session.get(QuizAttempt, attempt_id)
    return attempt is not None and attempt.finished_at is None and attempt.current == position


@dataclass(frozen=True)
class Ranked:
    rank: int
    name: str
    unit_code: str
    score: int
    elapsed_ms: int


@dataclass(frozen=True)
class UnitRanked:
    rank: int
    unit_code: str
    mean: float
    members: int


def ranking(session: Session, quiz_id: int, size: int = RANKING_SIZE) -> list[Ranked]:
    """The best members of a quiz: score, then time, then who got there first; opted-out members are left out."""
    rows = session.exec(
        select(Member.name, QuizBest.unit_code, QuizBest.score, QuizBest.elapsed_ms)
        .join(Member, col(Member.id) == col(QuizBest.member_id))
        .where(
            QuizBest.quiz_id == quiz_id,
            Member.status == Status.VERIFIED,
            col(Member.ranking_opt_out).is_(False),
        )
        .order_by(col(QuizBest.score).desc(), col(QuizBest.elapsed_ms), col(QuizBest.achieved_at), col(Member.id))
        .limit(size)
    ).all()
    return [Ranked(i + 1, name or "", unit, score, ms) for i, (name, unit, score, ms) in enumerate(rows)]


def unit_ranking(session: Session, quiz_id: int) -> list[UnitRanked]:
    """Units by the average of their members' best scores (every participant counts, opted out or not)."""
    mean = func.avg(QuizBest.score)
    rows = session.exec(
        select(QuizBest.unit_code, mean, func.count())
        .where(QuizBest.quiz_id == quiz_id)
        .group_by(QuizBest.unit_code)
        .order_by(mean.desc(), QuizBest.unit_code)
    ).all()
    return [UnitRanked(i + 1, unit, round(float(m), 2), n) for i, (unit, m, n) in enumerate(rows)]


def my_rank(session: Session, quiz_id: int, member_id: int) -> int | None:
    """My place among everyone's bests (opted-out members included in the count, so places never jump)."""
    mine = best_of(session, quiz_id, member_id)
    if mine is None:
        return None
    ahead = session.exec(
        select(func.count()).where(
            QuizBest.quiz_id == quiz_id,
            (col(QuizBest.score) > mine.score)
            | ((col(QuizBest.score) == mine.score) & (col(QuizBest.elapsed_ms) < mine.elapsed_ms)),
        )
    ).one()
    return ahead + 1


# --- cadres ----------------------------------------------------------------------------------------


def managed(session: Session, actor: Actor, quiz_id: int) -> Quiz:
    """A quiz this cadre manages: their unit's, or any for a bureau cadre."""
    actor.require_cadre()
    quiz = session.get(Quiz, quiz_id)
    if quiz is None or not (actor.is_bureau or (quiz.unit_code is not None and actor.can_manage(quiz.unit_code))):
        raise QuizUnknown()
    return quiz


def list_managed(session: Session, actor: Actor, limit: int, offset: int = 0) -> list[Quiz]:
    """The quizzes this cadre manages, newest first."""
    actor.require_cadre()
    query = select(Quiz)
    if not actor.is_bureau:
        query = query.where(col(Quiz.unit_code).in_([u for u in actor.cadre_units if u]))
    return list(session.exec(query.order_by(col(Quiz.id).desc()).limit(limit).offset(offset)))


@dataclass(frozen=True)
class QuizStats:
    questions: int
    attempts: int
    participants: int
    finished: int


def stats(session: Session, quiz_id: int) -> QuizStats:
    """Counts for the cadre's card."""
    questions = session.exec(select(func.count()).where(QuizQuestion.quiz_id == quiz_id)).one()
    attempts = session.exec(select(func.count()).where(QuizAttempt.quiz_id == quiz_id)).one()
    finished = session.exec(
        select(func.count()).where(QuizAttempt.quiz_id == quiz_id, col(QuizAttempt.finished_at).is_not(None))
    ).one()
    participants = session.exec(select(func.count()).where(QuizBest.quiz_id == quiz_id)).one()
    return QuizStats(questions, attempts, participants, finished)


def set_status(session: Session, actor: Actor, quiz_id: int, status: QuizStatus, now: datetime) -> Quiz:
    """Publish a draft or close a quiz (a repeated press changes nothing)."""
    quiz = managed(session, actor, quiz_id)
    allowed = {QuizStatus.PUBLISHED: QuizStatus.DRAFT, QuizStatus.CLOSED: QuizStatus.PUBLISHED}
    if quiz.status != allowed[status]:
        raise BadInput("quiz_status_changed", status=quiz.status)
    if status == QuizStatus.PUBLISHED and quiz.closes_at <= now:
        raise QuizNotOpen()
    quiz.status = status
    session.add(quiz)
    audit.record(session, actor.telegram_id, f"quiz_{status}", f"quiz:{quiz.id}")
    return quiz


def full_ranking(session: Session, quiz_id: int) -> list[tuple[str, str, int, int, bool]]:
    """Every participant's best for the cadre's CSV: name (empty when opted out), unit, score, ms, opted out."""
    rows = session.exec(
        select(Member.name, QuizBest.unit_code, QuizBest.score, QuizBest.elapsed_ms, Member.ranking_opt_out)
        .join(Member, col(Member.id) == col(QuizBest.member_id))
        .where(QuizBest.quiz_id == quiz_id)
        .order_by(col(QuizBest.score).desc(), col(QuizBest.elapsed_ms), col(QuizBest.achieved_at))
    ).all()
    return [("" if out else (name or ""), unit, score, ms, out) for name, unit, score, ms, out in rows]


def export_member(session: Session, member_id: int) -> dict[str, Any]:
    """The member's attempts with their answers, and their best score per quiz (for "export my data")."""
    attempts = session.exec(
        select(QuizAttempt, Quiz.title)
        .join(Quiz, col(Quiz.id) == col(QuizAttempt.quiz_id))
        .where(col(QuizAttempt.member_id) == member_id)
        .order_by(col(QuizAttempt.id))
    ).all()
    answers: dict[int, list[dict[str, Any]]] = {a.id: [] for a, _title in attempts if a.id is not None}
    if answers:
        rows = session.exec(
            select(QuizAnswer)
            .where(col(QuizAnswer.attempt_id).in_(list(answers)))
            .order_by(col(QuizAnswer.attempt_id), col(QuizAnswer.position))
        )
        for row in rows:
            answers[row.attempt_id].append(row.model_dump(exclude={"attempt_id"}))
    bests = session.exec(
        select(QuizBest, Quiz.title)
        .join(Quiz, col(Quiz.id) == col(QuizBest.quiz_id))
        .where(col(QuizBest.member_id) == member_id)
        .order_by(col(QuizBest.quiz_id))
    )
    return {
        "attempts": [
            {"quiz": title, **a.model_dump(exclude={"member_id", "question_ids"}), "answers": answers[a.id]}
            for a, title in attempts
            if a.id is not None
        ],
        "best_scores": [{"quiz": title, **b.model_dump(exclude={"member_id"})} for b, title in bests],
    }
