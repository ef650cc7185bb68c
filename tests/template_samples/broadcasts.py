"""Worst-case samples of the broadcasts templates (messages/*/broadcasts/ and errors/broadcast_*)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from handlers.broadcasts import CLUBS_SHOWN
from models.broadcasts import LABEL_MAX, MAX_BUTTONS, REPEAT_MAX_DAYS, Progress, UnitLine
from models.clubs import NAME_MAX
from tests.template_samples._shared import AT, BIG, CONFIG, longest_unit, typed, unit_names

CAPTIONS = {"broadcasts/csv_caption"}
CLUB_NAME = typed(NAME_MAX)
LABEL_VARS = {"mark": "✅ ", "number": BIG, "status": "已停止", "withdrawn": BIG, "count": BIG}


def _broadcast(locale: str, **overrides: Any) -> dict[str, Any]:
    """A draft at its fullest: every unit, both roles, under 35, three long buttons, ack and urgent."""
    fields = {
        "id": BIG,
        "media": "animation",
        "buttons": [typed(LABEL_MAX)] * MAX_BUTTONS,
        "ack": True,
        "urgent": True,
        "units": unit_names(locale),
        "roles": ["cadre", "volunteer"],
        "under_35": True,
        "clubs": [CLUB_NAME] * CLUBS_SHOWN,
        "groups": [CLUB_NAME] * CLUBS_SHOWN,
        "pin": True,
        "status": "scheduled",
        "send_at": AT,
        "repeat": "weekdays",
        "category": "welfare",
        "mandatory": True,
        "repeat_until": AT.date(),
    }
    return {**fields, **overrides}


def _progress(**overrides: int) -> Progress:
    fields = dict(
        recipients=BIG, delivered=BIG, pending=BIG, blocked=BIG, failed=BIG, cancelled=BIG, skipped_blocked=BIG
    )
    return Progress(**{**fields, **overrides})


def _line() -> SimpleNamespace:
    return SimpleNamespace(recipients=BIG, delivered=BIG, blocked=BIG, failed=BIG, acknowledged=BIG, young_share=100)


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    full = _broadcast(locale)
    plain = _broadcast(
        locale,
        buttons=[],
        ack=False,
        urgent=False,
        units=[],
        roles=[],
        under_35=False,
        send_at=None,
        repeat="",
        clubs=[],
        groups=[],
        pin=False,
    )
    quiet = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    report = [{"unit": longest_unit(locale), "line": _line()}] * len(CONFIG.units)
    empty_line = UnitLine("hk", 1, 0, 0, 0, 0, 0, 0)
    return {
        "broadcasts/compose": [{}],
        "broadcasts/panel": [
            {"b": full, "reach": BIG, "blocked": BIG},
            {"b": plain, "reach": 1, "blocked": 0},
        ],
        "broadcasts/ask_buttons": [{"limit": MAX_BUTTONS, "bot": "b" * 32}],
        "broadcasts/audience": [
            {"b": full, "reach": BIG, "blocked": BIG},
            {"b": plain, "reach": 1, "blocked": 0},
        ],
        "broadcasts/confirm": [
            {"b": full, "reach": BIG, "blocked": BIG, "quiet_until": quiet},
            {"b": plain, "reach": 1, "blocked": 0, "quiet_until": None},
        ],
        "broadcasts/ask_schedule": [{"example": AT}],
        "broadcasts/ask_repeat": [{"at": AT}],
        "broadcasts/ask_until": [{"example": AT, "days": REPEAT_MAX_DAYS}],
        "broadcasts/scheduled_ok": [{"b": full}, {"b": plain | {"send_at": AT}}, {"b": full | {"repeat": "monthly"}}],
        "broadcasts/discarded": [{}],
        "broadcasts/mutes": [{"muted": ["club_news", "union_news", "welfare"]}, {"muted": []}],
        "broadcasts/progress": [
            {"p": _progress(), "status": "sending", "bar": "▓" * 10, "percent": 100, "eta": BIG, "quiet_until": None},
            {"p": _progress(), "status": "sending", "bar": "░" * 10, "percent": 0, "eta": 0, "quiet_until": quiet},
            {
                "p": _progress(cancelled=0, skipped_blocked=0),
                "status": "done",
                "bar": "▓" * 10,
                "percent": 100,
                "eta": 0,
                "quiet_until": None,
            },
            {"p": _progress(), "status": "cancelled", "bar": "▓" * 5, "percent": 50, "eta": 0, "quiet_until": None},
        ],
        "broadcasts/list": [
            {"items": [full | {"status": s} for s in ("scheduled", "paused", "sending", "done", "cancelled")] * 2},
            {"items": []},
        ],
        "broadcasts/card": [
            {"b": full | {"status": "done"}, "p": _progress(), "report": report},
            {
                "b": plain | {"status": "cancelled"},
                "p": _progress(cancelled=0),
                "report": [{"unit": "hk", "line": empty_line}],
            },
            {"b": full, "p": None, "report": []},
        ],
        "broadcasts/csv_caption": [{"id": BIG}],
        "broadcasts/groups": [{"b": full, "available": BIG}, {"b": plain, "available": 0}],
        "errors/broadcast_group_not_linked": [{}],
        "errors/broadcast_unsupported": [{}],
        "errors/broadcast_empty": [{}],
        "errors/broadcast_too_many_buttons": [{"limit": MAX_BUTTONS}],
        "errors/broadcast_button_format": [{}],
        "errors/broadcast_button_label": [{"limit": LABEL_MAX}],
        "errors/broadcast_button_url": [{}],
        "errors/broadcast_not_draft": [{}],
        "errors/broadcast_state_changed": [{}],
        "errors/broadcast_time_past": [{}],
        "errors/broadcast_ack_not_recipient": [{}],
        "errors/broadcast_unexpected_media": [{}],
        "errors/broadcast_repeat_needs_end": [{}],
        "errors/broadcast_repeat_end": [{"days": REPEAT_MAX_DAYS}],
    }
