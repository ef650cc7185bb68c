"""Broadcasts through the bot: compose, audience, preview, send, progress, Got it, report, schedule, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from buttons.broadcasts import CancelBroadcast, SendNow, ToggleMandatory, ToggleUnit
from handlers.broadcasts import refresh_progress
from models import outbox
from models.broadcasts import Broadcast, BroadcastAck, BroadcastStatus
from models.members import Role
from models.outbox import OutboxMessage
from scheduled.broadcasts import run_broadcasts
from tests.conftest import make_member
from tests.harness import TelegramFailure, settle

CADRE, BUREAU = 2001, 2002
A, B, OTHER = 3001, 3002, 3003


async def members(bot) -> None:
    """A unit cadre of i801, a bureau cadre, two members of i801 and one of another unit."""
    await make_member(bot.db, CADRE, "i801", role=Role.CADRE)
    await make_member(bot.db, BUREAU, "hk", role=Role.CADRE, role_unit=None)
    await make_member(bot.db, A, "i801")
    await make_member(bot.db, B, "i801", language="en")
    await make_member(bot.db, OTHER, "hk")


def rows(bot, broadcast_id: int) -> list[OutboxMessage]:
    with bot.db.reading() as session:
        kind = f"broadcast:{broadcast_id}"
        return list(session.exec(select(OutboxMessage).where(col(OutboxMessage.kind) == kind)).all())


def broadcast(bot, broadcast_id: int = 1) -> Broadcast:
    with bot.db.reading() as session:
        found = session.get(Broadcast, broadcast_id)
        assert found is not None
        return found


async def compose(cadre, text: str = "工会大会通知：周五下午三点") -> int:
    """/broadcast, then the message: returns the id of the cadre's message (the original kept for copying)."""
    await cadre.send("/broadcast")
    assert "发布通知" in cadre.last.text
    await cadre.send(text, message_id=777)
    assert "通知草稿 #1" in cadre.last.text
    return 777


async def test_compose_preview_send_exact_copy_ack_and_report(bot) -> None:
    await members(bot)
    cadre, a, b, other = bot.user(CADRE), bot.user(A), bot.user(B, "en"), bot.user(OTHER)
    source = await compose(cadre)
    # Everyone verified in the cadre's unit: the cadre and the two members.
    assert "预计送达：<b>3</b> 人" in cadre.last.text

    await cadre.click("链接按钮")
    await cadre.send("报名 | https://example.org/signup")
    assert "报名" in cadre.last.text
    await cadre.click("“收到”按钮：关")
    assert "“收到”按钮：有" in cadre.last.text

    await cadre.click("预览")
    preview, confirm = cadre.messages[-2], cadre.messages[-1]
    assert preview.copy_of == (CADRE, source) and preview.text == "工会大会通知：周五下午三点"
    assert preview.labels == ["👌 收到", "报名"]
    assert "确认发送吗" in confirm.text
    # Nothing was sent before the explicit confirmation.
    assert rows(bot, 1) == [] and a.messages == []

    await cadre.click("立即发送")
    assert broadcast(bot).status == BroadcastStatus.SENDING
    for member, ack_label in ((a, "👌 收到"), (b, "👌 Got it")):
        assert member.last.copy_of == (CADRE, source)
        assert member.last.text == "工会大会通知：周五下午三点"
        assert member.last.labels == [ack_label, "报名"]
        assert member.last.button("报名")["url"] == "https://example.org/signup"
    assert other.messages == []

    await a.click("收到")
    assert a.last_answer() == "已确认收到，谢谢！"
    await a.click("收到")
    assert a.last_answer() == "您之前已确认收到"
    with bot.db.reading() as session:
        assert len(session.exec(select(BroadcastAck)).all()) == 1

    # The confirmation message becomes the final progress, in place.
    assert "正在发送" in confirm.text or "发送完成" in confirm.text
    assert await refresh_progress(bot.app, 1) is True
    assert "发送完成" in confirm.text and "已送达 3" in confirm.text
    assert confirm.labels == ["📊 查看报告"]
    assert broadcast(bot).status == BroadcastStatus.DONE

    await cadre.send("/scheduled")
    await cadre.click("#1")
    card = cadre.last.text
    assert "按单位" in card and "：3/3/0/0/1/" in card
    await cadre.click("导出 CSV")
    filename, content = cadre.last.document
    assert filename == "broadcast-1.csv"
    lines = content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("unit,recipients,delivered") and lines[1].endswith(",3,3,0,0,1,")


