"""Feedback box (意见箱) and satisfaction (评家): through the bot, forged presses, anonymity, the index."""

from __future__ import annotations

import csv
import io
import tomllib
from datetime import date, timedelta

import pytest
from sqlmodel import col, select

from buttons.feedback import AnswerBack, CadreThread, CloseThread, MyThread, RateUnion, ReplyThread, SubmitRating
from config import PROJECT_DIR, ConfigError, parse_config
from models import feedback
from models.audit import AuditEntry
from models.errors import DomainError
from models.feedback import FeedbackMessage, FeedbackThread, SatisfactionRating, SatisfactionVote, ThreadStatus
from models.members import Actor, Role
from models.outbox import OutboxMessage
from scheduled.feedback import ask_round, next_round
from tests.conftest import NOW, make_member

SENDER_NAME = "欧阳娜娜"
PERIOD = date(2026, 10, 1)  # NOW is 2026-11-28: the fourth quarter


async def _threads(db) -> list[FeedbackThread]:
    with db.reading() as s:
        return list(s.exec(select(FeedbackThread).order_by(col(FeedbackThread.id))))


async def test_anonymous_thread_round_trip_never_shows_the_sender(bot):
    sender = await make_member(bot.db, 7001, "i801", name=SENDER_NAME, employee_no="EMP-7001")
    await make_member(bot.db, 7002, "i801", role=Role.CADRE)
    await make_member(bot.db, 7003, "i802", role=Role.CADRE)  # another unit's cadre hears nothing
    member, cadre, other = bot.user(7001), bot.user(7002), bot.user(7003)
    await member.send("/feedback")
    assert "意见箱" in member.last.text
    await member.click("匿名留言")
    assert "匿名" in member.last.text
    await member.send("食堂晚餐太早结束，加班的同事吃不上饭。")
    assert "已送达" in member.last.text
    [thread] = await _threads(bot.db)
    assert thread.anonymous and thread.status == ThreadStatus.NEW and thread.member_id == sender.id
    # The cadre of the unit is told through the outbox, by thread number only.
    told = cadre.last
    assert "新留言" in told.text and "匿名会员" in told.text and "加班的同事" in told.text
    assert other.messages == []
    await cadre.click("打开留言", told)
    assert thread.token[:6] in cadre.last.text and "匿名会员" in cadre.last.text
    await cadre.click("回复")
    await cadre.send("已与食堂沟通，下周起晚餐延长到 19:30。")
    assert "回复已发出" in cadre.messages[-2].text
    relay = member.last
    assert "工会回复了您的留言" in relay.text and "19:30" in relay.text
    # The member answers back: the thread waits for a cadre again, and the cadre gets the answer.
    await member.click("查看留言", relay)
    await member.click("继续回复")
    await member.send("谢谢！周末也一样吗？")
    assert "周末也一样吗" in cadre.last.text and "有新回复" in cadre.last.text
    assert (await _threads(bot.db))[0].status == ThreadStatus.NEW
    await cadre.click("打开留言")
    await cadre.click("关闭")
    assert (await _threads(bot.db))[0].status == ThreadStatus.CLOSED
    assert "已办结关闭" in member.last.text
    # Nothing the cadre saw, nothing in the audit log and no notice to a cadre names the sender.
    identity = (SENDER_NAME, "EMP-7001", "7001")
    assert not any(word in m.text for m in cadre.messages for word in identity)
    with bot.db.reading() as s:
        audit = list(s.exec(select(AuditEntry)))
        to_cadres = list(s.exec(select(OutboxMessage).where(OutboxMessage.chat_id == 7002)))
    assert {a.action for a in audit} == {"feedback_reply", "feedback_close"}
    assert all(a.target == f"feedback:{thread.token}" and a.detail == {} for a in audit)
    assert to_cadres and all(row.member_id is None for row in to_cadres)
    assert not any(word in row.text for row in to_cadres for word in identity)
    # A closed thread takes no more answers.
    await member.press(AnswerBack(thread.token).pack())
    assert "已关闭" in member.last_answer()


async def test_named_thread_in_english_shows_the_name(bot):
    await make_member(bot.db, 7011, "i802", name="Li Lei", language="en")
    await make_member(bot.db, 7012, "i802", role=Role.CADRE, language="en")
    member, cadre = bot.user(7011, "en"), bot.user(7012, "en")
    await member.send("/feedback")
    await member.click("Named message")
    await member.send("   ")
    assert "empty" in member.last.text
    await member.send("x" * (feedback.TEXT_MAX + 1))
    assert "too long" in member.last.text
    await member.send("Please add a bike shed.")
    assert "Delivered" in member.last.text
    assert "Named message" in cadre.last.text
    await cadre.click("Open message")
    assert "Li Lei" in cadre.last.text and "bike shed" in cadre.last.text
    await cadre.send("/admin")
    await cadre.click("Feedback box")
    assert "awaiting reply" in cadre.last.text


