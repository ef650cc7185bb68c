"""Joining: roster match, pending + approval by the right cadre, deep links, duplicates, bad input, groups."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

import bot as bot_module
from buttons.members import ApproveMember, DeclineMember, PickUnit
from models import members
from models.errors import BadInput
from models.members import Member, Role, RosterRow, Status
from tests.conftest import ADMIN_ID, make_member
from tests.harness import settle


async def _roster(bot, *rows: RosterRow) -> None:
    with bot.db.writing() as session:
        members.import_roster(session, rows)


async def _member_of(bot, telegram_id: int) -> Member | None:
    with bot.db.reading() as session:
        return (session.exec(select(Member).where(Member.telegram_id == telegram_id))).first()


async def _register(user, unit_label: str, employee_no: str, name: str) -> None:
    await user.send("/start")
    await user.click(unit_label)
    await user.send(employee_no)
    await user.send(name)


async def test_roster_match_verifies_at_once(bot):
    await _roster(bot, RosterRow("i801", "A10023", "张 三", 1995))
    user = bot.user(5001)
    await _register(user, "八〇一所工会", "a10023", "张 三")
    assert "欢迎回家" in user.last.text
    member = await _member_of(bot, 5001)
    assert member.status == Status.VERIFIED and member.birth_year == 1995 and member.employee_no == "A10023"
    # No cadre is bothered with a roster match.
    assert ADMIN_ID not in bot.api.chats
    await user.send("/points")
    assert "当前余额" in user.last.text


async def test_no_match_waits_for_a_cadre_of_that_unit(bot):
    cadre = await make_member(bot.db, 7001, "i801", role=Role.CADRE)
    other_cadre = await make_member(bot.db, 7002, "i802", role=Role.CADRE)
    user = bot.user(5002)
    await _register(user, "八〇一所工会", "B777", "李四")
    assert "申请已提交" in user.last.text
    assert (await _member_of(bot, 5002)).status == Status.PENDING
    # The unit's cadre and the bootstrap admin are asked; the other unit's cadre is not.
    cadre_chat = bot.user(cadre.telegram_id)
    assert "新的入会申请" in cadre_chat.last.text and "李四" in cadre_chat.last.text
    assert "新的入会申请" in bot.user(ADMIN_ID).last.text
    assert other_cadre.telegram_id not in bot.api.chats
    # A pending member sees only registration and help.
    await user.send("/points")
    assert "等待本单位工会干部审核" in user.last.text
    # The cadre of another unit forges the approve button: refused, nothing changes.
    pending_id = (await _member_of(bot, 5002)).id
    outsider = bot.user(other_cadre.telegram_id)
    await outsider.send("/help")
    await outsider.press(ApproveMember(pending_id).pack(), outsider.last)
    assert "没有进行此操作的权限" in outsider.last_answer() and bot.api.alerts[-1]
    assert (await _member_of(bot, 5002)).status == Status.PENDING
    # The right cadre approves; the member is told.
    await cadre_chat.click("通过")
    assert "已通过" in cadre_chat.last.text
    assert "入会申请已通过" in user.last.text
    assert (await _member_of(bot, 5002)).status == Status.VERIFIED
    # A second press on the same (now stale) button: the request is gone, said politely.
    await bot.user(ADMIN_ID).click("通过")
    assert "已被处理" in bot.user(ADMIN_ID).last_answer()


async def test_decline_lets_the_person_register_again(bot):
    user = bot.user(5003, language_code="en")
    await _register(user, "Institute 805 Union", "C1", "Wang Wu")
    admin = bot.user(ADMIN_ID)
    await admin.click("拒绝")
    assert "已拒绝" in admin.last.text
    assert "not approved" in user.last.text
    assert await _member_of(bot, 5003) is None
    await _register(user, "Institute 805 Union", "C1", "Wang Wu")
    assert (await _member_of(bot, 5003)).status == Status.PENDING


async def test_approve_list_shows_only_my_units_requests(bot):
    cadre = await make_member(bot.db, 7003, "i803", role=Role.CADRE)
    await _register(bot.user(5004), "八〇三所工会", "D1", "赵六")
    await _register(bot.user(5005), "八〇四所工会", "D2", "钱七")
    chat = bot.user(cadre.telegram_id)
    await chat.send("/approve")
    assert "赵六" in chat.last.text and "钱七" not in chat.last.text
    await chat.click("赵六")
    assert "已通过" in chat.last.text
    admin = bot.user(ADMIN_ID)
    await admin.send("/approve")
    assert "钱七" in admin.last.text and "赵六" not in admin.last.text


async def test_plain_member_cannot_use_approve_or_forge_its_buttons(bot):
    await _register(bot.user(5006), "八〇一所工会", "E1", "孙八")
    plain = bot.user(8001)
    await make_member(bot.db, 8001, "i801")
    await plain.send("/approve")
    assert "没有进行此操作的权限" in plain.last.text
    pending = await _member_of(bot, 5006)
    await plain.press(ApproveMember(pending.id).pack(), plain.last)
    assert "没有进行此操作的权限" in plain.last_answer()
    await plain.press(DeclineMember(pending.id).pack(), plain.last)
    assert (await _member_of(bot, 5006)).status == Status.PENDING


async def test_invite_link_preselects_the_unit(bot):
    user = bot.user(5007)
    await user.send("/start u_i812")
    assert "邀请链接" in user.last.text and "八一二所工会" in user.last.text
    await user.send("F100")
    await user.send("周九")
    assert (await _member_of(bot, 5007)).unit_code == "i812"


async def test_unknown_invite_code_falls_back_to_the_unit_list(bot):
    user = bot.user(5008)
    await user.send("/start u_nosuch")
    assert "邀请链接已失效" in user.last.text
    assert "八〇一所工会" in user.last.labels


async def test_duplicate_employee_number_is_refused(bot):
    await make_member(bot.db, 8002, "i801", employee_no="G42")
    user = bot.user(5009)
    await user.send("/start")
    await user.click("八〇一所工会")
    await user.send("g42")
    assert "已被登记" in user.last.text
    # Still asked for the employee number: a different one goes through.
    await user.send("G43")
    assert "真实姓名" in user.last.text
    # Someone else registers G43 between the two steps: the final step refuses too.
    await make_member(bot.db, 8003, "i801", employee_no="G43")
    await user.send("吴十")
    assert "已被登记" in user.last.text
    assert await _member_of(bot, 5009) is None


async def test_bad_input_at_every_step(bot):
    user = bot.user(5010)
    await user.send("/start")
    await user.send("我是谁")  # text before choosing a unit
    assert "请先在下面选择" in user.last.text
    await user.press(PickUnit("nosuch").pack())  # a forged unit
    assert "没有找到这个基层工会" in user.last_answer()
    await user.press("reg:unit:<script>")  # not even well-formed
    assert bot.api.answers[-1][1] == "这个按钮已过期，请发送 /menu 重新打开菜单。"
    await user.click("八〇一所工会")
    for bad in ("x", "工号123", "A" * 40, "A B"):
        await user.send(bad)
        assert "工号格式不对" in user.last.text
    await user.send("H1")
    for bad, expected in (("   ", "姓名不能为空"), ("名" * 40, "姓名太长"), ("<b>hi</b>", "不支持的符号")):
        await user.send(bad)
        assert expected in user.last.text
    await user.send("郑 十一")
    assert (await _member_of(bot, 5010)).name == "郑 十一"


async def test_cancel_leaves_registration(bot):
    user = bot.user(5011)
    await user.send("/start")
    await user.click("八〇一所工会")
    await user.send("/cancel")
    assert "已取消" in user.last.text
    await user.send("J1")
    assert "发送 /start 开始入会登记" in user.last.text
    await user.send("/start")
    await user.click("取消")
    assert "已取消" in user.last.text


async def test_pending_member_can_withdraw_and_start_over(bot):
    user = bot.user(5012)
    await _register(user, "八〇一所工会", "K1", "冯十二")
    await user.send("/start")
    assert "正在等待审核" in user.last.text
    await user.click("撤回申请")
    assert "申请已撤回" in user.last.text
    assert await _member_of(bot, 5012) is None
    # The cadre's button for the withdrawn request now says it is gone.
    admin = bot.user(ADMIN_ID)
    await admin.click("通过")
    assert "已被处理或已撤回" in admin.last_answer()


async def test_verified_member_start_shows_the_menu_and_cannot_register_twice(bot):
    await make_member(bot.db, 8004, "i801")
    user = bot.user(8004)
    await user.send("/start")
    assert "您好" in user.last.text and "💰 我的积分" in user.last.labels
    await user.press(PickUnit("i802").pack())
    assert "已经是认证会员" in user.last_answer()


async def test_start_in_a_group_offers_the_private_chat(bot):
    user = bot.user(5013, chat_id=-100200)
    await user.send("/start")
    assert "私聊" in user.last.text
    button = user.last.buttons[0][0]
    assert button["url"].startswith("https://t.me/gongshe_test_bot?start=")
    # Nothing was stored for a group /start.
    assert await _member_of(bot, 5013) is None


async def test_roster_import_verifies_waiting_requests(bot):
    user = bot.user(5014)
    await _register(user, "八〇一所工会", "L1", "陈十三")
    assert (await _member_of(bot, 5014)).status == Status.PENDING
    # As `python bot.py import-roster` does it: the running bot's outbox then tells the applicant.
    result = await asyncio.to_thread(bot_module._store_roster, bot.config, [RosterRow("i801", "L1", "陈十三", None)])
    assert result.verified == 1
    assert (await _member_of(bot, 5014)).status == Status.VERIFIED
    await settle(bot.app)
    assert "入会申请已通过" in user.last.text
    # Importing the same file again tells nobody twice.
    await asyncio.to_thread(bot_module._store_roster, bot.config, [RosterRow("i801", "L1", "陈十三", None)])
    await settle(bot.app)
    assert sum("入会申请已通过" in m.text for m in user.messages) == 1


async def test_a_configured_admin_is_asked_in_their_own_language(bot):
    """An admin from config.toml who never registered: the request reaches them in the language Telegram reports."""
    english_admin = bot.user(ADMIN_ID, language_code="en")
    await english_admin.send("/help")
    await _register(bot.user(5011), "八〇一所工会", "B5011", "赵六")
    assert "New membership request" in english_admin.last.text
    assert "Approve" in " ".join(english_admin.last.labels)
    # Member sections are not for an admin who has no membership: a clear word, not a crash.
    await english_admin.send("/points")
    assert "admin commands work right away" in english_admin.last.text


@pytest.mark.parametrize(
    "invisible",
    [
        "\u200b\u200c\u200d",  # zero-width space, non-joiner, joiner
        "\u2060\ufeff \u200e\u200f",  # word joiner, BOM, a space, direction marks
        "\u202e\u202d\u2066\u2069",  # direction overrides and isolates
        "\u3164\u115f",  # Hangul fillers: letters that show nothing
        "\x00\x07\u2028",  # controls and a line separator
    ],
)
async def test_a_name_of_invisible_characters_is_refused(bot, invisible):
    user = bot.user(5020)
    await user.send("/start")
    await user.click("八〇一所工会")
    await user.send("N1")
    await user.send(invisible)
    assert user.last.text == "姓名不能为空，请输入您的真实姓名。"
    assert await _member_of(bot, 5020) is None


async def test_a_direction_override_is_dropped_so_cadres_see_the_name_as_typed(bot):
    cadre = await make_member(bot.db, 7021, "i801", role=Role.CADRE)
    user = bot.user(5021)
    # U+202E would show "李四王" reversed to cadres; zero-width and full-width forms are folded too.
    await _register(user, "八〇一所工会", "N2", "\u202e李\u200b四\u202c  Ｗａｎｇ\u00a0\u00a0Wu ")
    assert (await _member_of(bot, 5021)).name == "李四 Wang Wu"
    assert "李四 Wang Wu" in bot.user(cadre.telegram_id).last.text
    # A full-width "＜" is a "<" after folding: refused like the plain one.
    other = bot.user(5022)
    await _register(other, "八〇一所工会", "N3", "＜b＞王五")
    assert other.last.text == "姓名中含有不支持的符号，请只输入您的真实姓名。"


def test_clean_name_folds_and_drops_what_nobody_sees():
    assert members.clean_name("\u202e张三\u202c", 32) == "张三"
    assert members.clean_name("  ｆｕｌｌ \t width\u2028name ", 32) == "full width name"
    assert members.clean_name("Ｚｈａｎｇ\ufe0f", 32) == "Zhang"
    for invisible in ("\u200b", "\u3164", "\u2800\u034f", "\ue000", "\U000e0041", "\ufe0f"):
        with pytest.raises(BadInput) as refused:
            members.clean_name(invisible, 32)
        assert refused.value.key == "name_empty", repr(invisible)
