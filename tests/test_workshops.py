"""Counselling workshops (团体辅导) through the bot: a counsellor creates one, members answer, the waitlist moves up,
reminders, cancellation; privacy: only the workshop's counsellor sees who answered, and workshops never show in
/runs, inline sharing or group posts."""

from __future__ import annotations

from datetime import timedelta

import icalendar
from sqlmodel import col, select

from buttons.runs import People, Respond, ShowRun
from buttons.workshops import CancelWorkshop, NewWorkshop, ShowWorkshop, WorkshopPeople, WorkshopRespond
from models import runs
from models.members import Role
from models.outbox import OutboxMessage
from models.workshops import CareWorkshop
from scheduled.runs import KIND_PROMOTED, run_runs
from tests.conftest import ADMIN_ID, make_member
from tests.harness import ChatClient

COUNSELLOR, OTHER_COUNSELLOR, CADRE = 3001, 3002, 3003
A, B, C, FAR = 3101, 3102, 3103, 3104
TITLE = "职场减压小组"
NOT_ALLOWED = "抱歉，您没有进行此操作的权限。"
NOT_ORGANISER = "只有发起人可以这样做。"
RUN_NOT_FOUND = "没有找到这次活动，可能已被删除。"
WORKSHOP_NOT_FOUND = "没有找到这个团体辅导，可能已被删除，或不对您开放。"
BUTTON_EXPIRED = "这个按钮已过期，请发送 /menu 重新打开菜单。"
NAMES = {A: "甲同事", B: "乙同事", C: "丙同事"}


async def new_workshop(user: ChatClient, visibility: str = "本单位", capacity: str = "2") -> None:
    """A counsellor fills in the workshop form from /slots (zh)."""
    await user.send("/slots")
    await user.click("➕ 发起团体辅导")
    assert "工作坊名称" in user.last.text and "第 1/7 步" in user.last.text
    await user.send(TITLE)
    await user.click("🤝 人际关系")
    await user.send("2026-12-01 19:00")
    await user.send("工会活动室 302")
    await user.send(capacity)
    await user.send("一起聊聊工作压力")
    await user.click(visibility)


async def workshop_id(bot) -> int:
    with bot.db.reading() as s:
        return s.exec(select(CareWorkshop.event_id).order_by(col(CareWorkshop.event_id).desc())).first()


async def staff(bot) -> None:
    await make_member(bot.db, COUNSELLOR, name="王老师", role=Role.COUNSELLOR, role_unit=None)
    await make_member(bot.db, OTHER_COUNSELLOR, role=Role.COUNSELLOR, role_unit=None)
    await make_member(bot.db, CADRE, role=Role.CADRE)
    for tid, name in NAMES.items():
        await make_member(bot.db, tid, name=name)


def _click_item(user: ChatClient, title: str) -> str:
    return next(label for label in user.last.labels if title in label)


async def answer_going(
    user: ChatClient, title: str = TITLE, going: str = "✅ 参加", listed: str = "👥 团体辅导"
) -> None:
    """A member opens the workshop from /counselling and answers Going."""
    await user.send("/counselling")
    await user.click(listed)
    await user.click(_click_item(user, title))
    await user.click(going)


