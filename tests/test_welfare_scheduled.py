"""The welfare task: openings, draws, settlements and expiries change state and queue notices exactly once.

Every test drives scheduled.welfare.run_welfare with an explicit `now` on SQLite and PostgreSQL and reads
what landed in the outbox: who gets which message, in which language, with which button, and that a
re-run adds nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from buttons.welfare import ShowItem, ShowVoucher
from config import Config, PointsRule
from messages import Renderer
from models import points, welfare
from models.db import Database
from models.members import Actor, Member, Role, Status
from models.outbox import OutboxMessage
from models.welfare import ClaimStatus, ItemDraft, Mode, WelfareClaim, WelfareItem, WelfareReminder
from scheduled import runner
from scheduled.welfare import run_welfare
from services import Services

T0 = datetime(2026, 6, 18, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: the items open
BEFORE = T0 - timedelta(hours=1)
DURING = T0 + timedelta(minutes=1)
CLOSES = T0 + timedelta(hours=2)
AFTER = CLOSES + timedelta(minutes=1)
REDEEM_BY = CLOSES + timedelta(days=1)
DAY = date(2026, 6, 18)
GRANT = PointsRule("cadre_grant", 0, 0)
BUREAU = Actor(900, None, False, frozenset({None}), frozenset({Role.CADRE}))
RENDERER = Renderer()

_next_telegram_id = iter(range(20_000, 10_000_000))


def services_for(config: Config, db: Database) -> Services:
    """What the scheduler hands to a task."""
    return Services(config, db, RENDERER)


async def make_members(db: Database, languages: list[str], balance: int = 100) -> list[Member]:
    """Verified members with these languages, each given `balance` points through the ledger."""
    with db.writing() as s:
        people = []
        for language in languages:
            tid = next(_next_telegram_id)
            people.append(
                Member(
                    telegram_id=tid,
                    unit_code="i801",
                    employee_no=f"S{tid}",
                    name=f"会员{tid}",
                    status=Status.VERIFIED,
                    language=language,
                )
            )
        s.add_all(people)
        s.flush()
        for m in people:
            points.award(s, m.id, GRANT, f"test:seed:{m.id}", DAY, amount=balance)
    return people


async def make_item(db: Database, mode: str = Mode.FIRST_COME, **changes: Any) -> WelfareItem:
    """A published item, open 12:00-14:00 Shanghai time, created an hour before it opens."""
    base = ItemDraft(title="端午粽子礼盒", mode=mode, opens_at=T0, closes_at=CLOSES, cost=20, stock=10, pickup="302 室")
    if mode == Mode.GROUP_BUY:
        base = replace(base, stock=None, threshold=3)
    with db.writing() as s:
        item = welfare.create_item(s, BUREAU, replace(base, **changes), BEFORE)
        return welfare.publish(s, BUREAU, item.id, BEFORE)


async def each(db: Database, people: list[Member], fn: Callable[[Any, Member], Awaitable[Any]]) -> None:
    """Run one operation per member, each in its own write transaction."""
    for m in people:
        with db.writing() as s:
            fn(s, m)


async def outbox_rows(db: Database) -> list[OutboxMessage]:
    """Every queued message, oldest first."""
    with db.reading() as s:
        return list(s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


async def item_row(db: Database, item_id: int) -> WelfareItem:
    """The item as stored."""
    with db.reading() as s:
        return s.get(WelfareItem, item_id)


async def claims_by_member(db: Database, item_id: int) -> dict[int, WelfareClaim]:
    """The item's claims, by member id."""
    with db.reading() as s:
        return {c.member_id: c for c in s.exec(select(WelfareClaim).where(WelfareClaim.item_id == item_id))}


async def balance(db: Database, member: Member) -> int:
    """The member's points now."""
    with db.reading() as s:
        return points.balance_of(s, member.id)


