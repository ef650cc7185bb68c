"""Welfare models: every mode, windows, limits, points, permissions, races, the verifiable draw, imports.

Database tests run on SQLite and PostgreSQL (the `db` fixture). A refused operation is checked to change
nothing at all: items, claims, balances, ledger and reminders are compared before and after.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from config import PointsRule
from models import points, vouchers, welfare
from models.db import Database
from models.errors import BadInput, DomainError, InsufficientPoints, NotAllowed, NotFound
from models.members import Actor, Member, Role, Status
from models.points import LedgerEntry
from models.welfare import (
    AlreadyRedeemed,
    ClaimStatus,
    ItemDraft,
    ItemStatus,
    LimitReached,
    Mode,
    NotEligible,
    NotOpenYet,
    Phase,
    SoldOut,
    WelfareClaim,
    WelfareItem,
    WelfareReminder,
    WindowClosed,
)
from models.welfare.importing import WelfareFileError, import_items, parse_welfare_file
from tests.conftest import PG_URL
from tests.workers import race

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 6, 18, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: the item opens
BEFORE = T0 - timedelta(hours=1)
DURING = T0 + timedelta(minutes=1)
CLOSES = T0 + timedelta(hours=2)
AFTER = CLOSES + timedelta(minutes=1)
DAY = date(2026, 6, 18)
GRANT = PointsRule("cadre_grant", 0, 0)
UNITS = ["hq", "i801", "i802", "i803", "i804", "i805", "i806", "i808", "i809", "i810"]

BUREAU = Actor(900, None, False, frozenset({None}), frozenset({Role.CADRE}))
NOBODY = Actor(901, None, False, frozenset(), frozenset())


def cadre(unit: str, telegram_id: int = 902) -> Actor:
    """A cadre of one unit."""
    return Actor(telegram_id, None, False, frozenset({unit}), frozenset({Role.CADRE}))


_next_telegram_id = iter(range(10_000, 10_000_000))


async def make_members(db: Database, count: int, unit: str = "i801", balance: int = 100) -> list[Member]:
    """Verified members, each given `balance` points through the ledger (so ledger == balance holds)."""
    with db.writing() as s:
        people = []
        for _ in range(count):
            tid = next(_next_telegram_id)
            people.append(
                Member(
                    telegram_id=tid,
                    unit_code=unit,
                    employee_no=f"W{tid}",
                    name=f"会员{tid}",
                    status=Status.VERIFIED,
                )
            )
        s.add_all(people)
        s.flush()
        for m in people:
            if balance:
                points.award(s, m.id, GRANT, f"test:seed:{m.id}", DAY, amount=balance)
            m.balance = balance
    return people


def draft(mode: str = Mode.FIRST_COME, **changes: Any) -> ItemDraft:
    """A valid item: first-come, 10 in stock, 30 points, open 12:00-14:00 Shanghai time."""
    base = ItemDraft(
        title="端午粽子礼盒",
        mode=mode,
        opens_at=T0,
        closes_at=CLOSES,
        cost=30,
        stock=10,
        pickup="工会办公室 302",
    )
    if mode == Mode.UNIVERSAL:
        base = replace(base, stock=None)
    if mode == Mode.GROUP_BUY:
        base = replace(base, stock=None, threshold=3)
    return replace(base, **changes)


async def make_item(
    db: Database, actor: Actor = BUREAU, publish: bool = True, at: datetime = BEFORE, **changes: Any
) -> WelfareItem:
    """Create (and publish) an item at `at` (by default an hour before it opens)."""
    with db.writing() as s:
        item = welfare.create_item(s, actor, draft(**changes), at)
        if publish:
            item = welfare.publish(s, actor, item.id, at)
    return item


async def run(db: Database, fn: Callable[[Session], Any]) -> Any:
    """Run one operation as the bot does: its own atomic write, in the database's writer/worker threads."""
    return await db.write(fn)


async def snapshot(db: Database) -> tuple:
    """Everything a welfare operation may change."""
    with db.reading() as s:
        items = [
            tuple(r)
            for r in s.exec(
                select(
                    WelfareItem.id,
                    WelfareItem.stock,
                    WelfareItem.status,
                    WelfareItem.title,
                    WelfareItem.drawn_at,
                    WelfareItem.settled_at,
                    WelfareItem.seed_hash,
                ).order_by(col(WelfareItem.id))
            )
        ]
        claims = [
            tuple(r)
            for r in s.exec(
                select(WelfareClaim.id, WelfareClaim.status, WelfareClaim.voucher_code).order_by(col(WelfareClaim.id))
            )
        ]
        balances = [tuple(r) for r in s.exec(select(Member.id, Member.balance).order_by(col(Member.id)))]
        ledger = (s.exec(select(func.count()).select_from(LedgerEntry))).one()
        reminders = (s.exec(select(func.count()).select_from(WelfareReminder))).one()
    return items, claims, balances, ledger, reminders


async def refused(db: Database, error: type[DomainError], fn: Callable[[Session], Awaitable[Any]]) -> DomainError:
    """The operation raises `error` and leaves the database exactly as it was."""
    before = await snapshot(db)
    with pytest.raises(error) as info:
        await run(db, fn)
    assert await snapshot(db) == before
    return info.value


async def balance(db: Database, member: Member) -> int:
    """The member's balance now."""
    with db.reading() as s:
        return points.balance_of(s, member.id)


async def assert_books_balance(db: Database) -> None:
    """For every member the ledger adds up to the balance."""
    with db.reading() as s:
        sums = dict(
            tuple(r)
            for r in s.exec(select(LedgerEntry.member_id, func.sum(LedgerEntry.delta)).group_by(LedgerEntry.member_id))
        )
        for member_id, bal in s.exec(select(Member.id, Member.balance)):
            assert sums.get(member_id, 0) == bal, member_id


async def item_row(db: Database, item_id: int) -> WelfareItem:
    """The item as stored now."""
    with db.reading() as s:
        return s.get(WelfareItem, item_id)


