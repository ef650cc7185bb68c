"""Me: profile, language switching, ranking opt-out, export my data, delete my account."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from buttons.me import ConfirmDelete
from config import PointsRule
from models import flows, inbox, members, outbox, points, welfare
from models.flows import FlowState
from models.inbox import InboxUpdate
from models.members import Member, Status
from models.outbox import OutboxMessage
from models.vouchers import qr_ref
from models.welfare import ClaimStatus, WelfareClaim, WelfareItem, WelfareReminder
from services import notify
from tests.conftest import NOW, make_member
from tests.test_inbox import message_update
from tests.test_welfare import SHANGHAI, open_item, rich_member

DAY = date(2026, 11, 28)


async def test_language_follows_telegram_then_the_members_choice(bot):
    english = bot.user(8501, language_code="en-GB")
    await english.send("/start")
    assert "Welcome to" in english.last.text
    unknown = bot.user(8502, language_code="fr")
    await unknown.send("/help")
    assert "可用的命令" in unknown.last.text
    await make_member(bot.db, 8503, "i801", language="zh")
    user = bot.user(8503, language_code="en")
    await user.send("/me")
    assert "我的" in user.last.text
    await user.click("English")
    assert "Language: English" in user.last.text and "🌐 中文" in user.last.labels
    await user.send("/points")
    assert "My points" in user.last.text
    await user.send("/lang zh")
    assert "以后我用中文" in user.last.text
    await user.send("/lang")
    assert "speak English" in user.last.text
    await user.send("/lang xx")
    assert "Languages available" in user.last.text


async def test_ranking_opt_out_toggle(bot):
    await make_member(bot.db, 8504, "i801")
    user = bot.user(8504)
    await user.send("/me")
    assert "积分排行：参加" in user.last.text
    await user.click("不参加积分排行")
    assert "积分排行：不参加" in user.last.text
    await user.click("参加积分排行")
    assert "积分排行：参加" in user.last.text


async def test_export_has_my_data_and_nobody_elses(bot):
    me = await make_member(bot.db, 8505, "i801", employee_no="U1", name="导出者")
    other = await make_member(bot.db, 8506, "i801", employee_no="U2", name="旁人")
    with bot.db.writing() as s:
        points.award(s, me.id, PointsRule("idea_adopted", 50, 0), "x", DAY)
        points.award(s, other.id, PointsRule("idea_adopted", 50, 0), "y", DAY)
    user = bot.user(8505)
    await user.send("/me")
    await user.click("导出我的数据")
    filename, content = user.last.document
    data = json.loads(content)
    assert filename.endswith(".json")
    assert data["member"]["name"] == "导出者" and data["member"]["employee_no"] == "U1"
    assert [e["delta"] for e in data["points_ledger"]] == [50]
    assert "旁人" not in content.decode() and "U2" not in content.decode()
    assert user.last_answer() == "数据已导出"


async def test_delete_account_erases_personal_data_and_keeps_totals(bot):
    me = await make_member(bot.db, 8507, "i801", employee_no="V1", name="告别者")
    with bot.db.writing() as s:
        points.award(s, me.id, PointsRule("idea_adopted", 50, 0), "v", DAY)
        points.spend(s, me.id, 20, "v-spend", DAY, "buy")
    user = bot.user(8507)
    await user.send("/me")
    await user.click("注销账号")
    assert "确定要注销账号吗" in user.last.text
    await user.click("再想想")
    assert "告别者" in user.last.text
    await user.click("注销账号")
    await user.click("确认注销")
    assert "账号已注销" in user.last.text
    with bot.db.reading() as s:
        row = s.get(Member, me.id)
        assert (row.telegram_id, row.name, row.employee_no, row.status) == (None, None, None, Status.DELETED)
        assert row.balance == points.ledger_sum(s, me.id) == 30
        assert (s.exec(select(Member).where(Member.telegram_id == 8507))).first() is None
    # The same person can join again, and the employee number is free.
    await user.send("/start")
    await user.click("八〇一所工会")
    await user.send("V1")
    assert "真实姓名" in user.last.text
    # A forwarded or stale confirm button, pressed again, finds nothing to delete.
    await user.press(ConfirmDelete().pack())
    assert "还不是已认证的会员" in user.last.text


async def test_unverified_users_see_only_registration_and_help(bot):
    user = bot.user(8508)
    for command in ("/points", "/me", "/menu", "/lang en"):
        await user.send(command)
        assert "还不是已认证的会员" in user.last.text, command
        assert "📝 入会登记" in user.last.labels
    await user.click("入会登记")
    assert "第一步" in user.last.text
    await user.send("/help")
    assert "/start" in user.last.text and "/points" not in user.last.text
    with bot.db.reading() as s:
        assert members.count_by_status(s) == {}


# --- what export and deletion cover beyond the profile -------------------------------------------------------


async def _welfare_life(db, member: Member, other: Member) -> dict[str, int]:
    """The member applies to a lottery, joins a group-buy, holds a voucher and asked for a reminder; the other
    member applies to the same lottery. Returns the item ids by mode."""
    items = {
        "lottery": await open_item(db, "lottery", stock=1, title="音乐会抽签"),
        "group_buy": await open_item(db, "group_buy", stock=None, threshold=2, title="水果团购"),
        "first_come": await open_item(db, title="电影票"),
        "upcoming": await open_item(db, title="年货"),
    }
    with db.writing() as s:
        s.exec(
            update(WelfareItem)
            .where(col(WelfareItem.id) == items["upcoming"])
            .values(opens_at=NOW + timedelta(days=1), closes_at=NOW + timedelta(days=2))
        )
    with db.writing() as s:
        for mode in ("lottery", "group_buy", "first_come"):
            welfare.claim(s, member, items[mode], NOW, SHANGHAI)
        welfare.claim(s, other, items["lottery"], NOW, SHANGHAI)
        welfare.remind_me(s, member, items["upcoming"], NOW)
    return items


def _voucher_of(db, member_id: int) -> str:
    with db.reading() as s:
        return s.exec(
            select(WelfareClaim.voucher_code).where(
                WelfareClaim.member_id == member_id, col(WelfareClaim.voucher_code).is_not(None)
            )
        ).one()


async def test_export_has_my_claims_vouchers_reminders_and_messages(bot):
    me = await rich_member(bot.db, 8510)
    other = await rich_member(bot.db, 8511)
    items = await _welfare_life(bot.db, me, other)
    with bot.db.writing() as s:
        welfare.claim(s, other, items["first_come"], NOW, SHANGHAI)
        notify(s, 8510, "您的积分到账了", now=NOW)
        notify(s, 8511, "别人的通知", now=NOW)
        outbox.enqueue(s, 424242, "按会员寄出的通知", kind="broadcast", member_id=me.id)
    code, others_code = _voucher_of(bot.db, me.id), _voucher_of(bot.db, other.id)
    user = bot.user(8510)
    await user.send("/me")
    await user.click("导出我的数据")
    _filename, content = user.last.document
    data = json.loads(content)
    assert [(c["item"], c["status"], c["voucher_code"], c["points"]) for c in data["welfare_claims"]] == [
        ("音乐会抽签", "applied", None, 10),
        ("水果团购", "joined", None, 10),
        ("电影票", "active", code, 10),
    ]
    assert [(r["item"], r["sent_at"]) for r in data["welfare_reminders"]] == [("年货", None)]
    assert [(m["kind"], m["text"]) for m in data["messages"]] == [
        ("notice", "您的积分到账了"),
        ("broadcast", "按会员寄出的通知"),
    ]
    assert others_code not in content.decode() and "别人的通知" not in content.decode()


@pytest.fixture(params=["bot", "pg_bot"])
def any_bot(request):
    """The bot on SQLite, then on PostgreSQL."""
    return request.getfixturevalue(request.param)


async def test_deleting_the_account_releases_refunds_and_forgets_everything(any_bot, monkeypatch):
    bot = any_bot
    # The outbox is not sent in this test: which rows were sent is set below.
    monkeypatch.delitem(bot.app.bot_data, "test_outbox")
    me = await rich_member(bot.db, 8520, balance=100)
    other = await rich_member(bot.db, 8521, balance=100)
    items = await _welfare_life(bot.db, me, other)
    code = _voucher_of(bot.db, me.id)
    with bot.db.writing() as s:
        notify(s, 8520, "已发出的通知", now=NOW, dedupe_key="sent:1")
        notify(s, 8520, f"券码 {code}", now=NOW, kind="voucher", photo=qr_ref(code), dedupe_key="sent:2")
        outbox.enqueue(s, 8520, f"明天的提醒 {code}", kind="notice")
        outbox.enqueue(s, 424242, "按会员的通知", kind="broadcast", member_id=me.id)
        outbox.enqueue(s, 8521, "别人的通知", kind="notice")
        s.exec(update(OutboxMessage).where(col(OutboxMessage.dedupe_key).like("sent:%")).values(status="sent"))
        flows.set_flow(s, 8520, "welfare", "welfare", "title", {"mode": "lottery"}, NOW)
        forwarded = message_update(8521, "转发", update_id=900003)
        forwarded["message"]["forward_from"] = message_update(8520, "")["message"]["from"]
        stored = [
            (900001, message_update(8520, "我的私事", update_id=900001)),
            (900002, message_update(8521, "别人的话", update_id=900002)),
            (900003, forwarded),
            (900004, message_update(8520, "/me", update_id=900004)),
        ]
        inbox.store(s, [(i, json.dumps(u)) for i, u in stored], NOW)
    user = bot.user(8520)
    await user.send("/me")
    await user.click("注销账号")
    await user.click("确认注销")
    assert "账号已注销" in user.last.text
    with bot.db.reading() as s:
        row = s.get(Member, me.id)
        claims = {c.item_id: c.status for c in s.exec(select(WelfareClaim).where(WelfareClaim.member_id == me.id))}
        first_come = s.get(WelfareItem, items["first_come"])
        assert (row.telegram_id, row.name, row.status) == (None, None, Status.DELETED)
        # Everything live released, and every held point back: the ledger still sums to the balance.
        assert claims == {items[m]: ClaimStatus.CANCELLED for m in ("lottery", "group_buy", "first_come")}
        assert first_come.stock == 5
        assert row.balance == points.ledger_sum(s, me.id) == 100
        balances = s.exec(select(func.sum(Member.balance))).one()
        assert balances == s.exec(select(func.sum(points.LedgerEntry.delta))).one() == 100 + 90
        assert s.exec(select(WelfareReminder).where(WelfareReminder.member_id == me.id)).all() == []
        assert s.exec(select(FlowState).where(FlowState.telegram_id == 8520)).all() == []
        # Nothing queued for them survives; what was sent keeps neither their chat nor its text.
        messages = s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
        assert [(m.chat_id, m.text) for m in messages if m.chat_id == 8520 or m.member_id == me.id] == []
        assert [(m.chat_id, m.text, m.photo) for m in messages if m.chat_id == 0] == [(0, "", None), (0, "", None)]
        assert [m.text for m in messages if m.chat_id != 0] == ["别人的通知"]
        # Their raw updates are gone; the newest row keeps only its id (the polling offset counts from it).
        kept = {u.update_id: u.payload for u in s.exec(select(InboxUpdate))}
        assert kept == {900002: json.dumps(stored[1][1]), 900004: '{"update_id": 900004}'}
    # A draw after the deletion cannot pick them: the other applicant wins the one prize.
    with bot.db.writing() as s:
        drawn = welfare.draw_lottery(s, items["lottery"], NOW + timedelta(days=2), SHANGHAI)
    assert [r.member_id for r in drawn.winners] == [other.id] and drawn.losers == []
