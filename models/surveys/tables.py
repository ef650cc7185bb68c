"""Survey tables, question kinds, limits and the plain shapes operations take and return.

Anonymity is a property of these tables (README, "Surveys and quizzes"): an anonymous survey's answers
(`survey_response`, `survey_answer`) carry no member reference, no time and random ids; that a member responded
(`survey_participation`, for "submit once", points and reminders) is kept apart with nothing shared but the
survey. Answers of anonymous surveys are written in shuffled batches (models/surveys/answering.py `mix`), so
neither the order of rows nor the transaction that wrote them points to one respondent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.audience import Audience
from models.clock import utcnow

TITLE_MAX = 60
INTRO_MAX = 1000
QUESTION_MAX = 300
OPTION_MAX = 40
OPTIONS_MAX = 10
QUESTIONS_MAX = 30
TEXT_LIMIT_MAX = 1000
TEXT_LIMIT_DEFAULT = 300
POINTS_MAX = 1000
RATING_LOW, RATING_HIGH = 1, 5
# Age bands of the breakdowns (coarse on purpose: see the anonymity design).
UNDER_35, FROM_35, AGE_UNKNOWN = "under35", "35plus", "unknown"


class Kind(enum.StrEnum):
    SINGLE = "single"
    MULTI = "multi"
    RATING = "rating"
    TEXT = "text"


class SurveyStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"


class Phase(enum.StrEnum):
    """Where a survey stands in time (derived from status and times, never stored)."""

    DRAFT = "draft"
    UPCOMING = "upcoming"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Question:
    """One question: its text, kind, options (choice kinds), whether it must be answered, and its limits."""

    text: str
    kind: Kind
    options: tuple[str, ...] = ()
    required: bool = True
    # Multiple choice: at most this many ticks (None: any number).
    max_choices: int | None = None
    # Free text: at most this many characters.
    max_length: int = TEXT_LIMIT_DEFAULT

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "kind": self.kind.value,
            "options": list(self.options),
            "required": self.required,
            "max_choices": self.max_choices,
            "max_length": self.max_length,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Question:
        return cls(
            text=raw["text"],
            kind=Kind(raw["kind"]),
            options=tuple(raw.get("options", ())),
            required=bool(raw.get("required", True)),
            max_choices=raw.get("max_choices"),
            max_length=int(raw.get("max_length", TEXT_LIMIT_DEFAULT)),
        )


@dataclass(frozen=True)
class SurveyDraft:
    """Everything a cadre decides about a survey (from the import file or the in-chat builder)."""

    title: str
    opens_at: datetime
    closes_at: datetime
    questions: tuple[Question, ...]
    intro: str = ""
    audience: Audience = field(default_factory=Audience)
    anonymous: bool = True
    points: int = 0
    results_public: bool = False


class Survey(SQLModel, table=True):
    __tablename__ = "survey"
    __table_args__ = (
        CheckConstraint("points >= 0", name="ck_survey_points_nonneg"),
        CheckConstraint("closes_at > opens_at", name="ck_survey_window"),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=TITLE_MAX)
    intro: str = Field(default="", max_length=INTRO_MAX)
    questions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # models/audience.py Audience as JSON, already narrowed to the creator's scope.
    audience: str = Field(max_length=2000)
    anonymous: bool = True
    results_public: bool = False
    points: int = 0
    status: str = Field(default=SurveyStatus.PUBLISHED, max_length=12)
    opens_at: datetime
    closes_at: datetime = Field(index=True)
    created_by: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow)
    # Set once by the scheduled work (a conditional UPDATE claims each), so a restart never invites twice.
    invited_at: datetime | None = None
    reminded_at: datetime | None = None

    @property
    def question_list(self) -> list[Question]:
        return [Question.from_dict(q) for q in self.questions]

    @property
    def target(self) -> Audience:
        return Audience.from_json(self.audience)


class SurveyProgress(SQLModel, table=True):
    """A member's answers so far (kept across restarts); `sealed`: submitted, waiting for the next shuffled batch
    of an anonymous survey (the only time an anonymous answer sits next to a member, before it is mixed)."""

    __tablename__ = "survey_progress"

    survey_id: int = Field(foreign_key="survey.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The question being asked (len(questions): the summary before Submit).
    position: int = 0
    sealed: bool = False
    unit_code: str | None = Field(default=None, max_length=16)
    age_band: str = Field(default=AGE_UNKNOWN, max_length=8)
    updated_at: datetime = Field(default_factory=utcnow)


class SurveyParticipation(SQLModel, table=True):
    """That a member responded: submit once, points once, reminders. No time, nothing of the answers."""

    __tablename__ = "survey_participation"

    survey_id: int = Field(foreign_key="survey.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)


class SurveyResponse(SQLModel, table=True):
    """One submitted response. Anonymous: random id, no member, no time; named: the member and when.

    SQLite stores it WITHOUT ROWID, clustered by the random id, so not even the hidden rowid keeps the order."""

    __tablename__ = "survey_response"
    __table_args__ = (
        UniqueConstraint("survey_id", "member_id", name="uq_survey_response_member"),
        {"sqlite_with_rowid": False},
    )

    id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    survey_id: int = Field(foreign_key="survey.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    submitted_at: datetime | None = None
    # Breakdowns only (shown for groups of at least [surveys] min_group respondents).
    unit_code: str | None = Field(default=None, max_length=16)
    age_band: str = Field(default=AGE_UNKNOWN, max_length=8)


class SurveyAnswer(SQLModel, table=True):
    """One answer of a response: a choice (one row per ticked option), a rating, or a text."""

    __tablename__ = "survey_answer"
    __table_args__ = ({"sqlite_with_rowid": False},)

    response_id: int = Field(
        sa_type=BigInteger,
        foreign_key="survey_response.id",
        primary_key=True,
        sa_column_kwargs={"autoincrement": False},
    )
    question: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    # The option's index for choices (one row each), 0 for a rating or a text.
    item: int = Field(default=0, primary_key=True, sa_column_kwargs={"autoincrement": False})
    rating: int | None = None
    text: str | None = Field(default=None, max_length=TEXT_LIMIT_MAX)


@dataclass(frozen=True)
class Listed:
    """A survey in a member's list, with where the member stands."""

    survey: Survey
    phase: Phase
    answered: bool
    started: bool


@dataclass(frozen=True)
class Step:
    """What to show the member next: a question (index, with the answer so far) or the summary (question None)."""

    survey: Survey
    progress: SurveyProgress
    question: int | None


@dataclass(frozen=True)
class Submitted:
    points: int
    mixed: int
    preview: bool = False


def age_band(birth_year: int | None, today: date) -> str:
    """The member's age band this calendar year."""
    if birth_year is None:
        return AGE_UNKNOWN
    return UNDER_35 if today.year - birth_year < 35 else FROM_35
