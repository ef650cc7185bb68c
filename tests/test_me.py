"""Me: profile, language switching, ranking opt-out, export my data, delete my account."""

from __future__ import annotations

import json
from datetime import date

from sqlmodel import select

from config import PointsRule
from handlers.callback_data import Cb, pack
from models import members, points
from models.members import Member, Status
from tests.conftest import make_member

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
    await user.press(pack(Cb.CONFIRM_DELETE))
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
