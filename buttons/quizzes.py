"""Buttons of quizzes (知识竞赛): the list, a quiz, answers, rankings, and the cadres' quiz management."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class QuizList(Button, prefix="qz:list"):
    pass


@dataclass(frozen=True)
class ShowQuiz(Button, prefix="qz:show"):
    quiz_id: int


@dataclass(frozen=True)
class StartQuiz(Button, prefix="qz:start"):
    """Start an attempt, or go back to the one in progress."""

    quiz_id: int


@dataclass(frozen=True)
class AnswerQuiz(Button, prefix="qz:ans"):
    """An option of one question of one attempt: only the attempt's current question is taken."""

    attempt_id: int
    position: int
    option: int


@dataclass(frozen=True)
class SkipQuestion(Button, prefix="qz:next"):
    """Move on from a question whose time ran out (it counts as not answered)."""

    attempt_id: int
    position: int


@dataclass(frozen=True)
class QuizRanking(Button, prefix="qz:rank"):
    quiz_id: int


@dataclass(frozen=True)
class QuizAdmin(Button, prefix="qz:admin"):
    page: int | None = None


@dataclass(frozen=True)
class ManageQuiz(Button, prefix="qz:manage"):
    quiz_id: int


@dataclass(frozen=True)
class PublishQuiz(Button, prefix="qz:publish"):
    quiz_id: int


@dataclass(frozen=True)
class CloseQuiz(Button, prefix="qz:close"):
    quiz_id: int


@dataclass(frozen=True)
class QuizCsv(Button, prefix="qz:csv"):
    quiz_id: int
