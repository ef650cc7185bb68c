"""Worst-case samples of the runs templates (handlers/runs.py, scheduled/runs.py)."""

from __future__ import annotations

from typing import Any

from handlers.runs import PAGE, PEOPLE_SHOWN
from models.runs import MAX_CAPACITY, MAX_DISTANCE_M, PACE_MAX, PLACE_MAX, TITLE_MAX
from tests.template_samples._shared import AT, BIG, NAME, typed

CAPTIONS = {"runs/checkin_code", "runs/calendar_caption"}


def run(**overrides: Any) -> dict[str, Any]:
    """A run as scheduled/runs.py run_view shows it, every text at its longest."""
    fields = {
        "id": BIG,
        "kind": "run",
        "title": typed(TITLE_MAX),
        "starts_at": AT,
        "place": typed(PLACE_MAX),
        "distance_km": 123.456,
        "pace": typed(PACE_MAX),
        "capacity": MAX_CAPACITY,
        "going": MAX_CAPACITY,
        "status": "open",
        "visibility": "club",
        "club": typed(40),
    }
    return {**fields, **overrides}


PLAIN = run(title="", distance_km=None, pace="", club=None, kind="club", going=0, capacity=1)
LINK = "https://t.me/" + "b" * 32 + "?start=c_" + "x" * 12

LABEL_VARS = {
    "at": AT,
    "place": typed(PLACE_MAX),
    "chosen": True,
    "position": BIG,
    "run": run(),
    "organiser": NAME,
}


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    card = {"organiser": NAME, "maybe": BIG, "waitlist": BIG, "checked_in": True}
    people = [{"name": NAME, "answer": a, "checked_in": c} for a, c in (("going", True), ("waitlist", False))]
    return {
        "runs/card": [
            {"run": run(), **card, "mine": "waitlist", "position": BIG, "public": False},
            {"run": run(), **card, "mine": "going", "position": None, "public": False},
            {"run": PLAIN, **card, "mine": "maybe", "position": None, "public": False},
            {"run": PLAIN, **card, "mine": "declined", "position": None, "public": False},
            {"run": PLAIN, **card, "mine": None, "position": None, "public": False},
            {"run": run(), **card, "mine": None, "position": None, "public": True},
            {"run": run(status="cancelled"), **card, "mine": "going", "position": None, "public": False},
        ],
        "runs/list": [
            {"runs": [run()] * PAGE, "filter": "medium"},
            {"runs": [PLAIN], "filter": "all"},
            {"runs": [], "filter": "club"},
        ],
        "runs/mine": [
            {"runs": [run(organiser=True)] * 20},
            {"runs": [{**PLAIN, "organiser": False}]},
            {"runs": []},
        ],
        "runs/people": [
            {"run": run(), "people": people * (PEOPLE_SHOWN // 2), "more": BIG},
            {"run": PLAIN, "people": [], "more": 0},
            {"run": PLAIN, "people": people[:1], "more": 1},
        ],
        "runs/checkin_code": [{"run": run(), "link": LINK}],
        "runs/cancel_confirm": [{"run": run()}, {"run": PLAIN}],
        "runs/cancelled": [{"run": run(), "told": BIG}, {"run": PLAIN, "told": 1}],
        "runs/created": [{"run": run()}],
        "runs/edited": [{"run": run(), "told": BIG}, {"run": PLAIN, "told": 1}],
        "runs/checked_in": [
            {"run": run(), "outcome": "checked_in", "points": BIG},
            {"run": PLAIN, "outcome": "checked_in", "points": 1},
            {"run": PLAIN, "outcome": "checked_in", "points": 0},
            {"run": run(), "outcome": "already", "points": 0},
        ],
        "runs/calendar_caption": [{"run": run()}],
        **{
            f"runs/ask_{name}": [{"data": {}}]
            for name in ("starts_at", "place", "location", "distance", "pace", "capacity", "visibility", "title")
        },
        "runs_notices/promoted": [{"run": run()}, {"run": PLAIN}],
        "runs_notices/reminder": [
            {"run": run(), "lead": "day"},
            {"run": PLAIN, "lead": "hour"},
            {"run": run(kind="workshop"), "lead": "day"},
        ],
        "runs_notices/changed": [{"run": run(), "changed": "starts_at"}, {"run": PLAIN, "changed": "place"}],
        "runs_notices/cancelled": [{"run": run()}, {"run": PLAIN}],
        "errors/runs_not_found": [{}],
        "errors/runs_location_expected": [{}],
        "errors/runs_location_not_expected": [{}],
        "errors/runs_not_visible": [{}],
        "errors/runs_closed": [{}],
        "errors/runs_not_organiser": [{}],
        "errors/runs_join_first": [{}],
        "errors/runs_no_rsvp": [{}],
        "errors/runs_checkin_closed": [{"opens": AT, "closes": AT}],
        "errors/runs_time_past": [{}],
        "errors/runs_number_range": [{"low": 1, "high": MAX_CAPACITY}, {"low": 1, "high": 1}],
        "errors/runs_text_empty": [{}],
        "errors/runs_text_too_long": [{"max": PLACE_MAX}, {"max": 1}],
        "errors/runs_distance_format": [{"high": MAX_DISTANCE_M // 1000}],
    }