async def test_forged_thread_presses_change_nothing(bot):
    await make_member(bot.db, 7021, "i801", name=SENDER_NAME)
    await make_member(bot.db, 7022, "i801")  # another member of the same unit
    await make_member(bot.db, 7023, "i802", role=Role.CADRE)  # a cadre of another unit
    await make_member(bot.db, 7024, "i801", role=Role.CADRE)
    owner, nosy, foreign = bot.user(7021), bot.user(7022), bot.user(7023)
    await owner.send("/feedback")
    await owner.click("实名留言")
    await owner.send("宿舍热水器坏了")
    [thread] = await _threads(bot.db)
    token = thread.token
    await nosy.send("/feedback")
    for forged in (MyThread(token), AnswerBack(token)):
        await nosy.press(forged.pack())
        assert "找不到这条留言" in nosy.last_answer()
    assert "宿舍热水器" not in nosy.last.text
    # A member pressing cadre buttons, and a cadre of another unit: refused, nothing stored or changed.
    await nosy.press(ReplyThread(token).pack())
    assert nosy.last_answer() == "抱歉，您没有进行此操作的权限。"
    await foreign.send("/feedback")
    for forged in (CadreThread(token), ReplyThread(token), CloseThread(token)):
        await foreign.press(forged.pack())
        assert "找不到这条留言" in foreign.last_answer()
    assert not any("宿舍热水器" in m.text for m in foreign.messages)
    await foreign.press("fb:thread:not-a-token!")
    assert "过期" in foreign.last_answer()
    [after] = await _threads(bot.db)
    assert after.status == ThreadStatus.NEW
    with bot.db.reading() as s:
        assert len(list(s.exec(select(FeedbackMessage)))) == 1
        assert list(s.exec(select(AuditEntry))) == []


async def test_satisfaction_round_rating_once_and_the_index(bot):
    members = [await make_member(bot.db, 7100 + i, "i801") for i in range(5)]
    await make_member(bot.db, 7150, "i801", role=Role.CADRE)
    await make_member(bot.db, 7151, "i802")
    # The scheduled round asks every member once (a re-run asks nobody twice).
    assert await ask_round(bot.app.bot_data["services"]) == "ok"
    assert await ask_round(bot.app.bot_data["services"]) == "ok"
    with bot.db.reading() as s:
        asks = list(s.exec(select(OutboxMessage).where(OutboxMessage.kind == "satisfaction_ask")))
    assert len(asks) == 7
    first = bot.user(7100)
    await first.send("/feedback")
    await first.click("4⭐")
    assert "4 星" in first.last.text
    await first.send("活动再多一些")
    assert "已匿名记录" in first.last.text
    # A second rating in the same period is refused, a stale period too.
    await first.press(SubmitRating(20261001, 5).pack())
    assert "已经评过分" in first.last_answer()
    await first.press(RateUnion(20260701, 5).pack())
    assert "已经结束" in first.last_answer()
    await first.press(RateUnion(20261301, 5).pack())
    assert "过期" in first.last_answer()
    cadre = bot.user(7150)
    await cadre.send("/feedback")
    await cadre.click("满意度指数")
    assert "—（1）" in cadre.last.text  # one rating: the mean is hidden
    for m in members[1:]:
        user = bot.user(m.telegram_id)
        await user.send("/feedback")
        await user.click("5⭐")
        await user.click("直接提交")
        assert "已匿名记录" in user.last.text
    await cadre.send("/feedback")
    await cadre.click("满意度指数")
    assert "4.80（5）" in cadre.last.text and "活动再多一些" in cadre.last.text
    await cadre.click("导出 CSV")
    name, content = cadre.last.document
    assert name.startswith("satisfaction-") and name.endswith(".csv")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0] == ["unit_code", "unit", "period_start", "ratings", "mean"]
    assert ["i801", "八〇一所工会", "2026-10-01", "5", "4.80"] in rows
    assert ["i801", "八〇一所工会", "2026-07-01", "0", ""] in rows
    with bot.db.reading() as s:
        votes = list(s.exec(select(SatisfactionVote)))
        ratings = list(s.exec(select(SatisfactionRating)))
    assert len(votes) == 5 and len(ratings) == 5
    # The rating keeps no member, no time: nothing to join on but unit and period.
    assert set(SatisfactionRating.model_fields) == {"id", "unit_code", "period", "score", "comment"}


def test_the_round_is_asked_on_the_configured_day(config):
    assert next_round(config, NOW).isoformat() == "2027-01-01T02:00:00+00:00"
    assert next_round(config, NOW - timedelta(days=90)).isoformat() == "2026-10-01T02:00:00+00:00"


