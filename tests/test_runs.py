"""Runs through the bot: /newrun, the card and its answers, waitlist notices, calendar, check-in, inline sharing."""

from __future__ import annotations

import time
from datetime import timedelta

import icalendar
import pytest
from sqlmodel import col, select

import handlers.runs
from buttons.runs import CheckInCode, People, Respond, ShowRun
from models import runs
from models.members import Member
from models.outbox import OutboxMessage
from models.points import LedgerEntry
from scheduled.runs import run_runs
from tests.conftest import NOW, make_member
from tests.harness import ChatClient

START = NOW + timedelta(days=2)


@pytest.fixture(autouse=True)
def refresh_at_once(monkeypatch):
    """Posted copies are edited at once here (the throttle has its own test)."""
    monkeypatch.setattr(handlers.runs, "REFRESH_SECONDS", 0.0)


START_TEXT = "2026-11-30 07:00"  # local (UTC+8): 2026-11-29 23:00 UTC


async def new_run(user: ChatClient, capacity: str = "2", visibility: str = "本单位") -> None:
    """Fill in /newrun as a member would."""
    await user.send("/newrun")
    assert "什么时候跑" in user.last.text and "第 1/8 步" in user.last.text
    await user.send(START_TEXT)
    await user.send("世纪公园 3 号门")
    await user.click("跳过")
    await user.send("10.5")
    await user.send("6'30\"")
    await user.send(capacity)
    await user.click(visibility)
    await user.click("跳过")


async def event_id(bot) -> int:
    with bot.db.reading() as s:
        return s.exec(select(runs.Event.id).order_by(col(runs.Event.id).desc())).first()


async def test_invite_answer_waitlist_and_promotion_notice(bot):
    await make_member(bot.db, 5001, name="发起人")
    for tid in (5002, 5003, 5004):
        await make_member(bot.db, tid)
    organiser = bot.user(5001)
    await new_run(organiser)
    card = organiser.last
    assert "世纪公园 3 号门" in card.text and "10.5 公里" in card.text and "参加 <b>0</b>/2" in card.text
    assert "📷 签到码" not in card.labels and "⛔ 取消活动" in card.labels
    rid = await event_id(bot)

    a, b, c = bot.user(5002), bot.user(5003), bot.user(5004)
    for user in (a, b, c):
        await user.send("/runs")
        await user.click("世纪公园")
        await user.click("✅ 参加")
    assert "您已报名" in a.last.text and "参加 <b>2</b>/2" in b.last.text
    assert "候补第 1 位" in c.last.text and c.last_answer() == "名额已满，您在候补第 1 位"
    # a can't go after all: c moves up and is told once, in a private message with a button to the run.
    await a.click("❌ 去不了")
    assert "您的回复：去不了" in a.last.text
    told = [m for m in c.messages if "候补成功" in m.text]
    assert len(told) == 1 and told[0].labels == ["查看活动"]
    await c.click("查看活动")
    assert "您已报名" in c.last.text
    # Pressing Going twice changes nothing (no second seat, no second notice).
    await c.click("✅ 参加")
    with bot.db.reading() as s:
        assert s.get(runs.Event, rid).going == 2
    with bot.db.reading() as s:
        sent = s.exec(select(OutboxMessage).where(col(OutboxMessage.kind) == "runs_promoted")).all()
        assert [m.chat_id for m in sent] == [5004]