async def claims_of(db: Database, item_id: int) -> list[WelfareClaim]:
    """The item's claims as stored now, oldest first."""
    with db.reading() as s:
        return list(s.exec(select(WelfareClaim).where(WelfareClaim.item_id == item_id).order_by(col(WelfareClaim.id))))


# --- first-come --------------------------------------------------------------------------------------


async def test_first_come_claim_spends_points_takes_stock_and_gives_a_voucher(db):
    (m,) = await make_members(db, 1)
    item = await make_item(db)
    result = await run(db, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))
    assert result.created and result.balance == 70 and result.stock_left == 9
    assert result.claim.status == ClaimStatus.ACTIVE
    assert vouchers.normalize_code(result.claim.voucher_code) == result.claim.voucher_code
    assert (await item_row(db, item.id)).stock == 9
    assert await balance(db, m) == 70
    with db.reading() as s:
        card = welfare.item_card(s, m, item.id, DURING)
        mine = welfare.my_claims(s, m.id)
        ledger = list(s.exec(select(LedgerEntry).where(LedgerEntry.member_id == m.id, LedgerEntry.delta < 0)))
    assert (card.phase, card.item.stock, card.item.total, card.taken, card.next_seq) == (Phase.OPEN, 9, 10, 1, None)
    assert [c.claim.id for c in mine] == [result.claim.id]
    assert [(e.delta, e.idem_key, e.reason) for e in ledger] == [
        (-30, f"welfare:claim:{result.claim.id}", "端午粽子礼盒")
    ]
    await assert_books_balance(db)


async def test_claims_outside_the_window_are_refused_and_change_nothing(db):
    (m,) = await make_members(db, 1)
    item = await make_item(db)
    early = await refused(db, NotOpenYet, lambda s: welfare.claim_first_come(s, m, item.id, BEFORE, TZ))
    assert early.params == {"opens_at": T0}
    late = await refused(db, WindowClosed, lambda s: welfare.claim_first_come(s, m, item.id, AFTER, TZ))
    assert late.params == {"closes_at": CLOSES}
    with db.reading() as s:
        with pytest.raises(NotOpenYet):
            welfare.claim_precheck(s, m, item.id, BEFORE)
        with pytest.raises(WindowClosed):
            welfare.claim_precheck(s, m, item.id, CLOSES)
        assert (welfare.claim_precheck(s, m, item.id, DURING)).id == item.id


async def test_sold_out_is_said_by_the_precheck_and_the_write_path(db):
    first, second = await make_members(db, 2)
    item = await make_item(db, stock=1)
    await run(db, lambda s: welfare.claim_first_come(s, first, item.id, DURING, TZ))
    with db.reading() as s, pytest.raises(SoldOut):
        welfare.claim_precheck(s, second, item.id, DURING)
    await refused(db, SoldOut, lambda s: welfare.claim_first_come(s, second, item.id, DURING, TZ))
    assert await balance(db, second) == 100


async def test_limit_holds_and_a_cancelled_claim_frees_its_slot(db):
    (m,) = await make_members(db, 1)
    item = await make_item(db, per_member_limit=2, cost=10)
    one = await run(db, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))
    two = await run(db, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))
    assert (one.claim.seq, two.claim.seq) == (1, 2)
    error = await refused(db, LimitReached, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))
    assert error.params == {"limit": 2}
    with db.reading() as s, pytest.raises(LimitReached):
        welfare.claim_precheck(s, m, item.id, DURING)
    cancelled = await run(db, lambda s: welfare.cancel_claim(s, m, one.claim.id, DURING, TZ))
    assert (cancelled.claim.status, cancelled.refunded, cancelled.balance) == (ClaimStatus.CANCELLED, 10, 90)
    assert (await item_row(db, item.id)).stock == 9
    again = await run(db, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))
    assert (again.created, again.claim.seq, again.balance) == (True, 1, 80)
    assert (await item_row(db, item.id)).stock == 8
    await assert_books_balance(db)


async def test_a_repeated_press_with_the_same_slot_claims_and_charges_once(db):
    (m,) = await make_members(db, 1)
    item = await make_item(db, per_member_limit=3)
    first = await run(db, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ, seq=1))
    before = await snapshot(db)
    repeat = await run(db, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ, seq=1))
    assert (first.created, repeat.created, repeat.claim.id) == (True, False, first.claim.id)
    assert await snapshot(db) == before
    await refused(db, DomainError, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ, seq=4))


async def test_not_enough_points_shows_balance_and_cost_and_changes_nothing(db):
    (m,) = await make_members(db, 1, balance=10)
    item = await make_item(db)
    error = await refused(db, InsufficientPoints, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))
    assert error.params == {"balance": 10, "cost": 30}
    with db.reading() as s, pytest.raises(InsufficientPoints):
        welfare.claim_precheck(s, m, item.id, DURING)
    assert (await item_row(db, item.id)).stock == 10


async def test_an_item_for_other_units_is_not_offered_or_claimable(db):
    (mine,) = await make_members(db, 1, unit="i801")
    (theirs,) = await make_members(db, 1, unit="i802")
    item = await make_item(db, units=("i802",))
    everyone = await make_item(db, title="普惠水果")
    await refused(db, NotEligible, lambda s: welfare.claim_first_come(s, mine, item.id, DURING, TZ))
    with db.reading() as s:
        with pytest.raises(NotEligible):
            welfare.item_card(s, mine, item.id, DURING)
        with pytest.raises(NotEligible):
            welfare.claim_precheck(s, mine, item.id, DURING)
        assert [e.item.id for e in welfare.list_catalog(s, mine, DURING)] == [everyone.id]
        assert [e.item.id for e in welfare.list_catalog(s, theirs, DURING)] == [everyone.id, item.id]
    assert (await run(db, lambda s: welfare.claim_first_come(s, theirs, item.id, DURING, TZ))).created


