"""Worst-case samples of the surveys templates (handlers/surveys.py, scheduled/surveys.py)."""

from __future__ import annotations

from typing import Any

from handlers.surveys import CLUBS_SHOWN
from models.clubs import NAME_MAX as CLUB_NAME_MAX
from models.surveys.answering import LIST_SIZE
from models.surveys.manage import ADMIN_LIST_SIZE
from models.surveys.tables import (
    INTRO_MAX,
    OPTION_MAX,
    OPTIONS_MAX,
    POINTS_MAX,
    QUESTION_MAX,
    QUESTIONS_MAX,
    TEXT_LIMIT_MAX,
    TITLE_MAX,
)
from tests.template_samples._shared import AT, BIG, CONFIG, longest_unit, typed, unit_names

# Sent as a photo's or a document's caption.
CAPTIONS = {"surveys/chart_caption", "surveys/csv_caption"}
LABEL_VARS = {"title": typed(TITLE_MAX), "label": typed(OPTION_MAX), "questions": QUESTIONS_MAX, "id": BIG}
MIN_GROUP = CONFIG.surveys.min_group


def survey(**overrides: Any) -> dict[str, Any]:
    """A survey as handlers/surveys.py _survey_view shows it, every text at its longest."""
    fields = {
        "id": BIG,
        "title": typed(TITLE_MAX),
        "intro": typed(INTRO_MAX),
        "questions": QUESTIONS_MAX,
        "anonymous": True,
        "points": POINTS_MAX,
        "results_public": True,
        "opens_at": AT,
        "closes_at": AT,
        "phase": "open",
    }
    return {**fields, **overrides}


def _question(kind: str) -> dict[str, Any]:
    return {
        "title": typed(TITLE_MAX),
        "number": QUESTIONS_MAX,
        "total": QUESTIONS_MAX,
        "text": typed(QUESTION_MAX),
        "kind": kind,
        "required": kind != "text",
        "max_choices": OPTIONS_MAX,
        "max_length": TEXT_LIMIT_MAX,
        "answer": typed(TEXT_LIMIT_MAX),
    }


def _result(kind: str) -> dict[str, Any]:
    bars = [{"label": typed(OPTION_MAX), "count": BIG, "percent": 100.0} for _ in range(OPTIONS_MAX)]
    return {
        "number": QUESTIONS_MAX,
        "text": typed(QUESTION_MAX),
        "kind": kind,
        "answered": BIG,
        "bars": [] if kind == "text" else bars,
        "mean": 4.99 if kind == "rating" else None,
        "texts": [typed(TEXT_LIMIT_MAX)] * 3 if kind == "text" else [],
        "more_texts": BIG if kind == "text" else 0,
    }


NEW_FIELDS = (
    "title",
    "intro",
    "audience",
    "units",
    "clubs",
    "under_35",
    "anonymous",
    "opens_at",
    "closes_at",
    "points",
)
QUESTION_FIELDS = ("text", "kind", "options", "max_choices", "max_length", "required")


def _draft_item(kind: str) -> dict[str, Any]:
    options = [typed(OPTION_MAX)] * OPTIONS_MAX if kind in ("single", "multi") else []
    return {
        "text": typed(QUESTION_MAX),
        "kind": kind,
        "options": options,
        "required": True,
        "max_choices": OPTIONS_MAX if kind == "multi" else None,
        "max_length": TEXT_LIMIT_MAX if kind == "text" else None,
    }


