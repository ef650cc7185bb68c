"""Clubs through the bot: cadres create clubs and name leaders, members join or ask, leaders decide, club groups."""

from __future__ import annotations

import csv
import io
import itertools
import time
from typing import Any

import pytest
from sqlmodel import col, select

import handlers.runs
from buttons.clubs import (
    ClubMembers,
    ClubMembersCsv,
    ClubRequests,
    ConfirmRemoveMember,
    DecideRequest,
    JoinClub,
    ManageClub,
    RemoveMember,
)
from models import clubs
from models.clubs import Club, ClubDraft, ClubMember
from models.members import Role, load_actor
from tests.conftest import ADMIN_ID, NOW, make_member
from tests.harness import TelegramFailure

GROUP = -100555
OTHER_GROUP = -100556
BOT_ID = 999_000
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def refresh_at_once(monkeypatch):
    """Posted run cards are edited at once here (tests/test_runs.py tests the throttle)."""
    monkeypatch.setattr(handlers.runs, "REFRESH_SECONDS", 0.0)


@pytest.fixture
def group_api(bot):
    """The Bot API calls club groups need, answered like Telegram would."""
    api = bot.api
    # banChatMember / unbanChatMember are answered by the harness (recorded in api.removals).

    def create_link(params: dict[str, Any]) -> dict[str, Any]:
        assert params["creates_join_request"] is True
        link = f"https://t.me/+link{next(_ids)}"
        api.links.append((int(params["chat_id"]), link))
        return {
            "invite_link": link,
            "creator": {"id": BOT_ID, "is_bot": True, "first_name": "bot"},
            "creates_join_request": True,
            "is_primary": False,
            "is_revoked": False,
        }

    api._createChatInviteLink = create_link
    return api


async def make_club(bot, code: str = "run", *, open_: bool = False, leader: int | None = None, units=()) -> int:
    """A club stored as a bureau admin would (and its leader, a verified member)."""
    with bot.db.writing() as s:
        actor = load_actor(s, ADMIN_ID, bot.config.admin_ids)
        club, _ = clubs.save_club(
            s, actor, ClubDraft(code, f"{code} 俱乐部", "一起玩", open_, tuple(units)), {"i801", "i805"}, NOW
        )
        if leader is not None:
            member = s.exec(select(clubs.Member).where(col(clubs.Member.telegram_id) == leader)).one()
            clubs.set_leader(s, actor, club.id, member, True, NOW)
        return club.id


async def test_cadre_creates_a_club_and_names_a_leader_from_admin(bot):
    await make_member(bot.db, 6001, role=Role.CADRE, role_unit=None)
    await make_member(bot.db, 6002, employee_no="L6002", name="队长")
    cadre = bot.user(6001)
    await cadre.send("/admin")
    await cadre.click("🏅 俱乐部")
    assert "还没有俱乐部" in cadre.last.text
    await cadre.click("➕ 新建俱乐部")
    await cadre.send("Bad Code!")
    assert "不可用" in cadre.last.text
    await cadre.send("chess")
    await cadre.send("象棋俱乐部")
    await cadre.click("跳过")
    await cadre.click("跳过")
    await cadre.click("需负责人审核")
    await cadre.click("所有单位")
    await cadre.click("✅ 选好了")
    assert "已创建" in "".join(m.text for m in cadre.messages[-2:])
    await cadre.click("👤 指定负责人")
    await cadre.send("i801 L6002")
    assert "队长 现在是「象棋俱乐部」的负责人" in "".join(m.text for m in cadre.messages[-2:])
    with bot.db.reading() as s:
        club = s.exec(select(Club).where(Club.code == "chess")).one()
        assert not club.open and club.units == ""
    await cadre.click("✖️ 取消负责人：队长")
    assert cadre.last_answer() == "已取消其负责人身份" and "尚未指定" in cadre.last.text
    with bot.db.reading() as s:
        assert [(r.leader, r.status) for r in s.exec(select(ClubMember))] == [(False, "member")]