async def test_catalog_shows_open_and_upcoming_items_newest_first(db):
    (m,) = await make_members(db, 1)
    open_now = await make_item(db, title="开放中")
    upcoming = await make_item(db, title="即将开放", opens_at=T0 + timedelta(days=1), closes_at=T0 + timedelta(days=2))
    ended = {"opens_at": T0 - timedelta(days=2), "closes_at": T0 - timedelta(days=1)}
    await make_item(db, title="已结束", at=T0 - timedelta(days=3), **ended)
    await make_item(db, title="草稿", publish=False)
    with db.reading() as s:
        entries = welfare.list_catalog(s, m, DURING)
    assert [(e.item.id, e.phase) for e in entries] == [(upcoming.id, Phase.UPCOMING), (open_now.id, Phase.OPEN)]


async def test_the_schema_itself_refuses_a_second_live_claim_on_a_slot_and_negative_stock(db):
    (m,) = await make_members(db, 1)
    item = await make_item(db)
    with db.writing() as s:
        s.add(WelfareClaim(item_id=item.id, member_id=m.id, seq=1, status=ClaimStatus.CANCELLED))
        s.add(WelfareClaim(item_id=item.id, member_id=m.id, seq=1, status=ClaimStatus.ACTIVE))
    for status in (ClaimStatus.ACTIVE, ClaimStatus.APPLIED, ClaimStatus.JOINED, ClaimStatus.REDEEMED):
        with pytest.raises(IntegrityError), db.writing() as s:
            s.add(WelfareClaim(item_id=item.id, member_id=m.id, seq=1, status=status))
    with pytest.raises(IntegrityError), db.writing() as s:
        s.exec(update(WelfareItem).where(col(WelfareItem.id) == item.id).values(stock=-1))


# --- cancel and redeem ---------------------------------------------------------------------------------


async def test_redeem_once_then_says_when_and_by_whom(db):
    (m,) = await make_members(db, 1)
    (officer,) = await make_members(db, 1)
    desk = Actor(officer.telegram_id, officer, False, frozenset({"i801"}), frozenset({Role.CADRE}))
    item = await make_item(db)
    claimed = await run(db, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))
    code = claimed.claim.voucher_code
    done = await run(db, lambda s: welfare.redeem(s, desk, f" r_{code.lower()} ", DURING))
    assert (done.claim.status, done.claim.redeemed_by_telegram_id, done.member_name) == (
        ClaimStatus.REDEEMED,
        officer.telegram_id,
        m.name,
    )
    later = DURING + timedelta(minutes=5)
    again = await refused(db, AlreadyRedeemed, lambda s: welfare.redeem(s, desk, code, later))
    assert again.params == {"at": DURING, "by": officer.name}
    not_cancellable = await refused(db, DomainError, lambda s: welfare.cancel_claim(s, m, claimed.claim.id, later, TZ))
    assert (not_cancellable.key, not_cancellable.params) == ("welfare_not_cancellable", {"status": "redeemed"})


async def test_redeeming_a_cancelled_voucher_is_refused(db):
    (m,) = await make_members(db, 1)
    item = await make_item(db)
    claimed = await run(db, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))
    await run(db, lambda s: welfare.cancel_claim(s, m, claimed.claim.id, DURING, TZ))
    error = await refused(db, DomainError, lambda s: welfare.redeem(s, BUREAU, claimed.claim.voucher_code, DURING))
    assert error.key == "welfare_voucher_cancelled"
    twice = await refused(db, DomainError, lambda s: welfare.cancel_claim(s, m, claimed.claim.id, DURING, TZ))
    assert twice.params == {"status": "cancelled"}
    assert await balance(db, m) == 100
    await assert_books_balance(db)


async def test_vouchers_past_redeem_by_expire(db):
    (m,) = await make_members(db, 1)
    redeem_by = CLOSES + timedelta(days=1)
    item = await make_item(db, redeem_by=redeem_by)
    claimed = await run(db, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))
    code = claimed.claim.voucher_code
    late = redeem_by + timedelta(minutes=1)
    error = await refused(db, DomainError, lambda s: welfare.redeem(s, BUREAU, code, late))
    assert (error.key, error.params) == ("welfare_voucher_expired", {"redeem_by": redeem_by})
    assert await run(db, lambda s: welfare.expire_vouchers(s, redeem_by)) == 0
    assert await run(db, lambda s: welfare.expire_vouchers(s, late)) == 1
    assert await run(db, lambda s: welfare.expire_vouchers(s, late)) == 0
    assert [c.status for c in await claims_of(db, item.id)] == [ClaimStatus.EXPIRED]
    await refused(db, DomainError, lambda s: welfare.cancel_claim(s, m, claimed.claim.id, late, TZ))
    assert await balance(db, m) == 70


async def test_forged_ids_and_codes_are_refused_and_change_nothing(db):
    owner, other = await make_members(db, 2, unit="i801")
    (stranger,) = await make_members(db, 1, unit="i802")
    item = await make_item(db, actor=cadre("i801"), units=("i801",))
    claimed = await run(db, lambda s: welfare.claim_first_come(s, owner, item.id, DURING, TZ))
    claim_id, code = claimed.claim.id, claimed.claim.voucher_code
    error = await refused(db, NotFound, lambda s: welfare.cancel_claim(s, other, claim_id, DURING, TZ))
    assert error.key == "welfare_claim_unknown"
    await refused(db, NotFound, lambda s: welfare.cancel_claim(s, other, 987654, DURING, TZ))
    await refused(db, NotFound, lambda s: welfare.my_voucher(s, other, claim_id))
    await refused(db, NotFound, lambda s: welfare.claim_first_come(s, owner, 987654, DURING, TZ))
    await refused(db, NotAllowed, lambda s: welfare.redeem(s, NOBODY, code, DURING))
    await refused(db, NotAllowed, lambda s: welfare.redeem(s, cadre("i802"), code, DURING))
    unknown = await refused(db, NotFound, lambda s: welfare.redeem(s, BUREAU, "ABCDEFGH", DURING))
    assert unknown.key == "welfare_voucher_unknown"
    await refused(db, NotFound, lambda s: welfare.redeem(s, BUREAU, "O0I1L", DURING))
    other_unit = cadre("i802")
    edited = draft(units=("i801",), title="改名")
    await refused(db, NotAllowed, lambda s: welfare.update_item(s, other_unit, item.id, edited, BEFORE))
    await refused(db, NotAllowed, lambda s: welfare.close_early(s, other_unit, item.id, DURING))
    await refused(db, NotAllowed, lambda s: welfare.item_claims(s, other_unit, item.id))
    await refused(db, NotAllowed, lambda s: welfare.close_early(s, NOBODY, item.id, DURING))
    await refused(db, NotAllowed, lambda s: welfare.create_item(s, NOBODY, draft(), BEFORE))
    await refused(db, NotAllowed, lambda s: welfare.create_item(s, other_unit, draft(units=("i801",)), BEFORE))
    await refused(db, NotAllowed, lambda s: welfare.create_item(s, other_unit, draft(), BEFORE))
    await refused(db, NotEligible, lambda s: welfare.claim_first_come(s, stranger, item.id, DURING, TZ))
    assert (await run(db, lambda s: welfare.redeem(s, cadre("i801"), code, DURING))).claim.id == claim_id


