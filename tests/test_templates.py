"""Every template and label exists in both languages and renders with realistic data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from config import PointsRule
from messages import LOCALES, Renderer
from models.points import RankRow

RENDERER = Renderer()
AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
MEMBER = SimpleNamespace(
    name="张三", employee_no="A10023", unit_code="i801", status="verified", ranking_opt_out=False, id=7
)
ITEM = {
    "id": 1,
    "title": "电影票",
    "description": "周末观影",
    "pickup": "工会办公室 301",
    "mode": "first_come",
    "cost": 10,
    "stock": 0,
    "total": 50,
    "limit": 1,
    "threshold": None,
    "opens_at": AT,
    "closes_at": AT,
    "redeem_by": AT,
    "phase": "open",
    "seed_hash": "cd" * 32,
    "seed": None,
    "outcome": None,
    "status": "published",
}
ENTRY = SimpleNamespace(action="grant", target="member:7", actor_telegram_id=1000)

# Every variable any label uses, with a realistic value (a label with a new variable fails until added here).
LABEL_VARS = {
    "name": "张三",
    "title": "电影票",
    "cost": 10,
    "amount": 5,
    "item_id": 1,
    "code": "ABCD2345",
    "count": 3,
    "path": "members.csv",
    "line": 3,
    "detail": "d",
    "added": 1,
    "updated": 2,
    "verified": 3,
    "seed": "ab" * 32,
    "seed_hash": "cd" * 32,
    "ids": "7, 12",
}

# Sample context per template; a template without a sample fails the test, so new templates add one here.
SAMPLES: dict[str, dict] = {
    "common/use_private": {"org": "护航工社"},
    "errors/insufficient_points": {"balance": 10, "cost": 30},
    "errors/unexpected": {"ref": "ab12cd34"},
    "errors/ops_report": {"ref": "ab12cd34", "kind": "RuntimeError"},
    "errors/name_too_long": {"max": 32},
    "errors/reason_too_long": {"max": 200},
    "errors/amount_out_of_range": {"max": 500},
    "errors/grant_usage": {"command": "grant"},
    "errors/role_unknown": {"roles": ["admin", "cadre"]},
    "members/welcome": {"org": "护航工社", "bad_invite": True},
    "members/ask_employee_no": {"unit": "八〇一所工会", "invited": True},
    "members/ask_name": {"employee_no": "A10023"},
    "members/verified": {"name": "张三", "unit": "八〇一所工会", "org": "护航工社"},
    "members/pending": {"unit": "八〇一所工会"},
    "members/waiting": {"unit": "八〇一所工会"},
    "members/new_request": {"member": MEMBER, "unit": "八〇一所工会"},
    "members/pending_list": {"requests": [MEMBER], "units": {"i801": "八〇一所工会"}, "page": 0},
    "members/decided": {"approved": True, "member": MEMBER, "unit": "八〇一所工会"},
    "members/decision_notice": {"approved": False, "org": "护航工社"},
    "menu/home": {"name": "张三", "org": "护航工社"},
    "menu/help": {"commands": [("points", "我的积分")], "registered": False, "org": "护航工社"},
    "menu/cancelled": {"had_flow": True},
    "menu/hint": {"registered": True},
    "menu/unknown_command": {"registered": True},
    "points/balance": {"balance": 120},
    "points/history": {
        "entries": [{"at": AT, "delta": 10, "rule": "run_attendance", "reason": None}],
        "page": 0,
        "pages": 2,
    },
    "points/earn": {"rules": [PointsRule("run_attendance", 10, 20), PointsRule("idea_adopted", 50, 0)]},
    "points/ranking": {
        "ranking": [RankRow(1, 7, "张三", 40)],
        "me": 7,
        "opted_out": True,
        "unit": "八〇一所工会",
        "month": date(2026, 11, 1),
    },
    "points/adjusted": {"name": "张三", "amount": -5, "balance": 15, "reason": "更正"},
    "points/adjusted_notice": {"amount": 20, "balance": 35, "reason": "读书节"},
    "me/profile": {
        "member": MEMBER,
        "unit": "八〇一所工会",
        "roles": [("cadre", None), ("volunteer", None)],
        "balance": 12,
        "is_admin": True,
    },
    "admin/promoted": {"name": "张三", "role": "cadre", "unit": None},
    "admin/promoted_notice": {"role": "volunteer"},
    "admin/demoted": {"name": "张三", "role": "cadre"},
    "admin/overview": {
        "counts": {"verified": 3},
        "pending": 2,
        "bureau": False,
        "scope": ["八〇一所工会"],
        "invites": [("八〇一所工会", "https://t.me/bot?start=u_i801")],
        "is_admin": False,
    },
    "admin/audit": {"rows": [{"at": AT, "entry": ENTRY}]},
    "errors/welfare_not_open_yet": {"opens_at": AT},
    "errors/welfare_window_closed": {"closes_at": AT},
    "errors/welfare_limit_reached": {"limit": 2},
    "errors/welfare_already_redeemed": {"at": AT, "by": "王干事"},
    "errors/welfare_voucher_unknown": {"code": "ABCD2345"},
    "errors/welfare_voucher_expired": {"redeem_by": AT},
    "errors/welfare_not_cancellable": {"status": "redeemed"},
    "errors/welfare_item_started": {"opens_at": AT},
    "errors/welfare_invalid_item": {"field": "opens_at", "problem": "bad_time", "detail": "x"},
    "errors/welfare_text_too_long": {"max": 60},
    "errors/welfare_number_range": {"low": 1, "high": 100},
    "welfare/catalog": {"items": [ITEM, {**ITEM, "phase": "upcoming", "mode": "lottery", "cost": 0}]},
    "welfare/card": {
        "item": {**ITEM, "mode": "lottery", "seed": "ab" * 32},
        "mine": [{"status": "applied", "code": None}, {"status": "active", "code": "ABCD2345"}],
        "taken": 3,
        "reminded": True,
        "balance": 40,
    },
    "welfare/voucher": {"item": ITEM, "code": "ABCD2345", "status": "active"},
    "welfare/mine": {"claims": [{"title": "电影票", "status": "lost", "code": None}]},
    "welfare/cancel_confirm": {"title": "电影票", "points": 10},
    "welfare/cancelled": {"refunded": 10, "balance": 50},
    "welfare/redeem_screen": {
        "title": "电影票",
        "name": "张三",
        "code": "ABCD2345",
        "status": "redeemed",
        "redeemed_at": AT,
    },
    "welfare/redeemed": {"title": "电影票", "name": "张三", "code": "ABCD2345"},
    "welfare/admin_list": {"items": [ITEM]},
    "welfare/admin_card": {
        "item": {**ITEM, "threshold": 5},
        "units": ["八〇一所工会"],
        "counts": {"active": 2, "redeemed": 1},
        "reminders": 4,
        "rows": [{"name": "张三", "unit": "八〇一所工会", "status": "active", "code": "ABCD2345"}],
        "page": 0,
    },
    "welfare/edit_pick": {"title": "电影票"},
    "welfare/edited": {"title": "电影票"},
    "welfare/created": {"title": "电影票"},
    "welfare/ask_stock": {"data": {"mode": "lottery"}},
    "welfare/ask_cap": {"data": {"mode": "group_buy"}},
    "welfare_notices/opened": {"title": "电影票", "mode": "lottery", "cost": 10, "closes_at": AT},
    "welfare_notices/won": {
        "title": "电影票",
        "seed": "ab" * 32,
        "seed_hash": "cd" * 32,
        "applicants": 8,
        "winners": 3,
        "code": "ABCD2345",
        "pickup": "工会办公室 301",
        "redeem_by": AT,
    },
    "welfare_notices/lost": {
        "title": "电影票",
        "seed": "ab" * 32,
        "seed_hash": "cd" * 32,
        "applicants": 8,
        "winners": 3,
        "refunded": 10,
    },
    "welfare_notices/group_reached": {
        "title": "电影票",
        "joined": 5,
        "threshold": 3,
        "code": "ABCD2345",
        "pickup": "工会办公室 301",
        "redeem_by": None,
    },
    "welfare_notices/group_failed": {"title": "电影票", "joined": 2, "threshold": 3, "refunded": 10},
    "welfare_notices/expired": {"title": "电影票", "code": "ABCD2345", "redeem_by": AT},
}


def _templates(locale: str) -> set[str]:
    return {name for name in RENDERER.template_names(locale) if not name.rsplit("/", 1)[-1].startswith("_")}


def test_both_languages_have_the_same_templates_and_labels():
    assert _templates("zh") == _templates("en")
    assert RENDERER.label_keys("zh") == RENDERER.label_keys("en")


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", sorted(_templates("zh")))
def test_every_template_renders(locale, name):
    text = RENDERER.render(locale, name, **SAMPLES.get(name, {}))
    assert text.strip()
    assert "{{" not in text and "{%" not in text


@pytest.mark.parametrize("locale", LOCALES)
def test_every_label_renders(locale):
    for key in RENDERER.label_keys(locale):
        assert RENDERER.label(locale, key, **LABEL_VARS)


def test_templates_with_variables_have_samples():
    """A template that needs data must have a sample, or a renamed variable could ship unnoticed."""
    missing = []
    for name in sorted(_templates("zh")):
        if name in SAMPLES:
            continue
        try:
            RENDERER.render("zh", name)
            RENDERER.render("en", name)
        except Exception:
            missing.append(name)
    assert not missing, f"add samples for: {missing}"


def test_user_text_is_escaped():
    text = RENDERER.render("en", "menu/home", name="<b>x</b> & co", org="Org")
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in text