async def test_join_request_approved_by_the_leader_then_csv_and_leave(bot):
    await make_member(bot.db, 6101, name="队长")
    await make_member(bot.db, 6102, name="小王")
    await make_member(bot.db, 6103)
    club_id = await make_club(bot, leader=6101)
    member = bot.user(6102)
    await member.send("/clubs")
    assert "run 俱乐部" in member.last.text and "需审核" in member.last.text
    await member.click("run 俱乐部")
    await member.click("📨 申请加入")
    assert member.last_answer() == "已提交申请，等待负责人审核" and "等待负责人审核" in member.last.text
    leader = bot.user(6101)
    assert "小王 申请加入" in leader.last.text
    # A plain member cannot decide or export, whatever they send.
    outsider = bot.user(6103)
    await outsider.send("/clubs")
    await outsider.press(DecideRequest(club_id, 2, 1).pack())
    assert outsider.last_answer() == "只有俱乐部负责人可以这样做。"
    await outsider.press(ClubMembersCsv(club_id).pack())
    assert outsider.last_answer() == "只有俱乐部负责人可以这样做。"
    await outsider.press(ClubRequests(club_id).pack())
    assert outsider.last_answer() == "只有俱乐部负责人可以这样做。"
    await leader.click("✅ 通过")
    assert leader.last_answer() == "已通过"
    assert "您已加入" in member.last.text
    # Deciding again finds nothing to decide.
    await leader.press(DecideRequest(club_id, 2, 0).pack())
    assert "已被处理" in leader.last_answer()
    await leader.send("/clubs")
    await leader.click("run 俱乐部")
    await leader.click("📄 成员名单 CSV")
    filename, content = leader.last.document
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert filename == "club-run.csv" and sorted(r[0] for r in rows[1:]) == ["小王", "队长"]
    await member.click("查看俱乐部")
    await member.click("退出俱乐部")
    with bot.db.reading() as s:
        assert [r.member_id for r in s.exec(select(ClubMember))] == [1]


async def test_open_club_joins_at_once_and_unit_limits_hold(bot):
    await make_member(bot.db, 6201)
    await make_member(bot.db, 6202, unit="hk")
    club_id = await make_club(bot, "swim", open_=True, units=("i801",))
    user = bot.user(6201)
    await user.send("/clubs")
    await user.click("swim 俱乐部")
    await user.click("➕ 加入")
    assert user.last_answer() == "已加入！" and "您是本俱乐部成员" in user.last.text
    await user.press(JoinClub(club_id).pack())
    with bot.db.reading() as s:
        assert len(s.exec(select(ClubMember)).all()) == 1
    far = bot.user(6202)
    await far.send("/clubs")
    assert "swim" not in far.last.text
    await far.press(JoinClub(club_id).pack())
    assert far.last_answer() == "这个俱乐部不面向您所在的单位。"


async def test_a_unit_cadre_cannot_manage_a_bureau_club(bot):
    await make_member(bot.db, 6301, role=Role.CADRE)
    club_id = await make_club(bot)
    cadre = bot.user(6301)
    await cadre.send("/admin")
    await cadre.press(ManageClub(club_id).pack())
    assert cadre.last_answer() == "抱歉，您没有进行此操作的权限。"
    await cadre.press(ClubMembersCsv(club_id).pack())
    assert cadre.last_answer() == "抱歉，您没有进行此操作的权限。"


async def _group_update(client, key: str, body: dict[str, Any]) -> None:
    await client._process({"update_id": 10_000_000 + next(_ids), key: body})