async def test_forged_and_foreign_presses_change_nothing(bot):
    await make_member(bot.db, 5101)
    await make_member(bot.db, 5102, unit="i805")
    await make_member(bot.db, 5103)
    await new_run(bot.user(5101))
    rid = await event_id(bot)
    stranger_unit = bot.user(5102)
    await stranger_unit.send("/help")
    await stranger_unit.press(Respond(rid, "going").pack())
    assert "只对指定单位或俱乐部" in stranger_unit.last_answer()
    plain = bot.user(5103)
    await plain.send("/runs")
    await plain.press(People(rid).pack())
    assert plain.last_answer() == "只有发起人可以这样做。"
    await plain.press(CheckInCode(rid).pack())
    assert plain.last_answer() == "只有发起人可以这样做。"
    await plain.press(Respond(rid, "sprint").pack())
    assert "过期" in plain.last_answer()
    await plain.press(Respond(rid + 99, "going").pack())
    assert "没有找到" in plain.last_answer()
    with bot.db.reading() as s:
        assert s.exec(select(runs.Rsvp)).all() == []


async def test_calendar_file_opens_in_a_calendar_app(bot):
    await make_member(bot.db, 5201)
    user = bot.user(5201)
    await new_run(user)
    await user.click("📅 加入日历")
    filename, content = user.last.document
    assert filename.endswith(".ics")
    calendar = icalendar.Calendar.from_ical(content)
    entry = next(c for c in calendar.walk("VEVENT"))
    assert str(entry["location"]) == "世纪公园 3 号门"
    assert entry.decoded("dtstart").utcoffset() == timedelta(hours=8)
    assert entry.decoded("dtstart").strftime("%Y-%m-%d %H:%M") == START_TEXT
    assert list(calendar.walk("VALARM")) and list(calendar.walk("VTIMEZONE"))


async def test_check_in_by_qr_deep_link_pays_once_inside_the_window(bot):
    await make_member(bot.db, 5301)
    runner = await make_member(bot.db, 5302)
    await make_member(bot.db, 5303)
    organiser = bot.user(5301)
    await new_run(organiser)
    rid = await event_id(bot)
    await bot.user(5302).press(Respond(rid, "going").pack(), organiser.last)
    with bot.db.reading() as s:
        token = s.get(runs.Event, rid).checkin_token
    user = bot.user(5302)
    await user.send(f"/start c_{token}")
    assert "不在签到时间内" in user.last.text
    with bot.db.reading() as s:
        starts = s.get(runs.Event, rid).starts_at
    bot.clock.advance(seconds=(starts - bot.clock.now() - timedelta(minutes=10)).total_seconds())
    await organiser.press(ShowRun(rid).pack())
    await organiser.click("📷 签到码")
    assert organiser.last.photo is not None and f"c_{token}" in organiser.last.text
    await user.send(f"/start c_{token}")
    assert "签到成功" in user.last.text and "10 积分" in user.last.text
    await user.send(f"/start c_{token}")
    assert "已经签到过了" in user.last.text
    lurker = bot.user(5303)
    await lurker.send(f"/start c_{token}")
    assert "没有报名" in lurker.last.text
    # The organiser's list shows it; marking again pays nothing more.
    await organiser.click("👥 报名名单")
    assert "已签到" in organiser.last.text
    with bot.db.reading() as s:
        paid = s.exec(select(LedgerEntry).where(col(LedgerEntry.member_id) == runner.id)).all()
        assert [e.delta for e in paid] == [10] and s.get(Member, runner.id).balance == 10


async def test_organiser_marks_attendance_from_the_list(bot):
    await make_member(bot.db, 5351)
    runner = await make_member(bot.db, 5352, name="小跑")
    organiser = bot.user(5351)
    await new_run(organiser)
    rid = await event_id(bot)
    await bot.user(5352).press(Respond(rid, "maybe").pack(), organiser.last)
    with bot.db.reading() as s:
        starts = s.get(runs.Event, rid).starts_at
    bot.clock.advance(seconds=(starts - bot.clock.now()).total_seconds())
    await organiser.press(People(rid).pack())
    await organiser.click("✔️ 小跑 到场")
    assert organiser.last_answer() == "已签到" and "小跑 · 已签到" in organiser.last.text
    with bot.db.reading() as s:
        assert s.get(Member, runner.id).balance == 10


