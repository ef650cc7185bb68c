"""Samples of the quiz (知识竞赛) templates: worst case first."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from models.quizzes import (
    EXPLANATION_MAX,
    INTRO_MAX,
    LIST_SIZE,
    MAX_ATTEMPTS_PER_DAY,
    MAX_OPTIONS,
    MAX_PER_ATTEMPT,
    MAX_SECONDS,
    OPTION_MAX,
    QUESTION_MAX,
    RANKING_SIZE,
)
from models.quizzes import TITLE_MAX as QUIZ_TITLE_MAX
from tests.template_samples._shared import AT, BIG, CONFIG, NAME, longest_unit, typed

CAPTIONS = {"quizzes/csv_caption"}
LABEL_VARS = {"left": MAX_ATTEMPTS_PER_DAY, "letter": "F", "path": "题库/" + "x" * 200 + ".toml"}

TITLE = typed(QUIZ_TITLE_MAX)
PREV = {
    "right": False,
    "in_time": True,
    "letter": "F",
    "answer": typed(OPTION_MAX),
    "explanation": typed(EXPLANATION_MAX),
}


def quiz(locale: str, **overrides: Any) -> dict[str, Any]:
    fields = {
        "id": BIG,
        "title": TITLE,
        "intro": typed(INTRO_MAX),
        "unit": longest_unit(locale),
        "per_attempt": MAX_PER_ATTEMPT,
        "seconds": MAX_SECONDS,
        "per_day": MAX_ATTEMPTS_PER_DAY,
        "opens_at": AT,
        "closes_at": AT,
        "phase": "open",
    }
    return {**fields, **overrides}


def question(**overrides: Any) -> dict[str, Any]:
    fields = {
        "number": MAX_PER_ATTEMPT,
        "total": MAX_PER_ATTEMPT,
        "text": typed(QUESTION_MAX),
        "options": [{"letter": "ABCDEF"[i], "text": typed(OPTION_MAX)} for i in range(MAX_OPTIONS)],
        "seconds": MAX_SECONDS,
        "prev": PREV,
    }
    return {**fields, **overrides}


def rankings(locale: str) -> dict[str, Any]:
    members = [
        {"rank": i + 1, "name": NAME, "unit": longest_unit(locale), "score": MAX_PER_ATTEMPT, "seconds": "15000.0"}
        for i in range(RANKING_SIZE)
    ]
    units = [{"rank": i + 1, "unit": u.name(locale), "mean": 49.99, "members": BIG} for i, u in enumerate(CONFIG.units)]
    return {"members": members, "units": units}


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    stats = SimpleNamespace(questions=500, attempts=BIG, participants=BIG, finished=BIG)
    one = {"rank": 1, "unit": longest_unit(locale), "mean": 1.0, "members": 1}
    return {
        "quizzes/list": [
            {"quizzes": [quiz(locale, intro="")] * LIST_SIZE},
            {"quizzes": [quiz(locale, phase="upcoming", per_attempt=1, per_day=1)]},
            {"quizzes": []},
        ],
        "quizzes/card": [
            {"quiz": quiz(locale), "left": MAX_ATTEMPTS_PER_DAY, "best": {"score": 50, "seconds": "15000.0"}},
            {"quiz": quiz(locale, intro="", phase="ended", per_attempt=1, per_day=1), "left": 0, "best": None},
        ],
        "quizzes/question": [
            {"q": question(), "remaining": MAX_SECONDS},
            {"q": question(total=1, prev=None), "remaining": 1},
            {"q": question(prev={**PREV, "right": True, "explanation": ""}), "remaining": 1},
            {"q": question(prev={**PREV, "in_time": False}), "remaining": 1},
        ],
        "quizzes/timeout": [{"q": question()}, {"q": question(prev=None)}],
        "quizzes/result": [
            {
                "title": TITLE,
                "score": 50,
                "total": 50,
                "seconds": "15000.0",
                "best": 50,
                "best_seconds": "15000.0",
                "new_best": False,
                "points": BIG,
                "left": MAX_ATTEMPTS_PER_DAY,
                "prev": PREV,
            },
            {
                "title": TITLE,
                "score": 0,
                "total": 1,
                "seconds": "1.0",
                "best": 0,
                "best_seconds": "1.0",
                "new_best": True,
                "points": 0,
                "left": 0,
                "prev": {**PREV, "right": True, "explanation": ""},
            },
        ],
        "quizzes/ranking": [
            {"title": TITLE, "mine": {"rank": BIG, "score": 50, "seconds": "15000.0"}, **rankings(locale)},
            {"title": TITLE, "mine": None, "members": [], "units": []},
            {"title": TITLE, "mine": None, "members": [], "units": [one]},
        ],
        "quizzes/admin_list": [
            {"quizzes": [quiz(locale)] * 10},
            {"quizzes": [quiz(locale, unit=None)]},
            {"quizzes": []},
        ],
        "quizzes/admin_card": [
            {"quiz": quiz(locale), "stats": stats, **rankings(locale)},
            {"quiz": quiz(locale, unit=None, phase="draft"), "stats": stats, "members": [], "units": [one]},
        ],
        "quizzes/csv_caption": [{"title": TITLE}],
        "errors/quiz_unknown": [{}],
        "errors/quiz_not_open": [{}],
        "errors/quiz_limit_reached": [{"limit": MAX_ATTEMPTS_PER_DAY}, {"limit": 1}],
        "errors/quiz_not_current": [{}],
        "errors/quiz_attempt_over": [{}],
        "errors/quiz_status_changed": [{"status": "closed"}],
    }
