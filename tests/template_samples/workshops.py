"""Worst-case samples of the workshop templates (handlers/workshops.py)."""

from __future__ import annotations

from typing import Any

from handlers.workshops import LISTED, PEOPLE_SHOWN
from models.runs import MAX_CAPACITY, PLACE_MAX, TITLE_MAX
from models.workshops import DESCRIPTION_MAX
from tests.template_samples._shared import AT, BIG, NAME, typed


def workshop(**overrides: Any) -> dict[str, Any]:
    """A workshop as handlers/workshops.py _view shows it, every text at its longest."""
    fields = {
        "id": BIG,
        "kind": "workshop",
        "title": typed(TITLE_MAX),
        "starts_at": AT,
        "place": typed(PLACE_MAX),
        "distance_km": None,
        "pace": "",
        "capacity": MAX_CAPACITY,
        "going": MAX_CAPACITY,
        "status": "open",
        "visibility": "bureau",
        "club": None,
        "area": "relations",
    }
    return {**fields, **overrides}


LABEL_VARS = {"at": AT, "title": typed(TITLE_MAX), "position": BIG, "workshop": workshop(), "counsellor": NAME}
CAPTIONS = {"workshops/calendar_caption"}


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    card = {"description": typed(DESCRIPTION_MAX), "counsellor": NAME, "waitlist": BIG, "position": BIG}
    people = [{"name": NAME, "answer": a} for a in ("going", "waitlist")]
    return {
        "workshops/list": [{"workshops": [workshop()] * LISTED}, {"workshops": []}],
        "workshops/card": [
            {"workshop": workshop(), **card, "mine": "waitlist", "is_counsellor": False},
            {"workshop": workshop(), **card, "mine": "going", "is_counsellor": False},
            {"workshop": workshop(area=None), **card, "mine": "declined", "is_counsellor": False},
            {"workshop": workshop(), **card, "mine": None, "is_counsellor": True},
            {"workshop": workshop(status="cancelled"), **card, "mine": "going", "is_counsellor": False},
            {"workshop": workshop(), **card, "description": "", "mine": None, "is_counsellor": False},
        ],
        "workshops/people": [
            {"workshop": workshop(), "people": people * (PEOPLE_SHOWN // 2), "more": BIG},
            {"workshop": workshop(), "people": [], "more": 0},
        ],
        "workshops/cancel_confirm": [{"workshop": workshop()}],
        "workshops/cancelled": [{"workshop": workshop(), "told": BIG}, {"workshop": workshop(), "told": 1}],
        "workshops/created": [{"workshop": workshop()}],
        "workshops/calendar_caption": [{"workshop": workshop()}],
        "workshops/notice_cancelled": [{"run": workshop()}],
        "errors/workshops_not_found": [{}],
        **{f"workshops/ask_{f}": [{"data": {}}] for f in FIELDS},
    }


FIELDS = ("title", "area", "starts_at", "place", "capacity", "description", "visibility")