def button(row: OutboxMessage) -> tuple[str, str] | None:
    """The one button under a message, as (text, callback data)."""
    if row.reply_markup is None:
        return None
    ((only,),) = row.reply_markup["inline_keyboard"]
    return only["text"], only["callback_data"]


def local(at: datetime | None, config: Config) -> datetime | None:
    """A time as the templates get it."""
    return at.astimezone(config.timezone) if at is not None else None


async def test_the_task_runs_at_every_tick(config):
    spec = runner.discover()["welfare"]
    assert spec.next_after(config, T0) == T0 + timedelta(seconds=config.tick_seconds)


async def test_an_opening_tells_exactly_the_reminded_members_once_in_their_language(db, config):
    services = services_for(config, db)
    zh, en, quiet = await make_members(db, ["zh", "en", "zh"])
    item = await make_item(db)
    await each(db, [zh, en], lambda s, m: welfare.remind_me(s, m, item.id, BEFORE))

    assert await run_welfare(services, BEFORE) == "ok"
    assert await outbox_rows(db) == []
    assert await run_welfare(services, T0) == "ok"
    rows = await outbox_rows(db)
    assert [(r.chat_id, r.member_id, r.kind) for r in rows] == [
        (zh.telegram_id, zh.id, "welfare_opened"),
        (en.telegram_id, en.id, "welfare_opened"),
    ]
    context = {"title": item.title, "mode": item.mode, "cost": item.cost, "closes_at": local(CLOSES, config)}
    for row, language in zip(rows, ["zh", "en"], strict=True):
        assert row.text == RENDERER.render(language, "welfare_notices/opened", **context)
        assert button(row) == (RENDERER.label(language, "welfare_notice_open_item"), ShowItem(item.id).pack())
    assert rows[0].text != rows[1].text

    assert await run_welfare(services, DURING) == "ok"
    assert len(await outbox_rows(db)) == 2
    assert (await item_row(db, item.id)).opened_at == T0

    # A reminder that slipped in after the opening was handled is still sent, once.
    with db.writing() as s:
        s.add(WelfareReminder(item_id=item.id, member_id=quiet.id, created_at=T0))
    await run_welfare(services, DURING)
    await run_welfare(services, DURING)
    rows = await outbox_rows(db)
    assert [r.member_id for r in rows] == [zh.id, en.id, quiet.id]


async def test_an_item_whose_window_passed_unnoticed_does_not_say_it_is_open(db, config):
    services = services_for(config, db)
    (m,) = await make_members(db, ["zh"])
    item = await make_item(db)
    await each(db, [m], lambda s, m: welfare.remind_me(s, m, item.id, BEFORE))
    # The bot was down from before the opening until after the close.
    assert await run_welfare(services, AFTER) == "ok"
    assert await outbox_rows(db) == []
    with db.reading() as s:
        reminder = s.get(WelfareReminder, (item.id, m.id))
    assert reminder.sent_at == AFTER


