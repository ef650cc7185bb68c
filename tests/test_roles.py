"""Roles: who may promote whom, audit entries, command lists per standing, forged admin buttons."""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import select

from handlers.admin import AUDIT_SHOWN, INVITES_PAGE
from models import members
from models.audit import AuditEntry
from models.members import Role, RoleGrant
from tests.conftest import ADMIN_ID, NOW, make_member


async def _roles(bot, telegram_id: int) -> set[tuple[str, str | None]]:
    with bot.db.reading() as s:
        member = (s.exec(select(members.Member).where(members.Member.telegram_id == telegram_id))).one()
        grants = s.exec(select(RoleGrant).where(RoleGrant.member_id == member.id))
        return {(g.role, g.unit_code) for g in grants}


async def test_admin_promotes_and_demotes_with_audit(bot):
    await make_member(bot.db, 8401, "i801", employee_no="R1", name="新干部")
    admin = bot.user(ADMIN_ID)
    await admin.send("/promote i801 R1 cadre")
    assert "已将 新干部 设为工会干部（八〇一所工会）" in admin.last.text
    assert "您已被设为<b>工会干部</b>" in bot.user(8401).last.text
    assert await _roles(bot, 8401) == {("cadre", "i801")}
    # The new cadre's chat gets the cadre command list.
    scoped = [c for c in bot.api.calls_of("setMyCommands") if c.params.get("scope", {}).get("chat_id") == 8401]
    assert scoped and any(cmd["command"] == "approve" for cmd in scoped[-1].params["commands"])
    await admin.send("/promote i801 R1 cadre bureau")
    assert await _roles(bot, 8401) == {("cadre", None)}
    await admin.send("/demote i801 R1 cadre")
    assert "已取消 新干部 的工会干部角色" in admin.last.text
    assert await _roles(bot, 8401) == set()
    scoped = [c for c in bot.api.calls_of("setMyCommands") if c.params.get("scope", {}).get("chat_id") == 8401]
    assert not any(cmd["command"] == "approve" for cmd in scoped[-1].params["commands"])
    with bot.db.reading() as s:
        assert [e.action for e in members.audit.recent(s)] == ["demote", "promote", "promote"]


async def test_bad_promote_input(bot):
    await make_member(bot.db, 8402, "i801", employee_no="R2")
    admin = bot.user(ADMIN_ID)
    for command, expected in (
        ("/promote", "用法"),
        ("/promote i801 R2 king", "没有这个角色"),
        ("/promote i801 NOPE cadre", "没有找到该会员"),
        ("/promote i801 R2 cadre nosuchunit", "没有找到这个基层工会"),
        ("/demote i801 R2 volunteer", "没有这个角色"),
    ):
        await admin.send(command)
        assert expected in admin.last.text, command
    assert await _roles(bot, 8402) == set()


async def test_cadre_may_only_name_volunteers_in_their_unit(bot):
    await make_member(bot.db, 8403, "i801", role=Role.CADRE)
    await make_member(bot.db, 8404, "i801", employee_no="S1")
    await make_member(bot.db, 8405, "i802", employee_no="S2")
    cadre = bot.user(8403)
    await cadre.send("/promote i801 S1 cadre")
    assert "没有进行此操作的权限" in cadre.last.text
    await cadre.send("/promote i802 S2 volunteer")
    assert "没有进行此操作的权限" in cadre.last.text
    await cadre.send("/promote i801 S1 volunteer")
    assert "志愿者" in cadre.last.text
    assert await _roles(bot, 8404) == {("volunteer", None)}
    assert await _roles(bot, 8405) == set()


async def test_plain_member_gets_no_admin_commands(bot):
    await make_member(bot.db, 8406, "i801")
    await make_member(bot.db, 8407, "i801", employee_no="T1")
    user = bot.user(8406)
    for command in ("/promote i801 T1 admin", "/admin", "/audit", "/approve", "/deduct i801 T1 1 x"):
        await user.send(command)
        assert "没有进行此操作的权限" in user.last.text, command
    assert await _roles(bot, 8407) == set()
    await user.send("/help")
    assert "/promote" not in user.last.text and "/points" in user.last.text


async def test_admin_overview_and_audit(bot):
    await make_member(bot.db, 8408, "i803", role=Role.CADRE)
    cadre = bot.user(8408)
    await cadre.send("/admin")
    assert "八〇三所工会" in cadre.last.text
    assert "https://t.me/gongshe_test_bot?start=u_i803" in cadre.last.text
    assert "u_i801" not in cadre.last.text
    await cadre.send("/audit")
    assert "没有进行此操作的权限" in cadre.last.text
    admin = bot.user(ADMIN_ID)
    await admin.send("/audit")
    assert "操作日志" in admin.last.text


async def test_start_up_publishes_commands_per_language_and_for_staff(bot):
    calls = bot.api.calls_of("setMyCommands")
    languages = {c.params.get("language_code") for c in calls if "chat_id" not in c.params.get("scope", {})}
    assert {"zh", "en"} <= languages
    member_list = next(c for c in calls if c.params.get("language_code") == "en")
    names = {cmd["command"] for cmd in member_list.params["commands"]}
    assert {"points", "me", "help"} <= names and "promote" not in names
    admin_list = next(c for c in calls if c.params.get("scope", {}).get("chat_id") == ADMIN_ID)
    assert "promote" in {cmd["command"] for cmd in admin_list.params["commands"]}
    # Member commands are for private chats (in a group they would only redirect); groups get no list.
    assert {c.params["scope"]["type"] for c in calls if "chat_id" not in c.params["scope"]} == {"all_private_chats"}
    assert [c.params.get("scope", {}).get("type") for c in bot.api.calls_of("deleteMyCommands")] == ["default"]
    # An empty chat shows what the bot is before /start, in both languages, within Telegram's limits.
    assert set(bot.api.descriptions) == {"zh", "en"} and set(bot.api.short_descriptions) == {"zh", "en"}
    assert "会员福利" in bot.api.descriptions["zh"] and "welfare" in bot.api.short_descriptions["en"]