async def test_a_unit_cadre_runs_their_own_units_items(db):
    mine = cadre("i801")
    item = await make_item(db, actor=mine, publish=False, units=("i801",))
    assert item.owner_unit == "i801" and item.status == ItemStatus.DRAFT
    with db.reading() as s:
        assert [e.item.id for e in welfare.list_managed(s, mine, BEFORE)] == [item.id]
        assert welfare.list_managed(s, cadre("i802"), BEFORE) == []
    renamed = await run(
        db, lambda s: welfare.update_item(s, mine, item.id, draft(units=("i801",), title="新标题"), BEFORE)
    )
    assert renamed.title == "新标题"
    published = await run(db, lambda s: welfare.publish(s, mine, item.id, BEFORE))
    assert published.status == ItemStatus.PUBLISHED
    await refused(db, DomainError, lambda s: welfare.publish(s, mine, item.id, BEFORE))
    started = await refused(
        db, DomainError, lambda s: welfare.update_item(s, mine, item.id, draft(units=("i801",)), DURING)
    )
    assert (started.key, started.params) == ("welfare_item_started", {"opens_at": T0})
    closed = await run(db, lambda s: welfare.close_early(s, mine, item.id, DURING))
    assert closed.status == ItemStatus.CLOSED
    ended = await refused(db, DomainError, lambda s: welfare.close_early(s, mine, item.id, DURING))
    assert ended.key == "welfare_item_ended"


async def test_invalid_drafts_name_the_field_and_store_nothing(db):
    cases = [
        (draft(title=""), "title", "missing"),
        (draft(title="长" * 61), "title", "too_long"),
        (draft(mode="raffle"), "mode", "bad_mode"),
        (draft(stock=None), "stock", "missing"),
        (draft(cost=-1), "cost", "out_of_range"),
        (draft(Mode.LOTTERY, per_member_limit=2), "per_member_limit", "first_come_only"),
        (draft(closes_at=T0), "closes_at", "before_open"),
        (draft(redeem_by=CLOSES), "redeem_by", "before_close"),
        (draft(units=("nowhere",)), "units", "unknown_unit"),
        (draft(Mode.GROUP_BUY, threshold=None), "threshold", "missing"),
        (draft(Mode.GROUP_BUY, threshold=5, stock=4), "threshold", "above_stock"),
        (draft(threshold=5), "threshold", "group_buy_only"),
        (draft(opens_at=datetime(2026, 6, 18, 12, 0)), "opens_at", "bad_time"),
    ]
    for bad_draft, field, problem in cases:
        error = await refused(db, BadInput, lambda s, d=bad_draft: welfare.create_item(s, BUREAU, d, BEFORE))
        assert (error.key, error.params["field"], error.params["problem"]) == ("welfare_invalid_item", field, problem)
    item = await make_item(db, publish=False, opens_at=BEFORE - timedelta(hours=2), closes_at=BEFORE)
    late = await refused(db, BadInput, lambda s: welfare.publish(s, BUREAU, item.id, BEFORE))
    assert late.params["problem"] == "in_past"


async def test_closing_an_upcoming_item_cancels_it(db):
    item = await make_item(db)
    closed = await run(db, lambda s: welfare.close_early(s, BUREAU, item.id, BEFORE))
    assert closed.status == ItemStatus.CANCELLED
    (m,) = await make_members(db, 1)
    await refused(db, WindowClosed, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))


async def test_item_claims_counts_per_status_for_the_managing_cadre(db):
    a, b, c = await make_members(db, 3)
    item = await make_item(db, actor=cadre("i801"), units=("i801",))
    claims = [await run(db, lambda s, m=m: welfare.claim_first_come(s, m, item.id, DURING, TZ)) for m in (a, b, c)]
    await run(db, lambda s: welfare.cancel_claim(s, a, claims[0].claim.id, DURING, TZ))
    await run(db, lambda s: welfare.redeem(s, cadre("i801"), claims[1].claim.voucher_code, DURING))
    with db.reading() as s:
        view = welfare.item_claims(s, cadre("i801"), item.id)
    assert view.counts == {"cancelled": 1, "redeemed": 1, "active": 1}
    assert view.item.stock == 8 and view.item.total == 10
    assert [(r.member_id, r.status) for r in view.rows] == [(a.id, "cancelled"), (b.id, "redeemed"), (c.id, "active")]


# --- universal and group-buy ------------------------------------------------------------------------


