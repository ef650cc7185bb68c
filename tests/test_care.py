"""Care through the bot: counsellors' slots, members' bookings, privacy from every side, rights and aid requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from buttons.care import (
    Advance,
    CancelBooking,
    CloseBooking,
    HandleRequest,
    ManageSlot,
    NoteBooking,
    PickSlot,
    RemoveSlot,
    ShowBooking,
    ShowRequest,
)
from config import Config
from models.audit import AuditEntry
from models.care.tables import BookingStatus, CareBooking, CareRequest, CareSlot
from models.members import Role, RoleGrant
from tests.conftest import ADMIN_ID, Bot, make_config, make_member, sqlite_url, start_bot
from tests.harness import ChatClient

KEY = Fernet.generate_key().decode()
NOTE = "最近工作压力很大，晚上睡不着"
NOT_ALLOWED = "抱歉，您没有进行此操作的权限。"
COUNSELLOR, MEMBER, OTHER_MEMBER, OTHER_COUNSELLOR, CADRE = 2001, 2101, 2102, 2002, 2201


def care_config(tmp_path: Path, key: str = KEY) -> Config:
    return make_config(sqlite_url(tmp_path), tmp_path, CARE_KEY=key)


@pytest.fixture
async def care_bot(tmp_path: Path) -> AsyncIterator[Bot]:
    """The bot on SQLite with a CARE_KEY."""
    async for b in start_bot(care_config(tmp_path)):
        yield b


async def offer_single_slot(bot: Bot, telegram_id: int = COUNSELLOR, at: str = "2026-12-01 10:00") -> ChatClient:
    """A counsellor offers one in-person slot in the career area through /slots."""
    counsellor = bot.user(telegram_id)
    await counsellor.send("/slots")
    await counsellor.click("➕ 单个时段")
    await counsellor.send(at)
    await counsellor.send("50")
    await counsellor.click("🏠 面谈")
    await counsellor.send("工会心理室 302")
    await counsellor.click("💼 职业发展")
    await counsellor.click("✅ 选好了")
    assert "已添加 1 个时段" in counsellor.last.text
    return counsellor


async def book_it(bot: Bot, telegram_id: int = MEMBER, note: str | None = NOTE) -> ChatClient:
    """A member books the counsellor's 12-01 10:00 slot with a phone number and a note."""
    member = bot.user(telegram_id)
    await member.send("/counselling")
    await member.click("💼 职业发展")
    await member.click("成员2001")
    await member.click("12-01 周二")
    await member.click("10:00")
    await member.click("📞 打电话给我")
    await member.send("13800138000")
    if note is None:
        await member.click("跳过")
    else:
        await member.send(note)
    await member.click("✅ 确认预约")
    return member


async def people(bot: Bot) -> None:
    await make_member(bot.db, COUNSELLOR, role=Role.COUNSELLOR, role_unit=None)
    await make_member(bot.db, OTHER_COUNSELLOR, role=Role.COUNSELLOR, role_unit=None)
    await make_member(bot.db, MEMBER)
    await make_member(bot.db, OTHER_MEMBER)
    await make_member(bot.db, CADRE, role=Role.CADRE)


def bookings(bot: Bot) -> list[CareBooking]:
    with bot.db.reading() as s:
        return list(s.exec(select(CareBooking).order_by(CareBooking.id)))


def told(bot: Bot, telegram_id: int) -> list[str]:
    return [m.text for m in bot.api.chats.get(telegram_id, [])]