def _bot_member(status: str, **rights: bool) -> dict[str, Any]:
    member: dict[str, Any] = {"user": {"id": BOT_ID, "is_bot": True, "first_name": "bot"}, "status": status}
    if status == "administrator":
        member |= {
            "can_be_edited": False,
            "is_anonymous": False,
            "can_manage_chat": True,
            "can_delete_messages": True,
            "can_manage_video_chats": True,
            "can_restrict_members": rights.get("restrict", True),
            "can_promote_members": False,
            "can_change_info": True,
            "can_invite_users": rights.get("invite", True),
            "can_post_stories": False,
            "can_edit_stories": False,
            "can_delete_stories": False,
        }
    if status == "kicked":
        member["until_date"] = 0
    return member


async def test_club_group_link_join_requests_and_removal_on_leave(bot, group_api):
    await make_member(bot.db, 6401, name="队长")
    await make_member(bot.db, 6402)
    await make_member(bot.db, 6403)
    club_id = await make_club(bot, leader=6401)
    await make_club(bot, "chess", open_=True)
    in_group = bot.user(6401, chat_id=GROUP)
    await in_group.send("/linkclub run")
    assert "已绑定俱乐部「run 俱乐部」" in in_group.last.text
    assert group_api.links == [(GROUP, "https://t.me/+link1")] or group_api.links[0][0] == GROUP
    link = group_api.links[-1][1]
    # Someone else cannot link or unlink.
    await bot.user(6402, chat_id=GROUP).send("/unlinkclub")
    assert "只有俱乐部负责人" in bot.api.chats[GROUP][-1].text

    # A member of the club is let in; the join request of a member of another club, of an unregistered user and
    # of a member who is not in the club are declined, and each is told how to join in private.
    with bot.db.writing() as s:
        s.add(ClubMember(club_id=club_id, member_id=2))
    other = bot.user(6403)
    await other.send("/clubs")
    await other.click("chess 俱乐部")
    await other.click("➕ 加入")
    await bot.user(6402).request_join(GROUP)
    await other.request_join(GROUP)
    await bot.user(6499).request_join(GROUP)
    assert bot.api.join_decisions == [("approve", GROUP, 6402), ("decline", GROUP, 6403), ("decline", GROUP, 6499)]
    assert "还不是该俱乐部的成员" in other.last.text
    # A request to a group no club is linked to: nothing is decided.
    await bot.user(6402).request_join(OTHER_GROUP)
    assert len(bot.api.join_decisions) == 3
    # The member sees the group's link on the card; leaving removes them from the group (ban, then unban).
    member = bot.user(6402)
    await member.send("/clubs")
    await member.click("run 俱乐部")
    assert member.last.button("💬 俱乐部群")["url"] == link
    await member.click("退出俱乐部")
    assert group_api.removals == [("ban", GROUP, 6402), ("unban", GROUP, 6402)]
    await bot.user(6402).request_join(GROUP)
    assert bot.api.join_decisions[-1] == ("decline", GROUP, 6402)


async def test_group_migration_bot_removed_and_rights_lost(bot, group_api):
    await make_member(bot.db, 6501, name="队长")
    await make_club(bot, leader=6501)
    leader_group = bot.user(6501, chat_id=GROUP)
    await leader_group.send("/linkclub run")
    leader = bot.user(6501)
    new_id = -100_999
    await _group_update(
        leader_group,
        "message",
        {
            "message_id": 5,
            "date": int(time.time()),
            "chat": {"id": GROUP, "type": "group", "title": "g"},
            "from": leader_group.user,
            "migrate_to_chat_id": new_id,
        },
    )
    with bot.db.reading() as s:
        club = s.exec(select(Club).where(Club.code == "run")).one()
        assert club.chat_id == new_id and club.invite_link == group_api.links[-1][1]
    assert group_api.links[-1][0] == new_id and "超级群" in leader.last.text

    def change(new: dict[str, Any]) -> dict[str, Any]:
        return {
            "chat": {"id": new_id, "type": "supergroup", "title": "g"},
            "from": leader_group.user,
            "date": int(time.time()),
            "old_chat_member": _bot_member("administrator"),
            "new_chat_member": new,
        }

    await _group_update(leader_group, "my_chat_member", change(_bot_member("administrator", restrict=False)))
    assert "失去了管理员权限" in leader.last.text
    with bot.db.reading() as s:
        assert s.exec(select(Club.chat_id)).all() == [None]
    # Linked again, then removed from the group.
    await bot.user(6501, chat_id=new_id).send("/linkclub run")
    await _group_update(leader_group, "my_chat_member", change(_bot_member("kicked")))
    assert "移出" in leader.last.text
    with bot.db.reading() as s:
        assert s.exec(select(Club.chat_id)).all() == [None]