async def test_members_never_get_it_twice_and_blocked_are_skipped(bot) -> None:
    await members(bot)
    cadre, a = bot.user(CADRE), bot.user(A)
    bot.api.fail("copyMessage", TelegramFailure(403, "Forbidden: bot was blocked by the user"), chat_id=B)
    await compose(cadre)
    await cadre.click("预览")
    confirm = cadre.last
    await cadre.click("立即发送")
    # A second press on the same confirmation (a double tap, a replay) queues nothing more.
    await cadre.press(SendNow(1).pack(), confirm)
    assert "已经确认过" in (cadre.last_answer() or cadre.last.text)
    assert len([m for m in a.messages if m.copy_of]) == 1
    assert {row.status for row in rows(bot, 1)} == {"sent", "blocked"}
    # B blocked the bot: marked, and skipped (counted apart) by the next broadcast.
    await cadre.send("/broadcast")
    await cadre.send("第二条", message_id=778)
    assert "其中 1 人已屏蔽机器人" in cadre.last.text
    await cadre.click("预览")
    await cadre.click("立即发送")
    assert len(rows(bot, 2)) == 2 and broadcast(bot, 2).skipped_blocked == 1


async def test_bad_input_gets_a_clear_answer_and_changes_nothing(bot) -> None:
    await members(bot)
    cadre, bureau, member = bot.user(CADRE), bot.user(BUREAU), bot.user(A)
    # A member cannot broadcast.
    await member.send("/broadcast")
    assert "没有权限" in member.last.text or "权限" in member.last.text
    # Empty and unsupported messages.
    await cadre.send("/broadcast")
    await cadre.send("   ")
    assert "空的" in cadre.last.text
    await _send_sticker(cadre)
    assert "不能作为通知发送" in cadre.last.text
    await cadre.send("正文", message_id=900)
    # A button that is not https.
    await cadre.click("链接按钮")
    await cadre.send("看看 | http://example.org")
    assert "https://" in cadre.last.text and broadcast(bot).buttons == []
    await cadre.send("a | https://a.org\nb | https://b.org\nc | https://c.org\nd | https://d.org")
    assert "最多只能有 3 个" in cadre.last.text
    await cadre.send("-")
    # A unit cadre forging a press for another unit.
    await cadre.press(ToggleUnit(1, "hk").pack())
    assert "权限" in (cadre.last_answer() or "")
    assert broadcast(bot).audience == '{"clubs": [], "roles": [], "under_35": false, "units": []}'
    # A schedule in the past.
    await cadre.click("预览")
    await cadre.click("定时发送")
    await cadre.send("2020-01-01 10:00")
    assert "已经过去" in cadre.last.text and broadcast(bot).status == BroadcastStatus.DRAFT
    await cadre.send("2026-11-28 18:00")
    await cadre.click("只发一次")
    assert "将于 <b>2026-11-28 18:00</b>" in cadre.last.text
    assert broadcast(bot).status == BroadcastStatus.SCHEDULED
    # Another unit cadre's forged Cancel on this broadcast.
    await make_member(bot.db, 2003, "hk", role=Role.CADRE)
    stranger = bot.user(2003)
    await stranger.send("/scheduled")
    assert "还没有" in stranger.last.text
    await stranger.press(CancelBroadcast(1).pack())
    assert "权限" in (stranger.last_answer() or "")
    assert broadcast(bot).status == BroadcastStatus.SCHEDULED
    # A bureau cadre may stop it.
    await bureau.send("/scheduled")
    await bureau.press(CancelBroadcast(1).pack())
    assert broadcast(bot).status == BroadcastStatus.CANCELLED


async def _send_sticker(client) -> None:
    payload = {
        "update_id": 880000 + client.user["id"],
        "message": {
            "message_id": 55,
            "date": 0,
            "chat": client.chat,
            "from": client.user,
            "sticker": {
                "file_id": "st",
                "file_unique_id": "st",
                "type": "regular",
                "width": 1,
                "height": 1,
                "is_animated": False,
                "is_video": False,
            },
        },
    }
    await client._process(payload)


async def test_photo_broadcast_and_scheduled_release_with_quiet_hours(bot) -> None:
    await members(bot)
    cadre, a = bot.user(CADRE), bot.user(A)
    await cadre.send("/broadcast")
    await cadre.send_photo("PHOTO-1", caption="<b>活动</b>照片")
    assert "（图片）" in cadre.last.text
    await cadre.click("预览")
    await cadre.click("定时发送")
    # 23:30 in Beijing: inside the default quiet hours (22:00-08:00).
    await cadre.send("2026-11-28 23:30")
    await cadre.click("只发一次")
    services = bot.app.bot_data["services"]
    await run_broadcasts(services, datetime(2026, 11, 28, 15, 0, tzinfo=UTC))
    assert rows(bot, 1) == []
    released_at = datetime(2026, 11, 28, 15, 31, tzinfo=UTC)
    await run_broadcasts(services, released_at)
    queued = rows(bot, 1)
    assert len(queued) == 3 and broadcast(bot).status == BroadcastStatus.SENDING
    # They wait for the end of the quiet period: 08:00 Beijing = 00:00 UTC.
    assert {row.not_before.astimezone(UTC) for row in queued} == {datetime(2026, 11, 29, 0, 0, tzinfo=UTC)}
    assert a.messages == []
    # A second tick (or a restart that runs it again) queues nothing more.
    await run_broadcasts(services, released_at + timedelta(minutes=1))
    assert len(rows(bot, 1)) == 3


