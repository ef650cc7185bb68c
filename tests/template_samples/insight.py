"""Samples of the Insight templates (messages/*/insight): every unit listed, the longest names, counts hidden."""

from __future__ import annotations

from datetime import date
from typing import Any

from models.insight import COHORTS, PERIODS, RETENTION_MONTHS
from tests.template_samples._shared import BIG, CONFIG, typed, unit_names

START, UNTIL = date(2026, 9, 1), date(2026, 11, 28)
NEWS = {
    "recipients": str(BIG),
    "delivered": "100%",
    "blocked": str(BIG),
    "acknowledged": "100%",
    "young_delivered": "100%",
    "young_acknowledged": "100%",
}
NO_NEWS = dict.fromkeys(NEWS) | {"recipients": "0", "blocked": "0"}
DIGEST_FIGURES = ("new_members", "active_members", "member_days", "welfare_claims", "future_counter")
ACTIONS = (
    "welfare_claims",
    "ideas",
    "idea_upvotes",
    "idea_comments",
    "quiz_attempts",
    "run_rsvps",
    "club_joins",
    "broadcast_acks",
    "counselling_bookings",
    "help_requests",
    "survey_responses",
    "x" * 40,
)
SECTIONS = ("menu", "members", "me", "points", "welfare", "admin", "forms", "insight", "unknown_section_name")


def _head(locale: str, **overrides: Any) -> dict[str, Any]:
    longest = max(unit_names(locale), key=len)
    return {"period": "quarter", "start": START, "until": UNTIL, "unit": longest, "units": 1} | overrides


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    names = unit_names(locale)
    every_unit = [
        {"unit": n, "roster": str(BIG), "verified": str(BIG), "share": "100%", "young_share": "100%"} for n in names
    ]
    total = {"unit": None, "roster": str(BIG), "verified": str(BIG), "share": "100%", "young_share": "100%"}
    weeks = [(date(2026, 8, 31), str(BIG))] * 14  # a quarter touches up to 14 weeks
    return {
        "insight/reach": [
            _head(locale, unit=None, units=len(CONFIG.units)) | {"rows": [*every_unit, total], "broadcasts": NEWS},
            _head(locale, period="week")
            | {"rows": [{**every_unit[0], "share": None, "young_share": None}, total], "broadcasts": NO_NEWS},
            _head(locale, period="month", units=2, unit=None)
            | {
                "rows": [{"unit": None, "roster": "<5", "verified": "<5", "share": None, "young_share": None}],
                "broadcasts": NO_NEWS,
            },
        ],
        "insight/interaction": [
            _head(locale)
            | {
                "members": str(BIG),
                "weekly_active": str(BIG),
                "active_share": "100%",
                "weeks": weeks,
                "sections": [(s, str(BIG)) for s in SECTIONS],
                "actions": [(name, str(BIG)) for name in ACTIONS],
                "feedback_messages": BIG,
                "feedback_reply_hours": "99999.9",
            },
            _head(locale, period="week")
            | {
                "members": "<5",
                "weekly_active": "0",
                "active_share": None,
                "weeks": weeks[:1],
                "sections": [],
                "actions": [],
                "feedback_messages": 1,
                "feedback_reply_hours": None,
            },
        ],
        "insight/stickiness": [
            _head(locale)
            | {
                "active": str(BIG),
                "sticky": str(BIG),
                "sticky_share": "100%",
                "cohorts": [{"month": START, "joined": str(BIG), "retained": [str(BIG)] * RETENTION_MONTHS}] * COHORTS,
            },
            _head(locale, period="week")
            | {
                "active": "<5",
                "sticky": "0",
                "sticky_share": None,
                "cohorts": [{"month": START, "joined": "0", "retained": ["–"] * RETENTION_MONTHS}],
            },
        ],
        "insight/efficiency": [
            _head(locale)
            | {
                "items": BIG,
                "places": BIG,
                "claimed": BIG,
                "claim_rate": "100%",
                "approvals": BIG,
                "approval_hours": "99999.9",
                "extra": [("run_attendance", str(BIG), str(BIG), "100%"), ("broadcast_delivery", "<5", "<5", None)]
                + [(typed(40), str(BIG), str(BIG), "100%")] * 4,
            },
            _head(locale, period="week")
            | {
                "items": 1,
                "places": 1,
                "claimed": 0,
                "claim_rate": None,
                "approvals": 1,
                "approval_hours": None,
                "extra": [],
            },
        ],
        "insight/pick_unit": [{}],
        "insight/chart_caption": [
            _head(locale, area=area, empty=empty)
            for area in ("reach", "interaction", "stickiness", "efficiency")
            for empty in (False, True)
        ],
        "insight/digest": [
            {
                "start": START,
                "until": UNTIL,
                "units": len(CONFIG.units),
                "members": str(BIG),
                "changes": [(name, str(BIG), str(BIG)) for name in DIGEST_FIGURES],
                "biggest": ("x" * 40, True),
            },
            {
                "start": START,
                "until": UNTIL,
                "units": 1,
                "members": "<5",
                "changes": [(name, "<5", "0") for name in DIGEST_FIGURES],
                "biggest": ("active_members", False),
            },
            {"start": START, "until": UNTIL, "units": 1, "members": "0", "changes": [], "biggest": None},
        ],
        "insight/csv_caption": [{"period": p} for p in PERIODS],
    }


LABEL_VARS = {"chosen": True}
CAPTIONS = {"insight/csv_caption", "insight/chart_caption"}
