"""Worst-case samples of the clubs templates (handlers/clubs.py)."""

from __future__ import annotations

from typing import Any

from handlers.clubs import ANNOUNCEMENT_MAX, PAGE, REQUESTS_SHOWN, UPCOMING_SHOWN
from models.clubs import CODE_MAX, DESCRIPTION_MAX, NAME_MAX
from tests.template_samples._shared import BIG, NAME, longest_unit, typed, unit_names
from tests.template_samples.runs import PLAIN, run

CAPTIONS = {"clubs/card", "clubs/csv_caption"}
LINK = "https://t.me/+" + "A" * 22
CLUB_NAME = typed(NAME_MAX)

LABEL_VARS = {"mine": "pending", "count": BIG}


def club(locale: str, **overrides: Any) -> dict[str, Any]:
    fields = {
        "id": BIG,
        "code": "x" * CODE_MAX,
        "name": CLUB_NAME,
        "description": typed(DESCRIPTION_MAX),
        "open": False,
        "units": unit_names(locale),
        "linked": True,
        "invite_link": LINK,
    }
    return {**fields, **overrides}


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    small = club(locale, description="", open=True, units=[], linked=False, invite_link=None)
    row = {"members": BIG, "leaders": [NAME] * 5, "mine": "pending"}
    card = {"members": BIG, "leaders": [NAME] * 5, "is_leader": True, "pending": BIG}
    return {
        "clubs/list": [
            {"clubs": [{"club": club(locale), **row}] * PAGE},
            {"clubs": [{"club": small, "members": 1, "leaders": [], "mine": "member"}]},
            {"clubs": []},
        ],
        "clubs/card": [
            {"club": club(locale), **card, "mine": "member", "events": [run()] * UPCOMING_SHOWN},
            {"club": club(locale, units=[longest_unit(locale)]), **card, "mine": "pending", "events": []},
            {"club": small, "members": 1, "leaders": [], "is_leader": False, "pending": 0, "mine": None, "events": []},
            {
                "club": small,
                "members": 1,
                "leaders": [],
                "is_leader": False,
                "pending": 0,
                "mine": "member",
                "events": [PLAIN],
            },
        ],
        "clubs/request_notice": [{"club": CLUB_NAME, "name": NAME}],
        "clubs/decided": [
            {"club": CLUB_NAME, "approved": True, "link": LINK},
            {"club": CLUB_NAME, "approved": True, "link": None},
            {"club": CLUB_NAME, "approved": False, "link": None},
        ],
        "clubs/requests": [{"club": CLUB_NAME, "names": [NAME] * REQUESTS_SHOWN}, {"club": CLUB_NAME, "names": []}],
        "clubs/csv_caption": [{"club": CLUB_NAME, "count": BIG}, {"club": CLUB_NAME, "count": 1}],
        "clubs/admin_list": [{"clubs": [club(locale)] * PAGE}, {"clubs": [small]}, {"clubs": []}],
        "clubs/admin_card": [
            {"club": club(locale), "leaders": [NAME] * 5},
            {"club": small, "leaders": []},
        ],
        "clubs/ask_leader": [{}],
        "clubs/ask_announcement": [{"club": CLUB_NAME}],
        "clubs/announcement": [{"club": CLUB_NAME, "text": typed(ANNOUNCEMENT_MAX), "by": NAME}],
        "clubs/announced": [{"club": CLUB_NAME}],
        "clubs/leader_named": [{"name": NAME, "club": CLUB_NAME}],
        "clubs/saved": [{"name": CLUB_NAME, "created": True}, {"name": CLUB_NAME, "created": False}],
        **{f"clubs/ask_{name}": [{"data": {}}] for name in ("code", "name", "description", "photo", "open", "units")},
        **{
            f"clubs/{name}": [{"club": CLUB_NAME}]
            for name in (
                "group_linked",
                "group_unlinked",
                "group_no_rights",
                "join_declined",
                "group_removed",
                "group_rights_lost",
                "group_migrated",
            )
        },
        "clubs/members": [
            {"club": CLUB_NAME, "members": [{"name": NAME, "leader": True}] * PAGE, "page": BIG},
            {"club": CLUB_NAME, "members": [], "page": 0},
        ],
        "clubs/confirm_remove": [
            {"club": CLUB_NAME, "name": NAME, "linked": True},
            {"club": CLUB_NAME, "name": NAME, "linked": False},
        ],
        "clubs/removed_notice": [{"club": CLUB_NAME}],
        "errors/clubs_remove_self": [{}],
        "errors/clubs_remove_leader": [{}],
        "errors/clubs_member_gone": [{}],
        "errors/clubs_not_found": [{}],
        "errors/clubs_not_leader": [{}],
        "errors/clubs_not_open_to_unit": [{}],
        "errors/clubs_not_member": [{}],
        "errors/clubs_code_invalid": [{"code": "<b>&amp;" + "x" * 24}],
        "errors/clubs_text_too_long": [{"max": DESCRIPTION_MAX}, {"max": 1}],
        "errors/clubs_text_empty": [{}],
        "errors/clubs_photo_expected": [{}],
        "errors/clubs_group_taken": [{"name": CLUB_NAME}],
        "errors/clubs_link_in_group": [{}],
        "errors/clubs_link_usage": [{}],
        "errors/clubs_not_linked": [{}],
        "errors/clubs_leader_format": [{}],
    }