async def test_club_runs_and_announcements_are_posted_in_the_group_through_the_outbox(bot, group_api):
    await make_member(bot.db, 6601, name="队长")
    await make_member(bot.db, 6602)
    club_id = await make_club(bot, leader=6601)
    with bot.db.writing() as s:
        s.add(ClubMember(club_id=club_id, member_id=2))
    await bot.user(6601, chat_id=GROUP).send("/linkclub run")
    leader = bot.user(6601)
    await leader.send("/newrun")
    await leader.send("2026-11-30 07:00")
    await leader.send("滨江大道")
    await leader.click("跳过")
    for answer in ("5", "5'30\""):
        await leader.send(answer)
    await leader.send("10")
    await leader.click("俱乐部：run 俱乐部")
    await leader.send("周六俱乐部晨跑")
    assert "俱乐部活动" not in leader.last.text and "run 俱乐部" in leader.last.text
    await leader.click("📣 发到俱乐部群")
    assert leader.last_answer() == "已发到俱乐部群"
    posted = bot.api.chats[GROUP][-1]
    assert "周六俱乐部晨跑" in posted.text and "参加 <b>0</b>/10" in posted.text
    # A club member answers on the group's card: it is edited in place with the new count.
    member_in_group = bot.user(6602, chat_id=GROUP)
    await member_in_group.click("✅ 参加", posted)
    assert "参加 <b>1</b>/10" in posted.text and member_in_group.last_answer() == "报名成功！"
    # Someone who is not a member gets a short alert; a colleague outside the club is refused too.
    await bot.user(6699, chat_id=GROUP).click("✅ 参加", posted)
    assert "入会登记" in bot.api.answers[-1][1] and "参加 <b>1</b>/10" in posted.text
    await leader.click("📣 发到俱乐部群")
    assert leader.last_answer() == "这张卡片已经发过了"
    assert len([m for m in bot.api.chats[GROUP] if "周六俱乐部晨跑" in m.text]) == 1
    # The club card of a member shows the run; the leader announces in the group.
    await leader.send("/clubs")
    await leader.click("run 俱乐部")
    assert "周六俱乐部晨跑" in leader.last.text
    await leader.click("📣 在群里发公告")
    await leader.send("本周六 7 点滨江大道集合！")
    assert "公告" in bot.api.chats[GROUP][-1].text and "本周六 7 点" in bot.api.chats[GROUP][-1].text


async def test_a_deleted_account_leaves_every_linked_club_group(bot, group_api):
    await make_member(bot.db, 6701, name="队长")
    await make_member(bot.db, 6702, language="en")
    run_id = await make_club(bot, leader=6701)
    chess_id = await make_club(bot, "chess", leader=6701)
    await make_club(bot, "go", open_=True)
    with bot.db.writing() as s:
        s.add(ClubMember(club_id=run_id, member_id=2))
        s.add(ClubMember(club_id=chess_id, member_id=2))
    await bot.user(6701, chat_id=GROUP).send("/linkclub run")
    await bot.user(6701, chat_id=OTHER_GROUP).send("/linkclub chess")
    # The bot lost its rights in the chess group: that removal is refused by Telegram, the other goes through.
    group_api.fail("banChatMember", TelegramFailure(400, "Bad Request: not enough rights"), chat_id=OTHER_GROUP)
    user = bot.user(6702)
    await user.send("/me")
    await user.click("🗑 Delete my account")
    await user.click("Yes, delete it")
    assert "deleted" in user.last.text.lower()
    assert group_api.removals == [("ban", GROUP, 6702), ("unban", GROUP, 6702)]
    tried = sorted((c.method, int(c.params["chat_id"])) for c in group_api.calls if c.method.endswith("ChatMember"))
    assert tried == [("banChatMember", OTHER_GROUP), ("banChatMember", GROUP), ("unbanChatMember", GROUP)]
    with bot.db.reading() as s:
        assert s.exec(select(ClubMember.member_id).where(ClubMember.member_id == 2)).all() == []
    await user.request_join(GROUP)
    assert bot.api.join_decisions[-1] == ("decline", GROUP, 6702)