async def test_pause_resume_and_bureau_urgent(bot) -> None:
    await members(bot)
    bureau = bot.user(BUREAU)
    await bureau.send("/broadcast")
    await bureau.send("紧急通知", message_id=901)
    # Every unit for the bureau: all five verified members.
    assert "预计送达：<b>5</b> 人" in bureau.last.text
    await bureau.click("紧急：关")
    assert "紧急" in bureau.last.text
    await bureau.click("发送对象")
    await bureau.click("仅 35 岁以下")
    assert "35 岁以下" in bureau.last.text and "<b>0</b>" in bureau.last.text
    await bureau.click("仅 35 岁以下")
    await bureau.click("返回")
    await bureau.click("预览")
    await bureau.click("定时发送")
    await bureau.send("2026-11-29 09:00")
    await bureau.click("只发一次")
    await bureau.send("/scheduled")
    await bureau.click("#1")
    await bureau.click("暂停")
    assert broadcast(bot).status == BroadcastStatus.PAUSED
    services = bot.app.bot_data["services"]
    await run_broadcasts(services, datetime(2026, 11, 29, 2, 0, tzinfo=UTC))
    assert rows(bot, 1) == []
    await bureau.click("恢复")
    await run_broadcasts(services, datetime(2026, 11, 29, 2, 0, tzinfo=UTC))
    assert len(rows(bot, 1)) == 5
    assert all(row.status == outbox.Status.PENDING for row in rows(bot, 1))


async def test_recurring_weekdays_until_an_end_date(bot) -> None:
    await members(bot)
    bureau, a = bot.user(BUREAU), bot.user(A)
    await bureau.send("/broadcast")
    await bureau.send("早安打卡提醒", message_id=902)
    await bureau.click("预览")
    await bureau.click("定时发送")
    # Friday 27 Nov is past (the bot lives on Saturday 28 Nov, noon in Beijing).
    await bureau.send("2026-11-30 09:00")
    await bureau.click("每个工作日")
    await bureau.send("2026-11-20")
    assert "结束日期" in bureau.last.text and broadcast(bot).status == BroadcastStatus.DRAFT
    await bureau.send("2026-12-03")
    assert "每个工作日重复，至 2026-12-03" in bureau.last.text
    services = bot.app.bot_data["services"]
    monday = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 Beijing
    await run_broadcasts(services, monday)
    first = broadcast(bot, 2)
    assert first.parent_id == 1 and len(rows(bot, 2)) == 5
    assert broadcast(bot).send_at.astimezone(UTC) == monday + timedelta(days=1)
    await settle(bot.app)
    assert [m.text for m in a.messages if m.copy_of] == ["早安打卡提醒"]
    # The bot was down Tuesday and Wednesday: one run on Thursday for the missed times, the last one.
    await run_broadcasts(services, monday + timedelta(days=3, minutes=5))
    assert len(rows(bot, 3)) == 5
    parent = broadcast(bot)
    assert parent.status == BroadcastStatus.DONE
    await run_broadcasts(services, monday + timedelta(days=4))
    with bot.db.reading() as session:
        assert len(session.exec(select(Broadcast)).all()) == 3
    # Each run is its own broadcast: a member gets every run once (dedupe keys per run).
    assert {row.member_id for row in rows(bot, 2)} == {row.member_id for row in rows(bot, 3)}


async def test_muted_category_is_skipped_unless_mandatory(bot) -> None:
    await members(bot)
    bureau, a, b = bot.user(BUREAU), bot.user(A), bot.user(B, "en")
    await a.send("/me")
    await a.click("通知订阅")
    await a.click("接收：工会新闻")
    assert a.last.labels[0] == "🔕 已屏蔽：工会新闻"
    for text, message_id in (("普通新闻", 910), ("必读通知", 911)):
        await bureau.send("/broadcast")
        await bureau.send(text, message_id=message_id)
        if text == "必读通知":
            await bureau.click("必读：关")
            assert "📌 必读" in bureau.last.text
        await bureau.click("预览")
        await bureau.click("立即发送")
    assert [m.text for m in a.messages if m.copy_of] == ["必读通知"]
    assert [m.text for m in b.messages if m.copy_of] == ["普通新闻", "必读通知"]
    # A unit cadre cannot make a broadcast mandatory, even with a forged press.
    cadre = bot.user(CADRE)
    await cadre.send("/broadcast")
    await cadre.send("单位通知", message_id=912)
    assert "必读" not in " ".join(cadre.last.labels)
    await cadre.press(ToggleMandatory(3).pack())
    assert "权限" in (cadre.last_answer() or "") and broadcast(bot, 3).mandatory is False