async def test_a_lottery_is_drawn_at_close_and_everyone_hears_their_result_once(db, config):
    services = services_for(config, db)
    people = await make_members(db, ["zh", "en", "zh", "en", "zh"])
    language = {m.id: m.language for m in people}
    item = await make_item(db, mode=Mode.LOTTERY, stock=2, redeem_by=REDEEM_BY)
    await each(db, people, lambda s, m: welfare.apply_lottery(s, m, item.id, DURING, config.timezone))

    assert await run_welfare(services, DURING) == "ok"
    assert (await item_row(db, item.id)).drawn_at is None
    assert await run_welfare(services, AFTER) == "ok"
    drawn = await item_row(db, item.id)
    assert drawn.drawn_at == AFTER and hashlib.sha256(drawn.seed.encode()).hexdigest() == item.seed_hash
    winners = set(welfare.verify_draw(drawn.seed, [m.id for m in people], 2))
    claims = await claims_by_member(db, item.id)
    rows = await outbox_rows(db)
    assert sorted(r.member_id for r in rows) == sorted(m.id for m in people)
    shared = {"title": item.title, "seed": drawn.seed, "seed_hash": item.seed_hash, "applicants": 5, "winners": 2}
    for row in rows:
        lang, claim = language[row.member_id], claims[row.member_id]
        assert row.dedupe_key == f"welfare:draw:{item.id}:{row.member_id}"
        assert drawn.seed in row.text and item.seed_hash in row.text
        if row.member_id in winners:
            assert row.kind == "welfare_won" and claim.status == ClaimStatus.ACTIVE
            context = {**shared, "code": claim.voucher_code, "pickup": "302 室", "redeem_by": local(REDEEM_BY, config)}
            assert row.text == RENDERER.render(lang, "welfare_notices/won", **context)
            assert claim.voucher_code in row.text
            assert button(row) == (
                RENDERER.label(lang, "welfare_notice_show_voucher"),
                ShowVoucher(claim.id).pack(),
            )
        else:
            assert row.kind == "welfare_lost" and claim.status == ClaimStatus.LOST
            assert row.text == RENDERER.render(lang, "welfare_notices/lost", **shared, refunded=20)
    assert sum(r.kind == "welfare_won" for r in rows) == 2
    assert [await balance(db, m) for m in people] == [80 if m.id in winners else 100 for m in people]

    assert await run_welfare(services, AFTER + timedelta(minutes=1)) == "ok"
    assert len(await outbox_rows(db)) == 5


async def test_group_buys_settle_reached_with_vouchers_and_failed_with_refunds(db, config):
    services = services_for(config, db)
    people = await make_members(db, ["zh", "en", "zh", "en", "zh"])
    reached = await make_item(db, mode=Mode.GROUP_BUY, threshold=3, title="团购水果")
    failed = await make_item(db, mode=Mode.GROUP_BUY, threshold=3, title="团购月饼")
    tz = config.timezone
    await each(db, people[:3], lambda s, m: welfare.join_group_buy(s, m, reached.id, DURING, tz))
    await each(db, people[3:], lambda s, m: welfare.join_group_buy(s, m, failed.id, DURING, tz))
    assert [await balance(db, m) for m in people] == [80] * 5

    assert await run_welfare(services, AFTER) == "ok"
    rows = await outbox_rows(db)
    won = await claims_by_member(db, reached.id)
    by_member = {r.member_id: r for r in rows}
    assert sorted(by_member) == sorted(m.id for m in people) and len(rows) == 5
    for m in people[:3]:
        row, claim = by_member[m.id], won[m.id]
        assert (row.kind, claim.status) == ("welfare_group_reached", ClaimStatus.ACTIVE)
        context = {"title": "团购水果", "joined": 3, "threshold": 3, "code": claim.voucher_code, "pickup": "302 室"}
        assert row.text == RENDERER.render(m.language, "welfare_notices/group_reached", **context, redeem_by=None)
        assert button(row) == (
            RENDERER.label(m.language, "welfare_notice_show_voucher"),
            ShowVoucher(claim.id).pack(),
        )
    for m in people[3:]:
        row = by_member[m.id]
        assert row.kind == "welfare_group_failed" and button(row) is None
        context = {"title": "团购月饼", "joined": 2, "threshold": 3, "refunded": 20}
        assert row.text == RENDERER.render(m.language, "welfare_notices/group_failed", **context)
    assert {c.status for c in (await claims_by_member(db, failed.id)).values()} == {ClaimStatus.RELEASED}
    assert [await balance(db, m) for m in people] == [80, 80, 80, 100, 100]
    assert ((await item_row(db, reached.id)).outcome, (await item_row(db, failed.id)).outcome) == ("reached", "failed")

    assert await run_welfare(services, AFTER + timedelta(minutes=1)) == "ok"
    assert len(await outbox_rows(db)) == 5
    assert [await balance(db, m) for m in people] == [80, 80, 80, 100, 100]