async def test_universal_one_each_within_the_cap_and_free_items_touch_no_points(db):
    a, b, c = await make_members(db, 3)
    item = await make_item(db, mode=Mode.UNIVERSAL, stock=2, cost=0)
    first = await run(db, lambda s: welfare.claim_universal(s, a, item.id, DURING, TZ))
    assert first.created and first.claim.status == ClaimStatus.ACTIVE and first.balance == 100
    repeat = await run(db, lambda s: welfare.claim_universal(s, a, item.id, DURING, TZ))
    assert (repeat.created, repeat.claim.id) == (False, first.claim.id)
    await refused(db, LimitReached, lambda s: welfare.claim(s, a, item.id, DURING, TZ))
    wrong = await refused(db, DomainError, lambda s: welfare.claim_first_come(s, b, item.id, DURING, TZ))
    assert wrong.key == "welfare_wrong_mode"
    await run(db, lambda s: welfare.claim_universal(s, b, item.id, DURING, TZ))
    await refused(db, SoldOut, lambda s: welfare.claim_universal(s, c, item.id, DURING, TZ))
    with db.reading() as s:
        ledger = (s.exec(select(func.count()).where(LedgerEntry.idem_key.like("welfare:%")))).one()
    assert ledger == 0


async def test_group_buy_that_reaches_its_threshold_gives_everyone_a_voucher(db):
    people = await make_members(db, 4)
    item = await make_item(db, mode=Mode.GROUP_BUY, threshold=3, stock=4, cost=20)
    for m in people:
        joined = await run(db, lambda s, m=m: welfare.join_group_buy(s, m, item.id, DURING, TZ))
        assert joined.claim.status == ClaimStatus.JOINED and joined.balance == 80
    left = await run(db, lambda s: welfare.leave_group_buy(s, people[0], item.id, DURING, TZ))
    assert (left.refunded, left.balance) == (20, 100)
    assert (await item_row(db, item.id)).stock == 1
    with db.reading() as s:
        assert welfare.due_settlements(s, DURING) == []
        assert welfare.due_settlements(s, AFTER) == [item.id]
    await refused(db, WindowClosed, lambda s: welfare.join_group_buy(s, people[0], item.id, AFTER, TZ))
    settled = await run(db, lambda s: welfare.settle_group_buy(s, item.id, AFTER, TZ))
    assert (settled.done, settled.reached, settled.joined) == (True, True, 3)
    assert sorted(r.member_id for r in settled.recipients) == sorted(m.id for m in people[1:])
    assert all(r.voucher_code for r in settled.recipients)
    statuses = Counter(c.status for c in await claims_of(db, item.id))
    assert statuses == {ClaimStatus.ACTIVE: 3, ClaimStatus.CANCELLED: 1}
    assert (await item_row(db, item.id)).outcome == "reached"
    before = await snapshot(db)
    assert not (await run(db, lambda s: welfare.settle_group_buy(s, item.id, AFTER, TZ))).done
    assert await snapshot(db) == before
    assert [await balance(db, m) for m in people] == [100, 80, 80, 80]
    await assert_books_balance(db)


async def test_group_buy_below_threshold_releases_and_refunds_everyone_once(db):
    people = await make_members(db, 2)
    item = await make_item(db, mode=Mode.GROUP_BUY, threshold=3, cost=20)
    for m in people:
        await run(db, lambda s, m=m: welfare.join_group_buy(s, m, item.id, DURING, TZ))
    settled = await run(db, lambda s: welfare.settle_group_buy(s, item.id, AFTER, TZ))
    assert (settled.done, settled.reached) == (True, False)
    assert [(r.refunded, r.voucher_code) for r in settled.recipients] == [(20, None), (20, None)]
    assert {c.status for c in await claims_of(db, item.id)} == {ClaimStatus.RELEASED}
    assert not (await run(db, lambda s: welfare.settle_group_buy(s, item.id, AFTER, TZ))).done
    assert [await balance(db, m) for m in people] == [100, 100]
    await assert_books_balance(db)


# --- lottery ----------------------------------------------------------------------------------------


async def test_lottery_draws_verifiable_winners_and_refunds_the_rest(db):
    people = await make_members(db, 8)
    item = await make_item(db, mode=Mode.LOTTERY, stock=3, cost=20)
    assert item.seed_hash and len(item.seed_hash) == 64
    for m in people:
        applied = await run(db, lambda s, m=m: welfare.apply_lottery(s, m, item.id, DURING, TZ))
        assert applied.claim.status == ClaimStatus.APPLIED and applied.balance == 80
    withdrawn = await run(db, lambda s: welfare.withdraw_application(s, people[0], item.id, DURING, TZ))
    assert withdrawn.refunded == 20
    with db.reading() as s:
        assert welfare.due_draws(s, DURING) == []
        assert welfare.due_draws(s, AFTER) == [item.id]
        with pytest.raises(DomainError):
            welfare.lottery_record(s, item.id)
        card = welfare.item_card(s, people[1], item.id, DURING)
    assert card.item.seed_hash == item.seed_hash and card.taken == 7
    await refused(db, WindowClosed, lambda s: welfare.apply_lottery(s, people[0], item.id, AFTER, TZ))
    await refused(db, WindowClosed, lambda s: welfare.withdraw_application(s, people[1], item.id, AFTER, TZ))

    drawn = await run(db, lambda s: welfare.draw_lottery(s, item.id, AFTER, TZ))
    assert drawn.done and len(drawn.winners) == 3 and len(drawn.losers) == 4
    assert hashlib.sha256(drawn.seed.encode()).hexdigest() == item.seed_hash
    applicants = [m.id for m in people[1:]]
    assert sorted(r.member_id for r in drawn.winners) == sorted(welfare.verify_draw(drawn.seed, applicants, 3))
    with db.reading() as s:
        record = welfare.lottery_record(s, item.id)
    assert (record.seed, record.applicants, record.prizes) == (drawn.seed, sorted(applicants), 3)
    assert record.winners == sorted(welfare.verify_draw(record.seed, record.applicants, record.prizes))
    winners = {r.member_id for r in drawn.winners}
    for m in people[1:]:
        assert await balance(db, m) == (80 if m.id in winners else 100)
    assert Counter(c.status for c in await claims_of(db, item.id)) == {
        ClaimStatus.ACTIVE: 3,
        ClaimStatus.LOST: 4,
        ClaimStatus.CANCELLED: 1,
    }
    before = await snapshot(db)
    assert not (await run(db, lambda s: welfare.draw_lottery(s, item.id, AFTER, TZ))).done
    assert await snapshot(db) == before
    await assert_books_balance(db)


