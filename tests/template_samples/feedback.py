"""Samples of the feedback box (意见箱) and satisfaction (评家) templates: worst case first."""

from __future__ import annotations

from datetime import date
from typing import Any

from models.feedback import COMMENT_MAX, MIN_SHOWN, SHOWN_MESSAGES, TEXT_MAX, THREADS_PER_DAY
from tests.template_samples._shared import AT, BIG, CONFIG, NAME, longest_unit, typed

CAPTIONS = {"feedback/csv_caption"}
LABEL_VARS = {"ref": "AbC-_9"}


def thread(locale: str, **overrides: Any) -> dict[str, Any]:
    """A thread at its longest: every shown message at the length limit, a long unit name."""
    messages = [{"mine": i % 2 == 0, "body": typed(TEXT_MAX), "at": AT} for i in range(SHOWN_MESSAGES)]
    fields = {
        "ref": "AbC-_9",
        "unit": longest_unit(locale),
        "anonymous": False,
        "status": "replied",
        "sender": NAME,
        "updated_at": AT,
        "messages": messages,
        "earlier": BIG,
    }
    return {**fields, **overrides}


def short(locale: str, **overrides: Any) -> dict[str, Any]:
    fields = {"messages": [{"mine": True, "body": "食堂", "at": AT}], "earlier": 0}
    return thread(locale, **{**fields, **overrides})


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    unit = longest_unit(locale)
    periods = [date(2026, 10, 1), date(2026, 7, 1), date(2026, 4, 1), date(2026, 1, 1)]
    rows = [
        {"unit": u.name(locale), "cells": [{"count": 99_999, "mean": 4.25}, {"count": 3, "mean": None}] * 2}
        for u in CONFIG.units
    ]
    return {
        "feedback/home": [{"unit": unit, "rated": False}, {"unit": unit, "rated": True}],
        "feedback/ask_text": [{"anonymous": True, "max": TEXT_MAX}, {"anonymous": False, "max": TEXT_MAX}],
        "feedback/sent": [{"thread": short(locale, anonymous=True)}, {"thread": short(locale)}],
        "feedback/mine": [
            {"threads": [thread(locale, anonymous=True, status=s) for s in ("new", "replied", "closed")] * 4},
            {"threads": [short(locale, messages=[])]},
            {"threads": []},
        ],
        "feedback/my_thread": [{"thread": thread(locale)}, {"thread": short(locale, anonymous=True, status="new")}],
        "feedback/ask_answer": [{"thread": short(locale)}],
        "feedback/queue": [
            {"threads": [thread(locale, status=s) for s in ("new", "replied", "closed")] * 4, "page": 0},
            {"threads": [short(locale, anonymous=True, sender=None), short(locale, sender=None)], "page": 1},
            {"threads": [], "page": 0},
            {"threads": [], "page": 2},
        ],
        "feedback/cadre_thread": [
            {"thread": thread(locale)},
            {"thread": short(locale, anonymous=True, sender=None, status="closed")},
            {"thread": short(locale, sender=None, status="new")},
        ],
        "feedback/ask_reply": [{"thread": short(locale, anonymous=True)}, {"thread": short(locale)}],
        "feedback/replied": [{"delivered": True}, {"delivered": False}],
        "feedback/to_cadre_new": [{"thread": thread(locale)}, {"thread": short(locale, anonymous=True)}],
        "feedback/to_cadre_answer": [{"thread": thread(locale)}, {"thread": short(locale, messages=[])}],
        "feedback/to_member_reply": [{"thread": thread(locale)}],
        "feedback/to_member_closed": [{"thread": short(locale)}],
        "feedback/rate_comment": [{"score": 5, "max": COMMENT_MAX}, {"score": 1, "max": COMMENT_MAX}],
        "feedback/rated": [{"score": 5, "comment": True}, {"score": 1, "comment": False}],
        "feedback/ask_rating": [{"unit": unit}],
        "feedback/index": [
            {"rows": rows, "periods": periods, "every": 3, "minimum": MIN_SHOWN, "comments": []},
            {
                "rows": rows[:1],
                "periods": periods,
                "every": 3,
                "minimum": MIN_SHOWN,
                "comments": [typed(COMMENT_MAX)] * 5,
            },
        ],
        "feedback/csv_caption": [{"minimum": MIN_SHOWN}],
        "errors/feedback_thread_unknown": [{}],
        "errors/feedback_thread_closed": [{}],
        "errors/feedback_text_empty": [{}],
        "errors/feedback_text_too_long": [{"max": TEXT_MAX, "length": BIG}],
        "errors/feedback_already_rated": [{}],
        "errors/feedback_round_over": [{}],
        "errors/feedback_bad_score": [{}],
        "errors/feedback_too_many": [{"limit": THREADS_PER_DAY}],
    }
