"""Every template and label exists in both languages and renders as Telegram accepts it, with worst-case data.

Telegram refuses a message whose HTML it cannot parse, whose text is over 4,096 characters or whose photo
caption is over 1,024 (both counted after entity parsing, in UTF-16 code units). Each template has one place
below with its sample contexts: the first is the worst case (longest values the limits allow, fullest lists,
characters that need escaping, emoji that count twice), the others take the remaining branches.
"""

from __future__ import annotations

import html
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from config import PROJECT_DIR, PointsRule
from handlers.admin import AUDIT_SHOWN, INVITES_PAGE
from handlers.welfare import CLAIMS_PAGE
from messages import LOCALES, MESSAGES_DIR, Renderer
from models.members import Role
from models.points import RankRow
from models.welfare import (
    CATALOG_SIZE,
    DESCRIPTION_MAX,
    MAX_COST,
    MAX_PER_MEMBER,
    MAX_STOCK,
    PICKUP_MAX,
    ClaimStatus,
)
from tests import template_samples
from tests.template_samples._shared import (  # noqa: F401  (re-exported to older imports)
    AT,
    BIG,
    CODE,
    CONFIG,
    LIMITS,
    NAME,
    SEED,
    SEED_HASH,
    TITLE,
    longest_unit,
    member,
    person,
    typed,
    unit_names,
)

RENDERER = Renderer()
# The same templates without trim_blocks: where the two renderings differ in more than blank lines, a block tag
# at the end of a line swallowed the line break and two lines ran together ("20 pointsReason: ...").
UNTRIMMED = Renderer()
UNTRIMMED.env = RENDERER.env.overlay(trim_blocks=False, cache_size=0)

TEXT_MAX = 4096
CAPTION_MAX = 1024
# Templates sent as the caption of a photo or document: handlers/welfare.py show_photo("welfare/card") for an
# item with a photo, the voucher QR (show_photo and notify(photo=...)), handlers/me.py send_document.
CAPTIONS = {"welfare/card", "welfare/voucher", "me/export_caption"}


def item(**overrides: Any) -> dict[str, Any]:
    """An item as handlers/welfare.py _item_view shows it, every text at its longest."""
    fields = {
        "id": BIG,
        "title": TITLE,
        "description": typed(DESCRIPTION_MAX),
        "pickup": typed(PICKUP_MAX),
        "mode": "lottery",
        "cost": MAX_COST,
        "stock": MAX_STOCK,
        "total": MAX_STOCK,
        "limit": MAX_PER_MEMBER,
        "threshold": MAX_STOCK,
        "opens_at": AT,
        "closes_at": AT,
        "redeem_by": AT,
        "phase": "upcoming",
        "seed_hash": SEED_HASH,
        "seed": SEED,
        "outcome": None,
        "status": "published",
    }
    return {**fields, **overrides}