async def test_a_staff_member_switching_language_gets_the_command_list_in_it(bot):
    await make_member(bot.db, 8461, "i801", role=Role.CADRE)
    cadre = bot.user(8461)
    await cadre.send("/lang en")
    mine = [c for c in bot.api.calls_of("setMyCommands") if c.params.get("scope", {}).get("chat_id") == 8461]
    assert mine and mine[-1].params["commands"][0]["description"].isascii()


def _pending_request(bot, telegram_id: int, unit: str) -> None:
    with bot.db.writing() as s:
        s.add(members.Member(telegram_id=telegram_id, unit_code=unit, employee_no=f"Q{telegram_id}", name="申请人"))


async def test_a_unit_cadre_sees_the_counts_and_invite_links_of_their_units_only(bot):
    await make_member(bot.db, 8410, "i803", role=Role.CADRE)
    for i in range(3):
        await make_member(bot.db, 8420 + i, "i803")
    for i in range(5):
        await make_member(bot.db, 8430 + i, "i801")
    _pending_request(bot, 8450, "i803")
    _pending_request(bot, 8451, "i801")
    _pending_request(bot, 8452, "i801")
    cadre = bot.user(8410)
    await cadre.send("/admin")
    lines = cadre.last.text.splitlines()
    assert lines[1:3] == ["认证会员：4 人", "待审核申请：1 条 → /approve"]
    links = [line for line in lines if "https://t.me/" in line]
    assert links == ["八〇三所工会: https://t.me/gongshe_test_bot?start=u_i803"]
    assert "🔗 各单位邀请链接" not in cadre.last.labels
    admin = bot.user(ADMIN_ID)
    await admin.send("/admin")
    lines = admin.last.text.splitlines()
    assert lines[1:3] == ["认证会员：9 人", "待审核申请：3 条 → /approve"]
    assert "https://t.me/" not in admin.last.text


async def test_a_bureau_admin_pages_through_every_units_invite_link(bot):
    admin = bot.user(ADMIN_ID)
    await admin.send("/admin")
    await admin.click("各单位邀请链接")
    units = bot.config.units
    pages = -(-len(units) // INVITES_PAGE)
    seen = []
    for page in range(pages):
        shown = admin.last
        assert shown.text.splitlines()[0] == f"🔗 <b>各单位邀请链接</b>（第 {page + 1}/{pages} 页）"
        seen += [line for line in shown.text.splitlines() if "https://t.me/" in line]
        expected = (["⬅️ 上一页"] if page else []) + (["下一页 ➡️"] if page + 1 < pages else [])
        assert shown.labels == expected
        if page + 1 < pages:
            await admin.click("下一页")
    assert seen == [f"{u.name('zh')}: https://t.me/gongshe_test_bot?start=u_{u.code}" for u in units]
    assert len(seen) == len(units) > INVITES_PAGE


async def test_the_audit_log_names_who_did_what_to_whom_a_page_at_a_time(bot):
    await make_member(bot.db, 8440, "i801", name="王干部", role=Role.CADRE)
    target = await make_member(bot.db, 8441, "i801", name="李会员")
    gone = await make_member(bot.db, 8442, "i801", name="走了的人")
    with bot.db.writing() as s:
        members.erase_member(s, gone.id)
        s.exec(delete(AuditEntry))
        for actor, action, who, detail in (
            (8440, "grant", target.id, {"amount": 5}),
            (777, "deduct", target.id, {"amount": -2}),
            (0, "erase_member", gone.id, {}),
        ) + ((ADMIN_ID, "promote", target.id, {"role": "volunteer"}),) * AUDIT_SHOWN:
            s.add(AuditEntry(at=NOW, actor_telegram_id=actor, action=action, target=f"member:{who}", detail=detail))
    admin = bot.user(ADMIN_ID)
    await admin.send("/audit")
    first = admin.last.text.splitlines()
    assert first[0] == "📋 <b>操作日志</b>（第 1 页，新的在前）"
    assert first[1:] == ["11-28 12:00 · ID 1000 设置角色 → 李会员（志愿者）"] * AUDIT_SHOWN
    assert admin.last.labels == ["下一页 ➡️"]
    await admin.click("下一页")
    assert admin.last.text.splitlines() == [
        "📋 <b>操作日志</b>（第 2 页，新的在前）",
        f"11-28 12:00 · 系统 注销了账号 → 已注销的会员 #{gone.id}",
        "11-28 12:00 · ID 777 扣减积分 → 李会员（-2 分）",
        "11-28 12:00 · 王干部 发放积分 → 李会员（+5 分）",
    ]
    assert admin.last.labels == ["⬅️ 上一页"]
    await admin.click("上一页")
    assert admin.last.text.splitlines()[0] == "📋 <b>操作日志</b>（第 1 页，新的在前）"