async def test_create_rsvp_waitlist_promotion_reminders_and_cancel_zh(bot):
    await staff(bot)
    counsellor = bot.user(COUNSELLOR)
    await new_workshop(counsellor)
    card = counsellor.last
    assert TITLE in card.text and "人际关系" in card.text and "参加 <b>0</b>/2" in card.text
    assert "👥 报名名单" in card.labels and "⛔ 取消团体辅导" in card.labels
    wid = await workshop_id(bot)

    a, b, c = bot.user(A), bot.user(B), bot.user(C)
    for user in (a, b, c):
        await answer_going(user)
    assert "您已报名" in a.last.text and "参加 <b>2</b>/2" in b.last.text
    assert "候补第 1 位" in c.last.text and c.last_answer() == "名额已满，您在候补第 1 位"
    assert "👥 报名名单" not in a.last.labels and "⛔ 取消团体辅导" not in a.last.labels
    # A can't go after all: C moves up and is told exactly once, with a button back to the workshop.
    await a.click("❌ 去不了")
    assert "去不了" in a.last.text
    told = [m for m in c.messages if "候补成功" in m.text]
    assert len(told) == 1 and TITLE in told[0].text
    assert told[0].labels == ["查看团体辅导"]
    await c.click("查看团体辅导", told[0])
    assert "您已报名" in c.last.text and TITLE in c.last.text
    await c.click("✅ 参加")
    with bot.db.reading() as s:
        notices = s.exec(select(OutboxMessage).where(col(OutboxMessage.kind) == KIND_PROMOTED)).all()
    assert [n.chat_id for n in notices] == [C]
    # The counsellor sees the count and, privately, the names.
    await counsellor.press(ShowWorkshop(wid).pack())
    assert "参加 <b>2</b>/2" in counsellor.last.text
    await counsellor.click("👥 报名名单")
    listed = counsellor.last.text
    assert "乙同事" in listed and "丙同事" in listed and "甲同事" not in listed

    # Reminders the day before and the hour before (the runs scheduler), once each.
    services = bot.app.bot_data["services"]
    with bot.db.reading() as s:
        starts = s.get(runs.Event, wid).starts_at
    bot.clock.advance(seconds=(starts - bot.clock.now() - timedelta(hours=23)).total_seconds())
    for _ in range(2):
        await run_runs(services)
        await b.send("/help")
    bot.clock.advance(hours=22, minutes=30)
    await run_runs(services)
    await b.send("/help")
    reminders = [m.text for m in b.messages if m.text.startswith("⏰")]
    assert len(reminders) == 2 and "明天团体辅导" in reminders[0] and "一小时后团体辅导" in reminders[1]

    # The counsellor cancels: everyone going is told, once.
    await counsellor.press(ShowWorkshop(wid).pack())
    await counsellor.click("⛔ 取消团体辅导")
    await counsellor.click("确认取消")
    assert "已通知 2 人" in counsellor.last.text
    await counsellor.press(CancelWorkshop(wid).pack())
    for user in (b, c):
        assert len([m for m in user.messages if "团体辅导已取消" in m.text]) == 1
    assert not [m for m in a.messages if "团体辅导已取消" in m.text]
    await b.press(WorkshopRespond(wid, "going").pack())
    with bot.db.reading() as s:
        assert s.get(runs.Event, wid).going == 2


async def test_create_rsvp_waitlist_and_cancel_en(bot):
    await make_member(bot.db, COUNSELLOR, name="Ms Wang", role=Role.COUNSELLOR, role_unit=None, language="en")
    for tid in (A, B):
        await make_member(bot.db, tid, language="en", name=f"Colleague {tid}")
    counsellor = bot.user(COUNSELLOR)
    await counsellor.send("/slots")
    await counsellor.click("➕ New workshop")
    assert "What is the workshop called" in counsellor.last.text
    await counsellor.send("")
    await counsellor.send("x" * 61)
    assert "60" in counsellor.last.text
    await counsellor.send("Stress at work")
    await counsellor.click("🤝 Relationships")
    await counsellor.send("2020-01-01 10:00")
    assert "future" in counsellor.last.text or "past" in counsellor.last.text
    await counsellor.send("2026-12-01 19:00")
    await counsellor.send("https://meet.example.org/abc")
    await counsellor.send("0")
    assert "1" in counsellor.last.text and "1000" in counsellor.last.text
    await counsellor.send("1")
    await counsellor.click("Skip")
    await counsellor.click("The whole bureau")
    assert "Workshop published" in counsellor.messages[-2].text or "Workshop published" in counsellor.last.text
    assert "Going <b>0</b>/1" in counsellor.last.text and "meet.example.org" in counsellor.last.text
    a, b = bot.user(A), bot.user(B)
    await answer_going(a, "Stress at work", "✅ Going", "👥 Workshops")
    await answer_going(b, "Stress at work", "✅ Going", "👥 Workshops")
    assert "You are going" in a.last.text
    await a.click("📅 Add to calendar")
    filename, content = a.last.document
    entry = icalendar.Calendar.from_ical(content).walk("VEVENT")[0]
    assert filename.endswith(".ics") and str(entry["summary"]) == "Stress at work"
    assert "Ms Wang" in str(entry["description"]) and str(entry["location"]) == "https://meet.example.org/abc"
    await a.press(ShowWorkshop(await workshop_id(bot)).pack())
    assert "number 1 on the waitlist" in b.last.text
    await a.click("❌ Can't go")
    promoted = [m for m in b.messages if "A place came free" in m.text]
    assert len(promoted) == 1
    await counsellor.send("/slots")
    await counsellor.press(ShowWorkshop(await workshop_id(bot)).pack())
    await counsellor.click("⛔ Cancel workshop")
    await counsellor.click("Yes, cancel")
    assert "1 person was told" in counsellor.last.text
    assert len([m for m in b.messages if "Workshop cancelled" in m.text]) == 1


