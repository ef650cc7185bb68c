"""Reading (e校园) through the bot: cadres' book list, marks, notes and their likes, the reading festival with daily
check-ins, streaks, the leaderboard, the goal's points and certificate, and forged buttons."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col

from buttons.reading import NewFestival, RemoveBook
from models import points
from models.members import Member, Role
from tests.conftest import NOW, Bot, make_member

PNG = b"\x89PNG"


async def seasoned(bot: Bot, telegram_id: int, **kw) -> Member:
    member = await make_member(bot.db, telegram_id, **kw)
    with bot.db.writing() as s:
        s.exec(update(Member).where(col(Member.id) == member.id).values(verified_at=NOW - timedelta(days=60)))
    return member


def balance(bot: Bot, member: Member) -> int:
    with bot.db.reading() as s:
        return points.balance_of(s, member.id)


async def add_book(bot: Bot, cadre_id: int, title: str) -> None:
    cadre = bot.user(cadre_id)
    await cadre.send("/reading")
    await cadre.click("添加好书")
    await cadre.send(title)
    await cadre.send("刘慈欣")
    await cadre.click("跳过")
    await cadre.send("工会图书室 2 楼")
    await cadre.send_photo("COVER-1")
    assert f"《{title}》已加入推荐书单" in cadre.last.text


async def test_books_marks_notes_and_likes_with_the_anti_farming_rules(bot):
    await make_member(bot.db, 7001, role=Role.CADRE, role_unit=None)
    writer = await seasoned(bot, 7002)
    await seasoned(bot, 7003)
    await add_book(bot, 7001, "三体")

    user, fan = bot.user(7002), bot.user(7003)
    await user.send("/reading")
    await user.click("推荐书单")
    assert "《三体》 刘慈欣" in user.last.text
    await user.click("《三体》")
    card = user.last
    assert card.photo == "COVER-1" and "工会图书室 2 楼" in card.text
    await user.click("读完了")
    assert user.last_answer() == "已标记：读完了" and "读完 1 人" in user.last.text
    # Members cannot take books off the list, whatever they press.
    await user.press(RemoveBook(1).pack())
    assert user.last_answer() == "抱歉，您没有进行此操作的权限。"

    await user.click("写笔记")
    await user.send("好看")
    assert "只有 2 个字" in user.last.text
    await fan.send("/reading")
    await fan.click("推荐书单")
    await fan.click("《三体》")
    await fan.click("笔记 (0)")
    assert "还没有笔记" in fan.last.text

    await user.send("/reading")
    await user.click("推荐书单")
    await user.click("《三体》")
    await user.click("写笔记")
    await user.send("黑暗森林法则让我重新思考了文明之间的关系，宇宙社会学的两条公理非常精彩。")
    assert "大家可以看到并点赞了" in user.last.text
    await fan.send("/reading")
    await fan.click("推荐书单")
    await fan.click("《三体》")
    await fan.click("笔记 (1)")
    assert "黑暗森林法则" in fan.last.text
    await fan.click("🤍 0")
    assert fan.last_answer() == "已点赞 ❤️" and balance(bot, writer) == 1
    await fan.click("❤️ 1")
    assert balance(bot, writer) == 1  # taking it back keeps the points
    # Liking one's own note earns nothing.
    await user.click("看大家的笔记")
    await user.click("🤍 0")
    assert user.last.labels[0].startswith("❤️ 1") and balance(bot, writer) == 1


async def test_festival_check_ins_streak_goal_points_certificate_and_leaderboard(bot):
    await make_member(bot.db, 7001, "hq", role=Role.CADRE, role_unit=None)
    reader = await seasoned(bot, 7002, name="王小明")
    await seasoned(bot, 7003, unit="i802")
    cadre, user = bot.user(7001), bot.user(7002)
    await cadre.send("/reading")
    await cadre.click("开启读书节")
    await cadre.send("2026 年读书节")
    await cadre.send("2026-11-28")
    await cadre.send("2026-11-01")
    assert "结束日期不能早于开始日期" in cadre.last.text
    await cadre.send("2026-12-31")
    await cadre.click("打卡次数")
    await cadre.send("2")
    assert "读书节「2026 年读书节」已开启" in cadre.last.text

    await user.send("/reading")
    assert "目标：打卡 2 次" in user.last.text
    await user.click("今日打卡")
    await user.send("读了《三体》第一章")
    assert "打卡成功！已打卡 1 次，连续 1 天。积分 +2" in user.last.text
    await user.send("/reading")
    assert "今天已打卡" in user.last.text
    await user.click("今日打卡")
    assert user.last_answer() == "今天已经打过卡了，明天再来！"

    bot.clock.advance(days=1)
    await user.send("/reading")
    await user.click("今日打卡")
    await user.send("读了第二章")
    texts = [m.text for m in user.messages[-3:]]
    assert any("连续 2 天" in t for t in texts)
    assert any("恭喜你达成《2026 年读书节》的目标！奖励 30 积分" in t for t in texts)
    certificate = user.last
    assert isinstance(certificate.photo, bytes) and certificate.photo.startswith(PNG)
    assert "王小明" in certificate.text and "荣誉证书" in certificate.text
    assert balance(bot, reader) == 2 + 2 + 30
    with bot.db.reading() as s:
        assert points.ledger_sum(s, reader.id) == points.balance_of(s, reader.id)

    await user.send("/reading")
    await user.click("我的证书")
    assert isinstance(user.last.photo, bytes)
    await user.send("/reading")
    await user.click("排行榜")
    board = user.last.text
    assert "1. 王小明 · 2" in board
    assert "八〇一所工会：100%（1/1）" in board and "八〇二所工会：0%（0/1）" in board and "局机关工会：0%" in board

    # A member who opts out of rankings is not on the board.
    await user.send("/me")
    await user.click("不参加积分排行")
    await user.send("/reading")
    await user.click("排行榜")
    assert "王小明" not in user.last.text and "你已选择不参加排行" in user.last.text


async def test_members_cannot_open_festivals_and_no_check_in_without_one(bot):
    await make_member(bot.db, 7002)
    user = bot.user(7002, "en")
    await user.send("/reading")
    assert "Check in" not in " ".join(user.last.labels) and "Open a festival" not in " ".join(user.last.labels)
    await user.press(NewFestival().pack())
    assert user.last_answer() == "抱歉，您没有进行此操作的权限。"