async def test_a_member_books_a_counsellor_sees_it_and_the_note_is_never_plain_in_the_database(care_bot, tmp_path):
    bot = care_bot
    await people(bot)
    counsellor = await offer_single_slot(bot)
    await counsellor.click("🗓 我的时段")
    await counsellor.click("✏️ 我的简介")
    await counsellor.send("国家二级心理咨询师，擅长职场压力与情绪调适")
    assert "简介已更新" in counsellor.last.text
    member = bot.user(MEMBER)
    await member.send("/counselling")
    await member.click("💼 职业发展")
    assert "成员2001" in member.last.text and "擅长职场压力" in member.last.text
    member = await book_it(bot)
    assert "预约成功" in member.last.text and "电话 13800138000" in member.last.text
    assert "前一天和前一小时会提醒您" in member.last.text
    (booking,) = bookings(bot)
    assert booking.status == BookingStatus.ACTIVE and booking.member_note and NOTE not in booking.member_note
    assert any("新预约" in t and NOTE not in t for t in told(bot, COUNSELLOR))
    # The counsellor opens it from /slots: the member's contact and note, and an audit entry without content.
    await counsellor.send("/slots")
    await counsellor.click("👤 12-01 10:00 已预约")
    card = counsellor.last.text
    assert NOTE in card and "13800138000" in card and "成员2101" in card
    with bot.db.reading() as s:
        audit = s.exec(select(AuditEntry).where(AuditEntry.action == "care_view_booking")).all()
    assert [(a.actor_telegram_id, a.target, a.detail) for a in audit] == [
        (COUNSELLOR, f"care_booking:{booking.id}", {})
    ]
    # The member sees their own note back.
    await member.send("/counselling")
    await member.click("📋 我的预约")
    await member.click("🗓 12-01 10:00")
    assert NOTE in member.last.text
    # Neither the database file nor its write-ahead log holds the note in plain text.
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("gongshe.db*"))
    assert b"13800138000" in raw  # the search does find what is stored in plain text
    assert NOTE.encode() not in raw


async def test_nobody_else_sees_a_booking(care_bot):
    bot = care_bot
    await people(bot)
    await make_member(bot.db, ADMIN_ID)
    await offer_single_slot(bot)
    await book_it(bot)
    (booking,) = bookings(bot)
    # Another member: forged buttons show nothing and change nothing.
    other = bot.user(OTHER_MEMBER)
    await other.send("/counselling")
    await other.press(ShowBooking(booking.id).pack())
    assert other.last_answer() == "找不到这个预约。"
    await other.press(CancelBooking(booking.id).pack())
    assert other.last_answer() == "找不到这个预约。"
    await other.click("📋 我的预约")
    assert "还没有预约" in other.last.text
    # Another counsellor: not their slot.
    colleague = bot.user(OTHER_COUNSELLOR)
    await colleague.send("/slots")
    assert "暂无时段" in colleague.last.text
    await colleague.press(ManageSlot(booking.slot_id).pack())
    assert colleague.last_answer() == "找不到这个时段（可能已被删除）。"
    for forged in (CloseBooking(booking.id, "no_show"), NoteBooking(booking.id), RemoveSlot(booking.slot_id)):
        await colleague.press(forged.pack())
        assert colleague.last_answer() in ("找不到这个预约。", "找不到这个时段（可能已被删除）。"), forged
    # An admin who makes themselves a counsellor sees only their own (none).
    admin = bot.user(ADMIN_ID)
    await admin.send("/promote i801 E1000 counsellor")
    await admin.send("/slots")
    assert "暂无时段" in admin.last.text and "12-01" not in admin.last.text
    await admin.press(ManageSlot(booking.slot_id).pack())
    assert admin.last_answer() == "找不到这个时段（可能已被删除）。"
    # A cadre and the admin see counts only: no names, no times, no notes; one booking is a hidden cell.
    for user in (bot.user(CADRE), admin):
        await user.send("/care_stats")
        text = user.last.text
        assert "职业发展：&lt;5" in text and "成员2101" not in text and NOTE not in text and "10:00" not in text
    assert bookings(bot)[0].status == BookingStatus.ACTIVE
    # Nothing about the booking went to anyone but the two parties.
    for telegram_id, messages in bot.api.chats.items():
        if telegram_id not in (COUNSELLOR, MEMBER):
            assert not any("12-01 10:00" in m.text for m in messages), telegram_id