async def test_models_on_both_databases(db):
    """Queue order, scope, the threshold of the index: SQLite and PostgreSQL."""
    with db.writing() as s:
        from models.members import Member, Status

        people = [Member(telegram_id=7200 + i, unit_code="i801", status=Status.VERIFIED) for i in range(6)]
        s.add_all(people)
        s.flush()
        ids = [p.id for p in people]
    cadre = Actor(9, None, False, frozenset({"i801"}), frozenset({"cadre"}))
    stranger = Actor(10, None, False, frozenset({"i802"}), frozenset({"cadre"}))
    with db.writing() as s:
        first = feedback.write(s, s.get(Member, ids[0]), "一", False, NOW)
        second = feedback.write(s, s.get(Member, ids[1]), "二", True, NOW + timedelta(minutes=1))
        feedback.reply(s, cadre, first.thread.token, "好的", NOW + timedelta(minutes=2))
        for i, member_id in enumerate(ids[:4]):
            feedback.rate(s, s.get(Member, member_id), PERIOD, PERIOD, 3 + i % 2, None)
    with db.writing() as s:
        for i in range(feedback.THREADS_PER_DAY):
            feedback.write(s, s.get(Member, ids[2]), f"第{i}条", False, NOW)
    with pytest.raises(DomainError) as refused, db.writing() as s:
        feedback.write(s, s.get(Member, ids[2]), "再一条", False, NOW)
    assert refused.value.key == "feedback_too_many"
    with db.writing() as s:
        feedback.write(s, s.get(Member, ids[2]), "第二天", False, NOW + timedelta(days=1, seconds=1))
        feedback.write(s, s.get(Member, ids[2]), "再一条", False, NOW + timedelta(days=1, seconds=1))
    with db.reading() as s:
        queue = [t for t in feedback.queue(s, cadre, 20) if t.token in (first.thread.token, second.thread.token)]
        assert [t.token for t in queue] == [second.thread.token, first.thread.token]
        assert queue[0].sender_name is None and queue[0].anonymous
        assert feedback.queue(s, stranger, 10) == []
        [cell] = feedback.satisfaction_index(s, ["i801"], [PERIOD])
        assert (cell.count, cell.mean) == (4, None)
    with db.writing() as s:
        feedback.rate(s, s.get(Member, ids[4]), PERIOD, PERIOD, 5, "很好")
    with db.reading() as s:
        [cell] = feedback.satisfaction_index(s, ["i801"], [PERIOD])
        assert (cell.count, cell.mean) == (5, 3.8)
        assert feedback.comments(s, "i801", PERIOD, 5) == ["很好"]
        # Only the one member who has not rated is still to be asked.
        assert [r.member_id for r in feedback.raters_to_ask(s, PERIOD, 0, 100)] == [ids[5]]
    with db.writing() as s:
        closed = feedback.close(s, cadre, second.thread.token, NOW + timedelta(minutes=3))
        again = feedback.close(s, cadre, second.thread.token, NOW + timedelta(minutes=4))
        assert closed.thread.status == ThreadStatus.CLOSED and again.recipients == ()
        assert closed.recipients == ((7201, "zh"),)
        feedback.forget_member(s, ids[0], NOW)
    with db.reading() as s:
        [first_again] = [t for t in feedback.queue(s, cadre, 10) if t.token == first.thread.token]
        assert first_again.anonymous and first_again.status == ThreadStatus.CLOSED and first_again.sender_name is None


async def test_thread_and_rating_through_the_bot_on_postgresql(pg_bot):
    await make_member(pg_bot.db, 7301, "i801")
    await make_member(pg_bot.db, 7302, "i801", role=Role.CADRE)
    member, cadre = pg_bot.user(7301), pg_bot.user(7302)
    await member.send("/feedback")
    await member.click("匿名留言")
    await member.send("停车位不够")
    await cadre.click("打开留言")
    await cadre.click("回复")
    await cadre.send("正在协调")
    assert "正在协调" in member.last.text
    await member.send("/feedback")
    await member.click("3⭐")
    await member.click("直接提交")
    assert "已匿名记录" in member.last.text
    await cadre.send("/feedback")
    await cadre.click("满意度指数")
    assert "—（1）" in cadre.last.text


@pytest.mark.parametrize(
    ("table", "key", "value"),
    [
        ("feedback", "satisfaction_every_months", 5),
        ("feedback", "satisfaction_ask_day", 31),
        ("feedback", "satisfaction_ask_time", "25:00"),
        ("feedback", "index_periods", 0),
        ("quizzes", "countdown_seconds", 1),
    ],
)
def test_bad_feedback_and_quiz_settings_are_named(table, key, value):
    raw = tomllib.loads((PROJECT_DIR / "config.toml").read_text(encoding="utf-8"))
    raw[table][key] = value
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, {})
    assert caught.value.key == f"{table}.{key}"