async def test_only_the_workshops_counsellor_sees_who_answered_and_it_never_shows_as_a_run(bot):
    await staff(bot)
    await make_member(bot.db, ADMIN_ID)
    await make_member(bot.db, FAR, unit="i805", name="远方同事")
    counsellor = bot.user(COUNSELLOR)
    await new_workshop(counsellor)
    wid = await workshop_id(bot)
    a = bot.user(A)
    await answer_going(a)
    # An admin who makes themselves a counsellor, another counsellor, a cadre, a member: no list, by any button.
    admin = bot.user(ADMIN_ID)
    await admin.send("/promote i801 E1000 counsellor")
    for tid in (ADMIN_ID, OTHER_COUNSELLOR, CADRE, B):
        user = bot.user(tid)
        await user.send("/help")
        for forged in (WorkshopPeople(wid), People(wid), CancelWorkshop(wid)):
            await user.press(forged.pack())
            assert user.last_answer() in (NOT_ALLOWED, NOT_ORGANISER), (tid, forged)
            assert "甲同事" not in user.last.text
    with bot.db.reading() as s:
        assert s.get(runs.Event, wid).status == runs.EventStatus.OPEN
    # Not in /runs, not in inline results, not openable as a run card, not answerable on a shared card.
    await a.send("/runs")
    assert TITLE not in a.last.text and not any(TITLE in label for label in a.last.labels)
    assert await a.inline("run") == []
    assert await a.inline(f"run {wid}") == []
    assert await counsellor.inline(f"run {wid}") == []
    await a.press(ShowRun(wid).pack())
    assert a.last_answer() == RUN_NOT_FOUND
    bot.api.inline_messages["forged"] = shown = type(a.last)(0, 0, "")
    await bot.user(B).press_inline(Respond(wid, "going").pack(), "forged")
    assert shown.edits == 0
    with bot.db.reading() as s:
        answered = s.exec(select(runs.Rsvp.member_id).where(col(runs.Rsvp.event_id) == wid)).all()
        assert s.exec(select(runs.EventCard)).all() == []
    assert len(answered) == 1
    await counsellor.press(WorkshopPeople(wid).pack())
    assert "甲同事" in counsellor.last.text and "乙同事" not in counsellor.last.text
    # A unit-only workshop of another unit: not listed, not readable, not answerable by a forged button.
    far = bot.user(FAR)
    await far.send("/counselling")
    await far.click("👥 团体辅导")
    assert TITLE not in far.last.text
    await far.press(ShowWorkshop(wid).pack())
    assert far.last_answer() == WORKSHOP_NOT_FOUND
    await far.press(WorkshopRespond(wid, "going").pack())
    assert far.last_answer() == WORKSHOP_NOT_FOUND
    # A run's id is not a workshop.
    await far.press(ShowWorkshop(wid + 1000).pack())
    assert far.last_answer() == WORKSHOP_NOT_FOUND
    # "maybe" is not a workshop answer; a member cannot start the counsellor's form.
    b = bot.user(B)
    await b.press(WorkshopRespond(wid, "maybe").pack())
    assert b.last_answer() == BUTTON_EXPIRED
    await b.press(NewWorkshop().pack())
    assert b.last_answer() == NOT_ALLOWED
    with bot.db.reading() as s:
        rows = s.exec(select(runs.Rsvp).where(col(runs.Rsvp.event_id) == wid)).all()
    assert [(r.answer) for r in rows] == ["going"] and len(rows) == 1