async def test_cancel_and_move_windows_and_the_counsellor_is_told(care_bot):
    bot = care_bot
    await people(bot)
    counsellor = await offer_single_slot(bot)
    await counsellor.send("/slots")
    await counsellor.click("➕ 单个时段")
    await counsellor.send("2026-12-01 11:00")
    await counsellor.send("50")
    await counsellor.click("📞 电话")
    await counsellor.click("跳过")
    await counsellor.click("💼 职业发展")
    await counsellor.click("✅ 选好了")
    member = await book_it(bot, note=None)
    # Move to 11:00, well before the window.
    await member.click("📋 我的预约")
    await member.click("🗓 12-01 10:00")
    await member.click("🔁 改约")
    await member.click("12-01 周二")
    await member.click("11:00")
    assert "确认改约" in member.last.text
    await member.click("✅ 确认改约")
    assert "12-01 11:00" in member.last.text
    assert any("预约改期" in t for t in told(bot, COUNSELLOR))
    # 23 hours before: no more moving; cancelling counts as a no-show and the counsellor hears of it.
    bot.clock.at = bookings(bot)[-1].starts_at - timedelta(hours=23)
    await member.send("/counselling")
    await member.click("📋 我的预约")
    await member.click("🗓 12-01 11:00")
    await member.click("🔁 改约")
    assert member.last_answer().startswith("距开始已不足 24 小时")
    await member.click("✖️ 取消预约")
    assert "记为一次爽约" in member.last.text
    await member.click("确认取消")
    assert "计一次爽约" in member.last.text
    assert [b.status for b in bookings(bot)] == [BookingStatus.CANCELLED, BookingStatus.LATE_CANCELLED]
    assert any("临时取消（计爽约）" in t for t in told(bot, COUNSELLOR))


async def test_bad_booking_input_changes_nothing(care_bot):
    bot = care_bot
    await people(bot)
    counsellor = await offer_single_slot(bot)
    for at in ("2026-12-01 12:00", "2026-12-01 14:00", "2026-12-01 16:00"):
        await offer_single_slot(bot, at=at)
    with bot.db.reading() as s:
        slots = [slot.id for slot in s.exec(select(CareSlot).order_by(CareSlot.id))]
    member = bot.user(MEMBER)
    await member.send("/counselling")
    # A forged slot id.
    await member.press(PickSlot(999999, "career").pack())
    assert member.last_answer() == "找不到这个时段（可能已被删除）。"
    # A phone number that is not one, then a note over the limit: each asked again.
    await member.press(PickSlot(slots[0], "career").pack())
    await member.click("📞 打电话给我")
    await member.send("call me maybe")
    assert "电话号码格式不对" in member.last.text
    await member.send("13800138000")
    await member.send("长" * 5000)
    assert "太长了（最多 500 字）" in member.last.text
    await member.send("你好")
    await member.click("✅ 确认预约")
    await member.press(PickSlot(slots[1], "career").pack())
    await member.click("💬 Telegram 联系我")
    await member.click("跳过")
    await member.click("✅ 确认预约")
    assert len(bookings(bot)) == 2
    # More than the limit.
    await member.press(PickSlot(slots[2], "career").pack())
    assert member.last_answer() == "您已有 2 个进行中的预约，完成或取消后再约。"
    # A removed slot.
    await counsellor.send("/slots")
    await counsellor.click("🟢 12-01 16:00 空闲")
    await counsellor.click("🗑 删除此时段")
    other = bot.user(OTHER_MEMBER)
    await other.send("/counselling")
    await other.press(PickSlot(slots[3], "career").pack())
    assert other.last_answer() == "找不到这个时段（可能已被删除）。"
    # A slot in the past.
    bot.clock.advance(days=5)
    await other.press(PickSlot(slots[2], "career").pack())
    assert other.last_answer() == "这个时段已经开始或过去了，请选择其他时间。"
    assert len(bookings(bot)) == 2


async def test_removing_a_booked_slot_needs_a_reason_and_tells_the_member(care_bot):
    bot = care_bot
    await people(bot)
    counsellor = await offer_single_slot(bot)
    await book_it(bot)
    await counsellor.send("/slots")
    await counsellor.click("👤 12-01 10:00 已预约")
    await counsellor.click("🗑 删除此时段")
    assert "请输入取消的原因" in counsellor.last.text
    await counsellor.send("   ")
    assert "内容不能为空" in counsellor.last.text
    assert bookings(bot)[0].status == BookingStatus.ACTIVE
    await counsellor.send("临时出差")
    assert "已通知预约的会员" in counsellor.last.text
    assert bookings(bot)[0].status == BookingStatus.REMOVED
    assert any("咨询师取消了" in t and "临时出差" in t for t in told(bot, MEMBER))


