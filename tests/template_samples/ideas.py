"""Samples of the ideas (创客空间) templates: worst case first, then the other branches."""

from __future__ import annotations

from typing import Any

from models.ideas import COMMENT_MAX, COMMENTS_PAGE, DESCRIPTION_MAX, LIST_PAGE, REASON_MAX, TITLE_MAX
from tests.template_samples._shared import AT, BIG, NAME, longest_unit, typed

# ideas/card goes under the idea's photo when it has one.
CAPTIONS = {"ideas/card"}
LABEL_VARS = {"n": BIG}
STATUSES = ("new", "reviewing", "adopted", "done", "declined")
LISTS = ("latest", "top", "mine", "new", "reviewing", "adopted", "done", "declined", "queue")


def idea(locale: str, **overrides: Any) -> dict[str, Any]:
    """An idea as handlers/ideas.py _view shows it, every text at its longest."""
    fields = {
        "id": BIG,
        "title": typed(TITLE_MAX),
        "description": typed(DESCRIPTION_MAX),
        "status": "declined",
        "reason": typed(REASON_MAX),
        "upvotes": BIG,
        "comments": BIG,
        "author": NAME,
        "unit": longest_unit(locale),
        "created_at": AT,
        "has_photo": True,
    }
    return {**fields, **overrides}


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    comment = {"author": NAME, "text": typed(COMMENT_MAX), "hidden": True, "at": AT}
    return {
        "ideas/home": [{"waiting": BIG, "points": BIG}, {"waiting": None, "points": 0}, {"waiting": 0, "points": 50}],
        "ideas/list": [
            {"kind": "declined", "ideas": [idea(locale)] * LIST_PAGE, "page": BIG},
            *({"kind": kind, "ideas": [], "page": 0} for kind in LISTS),
            {"kind": "top", "ideas": [idea(locale, author=None, unit=None, status=s) for s in STATUSES], "page": 0},
        ],
        "ideas/card": [
            {"idea": idea(locale), "upvoted": True, "mine": True, "position": BIG, "total": BIG},
            *(
                {"idea": idea(locale, status=s, author=None, unit=None, reason=None), "upvoted": False, "mine": False}
                | {"position": None, "total": 0}
                for s in STATUSES
            ),
        ],
        "ideas/comments": [
            {"title": typed(TITLE_MAX), "comments": [comment] * COMMENTS_PAGE, "first": BIG, "page": BIG},
            {"title": "x", "comments": [{**comment, "author": None, "hidden": False}], "first": 1, "page": 0},
            {"title": "x", "comments": [], "first": 1, "page": 0},
        ],
        "ideas/comment_added": [{}],
        "ideas/submitted": [{"title": typed(TITLE_MAX)}],
        "ideas/moved": [
            {"title": typed(TITLE_MAX), "status": "declined", "told": BIG},
            *({"title": "x", "status": s, "told": 0} for s in STATUSES),
        ],
        "ideas/step_notice": [
            {"title": typed(TITLE_MAX), "status": "declined", "reason": typed(REASON_MAX), "is_author": True}
            | {"awarded": 0},
            *(
                {"title": "x", "status": s, "reason": None, "is_author": author, "awarded": awarded}
                for s in STATUSES
                for author, awarded in ((True, BIG), (True, 1), (False, 0))
            ),
        ],
        "ideas/ask_title": [{"data": {}}],
        "ideas/ask_description": [{"data": {}}],
        "ideas/ask_photo": [{"data": {}}],
        "ideas/ask_unit": [{"data": {}}],
        "ideas_comment/ask_text": [{"data": {"idea_id": BIG}}],
        "ideas_decline/ask_reason": [{"data": {"idea_id": BIG, "title": typed(TITLE_MAX)}}],
        "errors/idea_unknown": [{}],
        "errors/idea_comment_unknown": [{}],
        "errors/idea_title_empty": [{}],
        "errors/idea_title_too_long": [{"max": TITLE_MAX}],
        "errors/idea_description_empty": [{}],
        "errors/idea_description_too_long": [{"max": DESCRIPTION_MAX}],
        "errors/idea_comment_empty": [{}],
        "errors/idea_comment_too_long": [{"max": COMMENT_MAX}],
        "errors/idea_reason_empty": [{}],
        "errors/idea_reason_too_long": [{"max": REASON_MAX}],
        "errors/idea_own_upvote": [{}],
        "errors/idea_closed": [{}],
        "errors/idea_own_move": [{}],
        "errors/idea_move_passed": [{"status": s} for s in STATUSES],
        "errors/idea_photo_expected": [{}],
        "errors/idea_media_unsupported": [{}],
        "errors/idea_text_expected": [{}],
        "errors/idea_list_end": [{}],
        "errors/idea_not_withdrawable": [{"status": s} for s in STATUSES],
        "ideas/withdraw_confirm": [{"title": typed(TITLE_MAX)}],
        "ideas/withdrawn": [{"title": typed(TITLE_MAX)}],
    }