async def test_a_draw_that_crashes_midway_reruns_without_double_vouchers_or_refunds(db, monkeypatch):
    people = await make_members(db, 6)
    item = await make_item(db, mode=Mode.LOTTERY, stock=3, cost=20)
    for m in people:
        await run(db, lambda s, m=m: welfare.apply_lottery(s, m, item.id, DURING, TZ))
    before = await snapshot(db)
    # The draw issues vouchers (models/welfare/lottery.py) and refunds the losers (queries._release): stand-ins
    # where each step is looked up count them.
    where = {"_issue_voucher": welfare.lottery, "_refund_claim": welfare.queries}
    real = {name: getattr(module, name) for name, module in where.items()}
    done: list[str] = []

    def counting(name: str) -> Callable[..., Awaitable[Any]]:
        """A stand-in that crashes before the sixth voucher or refund of the draw."""

        def step(*args: Any) -> Any:
            """Count the step, or crash when five are done."""
            if len(done) == 5:
                raise RuntimeError("power cut before the last applicant")
            result = real[name](*args)
            done.append(name)
            return result

        return step

    for name in real:
        monkeypatch.setattr(where[name], name, counting(name))
    with pytest.raises(RuntimeError):
        await run(db, lambda s: welfare.draw_lottery(s, item.id, AFTER, TZ))
    # Vouchers and refunds were written inside the transaction before the crash; none of it was kept.
    steps = Counter(done)
    assert len(done) == 5 and steps["_issue_voucher"] >= 2 and steps["_refund_claim"] >= 2
    assert await snapshot(db) == before
    for name, fn in real.items():
        monkeypatch.setattr(where[name], name, fn)
    drawn = await run(db, lambda s: welfare.draw_lottery(s, item.id, AFTER, TZ))
    again = await run(db, lambda s: welfare.draw_lottery(s, item.id, AFTER, TZ))
    assert drawn.done and not again.done
    claims = await claims_of(db, item.id)
    assert Counter(c.status for c in claims) == {ClaimStatus.ACTIVE: 3, ClaimStatus.LOST: 3}
    assert len({c.voucher_code for c in claims if c.voucher_code}) == 3
    with db.reading() as s:
        refunds = list(s.exec(select(LedgerEntry.idem_key).where(col(LedgerEntry.idem_key).like("welfare:refund:%"))))
    assert len(refunds) == 3
    assert sorted([await balance(db, m) for m in people]) == [80, 80, 80, 100, 100, 100]
    await assert_books_balance(db)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    ids=st.sets(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=60),
    k=st.integers(min_value=0, max_value=20),
    data=st.data(),
)
def test_draw_properties(seed: str, ids: set[int], k: int, data: st.DataObject) -> None:
    winners = welfare.verify_draw(seed, ids, k)
    assert welfare.verify_draw(seed, sorted(ids, reverse=True), k) == winners
    assert len(winners) == min(k, len(ids)) and set(winners) <= ids
    losers = sorted(ids - set(winners))
    if losers:
        gone = data.draw(st.sampled_from(losers))
        assert welfare.verify_draw(seed, ids - {gone}, k) == winners
    newcomer = data.draw(st.integers(min_value=1, max_value=10**9).filter(lambda i: i not in ids))
    with_newcomer = set(welfare.verify_draw(seed, ids | {newcomer}, k))
    assert len(set(winners) - with_newcomer) <= 1
    assert with_newcomer - set(winners) <= {newcomer}
    if winners:
        out = data.draw(st.sampled_from(winners))
        without = set(welfare.verify_draw(seed, ids - {out}, k))
        assert set(winners) - {out} <= without and len(without - set(winners)) <= 1


def test_draw_depends_on_the_seed() -> None:
    ids = range(1, 101)
    assert welfare.verify_draw("a" * 64, ids, 10) != welfare.verify_draw("b" * 64, ids, 10)
    assert welfare.verify_draw("a" * 64, ids, 10) == sorted(ids, key=lambda m: welfare.lottery_score("a" * 64, m))[:10]


# --- reminders --------------------------------------------------------------------------------------


async def test_remind_me_once_and_notify_at_opening(db):
    a, b = await make_members(db, 2)
    item = await make_item(db)
    assert await run(db, lambda s: welfare.remind_me(s, a, item.id, BEFORE)) is True
    assert await run(db, lambda s: welfare.remind_me(s, a, item.id, BEFORE)) is False
    already = await refused(db, DomainError, lambda s: welfare.remind_me(s, b, item.id, DURING))
    assert already.key == "welfare_already_open"
    with db.reading() as s:
        assert welfare.due_openings(s, BEFORE) == []
        assert welfare.due_openings(s, T0) == [item.id]
    told = await run(db, lambda s: welfare.open_item(s, item.id, T0))
    assert [(r.member_id, r.telegram_id) for r in told] == [(a.id, a.telegram_id)]
    assert await run(db, lambda s: welfare.open_item(s, item.id, T0)) == []
    with db.reading() as s:
        assert welfare.due_openings(s, DURING) == []
        assert welfare.due_reminders(s, DURING) == []


# --- concurrency ------------------------------------------------------------------------------------


async def test_concurrent_claims_never_oversell_or_double_claim(db):
    people = await make_members(db, 200)
    item = await make_item(db, stock=50, cost=10)
    attempts = people + people[:100]  # half the members press twice

    async def attempt(m: Member) -> str:
        """One member's claim in its own transaction: 'created', 'repeat' or the error key."""
        try:
            result = await run(db, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))
            return "created" if result.created else "repeat"
        except DomainError as exc:
            return exc.key

    outcomes = Counter(await asyncio.gather(*(attempt(m) for m in attempts)))
    assert outcomes["created"] == 50
    assert set(outcomes) <= {"created", "welfare_sold_out", "welfare_limit_reached"}
    claims = await claims_of(db, item.id)
    assert len(claims) == 50 and len({c.member_id for c in claims}) == 50
    assert (await item_row(db, item.id)).stock == 0
    winners = {c.member_id for c in claims}
    for m in people:
        assert await balance(db, m) == (90 if m.id in winners else 100)
    await assert_books_balance(db)