async def test_after_the_session_the_counsellor_marks_it_and_keeps_a_private_note(care_bot, tmp_path):
    bot = care_bot
    await people(bot)
    counsellor = await offer_single_slot(bot)
    await book_it(bot)
    bot.clock.at = bookings(bot)[0].starts_at + timedelta(minutes=55)
    await counsellor.send("/slots")
    await counsellor.click("👤 12-01 10:00 已预约")
    await counsellor.click("🔒 私人备注")
    await counsellor.send("来访者情绪稳定，建议两周后复诊")
    assert "已加密保存" in counsellor.last.text
    await counsellor.click("查看预约")
    assert "来访者情绪稳定" in counsellor.last.text
    await counsellor.click("✅ 已完成")
    assert counsellor.last_answer() == "已标记为完成"
    assert bookings(bot)[0].status == BookingStatus.DONE
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("gongshe.db*"))
    assert "来访者情绪稳定".encode() not in raw


async def test_without_a_key_the_bot_says_notes_are_disabled_and_booking_works(tmp_path):
    async for bot in start_bot(care_config(tmp_path, key="")):
        await people(bot)
        await offer_single_slot(bot)
        member = bot.user(MEMBER)
        await member.send("/counselling")
        assert "留言功能暂未开启" in member.last.text
        await member.click("💼 职业发展")
        await member.click("成员2001")
        await member.click("12-01 周二")
        await member.click("10:00")
        await member.click("💬 Telegram 联系我")
        # No note question: straight to the confirmation.
        await member.click("✅ 确认预约")
        assert "预约成功" in member.last.text
        assert bookings(bot)[0].member_note is None


# --- rights and aid ---------------------------------------------------------------------------------------


async def handlers(bot: Bot) -> None:
    """A care handler of i801, a cadre of i802 who handles i802, a bureau handler."""
    await make_member(bot.db, 2301, role=Role.CADRE)
    await make_member(bot.db, 2302, "i802", role=Role.CADRE)
    await make_member(bot.db, 2303, role=Role.CADRE, role_unit=None)
    with bot.db.writing() as s:
        for m in s.exec(select(RoleGrant).where(RoleGrant.role == Role.CADRE)).all():
            s.add(RoleGrant(member_id=m.member_id, role=Role.CARE_HANDLER))


async def test_a_rights_request_goes_to_the_units_handler_who_takes_and_answers_it(bot):
    await handlers(bot)
    await make_member(bot.db, MEMBER)
    await make_member(bot.db, ADMIN_ID)
    member = bot.user(MEMBER)
    await member.send("/help_me")
    assert "维权" in member.last.text
    await member.click("⚖️ 维权咨询")
    await member.click("工资报酬")
    await member.send("   ")
    assert "内容不能为空" in member.last.text
    await member.send("长" * 5000)
    assert "太长了（最多 2000 字）" in member.last.text
    await member.send("公司已经三个月没有发加班费")
    await member.click("跳过")
    assert "已提交" in member.last.text
    with bot.db.reading() as s:
        (request,) = s.exec(select(CareRequest)).all()
    assert [t for t in told(bot, 2301) if "新的维权咨询申请" in t]
    assert not told(bot, 2302) and not told(bot, 2303)
    # Another unit's handler, the bureau handler (no escalation yet) and the admin see nothing of it.
    for outsider in (2302, 2303):
        user = bot.user(outsider)
        await user.send("/care_queue")
        assert "没有待处理的申请" in user.last.text
        await user.press(HandleRequest(request.id).pack())
        assert user.last_answer() == "找不到这个申请。"
    admin = bot.user(ADMIN_ID)
    await admin.send("/care_queue")
    assert admin.last.text == NOT_ALLOWED
    await admin.press(HandleRequest(request.id).pack())
    assert admin.last_answer() == NOT_ALLOWED
    await make_member(bot.db, OTHER_MEMBER)
    other = bot.user(OTHER_MEMBER)
    await other.send("/help_me")
    await other.press(ShowRequest(request.id).pack())
    assert other.last_answer() == "找不到这个申请。"
    # The unit's handler takes it, then answers with a note the member receives.
    handler = bot.user(2301)
    await handler.send("/care_queue")
    assert "已等 0 小时" in handler.last.text
    await handler.click("#")
    assert "加班费" in handler.last.text
    await handler.click("📌 受理")
    assert "处理中" in handler.last.text
    await handler.send("我是工会的王老师，明天上午联系您")
    assert any("处理中" in t and "明天上午联系您" in t for t in told(bot, MEMBER))
    await handler.click("↩️ 返回")
    await handler.click("#")
    await handler.click("✅ 答复")
    await handler.send("已联系人事部门，下周补发")
    assert "已通知会员" in handler.last.text
    assert any("已答复" in t and "下周补发" in t for t in told(bot, MEMBER))
    # A stale button (answering again) changes nothing.
    await handler.press(Advance(request.id, "declined").pack())
    assert handler.last_answer() == "这个申请的状态已变化，请刷新后再操作。"
    await member.send("/help_me")
    await member.click("📋 我的申请")
    assert "已答复" in member.last.text
    await member.click("#")
    assert "下周补发" in member.last.text and "已收到" in member.last.text