async def test_a_leader_removes_a_member_from_the_club_and_its_group(bot, group_api):
    await make_member(bot.db, 6801, name="队长")
    await make_member(bot.db, 6802, name="Alice", language="en")
    await make_member(bot.db, 6803, name="旁人")
    await make_member(bot.db, 6804, name="二队长")
    club_id = await make_club(bot, leader=6801)
    with bot.db.writing() as s:
        s.add(ClubMember(club_id=club_id, member_id=2))
        s.add(ClubMember(club_id=club_id, member_id=3))
        actor = load_actor(s, ADMIN_ID, bot.config.admin_ids)
        clubs.set_leader(s, actor, club_id, s.get(clubs.Member, 4), True, NOW)
    await bot.user(6801, chat_id=GROUP).send("/linkclub run")
    # A plain member of the club cannot list, ask or confirm a removal, whatever they press.
    outsider = bot.user(6803)
    await outsider.send("/clubs")
    for forged in (ClubMembers(club_id), RemoveMember(club_id, 2), ConfirmRemoveMember(club_id, 2)):
        await outsider.press(forged.pack())
        assert outsider.last_answer() == "只有俱乐部负责人可以这样做。"
    leader = bot.user(6801)
    await leader.send("/clubs")
    await leader.click("run 俱乐部")
    await leader.click("👥 成员（4）")
    assert "队长（负责人）" in leader.last.text and "二队长（负责人）" in leader.last.text
    # Leaders (themselves, another leader) have no Remove button; forged presses are refused too.
    assert sorted(leader.last.labels[:2]) == ["✖️ 移出：Alice", "✖️ 移出：旁人"]
    await leader.press(ConfirmRemoveMember(club_id, 1).pack())
    assert "不能把自己移出" in (leader.last_answer() or leader.last.text)
    await leader.press(ConfirmRemoveMember(club_id, 4).pack())
    assert "负责人由工会干部指定" in (leader.last_answer() or leader.last.text)
    await leader.click("✖️ 移出：Alice")
    assert "确定要把 <b>Alice</b> 移出「run 俱乐部」吗" in leader.last.text and "俱乐部群" in leader.last.text
    await leader.click("↩️ 不移出")
    await leader.click("✖️ 移出：Alice")
    confirm = leader.last
    await leader.click("确认移出")
    assert leader.last_answer() == "已移出" and "Alice" not in leader.last.text
    assert group_api.removals == [("ban", GROUP, 6802), ("unban", GROUP, 6802)]
    assert "A leader removed you from “run 俱乐部”" in bot.user(6802, "en").last.text
    with bot.db.reading() as s:
        assert s.exec(select(ClubMember).where(ClubMember.member_id == 2)).first() is None
    # The same confirmation pressed again finds nobody to remove, and nobody is told twice.
    await leader.press(ConfirmRemoveMember(club_id, 2).pack(), confirm)
    assert "已经不是俱乐部成员" in (leader.last_answer() or leader.last.text)
    assert len(group_api.removals) == 2
    await bot.user(6802).request_join(GROUP)
    assert bot.api.join_decisions[-1] == ("decline", GROUP, 6802)