def audit_row(**overrides: Any) -> SimpleNamespace:
    """An audit entry as models/admin.py audit_page gives it (handlers/admin.py adds the local time)."""
    fields = {
        "at": AT,
        "action": "grant",
        "actor": NAME,
        "actor_id": BIG,
        "target_kind": "member",
        "target_id": BIG,
        "target": NAME,
        "item": TITLE,
        "amount": LIMITS.grant_max_amount,
        "role": None,
    }
    return SimpleNamespace(**{**fields, **overrides})


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    """Sample contexts per template: the worst case first, then the other branches."""
    unit = longest_unit(locale)
    org = CONFIG.org_name(locale)
    claims = [{"status": s, "code": CODE} for s in ClaimStatus] * CATALOG_SIZE
    cmd = [(key[4:], RENDERER.label(locale, key)) for key in sorted(RENDERER.label_keys(locale)) if key[:4] == "cmd."]
    invite = "https://t.me/" + "b" * 32 + "?start=u_"
    return {
        "admin/audit": [
            {
                "rows": [audit_row(action="a" * 40, target_kind="welfare_claim", role="counsellor")] * AUDIT_SHOWN,
                "page": BIG,
            },
            {"rows": [audit_row(actor=None, target_kind="t" * 80, target=None)], "page": 0},
            {
                "rows": [
                    audit_row(action=action, target_kind=kind, amount=amount, role=role)
                    for action, kind, amount, role in (
                        ("grant", "member", -LIMITS.grant_max_amount, None),
                        ("promote", "member", None, "counsellor"),
                        ("welfare_redeem", "welfare_claim", None, None),
                        ("welfare_publish", "welfare", None, None),
                    )
                ]
                * (AUDIT_SHOWN // 4),
                "page": BIG,
            },
            {
                "rows": [
                    audit_row(action="erase_member", actor=None, actor_id=0, target=None, amount=None),
                    audit_row(action="deduct", actor=None, target=None, amount=1),
                    audit_row(action="welfare_redeem", target_kind="welfare_claim", target=None, item=None),
                    audit_row(action="welfare_close", target_kind="welfare", target=None, amount=None),
                    audit_row(action="import_roster", target_kind="", target_id=None, target=None, amount=None),
                ],
                "page": 0,
            },
            {"rows": [], "page": 0},
        ],
        "admin/invites": [
            {
                "invites": [(u.name(locale), invite + u.code) for u in CONFIG.units][:INVITES_PAGE],
                "page": BIG,
                "pages": BIG,
            },
            {"invites": [(unit, invite + "i801")], "page": 0, "pages": 1},
        ],
        "admin/demoted": [{"name": NAME, "role": role} for role in Role],
        "admin/overview": [
            {
                "counts": {"verified": BIG},
                "pending": BIG,
                "bureau": False,
                "scope": unit_names(locale),
                "invites": [(u.name(locale), invite + u.code) for u in CONFIG.units],
                "is_admin": False,
            },
            {"counts": {}, "pending": 0, "bureau": True, "scope": [], "invites": [], "is_admin": True},
        ],
        "admin/promoted": [{"name": NAME, "role": "cadre", "unit": unit}]
        + [{"name": NAME, "role": role, "unit": None} for role in Role],
        "admin/promoted_notice": [{"role": role} for role in Role],
        "common/use_private": [{"org": org}],
        "errors/admin_not_member": [{}],
        "forms/progress": [{"step": 12, "steps": 12}, {"step": 1, "steps": 9}],
        "errors/already_pending": [{}],
        "errors/already_registered": [{}],
        "errors/amount_out_of_range": [{"max": LIMITS.grant_max_amount}],
        "errors/bad_input": [{}],
        "errors/button_expired": [{}],
        "errors/datetime_format": [{}],
        "errors/deduct_exceeds_balance": [
            {"name": NAME, "balance": BIG, "amount": LIMITS.grant_max_amount},
            {"name": NAME, "balance": 1, "amount": 2},
            {"name": NAME, "balance": 0, "amount": 1},
        ],
        "errors/demote_usage": [{}],
        "errors/employee_no_invalid": [{}],
        "errors/employee_no_taken": [{}],
        "errors/form_step_passed": [{}],
        "errors/generic": [{}],
        "errors/grant_usage": [{"command": "deduct"}, {"command": "grant"}],
        "errors/insufficient_points": [{"balance": BIG, "cost": MAX_COST}, {"balance": 1, "cost": 1}],
        "errors/language_unknown": [{}],
        "errors/member_unknown": [{}],
        "errors/name_empty": [{}],
        "errors/name_invalid": [{}],
        "errors/name_too_long": [{"max": LIMITS.name_max_length}, {"max": 1}],
        "errors/not_allowed": [{}],
        "errors/not_found": [{}],
        "errors/not_registered": [{}],
        "errors/ops_report": [{"ref": "ab12cd34", "kind": "IntegrityError" * 4}],
        "errors/photo_not_expected": [{}],
        "errors/promote_usage": [{}],
        "errors/reason_missing": [{}],
        "errors/reason_too_long": [{"max": LIMITS.reason_max_length}, {"max": 1}],
        "errors/request_gone": [{}],
        "errors/role_not_held": [{}],
        "errors/role_unknown": [{"roles": [r.value for r in Role]}],
        "errors/self_grant": [{}],
        "errors/still_pending": [{}],
        "errors/unexpected": [{"ref": "ab12cd34"}],
        "errors/unit_unknown": [{}],
        "errors/use_buttons": [{}],
        "errors/welfare_already_open": [{}],
        "errors/welfare_already_redeemed": [{"at": AT, "by": NAME}],
        "errors/welfare_claim_unknown": [{}],
        "errors/welfare_invalid_item": [
            {"field": field, "problem": problem, "detail": detail}
            for field, problem, detail in (
                ("per_member_limit", "out_of_range", f"1-{MAX_PER_MEMBER}"),
                ("title", "missing", ""),
                ("description", "too_long", DESCRIPTION_MAX),
                ("mode", "bad_mode", "x"),
                ("per_member_limit", "first_come_only", ""),
                ("threshold", "above_stock", MAX_STOCK),
                ("threshold", "group_buy_only", ""),
                ("opens_at", "bad_time", ""),
                ("closes_at", "before_open", ""),
                ("redeem_by", "before_close", ""),
                ("units", "unknown_unit", typed(16)),
                ("owner_unit", "not_in_units", "hk"),
                ("closes_at", "in_past", ""),
                ("some_new_field", "some_new_problem", ""),
            )
        ],
        "errors/welfare_item_ended": [{}],
        "errors/welfare_item_started": [{"opens_at": AT}],
        "errors/welfare_item_unknown": [{}],
        "errors/welfare_limit_reached": [{"limit": MAX_PER_MEMBER}, {"limit": 1}],
        "errors/welfare_not_cancellable": [{"status": s} for s in (*ClaimStatus, "unheard_of")],
        "errors/welfare_not_draft": [{}],
        "errors/welfare_not_drawn": [{}],
        "errors/welfare_not_eligible": [{}],
        "errors/welfare_not_open_yet": [{"opens_at": AT}],
        "errors/welfare_number_range": [{"low": 0, "high": MAX_STOCK}, {"low": 1, "high": 1}],
        "errors/welfare_photo_expected": [{}],
        "errors/welfare_redeem_usage": [{}],
        "errors/welfare_self_redeem": [{}],
        "errors/welfare_sold_out": [{}],
        "errors/welfare_text_empty": [{}],
        "errors/welfare_text_too_long": [{"max": DESCRIPTION_MAX}, {"max": 1}],
        "errors/welfare_time_after_closes_at": [{}],
        "errors/welfare_time_after_opens_at": [{}],
        "errors/welfare_time_past": [{}],
        "errors/welfare_voucher_cancelled": [{}],
        "errors/welfare_voucher_expired": [{"redeem_by": AT}],
        # models/welfare.py shows at most 20 characters of what the cadre typed.
        "errors/welfare_voucher_unknown": [{"code": "<b>&amp;" + "x" * 12}],
        "errors/welfare_window_closed": [{"closes_at": AT}],
        "errors/welfare_wrong_mode": [{}],
        "me/confirm_delete": [{}],
        "me/deleted": [{}],
        "me/export_caption": [{}],
        "me/language_set": [{}],
        "me/profile": [
            {
                "member": member(),
                "unit": unit,
                "roles": [("cadre", unit), ("volunteer", None), ("counsellor", None), ("admin", None)],
                "balance": BIG,
                "is_admin": True,
            },
            {"member": member(ranking_opt_out=False), "unit": unit, "roles": [], "balance": 0, "is_admin": False},
            {"member": member(), "unit": unit, "roles": [("cadre", None)], "balance": 1, "is_admin": False},
            {"member": member(), "unit": unit, "roles": [], "balance": 1, "is_admin": True},
        ],
        "members/ask_employee_no": [{"unit": unit, "invited": True}, {"unit": unit, "invited": False}],
        "members/ask_name": [{"employee_no": "A" * 20}],
        "members/decided": [
            {"approved": True, "member": member(), "unit": unit},
            {"approved": False, "member": member(), "unit": unit},
        ],
        "members/decision_notice": [{"approved": True, "org": org}, {"approved": False, "org": org}],
        "members/new_request": [{"member": member(), "unit": unit}],
        "members/pending": [{"unit": unit}],
        "members/pending_list": [
            {
                "requests": [member()] * LIMITS.pending_page_size,
                "units": {u.code: u.name(locale) for u in CONFIG.units},
                "page": BIG,
            },
            {"requests": [], "units": {}, "page": 0},
        ],
        "members/pick_unit_first": [{}],
        "members/verified": [{"name": NAME, "unit": unit, "org": org}],
        "members/waiting": [{"unit": unit}],
        "members/welcome": [{"org": org, "bad_invite": True}, {"org": org, "bad_invite": False}],
        "members/withdrawn": [{}],
        "menu/cancelled": [{"had_flow": True}, {"had_flow": False}],
        "menu/help": [
            {"commands": cmd, "registered": False, "org": org},
            {"commands": cmd, "registered": True, "org": org},
        ],
        "menu/hint": [{"registered": True}, {"registered": False}],
        "menu/description": [{"org": org}],
        "menu/short_description": [{"org": org}],
        "menu/home": [{"name": NAME, "org": org}],
        "menu/unknown_command": [{"registered": True}, {"registered": False}],
        "points/adjusted": [
            {
                "name": NAME,
                "amount": -LIMITS.grant_max_amount,
                "balance": BIG,
                "reason": typed(LIMITS.reason_max_length),
            },
            {"name": NAME, "amount": LIMITS.grant_max_amount, "balance": BIG, "reason": "读书节"},
            {"name": NAME, "amount": 1, "balance": 1, "reason": "读书节"},
            {"name": NAME, "amount": -1, "balance": 1, "reason": "读书节"},
        ],
        "points/adjusted_notice": [
            {"amount": -LIMITS.grant_max_amount, "balance": BIG, "reason": typed(LIMITS.reason_max_length)},
            {"amount": 30, "balance": 35, "reason": "读书节"},
            {"amount": 1, "balance": 1, "reason": "读书节"},
            {"amount": -1, "balance": 1, "reason": "读书节"},
        ],
        "points/balance": [{"balance": BIG}, {"balance": 1}],
        "points/earn": [
            {"rules": [PointsRule(r.name, BIG, BIG) for r in CONFIG.rules.values()]},
            {"rules": [PointsRule("run_attendance", 1, 1), PointsRule("idea_adopted", 1, 0)]},
        ],
        "points/history": [
            {
                "entries": [
                    {"at": AT, "delta": -BIG, "rule": rule, "reason": typed(LIMITS.reason_max_length)}
                    for rule in ("cadre_deduct",) * LIMITS.history_page_size
                ],
                "page": BIG,
                "pages": BIG,
            },
            {"entries": [{"at": AT, "delta": 1, "rule": "some_new_rule", "reason": None}], "page": 0, "pages": 1},
            {"entries": [], "page": 0, "pages": 1},
        ],
        "points/ranking": [
            {
                "ranking": [RankRow(i, i, NAME, BIG) for i in range(1, LIMITS.ranking_size + 1)],
                "me": 1,
                "opted_out": True,
                "unit": unit,
                "month": date(2026, 9, 1),
            },
            {"ranking": [], "me": 1, "opted_out": False, "unit": unit, "month": date(2026, 11, 1)},
        ],
        "welfare/admin_card": [
            {
                "item": item(),
                "units": unit_names(locale),
                "counts": {s.value: BIG for s in ClaimStatus},
                "reminders": BIG,
                "rows": [{"name": NAME, "unit": unit, "status": "redeemed", "code": CODE}] * CLAIMS_PAGE,
                "page": BIG,
            },
            {
                "item": item(mode="universal", cost=0, stock=None, total=None, threshold=None, seed_hash=None),
                "units": [],
                "counts": {},
                "reminders": 0,
                "rows": [{"name": NAME, "unit": unit, "status": "applied", "code": None}],
                "page": 0,
            },
            {
                "item": item(mode="first_come", stock=1, total=None, threshold=None, seed_hash=None),
                "units": [unit],
                "counts": {"active": 1},
                "reminders": 1,
                "rows": [],
                "page": 0,
            },
        ],
        "welfare/admin_list": [
            {"items": [item(mode="group_buy", phase=phase) for phase in ("draft", "cancelled")] * (CATALOG_SIZE // 2)},
            {"items": []},
        ],
        "welfare/ask_cap": [{"data": {"mode": "group_buy"}}, {"data": {"mode": "first_come"}}],
        "welfare/ask_closes_at": [{"data": {}}],
        "welfare/ask_cost": [{"data": {}}],
        "welfare/ask_description": [{"data": {}}],
        "welfare/ask_mode": [{"data": {}}],
        "welfare/ask_opens_at": [{"data": {}}],
        "welfare/ask_per_member_limit": [{"data": {}}],
        "welfare/ask_photo": [{"data": {}}],
        "welfare/ask_pickup": [{"data": {}}],
        "welfare/ask_redeem_by": [{"data": {}}],
        "welfare/ask_stock": [{"data": {"mode": "lottery"}}, {"data": {"mode": "first_come"}}],
        "welfare/ask_threshold": [{"data": {}}],
        "welfare/ask_title": [{"data": {}}],
        "welfare/ask_units": [{"data": {}}],
        "welfare/cancel_confirm": [{"title": TITLE, "points": MAX_COST}, {"title": TITLE, "points": 0}],
        "welfare/cancelled": [
            {"refunded": MAX_COST, "balance": BIG},
            {"refunded": 1, "balance": 1},
            {"refunded": 0, "balance": 0},
        ],
        "welfare/card": [
            {"item": item(), "mine": claims, "taken": BIG, "reminded": True, "balance": BIG},
            {
                "item": item(mode="first_come", phase="open", stock=0, seed_hash=None, seed=None),
                "mine": claims,
                "taken": BIG,
                "reminded": False,
                "balance": BIG,
            },
            {
                "item": item(mode="group_buy", phase="open", seed_hash=None, seed=None),
                "mine": claims,
                "taken": BIG,
                "reminded": False,
                "balance": BIG,
            },
            {
                "item": item(mode="universal", phase="cancelled", seed_hash=None, seed=None),
                "mine": claims,
                "taken": BIG,
                "reminded": False,
                "balance": BIG,
            },
            {
                "item": item(
                    mode="universal", phase="open", cost=0, stock=None, description="", pickup="", redeem_by=None
                ),
                "mine": [],
                "taken": 1,
                "reminded": False,
                "balance": 0,
            },
            {
                "item": item(mode="first_come", phase="open", cost=1, stock=1, total=1, limit=1, seed_hash=None),
                "mine": [{"status": "active", "code": CODE}],
                "taken": 1,
                "reminded": False,
                "balance": 1,
            },
            {
                "item": item(phase="ended", cost=1, stock=1, seed=None),
                "mine": [{"status": "applied", "code": None}],
                "taken": 1,
                "reminded": False,
                "balance": 1,
            },
        ],
        "welfare/catalog": [
            {"items": [item(mode="first_come", phase="open"), item(mode="lottery")] * (CATALOG_SIZE // 2)},
            {"items": [item(mode="lottery", phase="open", cost=1, stock=1), item(mode="universal", cost=0)]},
            {"items": []},
        ],
        "welfare/created": [{"title": TITLE}],
        "welfare/edit_pick": [{"title": TITLE}],
        "welfare/edited": [{"title": TITLE}],
        "welfare/mine": [
            {"claims": [{"title": TITLE, "status": "redeemed", "code": CODE}] * CATALOG_SIZE},
            {"claims": [{"title": TITLE, "status": "lost", "code": None}]},
            {"claims": []},
        ],
        "welfare/redeem_screen": [
            {"title": TITLE, "name": NAME, "code": CODE, "status": "redeemed", "redeemed_at": AT},
            {"title": TITLE, "name": NAME, "code": CODE, "status": "active", "redeemed_at": None},
        ],
        "welfare/redeemed": [{"title": TITLE, "name": NAME, "code": CODE}],
        "welfare/voucher": [
            {"item": item(), "code": CODE, "status": "active"},
            {"item": item(pickup="", redeem_by=None), "code": CODE, "status": "redeemed"},
        ],
        "welfare_notices/expired": [{"title": TITLE, "code": CODE, "redeem_by": AT}],
        "welfare_notices/group_failed": [
            {"title": TITLE, "joined": MAX_STOCK, "threshold": MAX_STOCK, "refunded": MAX_COST},
            {"title": TITLE, "joined": 1, "threshold": 2, "refunded": 1},
            {"title": TITLE, "joined": 0, "threshold": 1, "refunded": 0},
        ],
        "welfare_notices/group_reached": [
            {
                "title": TITLE,
                "joined": MAX_STOCK,
                "threshold": MAX_STOCK,
                "code": CODE,
                "pickup": typed(PICKUP_MAX),
                "redeem_by": AT,
            },
            {"title": TITLE, "joined": 1, "threshold": 1, "code": CODE, "pickup": "", "redeem_by": None},
        ],
        "welfare_notices/lost": [
            {
                "title": TITLE,
                "seed": SEED,
                "seed_hash": SEED_HASH,
                "applicants": BIG,
                "winners": MAX_STOCK,
                "refunded": MAX_COST,
            },
            {"title": TITLE, "seed": SEED, "seed_hash": SEED_HASH, "applicants": 2, "winners": 1, "refunded": 1},
            {"title": TITLE, "seed": SEED, "seed_hash": SEED_HASH, "applicants": 1, "winners": 0, "refunded": 0},
        ],
        "welfare_notices/opened": [
            {"title": TITLE, "mode": mode, "cost": cost, "closes_at": AT}
            for mode in ("group_buy", "lottery", "universal", "first_come")
            for cost in (MAX_COST, 1, 0)
        ],
        "welfare_notices/won": [
            {
                "title": TITLE,
                "seed": SEED,
                "seed_hash": SEED_HASH,
                "applicants": BIG,
                "winners": MAX_STOCK,
                "code": CODE,
                "pickup": typed(PICKUP_MAX),
                "redeem_by": AT,
            },
            {
                "title": TITLE,
                "seed": SEED,
                "seed_hash": SEED_HASH,
                "applicants": 1,
                "winners": 1,
                "code": CODE,
                "pickup": "",
                "redeem_by": None,
            },
        ],
    }


def all_samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    """The samples above plus each section's own module in tests/template_samples/ (see its __init__)."""
    merged = samples(locale)
    for module in template_samples.modules():
        theirs = module.samples(locale)
        assert not set(theirs) & set(merged), f"{module.__name__} repeats {sorted(set(theirs) & set(merged))}"
        merged.update(theirs)
    return merged


SAMPLES = {locale: all_samples(locale) for locale in LOCALES}

# Every variable any label uses (a label with a new one fails until it is added here): long values, and every
# count once more as 1 below (the singular is the odd one out). Labels are plain text, never HTML.
LABEL_VARS = {
    "name": NAME,
    "title": TITLE,
    "cost": MAX_COST,
    "amount": LIMITS.grant_max_amount,
    "id": BIG,
    "item_id": BIG,
    "code": CODE,
    "count": BIG,
    "path": "data/" + "x" * 200 + ".csv",
    "line": BIG,
    "detail": typed(200),
    "fields": "title, description, pickup",
    "key": "database.url",
    "added": BIG,
    "created": BIG,
    "updated": BIG,
    "unchanged": BIG,
    "started": BIG,
    "removed": BIG,
    "erased": BIG,
    "verified": BIG,
    "member": True,
    "unit": "hk",
    "employee_no": "A" * 20,
    "seed": SEED,
    "seed_hash": SEED_HASH,
    "ids": ", ".join(str(BIG + i) for i in range(100)),
    "url": "https://api.telegram.org/bot",
    "database": "sqlite:///data/gongshe.db",
    "scheme": "mysql",
    "reason": typed(LIMITS.reason_max_length),
    "command": "pg_dump --format=custom --file=gongshe.dump gongshe",
    "label": TITLE,
}
for _module in template_samples.modules():
    LABEL_VARS.update(getattr(_module, "LABEL_VARS", {}))
    CAPTIONS |= set(getattr(_module, "CAPTIONS", ()))
LABEL_VARS_ONE = {k: 1 if isinstance(v, int) else v for k, v in LABEL_VARS.items()}


# --- what Telegram checks ----------------------------------------------------------------------------------

# Tags of parse mode HTML (core.telegram.org/bots/api#html-style) and the attributes each may carry.
TAGS: dict[str, set[str]] = {
    "b": set(),
    "strong": set(),
    "i": set(),
    "em": set(),
    "u": set(),
    "ins": set(),
    "s": set(),
    "strike": set(),
    "del": set(),
    "span": {"class"},
    "tg-spoiler": set(),
    "a": {"href"},
    "tg-emoji": {"emoji-id"},
    "code": {"class"},
    "pre": set(),
    "blockquote": {"expandable"},
}
# Only these named entities are understood; numeric ones all are. Any other & must be written &amp;.
BARE_AMPERSAND = re.compile(r"&(?!(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);)")


class TelegramHTML(HTMLParser):
    """Parses a message the way Telegram's HTML mode does: collects the visible text and every problem."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.text: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        if tag not in TAGS:
            self.problems.append(f"<{tag}> is not a Telegram tag")
        elif set(given) - TAGS[tag]:
            self.problems.append(f"<{tag}> cannot have {sorted(set(given) - TAGS[tag])}")
        elif tag == "span" and given.get("class") != "tg-spoiler":
            self.problems.append('<span> needs class="tg-spoiler"')
        elif tag == "a" and not given.get("href"):
            self.problems.append("<a> needs href")
        elif tag == "tg-emoji" and not given.get("emoji-id"):
            self.problems.append("<tg-emoji> needs emoji-id")
        elif tag == "code" and "class" in given:
            if self.open[-1:] != ["pre"] or not (given["class"] or "").startswith("language-"):
                self.problems.append('<code class="language-..."> belongs directly inside <pre>')
        elif tag == "blockquote" and given.get("expandable") is not None:
            self.problems.append("<blockquote expandable> takes no value")
        if self.open and self.open[-1] in ("code", "pre") and not (tag == "code" and self.open[-1] == "pre"):
            self.problems.append(f"<{tag}> inside <{self.open[-1]}>")
        if tag == "blockquote" and "blockquote" in self.open:
            self.problems.append("<blockquote> inside <blockquote>")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.problems.append(f"<{tag}/>: Telegram has no self-closing tags")

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> does not close the open tag {self.open[-1:] or 'none'}")
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        for ch in "<>&":
            if ch in data:
                self.problems.append(f"unescaped {ch!r} in {data[:40]!r}")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            self.problems.append(f"&{name}; is not a Telegram entity")
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"<!{data}> is not allowed")

    def handle_comment(self, data: str) -> None:
        self.problems.append("HTML comments are not allowed")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"<!{decl}> is not allowed")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"<?{data}> is not allowed")


def telegram_parse(message: str) -> tuple[str, list[str]]:
    """(visible text, problems) of a message in parse mode HTML."""
    parser = TelegramHTML()
    parser.feed(message)
    parser.close()
    problems = [
        f"bare & at {m.start()}: {message[m.start() : m.start() + 12]!r}" for m in BARE_AMPERSAND.finditer(message)
    ]
    problems += parser.problems + [f"<{tag}> is never closed" for tag in parser.open]
    return "".join(parser.text).strip(), problems


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def content_lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


# --- the tests ----------------------------------------------------------------------------------------------


def _templates(locale: str) -> set[str]:
    """Message templates (partials, whose names start with _, are only imported by them)."""
    return {name for name in RENDERER.template_names(locale) if not name.rsplit("/", 1)[-1].startswith("_")}


CASES = [
    pytest.param(locale, name, i, id=f"{locale}-{name}-{i}")
    for locale in LOCALES
    for name in sorted(SAMPLES[locale])
    for i in range(len(SAMPLES[locale][name]))
]


def test_both_languages_have_the_same_templates_and_labels():
    assert RENDERER.template_names("zh") == RENDERER.template_names("en")
    assert RENDERER.label_keys("zh") == RENDERER.label_keys("en")


@pytest.mark.parametrize("locale", LOCALES)
def test_every_template_has_samples(locale):
    """A new template needs a sample here, or a renamed variable could ship unnoticed."""
    assert set(SAMPLES[locale]) == _templates(locale)


@pytest.mark.parametrize(("locale", "name", "variant"), CASES)
def test_template_is_accepted_by_telegram(locale, name, variant):
    context = SAMPLES[locale][name][variant]
    message = RENDERER.render(locale, name, **context)  # StrictUndefined: a variable missing here fails
    assert "{{" not in message and "{%" not in message
    text, problems = telegram_parse(message)
    assert not problems, problems
    assert text, "Telegram refuses an empty message"
    limit = CAPTION_MAX if name in CAPTIONS else TEXT_MAX
    assert utf16_len(text) <= limit, f"{utf16_len(text)} > {limit}"


@pytest.mark.parametrize(("locale", "name", "variant"), CASES)
def test_no_block_tag_runs_two_lines_together(locale, name, variant):
    """With trim_blocks a line ending in {% endif %} loses its line break; only blank lines may go that way."""
    context = SAMPLES[locale][name][variant]
    trimmed = content_lines(RENDERER.render(locale, name, **context))
    untrimmed = content_lines(UNTRIMMED.render(locale, name, **context))
    assert trimmed == untrimmed, [line for line in trimmed if line not in untrimmed]


@pytest.mark.parametrize(
    ("locale", "name", "context", "line"),
    [
        ("zh", "points/adjusted_notice", {"amount": 30, "balance": 35, "reason": "读书节"}, "原因：读书节"),
        ("en", "points/adjusted_notice", {"amount": 20, "balance": 35, "reason": "book fair"}, "Reason: book fair"),
        ("zh", "points/adjusted_notice", {"amount": -5, "balance": 35, "reason": "更正"}, "当前余额：35 分"),
        (
            "zh",
            "menu/help",
            {"commands": [], "registered": False, "org": "护航工社"},
            "任何多步操作都可以用 /cancel 退出。",
        ),
        (
            "en",
            "menu/help",
            {"commands": [], "registered": False, "org": "Org"},
            "Leave any multi-step action with /cancel.",
        ),
    ],
)
def test_lines_users_saw_run_together_start_their_own_line(locale, name, context, line):
    assert line in RENDERER.render(locale, name, **context).splitlines()


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_items_are_set_apart_by_a_blank_line(locale):
    """The catalog's items ran together after the first: the blank line before each was swallowed too."""
    items = [item(mode="first_come", phase="open", title=f"T{n}") for n in range(3)]
    text = RENDERER.render(locale, "welfare/catalog", items=items)
    assert [text.count(f"\n\n<b>T{n}</b>") for n in range(3)] == [1, 1, 1]


@pytest.mark.parametrize(
    ("locale", "roles"),
    [("zh", "角色：管理员、工会干部（局级）、志愿者"), ("en", "Roles: admin, union cadre (bureau), volunteer")],
)
def test_roles_are_listed_with_separators(locale, roles):
    context = {"member": member(), "unit": "U", "balance": 1, "is_admin": True}
    held = [("admin", None), ("cadre", None), ("volunteer", None)]
    assert roles in RENDERER.render(locale, "me/profile", roles=held, **context).splitlines()


# A count followed by a noun (perhaps after one adjective) in the wrong number: "1 prizes", "1 waiting requests",
# "2 point"; "1 is" and "1 was" are fine.
ONE_WITH_PLURAL = re.compile(r"(?<![\d.,])\b1 (?:[a-z]+ )?(?!is\b|was\b|has\b|does\b)([a-z]+s)\b")
MANY_WITH_SINGULAR = re.compile(r"(?<![\d.,])\b(?:0|[2-9]|\d{2,}) (point|prize|member|character|request|place)\b")


def _english_texts() -> list[tuple[str, str]]:
    texts = []
    for name, contexts in SAMPLES["en"].items():
        for context in contexts:
            texts.append((name, telegram_parse(RENDERER.render("en", name, **context))[0]))
    for key in RENDERER.label_keys("en"):
        for values in (LABEL_VARS, LABEL_VARS_ONE):
            texts.append((key, RENDERER.label("en", key, **values)))
    return texts


def test_english_counts_agree_with_their_nouns():
    wrong = [(where, m.group(0)) for where, text in _english_texts() for m in ONE_WITH_PLURAL.finditer(text)]
    wrong += [(where, m.group(0)) for where, text in _english_texts() for m in MANY_WITH_SINGULAR.finditer(text)]
    assert not wrong


@pytest.mark.parametrize(
    ("role", "said"), [("cadre", "a union cadre"), ("admin", "an admin"), ("volunteer", "a volunteer")]
)
def test_english_roles_have_their_article(role, said):
    assert f"You are now <b>{said}</b>." in RENDERER.render("en", "admin/promoted_notice", role=role)
    assert f"is now {said}" in RENDERER.render("en", "admin/promoted", name="Li", role=role, unit=None)
    assert f"is no longer {said}." in RENDERER.render("en", "admin/demoted", name="Li", role=role)


def _all_texts(locale: str) -> dict[str, str]:
    """Every template and label source of a locale, by name."""
    root = MESSAGES_DIR / locale
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_voucher_code_has_one_chinese_name():
    """券码 everywhere: members were shown 兑换码 and 券码 for the same thing."""
    assert not [name for name, text in _all_texts("zh").items() if "兑换码" in text]


@pytest.mark.parametrize(("locale", "words"), [("zh", ("按钮", "过期")), ("en", ("button", "expired"))])
def test_one_text_for_an_expired_button(locale, words):
    """An old or unknown button gets one answer, errors/button_expired, whether it is a toast or an alert."""
    saying = [
        f"{name}:{line}"
        for name, text in _all_texts(locale).items()
        for line in text.splitlines()
        if all(w in line.lower() for w in words)
    ]
    assert saying == ["errors/button_expired.j2:" + RENDERER.render(locale, "errors/button_expired")]
    assert "button_expired" not in RENDERER.label_keys(locale)


def test_caption_templates_are_known():
    """Templates sent under a photo or a document are held to 1,024 characters; a new one must be listed."""
    sent_as_caption = set()
    for path in sorted((PROJECT_DIR / "handlers").glob("*.py")) + sorted((PROJECT_DIR / "scheduled").glob("*.py")):
        source = Path(path).read_text(encoding="utf-8")
        sent_as_caption |= set(re.findall(r"show_photo\(\s*\"([\w/]+)\"", source))
        sent_as_caption |= set(re.findall(r"send_document\([^\n]*\"([\w]+/[\w]+)\"\s*[,)]", source))
    assert sent_as_caption
    assert sent_as_caption <= CAPTIONS


@pytest.mark.parametrize("locale", LOCALES)
def test_every_label_renders(locale):
    for key in RENDERER.label_keys(locale):
        for values in (LABEL_VARS, LABEL_VARS_ONE):
            label = RENDERER.label(locale, key, **values)  # StrictUndefined: a new variable must be added above
            assert label.strip(), key
            if key.startswith("cmd."):
                assert len(label) <= 256, key  # a bot command's description


def test_the_html_checker_finds_what_telegram_refuses():
    """The checker above must fail on what Telegram refuses, or the template tests prove nothing."""
    for bad in (
        "<b>x",
        "<b><i>x</b></i>",
        "<p>x</p>",
        "a < b",
        "a & b",
        "&nbsp;",
        "<a>x</a>",
        '<span class="x">x</span>',
    ):
        assert telegram_parse(bad)[1], bad
    text, problems = telegram_parse(
        '<b>A&amp;B</b> &lt;3 <a href="https://t.me/x">&#x1F381;</a> <pre><code class="language-py">x</code></pre>'
    )
    assert not problems
    assert text == "A&B <3 🎁 x"
    assert utf16_len(text) == 11


def test_user_text_is_escaped():
    text = RENDERER.render("en", "menu/home", name="<b>x</b> & co", org="Org")
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in text