def audience(locale: str) -> dict[str, Any]:
    """The widest audience a draft card names: every unit, ten clubs at their longest and more, under 35."""
    return {
        "units": unit_names(locale),
        "clubs": [typed(CLUB_NAME_MAX)] * CLUBS_SHOWN,
        "more_clubs": BIG,
        "under_35": True,
        "reach": BIG,
    }


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    unit = longest_unit(locale)
    rates = [{"unit": unit, "audience": BIG, "responded": BIG, "percent": 100.0}] * (len(CONFIG.units) - 1)
    rates.append({"unit": unit, "audience": BIG, "responded": None, "percent": None})
    bands = [{"band": b, "respondents": BIG} for b in ("under35", "35plus")] + [
        {"band": "unknown", "respondents": None}
    ]
    results = {
        "survey": survey(),
        "page": BIG,
        "pages": BIG,
        "responses": BIG,
        "respondents": BIG,
        "waiting": BIG,
        "min_group": MIN_GROUP,
    }
    listed = [survey(answered=False, started=False)] * LIST_SIZE
    return {
        "surveys/list": [
            {"surveys": listed},
            {"surveys": [survey(answered=True, started=False, phase="closed"), survey(answered=False, started=True)]},
            {"surveys": [survey(answered=False, started=False, points=0, questions=1)]},
            {"surveys": []},
        ],
        "surveys/card": [
            {"survey": survey(), "answered": False, "started": True},
            {"survey": survey(anonymous=False, points=1, intro=""), "answered": True, "started": False},
            {"survey": survey(phase="closed", points=0), "answered": False, "started": False},
        ],
        "surveys/question": [
            _question("multi"),
            _question("single") | {"answer": None},
            _question("rating") | {"answer": "5"},
            _question("text") | {"answer": None},
            _question("multi") | {"max_choices": None},
        ],
        "surveys/summary": [
            {
                "survey": survey(),
                "answers": [{"text": typed(QUESTION_MAX), "answer": typed(TEXT_LIMIT_MAX), "required": True}]
                * QUESTIONS_MAX,
                "missing": list(range(1, QUESTIONS_MAX + 1)),
            },
            {
                "survey": survey(),
                "answers": [
                    {"text": "a", "answer": None, "required": True},
                    {"text": "b", "answer": None, "required": False},
                ],
                "missing": [],
            },
        ],
        "surveys/paused": [{"title": typed(TITLE_MAX)}],
        "surveys/submitted": [
            {"survey": survey(), "points": POINTS_MAX},
            {"survey": survey(anonymous=False), "points": 0},
            {"survey": survey(), "points": 1},
        ],
        "surveys/admin_list": [
            {"surveys": [survey(respondents=BIG)] * ADMIN_LIST_SIZE},
            {"surveys": [survey(respondents=0, anonymous=False, phase="upcoming")]},
            {"surveys": []},
        ],
        "surveys/results": [
            results | {"page": 0, "rates": rates, "bands": bands, "questions": []},
            results | {"rates": [], "bands": [], "questions": [_result("multi")] * 3},
            results | {"rates": [], "bands": [], "questions": [_result("text"), _result("rating"), _result("single")]},
            results | {"page": 0, "waiting": 0, "rates": [], "bands": [], "questions": []},
        ],
        "surveys/chart_caption": [
            {"title": typed(TITLE_MAX), "number": QUESTIONS_MAX, "answered": BIG, "mean": 4.99},
            {"title": "t", "number": 1, "answered": 0, "mean": None},
        ],
        "surveys/csv_caption": [{"title": typed(TITLE_MAX), "responses": BIG}],
        "surveys/invite": [
            {"survey": survey()},
            {"survey": survey(anonymous=False, points=0, intro="", questions=1)},
        ],
        "surveys/reminder": [{"survey": survey()}, {"survey": survey(anonymous=False)}],
        "errors/survey_unknown": [{}],
        "errors/survey_not_open": [{"opens_at": AT}],
        "errors/survey_closed": [{}],
        "errors/survey_already_answered": [{}],
        "errors/survey_not_started": [{}],
        "errors/survey_step_passed": [{}],
        "errors/survey_too_many": [{"max": OPTIONS_MAX}],
        "errors/survey_type_answer": [{}],
        "errors/survey_answer_required": [{}],
        "errors/survey_use_buttons": [{}],
        "errors/survey_text_empty": [{}],
        "errors/survey_text_too_long": [{"max": TEXT_LIMIT_MAX, "length": BIG}],
        "errors/survey_invalid": [{"problem": "options_count", "field": "max_choices"}],
        "errors/survey_form_text_empty": [{}],
        "errors/survey_form_text_too_long": [{"max": TEXT_LIMIT_MAX}, {"max": 1}],
        "errors/survey_form_number_range": [{"low": 0, "high": POINTS_MAX}],
        "errors/survey_form_time_past": [{}],
        "errors/survey_form_time_after_opens_at": [{}],
        "errors/survey_form_options": [{"max": OPTIONS_MAX}],
        "errors/survey_not_draft": [{}],
        "errors/survey_preview_needs": [{}],
        "surveys/draft": [
            {
                "survey": survey(),
                "items": [_draft_item(kind) for kind in ("single", "multi")] * (QUESTIONS_MAX // 2),
                "audience": audience(locale),
            },
            {
                "survey": survey(anonymous=False, points=1),
                "items": [_draft_item("text") | {"required": False}],
                "audience": {"units": [], "clubs": [], "more_clubs": 0, "under_35": False, "reach": 1},
            },
            {"survey": survey(points=0), "items": [], "audience": audience(locale) | {"reach": 0}},
        ],
        "surveys/published": [{"survey": survey(), "audience": audience(locale)}],
        "errors/form_choice_not_offered": [{}],
        "errors/survey_already_open": [{}],
        "errors/survey_no_questions": [{}],
        "errors/survey_form_max_choices": [{"options": OPTIONS_MAX}],
        "surveys/preview_done": [{"title": typed(TITLE_MAX)}],
        **{f"survey_new/ask_{name}": [{"data": {"points_max": POINTS_MAX}}] for name in NEW_FIELDS},
        **{f"survey_question/ask_{name}": [{"data": {"options": ["a", "b"]}}] for name in QUESTION_FIELDS},
    }