async def test_cancel_and_redeem_at_once_leave_exactly_one_outcome(db):
    people = await make_members(db, 12)
    item = await make_item(db, stock=12, cost=10)
    claimed = [await run(db, lambda s, m=m: welfare.claim_first_come(s, m, item.id, DURING, TZ)) for m in people]

    async def cancel(m: Member, claim_id: int) -> str:
        """The member cancels: 'cancelled' or the error key."""
        try:
            await run(db, lambda s: welfare.cancel_claim(s, m, claim_id, DURING, TZ))
            return "cancelled"
        except DomainError as exc:
            return exc.key

    async def redeem(code: str) -> str:
        """A bureau cadre redeems: 'redeemed' or the error key."""
        try:
            await run(db, lambda s: welfare.redeem(s, BUREAU, code, DURING))
            return "redeemed"
        except DomainError as exc:
            return exc.key

    races = []
    for m, c in zip(people, claimed, strict=True):
        pair = (cancel(m, c.claim.id), redeem(c.claim.voucher_code))
        races.extend(pair if m.id % 2 else pair[::-1])
    outcomes = await asyncio.gather(*races)
    stored = {c.id: c.status for c in await claims_of(db, item.id)}
    cancelled = 0
    for i, (m, c) in enumerate(zip(people, claimed, strict=True)):
        pair = outcomes[2 * i : 2 * i + 2]
        if m.id % 2 == 0:
            pair = pair[::-1]
        cancel_outcome, redeem_outcome = pair
        if stored[c.claim.id] == ClaimStatus.CANCELLED:
            assert (cancel_outcome, redeem_outcome) == ("cancelled", "welfare_voucher_cancelled")
            assert await balance(db, m) == 100
            cancelled += 1
        else:
            assert stored[c.claim.id] == ClaimStatus.REDEEMED
            assert (cancel_outcome, redeem_outcome) == ("welfare_not_cancellable", "redeemed")
            assert await balance(db, m) == 90
    assert (await item_row(db, item.id)).stock == cancelled
    await assert_books_balance(db)


async def test_four_processes_claiming_at_once_on_postgresql_take_exactly_the_stock(pg_db):
    people = await make_members(pg_db, 120)
    item = await make_item(pg_db, stock=40, cost=10)
    ids = [m.id for m in people]
    # Each process claims for 60 members; every member is claimed for by two different processes.
    shares = [(ids[p * 30 :] + ids[: p * 30])[:60] for p in range(4)]
    args = [PG_URL, str(item.id), DURING.isoformat()]
    outcomes = await race("tests.welfare_claim_worker", [[*args, ",".join(map(str, share))] for share in shares])
    assert outcomes["created"] == 40 and sum(outcomes.values()) == 240
    assert set(outcomes) <= {"created", "welfare_sold_out", "welfare_limit_reached"}
    claims = await claims_of(pg_db, item.id)
    assert len(claims) == 40 and len({c.member_id for c in claims}) == 40
    assert (await item_row(pg_db, item.id)).stock == 0
    await assert_books_balance(pg_db)


async def test_a_cancel_that_saw_the_voucher_active_loses_to_a_redeem_committed_meanwhile(pg_db, monkeypatch):
    """PostgreSQL, forced interleaving: the cancel reads 'active', then a redeem commits, then the cancel writes."""
    (m,) = await make_members(pg_db, 1)
    item = await make_item(pg_db, cost=10)
    claimed = await run(pg_db, lambda s: welfare.claim_first_come(s, m, item.id, DURING, TZ))
    # The cancel runs in a PostgreSQL worker thread: thread events, waited for off the event loop.
    cancel_has_read, redeem_committed = threading.Event(), threading.Event()
    real_reload = welfare._reload_claim

    def reload_then_wait(session: Session, claim_id: int) -> WelfareClaim | None:
        """Read the claim; if it is still active, let the redeem commit before going on."""
        found = real_reload(session, claim_id)
        if found is not None and found.status == ClaimStatus.ACTIVE:
            cancel_has_read.set()
            redeem_committed.wait(timeout=30)
        return found

    monkeypatch.setattr(welfare.claims, "_reload_claim", reload_then_wait)
    cancel = asyncio.create_task(run(pg_db, lambda s: welfare.cancel_claim(s, m, claimed.claim.id, DURING, TZ)))
    assert await asyncio.to_thread(cancel_has_read.wait, 30)
    await run(pg_db, lambda s: welfare.redeem(s, BUREAU, claimed.claim.voucher_code, DURING))
    redeem_committed.set()
    with pytest.raises(DomainError) as info:
        await cancel
    assert (info.value.key, info.value.params) == ("welfare_not_cancellable", {"status": "redeemed"})
    assert [c.status for c in await claims_of(pg_db, item.id)] == [ClaimStatus.REDEEMED]
    assert await balance(pg_db, m) == 90
    assert (await item_row(pg_db, item.id)).stock == 9
    await assert_books_balance(pg_db)


# --- vouchers ---------------------------------------------------------------------------------------


def test_voucher_codes_are_unambiguous_and_normalised() -> None:
    codes = {vouchers.new_code() for _ in range(500)}
    assert len(codes) == 500
    assert all(len(c) == 8 and not set(c) & set("01OIL") for c in codes)
    code = next(iter(codes))
    assert vouchers.normalize_code(f" r_{code[:4].lower()}-{code[4:]} ") == code
    assert vouchers.normalize_code("ABCD0FGH") is None
    assert vouchers.normalize_code("ABC") is None


def test_voucher_qr_is_a_png_of_the_deep_link() -> None:
    png = vouchers.voucher_qr_png("ABCD2345", "gongshe_bot")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] == image.size[1] >= 210
    assert vouchers.deep_link("ABCD2345", "gongshe_bot") == "https://t.me/gongshe_bot?start=r_ABCD2345"


# --- import -----------------------------------------------------------------------------------------

