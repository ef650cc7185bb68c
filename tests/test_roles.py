"""Roles: who may promote whom, audit entries, command lists per standing, forged admin buttons."""

from __future__ import annotations

from sqlmodel import select

from models import members
from models.members import Role, RoleGrant
from tests.conftest import ADMIN_ID, make_member


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