async def test_an_aid_request_with_a_photo_is_approved_with_an_amount(bot):
    await handlers(bot)
    await make_member(bot.db, MEMBER)
    member = bot.user(MEMBER)
    await member.send("/help_me")
    await member.click("🤝 困难帮扶申请")
    await member.click("疾病")
    await member.send("家人住院，医疗费负担重")
    await member.send("hello")
    assert "请发送一张照片" in member.last.text
    await member.send_photo("PHOTO-FILE-ID")
    assert "已提交" in member.last.text
    handler = bot.user(2301)
    await handler.send("/care_queue")
    await handler.click("#")
    assert bot.api.chats[2301][-1].photo == "PHOTO-FILE-ID"
    await handler.click("📌 受理")
    await handler.send("已收到材料，正在审核")
    await handler.click("↩️ 返回")
    await handler.click("#")
    await handler.click("✅ 批准帮扶")
    await handler.send("abc")
    assert "请输入 0 到 1000000 之间的整数" in handler.last.text
    await handler.send("2000")
    await handler.send("请到工会办公室领取")
    assert any("已批准" in t and "2000 元" in t for t in told(bot, MEMBER))


async def test_in_english_a_member_books_and_a_counsellor_offers_a_weekly_pattern(care_bot):
    bot = care_bot
    await make_member(bot.db, COUNSELLOR, role=Role.COUNSELLOR, role_unit=None, language="en")
    await make_member(bot.db, MEMBER, language="en")
    counsellor = bot.user(COUNSELLOR, "en")
    await counsellor.send("/slots")
    assert "My counselling slots" in counsellor.last.text
    await counsellor.click("➕ Weekly pattern")
    await counsellor.send("2026-11-30")
    await counsellor.send("2026-11-29")
    assert "The last date must come after the first" in counsellor.last.text
    await counsellor.send("2026-12-13")
    await counsellor.click("Mon")
    await counsellor.click("Wed")
    await counsellor.click("✅ Done")
    await counsellor.send("9am")
    assert "Please type the time like 09:00." in counsellor.last.text
    await counsellor.send("09:00")
    await counsellor.send("08:00")
    assert "The end must be later than the start." in counsellor.last.text
    await counsellor.send("11:00")
    await counsellor.send("60")
    await counsellor.click("📞 Phone")
    await counsellor.click("Skip")
    await counsellor.click("🩺 Health")
    await counsellor.click("✅ Done")
    assert "8 slots added" in counsellor.last.text
    member = bot.user(MEMBER, "en")
    await member.send("/counselling")
    assert "Your privacy" in member.last.text
    await member.click("🩺 Health")
    await member.click("成员2001")
    await member.click("Mon 11-30")
    assert "Free times on 11-30" in member.last.text
    await member.click("10:00")
    await member.click("💬 On Telegram")
    await member.send("I would like to talk about sleep")
    await member.click("✅ Confirm booking")
    assert "✅ <b>Booked</b>" in member.last.text and "Contact: Telegram" in member.last.text
    assert any("New booking: 2026-11-30 10:00" in t for t in told(bot, COUNSELLOR))
    await member.send("/help_me")
    assert "Rights and hardship help" in member.last.text


async def test_a_request_from_a_unit_without_handlers_goes_to_the_bureau_at_once(bot):
    await handlers(bot)
    await make_member(bot.db, 2103, "i803")
    member = bot.user(2103)
    await member.send("/help_me")
    await member.click("⚖️ 维权咨询")
    await member.click("劳动安全")
    await member.send("车间通风设备坏了两周")
    await member.click("跳过")
    assert not told(bot, 2301) and not told(bot, 2302)
    assert any("新的维权咨询申请" in t and "已转局工会" in t for t in told(bot, 2303))
    bureau = bot.user(2303)
    await bureau.send("/care_queue")
    assert "⏫" in bureau.last.text
    await bureau.click("#")
    assert "车间通风设备" in bureau.last.text