async def test_changes_and_cancel_tell_everyone_who_answered(bot):
    await make_member(bot.db, 5401)
    await make_member(bot.db, 5402, language="en")
    organiser = bot.user(5401)
    await new_run(organiser)
    rid = await event_id(bot)
    runner = bot.user(5402, "en")
    await runner.press(Respond(rid, "going").pack(), organiser.last)
    await organiser.press(ShowRun(rid).pack())
    await organiser.click("✏️ 改地点")
    await organiser.send("园区东门")
    assert "已通知 1 人" in "".join(m.text for m in organiser.messages[-2:])
    assert "meeting point" in runner.last.text and "园区东门" in runner.last.text
    await organiser.press(ShowRun(rid).pack())
    await organiser.click("⛔ 取消活动")
    await organiser.click("确认取消")
    assert "已取消" in organiser.last.text
    assert runner.last.text.startswith("⛔ Cancelled")
    await runner.press(Respond(rid, "maybe").pack(), runner.last)
    assert "started or was cancelled" in runner.last_answer()


async def test_reminders_day_before_and_hour_before_once_each(bot):
    await make_member(bot.db, 5501)
    await make_member(bot.db, 5502)
    organiser = bot.user(5501)
    await new_run(organiser)
    rid = await event_id(bot)
    runner = bot.user(5502)
    await runner.press(Respond(rid, "going").pack(), organiser.last)
    services = bot.app.bot_data["services"]
    with bot.db.reading() as s:
        starts = s.get(runs.Event, rid).starts_at
    bot.clock.advance(seconds=(starts - bot.clock.now() - timedelta(hours=23)).total_seconds())
    for _ in range(2):
        await run_runs(services)
        await runner.send("/help")
    bot.clock.advance(hours=22, minutes=30)
    await run_runs(services)
    await runner.send("/help")
    reminders = [m.text for m in runner.messages if m.text.startswith("⏰")]
    assert len(reminders) == 2 and "明天" in reminders[0] and "一小时后" in reminders[1]


async def test_inline_mode_shares_a_card_that_members_answer_in_place(bot):
    await make_member(bot.db, 5601)
    await make_member(bot.db, 5602)
    organiser = bot.user(5601)
    await new_run(organiser, visibility="全局所有单位")
    rid = await event_id(bot)
    results = await organiser.inline("run")
    assert [r["id"] for r in results] == [f"run-{rid}"]
    shared = results[0]
    assert "世纪公园" in shared["input_message_content"]["message_text"]
    # The posted message: a colleague presses Going on it; the card is edited in place with the new count.
    bot.api.inline_messages["inline-run"] = shown = type(organiser.last)(0, 0, "")
    await bot.user(5602).press_inline(Respond(rid, "going").pack(), "inline-run")
    assert "参加 <b>1</b>/2" in shown.text and shown.edits == 1
    assert bot.user(5602).last_answer() == "报名成功！"
    # Someone who is not a member gets a short alert on how to join, and nothing changes.
    await bot.user(5699).press_inline(Respond(rid, "going").pack(), "inline-run")
    assert "入会登记" in bot.user(5699).last_answer() and shown.edits == 1
    assert await bot.user(5699).inline("run") == []


async def test_runs_list_filters_and_english(bot):
    await make_member(bot.db, 5701, language="en")
    user = bot.user(5701, "en")
    await user.send("/runs")
    assert "No runs to join yet" in user.last.text
    await user.send("/newrun")
    await user.send(START_TEXT)
    await user.send("Century Park gate 3")
    await user.click("Skip")
    await user.send("4")
    await user.click("Skip")
    await user.send("1")
    await user.click("My unit")
    await user.send("Saturday 5k")
    assert "Saturday 5k" in user.last.text and "4 km" in user.last.text
    await user.send("/runs")
    await user.click("<5 km")
    assert "Saturday 5k" in user.last.text
    await user.click("10 km+")
    assert "No runs to join yet" in user.last.text
    await user.click("My runs")
    assert "Saturday 5k" in user.last.text and "(mine)" in user.last.text