GOOD_TOML = """\
# 端午福利
[[item]]
title = "端午粽子礼盒"
mode = "抢福利"
cost = 30
stock = 100
per_member_limit = 2
opens_at = 2026-06-18T12:00:00
closes_at = 2026-06-20T18:00:00
redeem_by = 2026-06-30T18:00:00
description = \"\"\"每位会员限领两份。
units = 这一行在多行字符串里\"\"\"
pickup = "工会办公室 302"

[[item]]
title = "音乐会门票"
mode = "lottery"
stock = 5
opens_at = "2026-06-18 12:00"
closes_at = 2026-06-19T12:00:00+08:00
units = ["i801", "i802"]
owner_unit = "i801"
"""

BAD_TOML = """\
[[item]]
title = "粽子"
mode = "first_come"
stock = 5
opens_at = 2026-06-18T12:00:00
closes_at = 2026-06-18T11:00:00

[[item]]
title = "电影票"
mode = "raffle"
stock = "ten"
opens_at = 2026-06-18T12:00:00
closes_at = 2026-06-19T12:00:00
units = ["i801", "nowhere"]
colour = "red"
"""

BAD_CSV = """\
title,mode,cost,stock,opens_at,closes_at,units,description
粽子,first_come,10,5,2026-06-18 12:00,2026-06-19 12:00,i801,"两行
说明"
电影票,抽签,0,,2026-06-18 12:00,2026-06-19 12:00,,
水果,团购,5,10,2026-06-18 12:00,2026-06-18 25:00,,
"""


def test_a_good_toml_file_parses_with_local_times() -> None:
    drafts = parse_welfare_file(GOOD_TOML, "toml", UNITS, TZ)
    assert [(d.line, d.title, d.mode) for d in drafts] == [
        (2, "端午粽子礼盒", Mode.FIRST_COME),
        (15, "音乐会门票", Mode.LOTTERY),
    ]
    assert drafts[0].opens_at == T0 and drafts[0].per_member_limit == 2
    assert drafts[0].description.endswith("这一行在多行字符串里")
    assert drafts[1].opens_at == T0 and drafts[1].units == ("i801", "i802") and drafts[1].owner_unit == "i801"


def test_a_bad_toml_file_reports_every_problem_at_its_line() -> None:
    with pytest.raises(WelfareFileError) as info:
        parse_welfare_file(BAD_TOML, "toml", UNITS, TZ)
    assert info.value.problems == [
        (6, "before_open", "closes_at"),
        (10, "bad_mode", "mode: raffle"),
        (11, "bad_number", "stock: ten"),
        (14, "unknown_unit", "units: nowhere"),
        (15, "unknown_key", "colour"),
    ]


def test_toml_syntax_errors_and_empty_files_say_where() -> None:
    with pytest.raises(WelfareFileError) as info:
        parse_welfare_file('[[item]]\ntitle = "x"\ncost = \n', "toml", UNITS, TZ)
    assert [(line, key) for line, key, _ in info.value.problems] == [(3, "syntax")]
    with pytest.raises(WelfareFileError) as empty:
        parse_welfare_file("\ufeff  \n", "toml", UNITS, TZ)
    assert empty.value.problems == [(1, "empty_file", "")]


def test_a_bad_csv_file_reports_lines_even_after_a_multiline_cell() -> None:
    with pytest.raises(WelfareFileError) as info:
        parse_welfare_file(BAD_CSV, "csv", UNITS, TZ)
    assert info.value.problems == [
        (4, "missing", "stock"),
        (5, "bad_time", "closes_at: 2026-06-18 25:00"),
        (5, "missing", "threshold"),
    ]
    with pytest.raises(WelfareFileError) as header:
        parse_welfare_file("title,mode,colour\nx,first_come,red\n", "csv", UNITS, TZ)
    assert header.value.problems == [(1, "unknown_key", "colour"), (1, "missing_columns", "opens_at, closes_at")]


async def test_import_stores_all_or_nothing(db):
    drafts = parse_welfare_file(GOOD_TOML, "toml", UNITS, TZ)
    late = replace(drafts[0], line=40, closes_at=BEFORE - timedelta(minutes=1), opens_at=BEFORE - timedelta(hours=1))
    with pytest.raises(WelfareFileError) as info:
        await run(db, lambda s: import_items(s, [drafts[0], late], 1000, BEFORE))
    assert info.value.problems == [(40, "in_past", "closes_at")]
    assert (await snapshot(db))[0] == []
    ids = await run(db, lambda s: import_items(s, drafts, 1000, BEFORE))
    stored = [await item_row(db, i) for i in ids]
    assert [(i.status, i.mode, i.owner_unit) for i in stored] == [
        (ItemStatus.PUBLISHED, Mode.FIRST_COME, None),
        (ItemStatus.PUBLISHED, Mode.LOTTERY, "i801"),
    ]
    assert stored[0].seed_hash is None and len(stored[1].seed_hash) == 64 and stored[1].seed != stored[1].seed_hash
    both = Actor(903, None, False, frozenset({"i801", "i802"}), frozenset({Role.CADRE}))
    with db.reading() as s:
        _item, units = welfare.managed_item(s, both, ids[1])
        with pytest.raises(NotAllowed):
            welfare.managed_item(s, cadre("i801"), ids[1])
    assert units == ("i801", "i802")


def test_one_shape_every_described_field_is_an_item_column_and_round_trips():
    """ItemDraft is the one definition: each field it shares with the item is a column of the same name, and an item
    read back as a draft gives the same values (a new field in one place and not the other fails here)."""
    columns = set(WelfareItem.__table__.columns.keys())
    assert set(welfare.DESCRIBED) <= columns
    assert {"stock", "total"} <= columns and "units" not in columns
    source = draft(units=("i801",), threshold=None)
    item = WelfareItem(**welfare.item_values(source), created_by_telegram_id=1)
    back = welfare.draft_of(item, source.units)
    assert all(getattr(back, name) == getattr(source, name) for name in (*welfare.DESCRIBED, "stock", "units"))