async def test_vouchers_past_redeem_by_expire_and_their_holders_are_told_once(db, config):
    services = services_for(config, db)
    holder, redeemer, en_holder = await make_members(db, ["zh", "zh", "en"])
    item = await make_item(db, redeem_by=REDEEM_BY)
    await each(db, [holder, redeemer, en_holder], lambda s, m: welfare.claim(s, m, item.id, DURING, config.timezone))
    claims = await claims_by_member(db, item.id)
    with db.writing() as s:
        welfare.redeem(s, BUREAU, claims[redeemer.id].voucher_code, DURING)

    assert await run_welfare(services, REDEEM_BY) == "ok"
    assert await outbox_rows(db) == []
    late = REDEEM_BY + timedelta(minutes=1)
    assert await run_welfare(services, late) == "ok"
    rows = await outbox_rows(db)
    assert [(r.member_id, r.kind) for r in rows] == [(holder.id, "welfare_expired"), (en_holder.id, "welfare_expired")]
    for row, m in zip(rows, [holder, en_holder], strict=True):
        context = {"title": item.title, "code": claims[m.id].voucher_code, "redeem_by": local(REDEEM_BY, config)}
        assert row.text == RENDERER.render(m.language, "welfare_notices/expired", **context)
        assert row.dedupe_key == f"welfare:expired:{claims[m.id].id}"
    statuses = {m: c.status for m, c in (await claims_by_member(db, item.id)).items()}
    assert statuses == {holder.id: ClaimStatus.EXPIRED, redeemer.id: ClaimStatus.REDEEMED, en_holder.id: "expired"}

    assert await run_welfare(services, late + timedelta(minutes=1)) == "ok"
    assert len(await outbox_rows(db)) == 2


async def test_one_broken_item_does_not_stop_the_others(db, config, monkeypatch):
    services = services_for(config, db)
    people = await make_members(db, ["zh", "en", "zh"])
    broken = await make_item(db, mode=Mode.LOTTERY, stock=1, title="坏掉的抽签")
    fine = await make_item(db, mode=Mode.LOTTERY, stock=1, title="好好的抽签")
    settles = await make_item(db, mode=Mode.GROUP_BUY, threshold=1, title="团购")
    tz = config.timezone
    for item in (broken, fine):
        await each(db, people, lambda s, m, item=item: welfare.apply_lottery(s, m, item.id, DURING, tz))
    await each(db, people[:1], lambda s, m: welfare.join_group_buy(s, m, settles.id, DURING, tz))
    real_draw = welfare.draw_lottery

    def draw_or_break(session: Any, item_id: int, now: datetime, tz: Any) -> welfare.DrawResult:
        """The real draw, except for the broken item, which fails after the draw wrote everything."""
        result = real_draw(session, item_id, now, tz)
        if item_id == broken.id:
            raise RuntimeError("broken item")
        return result

    monkeypatch.setattr(welfare, "draw_lottery", draw_or_break)
    assert await run_welfare(services, AFTER) == "partial"
    rows = await outbox_rows(db)
    assert sorted(r.dedupe_key for r in rows) == sorted(
        [f"welfare:draw:{fine.id}:{m.id}" for m in people] + [f"welfare:group:{settles.id}:{people[0].id}"]
    )
    # The broken item's transaction was rolled back as a whole: not drawn, nobody told, points still held.
    assert (await item_row(db, broken.id)).drawn_at is None
    assert {c.status for c in (await claims_by_member(db, broken.id)).values()} == {ClaimStatus.APPLIED}

    monkeypatch.setattr(welfare, "draw_lottery", real_draw)
    assert await run_welfare(services, AFTER + timedelta(minutes=1)) == "ok"
    rows = await outbox_rows(db)
    assert len(rows) == 7
    assert sum(r.dedupe_key.startswith(f"welfare:draw:{broken.id}:") for r in rows) == 3
