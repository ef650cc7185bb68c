"""Buttons of the feedback box (意见箱) and satisfaction ratings (评家). Threads are named by their random token."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class FeedbackHome(Button, prefix="fb:home"):
    pass


@dataclass(frozen=True)
class Write(Button, prefix="fb:write"):
    """Start a new message: anonymous 1, named 0."""

    anonymous: int


@dataclass(frozen=True)
class MyThreads(Button, prefix="fb:mine"):
    page: int | None = None


@dataclass(frozen=True)
class MyThread(Button, prefix="fb:my"):
    token: str


@dataclass(frozen=True)
class AnswerBack(Button, prefix="fb:answer"):
    token: str


@dataclass(frozen=True)
class Queue(Button, prefix="fb:queue"):
    page: int | None = None


@dataclass(frozen=True)
class CadreThread(Button, prefix="fb:thread"):
    token: str


@dataclass(frozen=True)
class ReplyThread(Button, prefix="fb:reply"):
    token: str


@dataclass(frozen=True)
class CloseThread(Button, prefix="fb:close"):
    token: str


@dataclass(frozen=True)
class RateUnion(Button, prefix="fb:rate"):
    """A score for the period starting on `period` (YYYYMMDD)."""

    period: int
    score: int


@dataclass(frozen=True)
class SubmitRating(Button, prefix="fb:rate_send"):
    """Send the chosen score without a comment."""

    period: int
    score: int


@dataclass(frozen=True)
class SatisfactionIndex(Button, prefix="fb:index"):
    pass


@dataclass(frozen=True)
class SatisfactionCsv(Button, prefix="fb:csv"):
    pass
