"""Template samples of reading (e校园): worst cases first (longest titles, notes, names, every unit)."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace
from typing import Any

from models import reading
from tests.template_samples._shared import AT, BIG, CONFIG, LIMITS, NAME, longest_unit, typed

CAPTIONS = {"reading/book", "reading/certificate"}
LABEL_VARS = {"org": CONFIG.org_name_en, "day": "2026-12-31"}


def festival(**overrides: Any) -> SimpleNamespace:
    fields = {
        "id": BIG,
        "title": typed(reading.TITLE_MAX),
        "starts_on": date(2026, 12, 1),
        "ends_on": date(2026, 12, 31),
        "goal_kind": "books",
        "goal": reading.GOAL_MAX,
    }
    return SimpleNamespace(**{**fields, **overrides})


def book(**overrides: Any) -> SimpleNamespace:
    fields = {
        "id": BIG,
        "title": typed(reading.TITLE_MAX),
        "author": typed(reading.AUTHOR_MAX),
        "note": typed(reading.NOTE_MAX),
        "where": typed(reading.WHERE_MAX),
    }
    return SimpleNamespace(**{**fields, **overrides})


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    progress = SimpleNamespace(checkins=BIG, books=BIG, streak=BIG, reached_at=AT, last_day=date(2026, 12, 2))
    today = date(2026, 12, 2)
    leaders = [SimpleNamespace(rank=i + 1, name=NAME, done=BIG, streak=BIG) for i in range(LIMITS.ranking_size)]
    units = [{"name": longest_unit(locale), "percent": 100, "reached": BIG, "members": BIG}] * len(CONFIG.units)
    note = SimpleNamespace(
        note=SimpleNamespace(text=typed(reading.READING_NOTE_MAX), likes=BIG), author=NAME, liked=True, mine=False
    )
    home = {"festival": festival(), "running": True, "progress": progress, "checked_today": True, "today": today}
    max_only = [{"max": BIG}]
    return {
        "reading/home": [
            home,
            {**home, "running": False, "festival": festival(starts_on=date(2027, 1, 1)), "progress": None},
            {**home, "running": False, "checked_today": False, "festival": festival(goal_kind="checkins", goal=1)},
            {**home, "festival": None, "progress": None, "running": False},
        ],
        "reading/ask_checkin": [{"max": reading.CHECKIN_MAX}],
        "reading/checked_in": [
            {"checkins": BIG, "streak": BIG, "points": BIG},
            {"checkins": 1, "streak": 1, "points": 0},
        ],
        "reading/goal_reached": [{"title": typed(reading.TITLE_MAX), "points": BIG}, {"title": "读书节", "points": 0}],
        "reading/certificate": [{"name": NAME, "title": typed(reading.TITLE_MAX), "org": CONFIG.org_name(locale)}],
        "reading/board": [
            {"festival": festival(), "leaders": leaders, "units": units, "opted_out": True},
            {"festival": festival(goal_kind="checkins", goal=1), "leaders": [], "units": [], "opted_out": False},
        ],
        "reading/books": [{"books": [book()] * 8}, {"books": [book(author="")]}, {"books": []}],
        "reading/book": [
            {"book": book(), "mark": "finished", "readers": BIG, "finished": BIG, "has_note": True},
            {"book": book(author="", note="", where=""), "mark": None, "readers": 0, "finished": 0, "has_note": False},
            {"book": book(), "mark": "reading", "readers": 1, "finished": 1, "has_note": False},
        ],
        "reading/removed": [{"title": typed(reading.TITLE_MAX)}],
        "reading/write_note": [{"title": typed(reading.TITLE_MAX), "min": BIG, "max": reading.READING_NOTE_MAX}],
        "reading/note_saved": [
            {"counts": True, "length": BIG, "min": BIG},
            {"counts": False, "length": 1, "min": BIG},
        ],
        "reading/notes": [
            {"title": typed(reading.TITLE_MAX), "notes": [note] * 3, "page": BIG},
            {"title": "书", "notes": [], "page": 0},
        ],
        "reading/book_added": [{"title": typed(reading.TITLE_MAX)}],
        "reading/festival_opened": [{"festival": festival()}, {"festival": festival(goal_kind="checkins", goal=1)}],
        "reading/ask_title": [{"data": {}}],
        "reading/ask_author": [{"data": {}}],
        "reading/ask_note": [{"data": {}}],
        "reading/ask_where": [{"data": {}}],
        "reading/ask_cover": [{"data": {}}],
        "reading_festival/ask_title": [{"data": {}}],
        "reading_festival/ask_starts_on": [{"data": {}}],
        "reading_festival/ask_ends_on": [{"data": {}}],
        "reading_festival/ask_goal_kind": [{"data": {}}],
        "reading_festival/ask_goal": [{"data": {"goal_kind": "books"}}, {"data": {"goal_kind": "checkins"}}],
        "errors/reading_number_range": [{"low": BIG, "high": BIG}],
        **{
            f"errors/{key}": max_only
            for key in ("reading_text_too_long", "reading_note_too_long", "reading_checkin_too_long")
        },
        **{
            f"errors/{key}": [{}]
            for key in (
                "reading_book_unknown",
                "reading_text_empty",
                "reading_note_empty",
                "reading_note_unknown",
                "reading_dates_order",
                "reading_festival_overlaps",
                "reading_no_festival",
                "reading_checkin_empty",
                "reading_checked_in_today",
                "reading_date_format",
                "reading_photo_expected",
                "reading_no_certificate",
            )
        },
    }