async def test_form_refuses_bad_answers_clearly(bot):
    await make_member(bot.db, 5801)
    user = bot.user(5801)
    await user.send("/newrun")
    await user.send("2020-01-01 07:00")
    assert "已经过去" in user.last.text
    await user.send(START_TEXT)
    await user.send("x" * 200)
    assert "最多 120 字" in user.last.text
    await user.send("操场")
    await user.send("东门")
    assert "请发送一个位置" in user.last.text
    await user.click("跳过")
    await user.send("abc")
    assert "请输入公里数" in user.last.text
    await user.send("5")
    await user.click("跳过")
    await user.send("0")
    assert "1 到 1000" in user.last.text


async def test_every_posted_copy_of_a_card_is_updated_throttled(bot, monkeypatch):
    await make_member(bot.db, 5901)
    for tid in (5902, 5903, 5904):
        await make_member(bot.db, tid)
    organiser = bot.user(5901)
    await new_run(organiser, capacity="5", visibility="全局所有单位")
    rid = await event_id(bot)
    Shown = type(organiser.last)
    bot.api.inline_messages["copy-a"] = a = Shown(0, 0, "")
    bot.api.inline_messages["copy-b"] = b = Shown(0, 0, "")
    await bot.user(5902).press_inline(Respond(rid, "going").pack(), "copy-a")
    await bot.user(5903).press_inline(Respond(rid, "going").pack(), "copy-b")
    # The press on copy b edited b, and the refresher brought copy a up to date too.
    assert "参加 <b>2</b>/5" in a.text and "参加 <b>2</b>/5" in b.text
    # An answer in private chat updates both copies.
    await bot.user(5904).press(Respond(rid, "maybe").pack(), organiser.last)
    assert "待定 1" in a.text and "待定 1" in b.text
    # Within the throttle window the copies wait, then get one edit with the latest counts.
    monkeypatch.setattr(handlers.runs, "REFRESH_SECONDS", 60.0)
    refresher = bot.app.bot_data["run_cards"]
    edits = a.edits
    await bot.user(5904).press(Respond(rid, "going").pack(), organiser.last)
    assert a.edits == edits and "参加 <b>2</b>/5" in a.text
    assert rid in refresher.pending
    refresher.pending[rid].cancel()
    monkeypatch.setattr(handlers.runs, "REFRESH_SECONDS", 0.0)
    await bot.user(5904).press(Respond(rid, "going").pack(), organiser.last)
    assert "参加 <b>3</b>/5" in a.text and a.edits == edits + 1


async def test_a_location_pin_for_the_meeting_point(bot):
    await make_member(bot.db, 5951)
    user = bot.user(5951)
    venues = []
    bot.api._sendVenue = lambda p: (
        venues.append((float(p["latitude"]), float(p["longitude"])))
        or {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 5951, "type": "private"},
        }
    )

    async def pin(lat: float, lon: float) -> None:
        message = {
            "message_id": 777,
            "date": int(time.time()),
            "chat": user.chat,
            "from": user.user,
            "location": {"latitude": lat, "longitude": lon},
        }
        await user._process({"update_id": 9_000_000 + int(lat), "message": message})

    await pin(31.0, 121.0)  # outside any flow: the menu hint, as for any other message the bot did not ask for
    assert "发送 /menu 打开首页" in user.last.text
    await user.send("/newrun")
    await user.send(START_TEXT)
    await user.send("世纪公园 3 号门")
    await pin(31.2, 121.5)
    assert "跑多远" in user.last.text
    for answer in ("5", "6'00\"", "3"):
        await user.send(answer)
    await user.click("本单位")
    await user.click("跳过")
    await user.click("🗺 集合点位置")
    assert venues == [(31.2, 121.5)]
