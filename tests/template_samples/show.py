"""Template samples of the show (我型我秀): worst cases first (longest title, text, reason and name)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from models import show
from tests.template_samples._shared import BIG, NAME, typed

CAPTIONS = {"show/card", "show/shared"}


def post(**overrides: Any) -> SimpleNamespace:
    fields = {
        "id": BIG,
        "title": typed(show.TITLE_MAX),
        "category": "photography",
        "text": typed(show.TEXT_MAX),
        "likes": BIG,
        "reports": BIG,
        "status": "rejected",
        "reject_reason": typed(show.REASON_MAX),
    }
    return SimpleNamespace(**{**fields, **overrides})


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    card = {"author": NAME, "kind": "album", "photos": show.ALBUM_MAX, "index": BIG, "total": BIG, "mine": True}
    statuses = [post(status=s, reports=0, text="") for s in show.PostStatus]
    tops = [SimpleNamespace(post_id=BIG, title=typed(show.TITLE_MAX), author=NAME, likes=BIG)] * 5
    errors_max = {"max": BIG}
    return {
        "show/home": [
            {"waiting": BIG, "moderator": True, "subscribed": True},
            {"waiting": 0, "moderator": False, "subscribed": False},
        ],
        "show/card": [
            {"post": post(), **card},
            {"post": post(status="published", text=""), **card, "kind": "text", "total": 1, "index": 0},
            *({"post": p, **card, "kind": "video"} for p in statuses),
        ],
        "show/shared": [
            {"post": post(), "author": NAME, "kind": "album"},
            {"post": post(text=""), "author": NAME, "kind": "text"},
        ],
        "show/empty": [{}],
        "show/confirm_delete": [{"title": typed(show.TITLE_MAX)}],
        "show/deleted": [{"title": typed(show.TITLE_MAX)}],
        "show/mine": [{"posts": [post()] * 10}, {"posts": statuses}, {"posts": []}],
        "show/ask_category": [{}],
        "show/ask_title": [{"max": show.TITLE_MAX}],
        "show/ask_text": [{"max": show.TEXT_MAX}],
        "show/ask_media": [{"has_text": True, "album": show.ALBUM_MAX}, {"has_text": False, "album": show.ALBUM_MAX}],
        "show/media_added": [
            {"count": show.ALBUM_MAX, "video": False, "album": show.ALBUM_MAX},
            {"count": 1, "video": True, "album": show.ALBUM_MAX},
        ],
        "show/published": [{"pending": True, "title": typed(show.TITLE_MAX)}, {"pending": False, "title": "歌"}],
        "show/queue": [{"posts": [post()] * 10}, {"posts": []}],
        "show/approved_notice": [{"title": typed(show.TITLE_MAX)}],
        "show/ask_reason": [{"title": typed(show.TITLE_MAX), "max": show.REASON_MAX}],
        "show/rejected_notice": [{"title": typed(show.TITLE_MAX), "reason": typed(show.REASON_MAX)}],
        "show/hidden_notice": [{"title": typed(show.TITLE_MAX)}],
        "show/waiting_notice": [
            {"title": typed(show.TITLE_MAX), "status": "hidden"},
            {"title": typed(show.TITLE_MAX), "status": "pending"},
        ],
        "show/rejected": [{"title": typed(show.TITLE_MAX)}],
        "show/weekly": [{"posts": tops}],
        **{
            f"errors/{key}": [errors_max]
            for key in (
                "show_title_too_long",
                "show_text_too_long",
                "show_reason_too_long",
                "show_video_too_long",
                "show_album_full",
            )
        },
        **{
            f"errors/{key}": [{}]
            for key in (
                "show_post_unknown",
                "show_title_empty",
                "show_text_empty",
                "show_reason_empty",
                "show_one_video",
                "show_post_empty",
                "show_report_own",
                "show_already_reported",
                "show_already_decided",
                "show_media_unsupported",
                "show_media_expected",
                "show_media_not_yet",
            )
        },
    }
