"""Broadcasts and clubs: a club's members as the audience, posts into linked club groups (paced, pinned)."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from buttons.broadcasts import ToggleClub, ToggleGroup
from models import broadcasts, clubs
from models.audience import Audience
from models.broadcasts import Broadcast, QuietHours
from models.clubs import ClubDraft, ClubMember
from models.errors import NotAllowed
from models.members import Member, Role, load_actor
from models.outbox import OutboxMessage
from tests.conftest import ADMIN_ID, NOW, make_member
from tests.harness import TelegramFailure

CADRE, BUREAU, EN_CADRE = 2101, 2102, 2103
A, B, OTHER = 3101, 3102, 3103
GROUP, HK_GROUP = -100_701, -100_702


async def setup(bot) -> dict[str, int]:
    """Cadres (i801 unit cadre, bureau, an English i801 cadre), members; clubs run (i801, linked group, members
    A and B), hk (hk, linked group, member OTHER) and open (every unit, no group)."""
    await make_member(bot.db, CADRE, "i801", role=Role.CADRE)
    await make_member(bot.db, BUREAU, "hk", role=Role.CADRE, role_unit=None)
    await make_member(bot.db, EN_CADRE, "i801", language="en", role=Role.CADRE)
    for telegram_id, unit in ((A, "i801"), (B, "i801"), (OTHER, "hk")):
        await make_member(bot.db, telegram_id, unit)
    ids = {}
    with bot.db.writing() as s:
        admin = load_actor(s, ADMIN_ID, bot.config.admin_ids)
        for code, units, chat in (("run", ("i801",), GROUP), ("hk", ("hk",), HK_GROUP), ("open", (), None)):
            club, _ = clubs.save_club(s, admin, ClubDraft(code, f"{code}俱乐部", units=units), {"i801", "hk"}, NOW)
            club.chat_id = chat
            ids[code] = club.id
        member_ids = {m.telegram_id: m.id for m in s.exec(select(Member))}
        for telegram_id, code in ((A, "run"), (B, "run"), (OTHER, "hk")):
            s.add(ClubMember(club_id=ids[code], member_id=member_ids[telegram_id]))
    return ids


def broadcast(bot, broadcast_id: int = 1) -> Broadcast:
    with bot.db.reading() as session:
        found = session.get(Broadcast, broadcast_id)
        assert found is not None
        return found


def group_rows(bot, broadcast_id: int) -> list[OutboxMessage]:
    with bot.db.reading() as session:
        kind = f"broadcast_group:{broadcast_id}"
        return list(session.exec(select(OutboxMessage).where(col(OutboxMessage.kind) == kind)).all())


async def test_club_members_as_audience_and_a_pinned_post_in_the_club_group(bot) -> None:
    await setup(bot)
    bureau, a, b, other = bot.user(BUREAU), bot.user(A), bot.user(B), bot.user(OTHER)
    await bureau.send("/broadcast")
    await bureau.send("俱乐部周末活动通知", message_id=801)
    assert "预计送达：<b>6</b> 人" in bureau.last.text
    await bureau.click("👥 发送对象")
    # Every club is in a bureau cadre's scope; ticking one reaches its members only.
    assert {"🏅 run俱乐部", "🏅 hk俱乐部", "🏅 open俱乐部"} <= set(bureau.last.labels)
    await bureau.click("🏅 run俱乐部")
    assert "✅ 🏅 run俱乐部" in bureau.last.labels
    assert "俱乐部：run俱乐部" in bureau.last.text and "预计送达：<b>2</b> 人" in bureau.last.text
    await bureau.click("↩️ 返回")
    await bureau.click("💬 俱乐部群（0）")
    # Only the clubs with a linked group can be chosen.
    assert "🏅 open俱乐部" not in bureau.last.labels and "open俱乐部" not in bureau.last.labels
    await bureau.click("hk俱乐部")
    await bureau.click("送达后置顶：关")
    assert "当前：hk俱乐部（送达后置顶）" in bureau.last.text
    await bureau.click("↩️ 返回")
    assert "同时发到俱乐部群：hk俱乐部（送达后置顶）" in bureau.last.text
    await bureau.click("预览")
    assert "同时发到俱乐部群" in bureau.last.text
    await bureau.click("立即发送")
    assert [m.text for m in a.messages if m.copy_of] == ["俱乐部周末活动通知"]
    assert [m.text for m in b.messages if m.copy_of] == ["俱乐部周末活动通知"]
    assert [m for m in other.messages if m.copy_of] == []
    posted = bot.api.chats[HK_GROUP]
    assert [(m.text, m.copy_of) for m in posted] == [("俱乐部周末活动通知", (BUREAU, 801))]
    assert bot.api.pins == [(HK_GROUP, posted[0].message_id)]
    assert GROUP not in bot.api.chats
    # The group post is the broadcast's own outbox row: once per group, not counted among the members.
    assert [(r.chat_id, r.status, r.pin) for r in group_rows(bot, 1)] == [(HK_GROUP, "sent", True)]
    assert broadcast(bot).recipients == 2


async def test_a_refused_pin_still_delivers_and_a_group_post_without_pin(bot) -> None:
    await setup(bot)
    bureau = bot.user(BUREAU)
    bot.api.fail(
        "pinChatMessage", TelegramFailure(400, "Bad Request: not enough rights to manage pinned messages in the chat")
    )
    for message_id, pin in ((811, True), (812, False)):
        await bureau.send("/broadcast")
        await bureau.send(f"群公告 {message_id}", message_id=message_id)
        await bureau.click("💬 俱乐部群（0）")
        await bureau.click("run俱乐部")
        if pin:
            await bureau.click("送达后置顶：关")
        await bureau.click("↩️ 返回")
        await bureau.click("预览")
        await bureau.click("立即发送")
    assert [m.text for m in bot.api.chats[GROUP]] == ["群公告 811", "群公告 812"]
    # The bot may not pin there: the post stays delivered, nothing crashed, and the next broadcast goes out.
    assert [r.status for r in group_rows(bot, 1) + group_rows(bot, 2)] == ["sent", "sent"]
    assert bot.api.pins == [] and len(bot.api.calls_of("pinChatMessage")) == 1
    # "Got it" counts members who received it in private: a group post has no such button.
    assert all(m.labels == [] for m in bot.api.chats[GROUP])


async def test_a_unit_cadre_targets_only_their_units_clubs_and_forgeries_change_nothing(bot) -> None:
    ids = await setup(bot)
    cadre = bot.user(CADRE)
    await cadre.send("/broadcast")
    await cadre.send("本所俱乐部通知", message_id=821)
    await cadre.click("👥 发送对象")
    assert "🏅 run俱乐部" in cadre.last.labels
    assert "🏅 hk俱乐部" not in cadre.last.labels and "🏅 open俱乐部" not in cadre.last.labels
    # Forged presses: another unit's club as the audience or as a group, a club without a group.
    await cadre.press(ToggleClub(1, ids["hk"]).pack())
    assert "权限" in (cadre.last_answer() or "")
    await cadre.press(ToggleGroup(1, ids["hk"]).pack())
    assert "权限" in (cadre.last_answer() or "")
    await cadre.press(ToggleClub(1, 9999).pack())
    assert "权限" in (cadre.last_answer() or "")
    found = broadcast(bot)
    assert '"clubs": []' in found.audience and found.groups == []
    # A bureau cadre's club without a linked group cannot be a group target either.
    bureau = bot.user(BUREAU)
    await bureau.send("/broadcast")
    await bureau.send("全局通知", message_id=822)
    await bureau.press(ToggleGroup(2, ids["open"]).pack())
    assert "没有绑定群" in (bureau.last_answer() or bureau.last.text)
    assert broadcast(bot, 2).groups == []
    # The unit cadre's own club works, and reaches its members in the cadre's unit.
    await cadre.press(ToggleClub(1, ids["run"]).pack())
    assert "预计送达：<b>2</b> 人" in cadre.last.text


async def test_club_audience_and_groups_in_english(bot) -> None:
    await setup(bot)
    cadre = bot.user(EN_CADRE, "en")
    await cadre.send("/broadcast")
    await cadre.send("Club news", message_id=831)
    await cadre.click("👥 Audience")
    await cadre.click("🏅 run俱乐部")
    assert "members of run俱乐部" in cadre.last.text and "Reaches: <b>2</b> members" in cadre.last.text
    await cadre.click("↩️ Back")
    await cadre.click("💬 Club groups (0)")
    assert "Also post in club groups" in cadre.last.text
    await cadre.click("run俱乐部")
    await cadre.click("☐ Pin once delivered: off")
    assert "Now: run俱乐部 (pinned once delivered)" in cadre.last.text
    await cadre.click("↩️ Back")
    assert "Also posted in club groups: run俱乐部 (pinned once delivered)" in cadre.last.text


async def test_club_scope_group_posts_recurring_runs_and_cancel_on_both_databases(db) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    quiet = QuietHours(time(0, 0), time(0, 0), shanghai)
    units = ["i801", "hk"]
    await make_member(db, CADRE, "i801", role=Role.CADRE)
    member = await make_member(db, A, "i801")
    with db.writing() as s:
        admin = load_actor(s, ADMIN_ID, {ADMIN_ID})
        run, _ = clubs.save_club(s, admin, ClubDraft("run", "跑团", units=("i801",)), set(units), NOW)
        hk, _ = clubs.save_club(s, admin, ClubDraft("hk", "港区", units=("hk",)), set(units), NOW)
        run.chat_id, hk.chat_id = GROUP, HK_GROUP
        s.add(ClubMember(club_id=run.id, member_id=member.id))
        run_id, hk_id = run.id, hk.id
    with db.writing() as s:
        actor = load_actor(s, CADRE, {ADMIN_ID})
        assert [c.id for c in broadcasts.clubs_in_scope(s, actor)] == [run_id]
        draft = broadcasts.start_draft(s, actor, CADRE, 5, "text", NOW)
        with pytest.raises(NotAllowed):
            broadcasts.set_audience(s, actor, draft.id, Audience(clubs=(hk_id,)), units)
        with pytest.raises(NotAllowed):
            broadcasts.toggle_group(s, actor, draft.id, hk_id)
        broadcasts.set_audience(s, actor, draft.id, Audience(clubs=(run_id,)), units)
        broadcasts.toggle_group(s, actor, draft.id, run_id)
        broadcasts.toggle_pin(s, actor, draft.id)
        # Weekly, twice: each run posts once in the group, like it reaches each member once.
        at = NOW + timedelta(hours=1)
        until = (at + timedelta(days=8)).astimezone(shanghai).date()
        broadcasts.schedule(s, actor, draft.id, at, NOW, units, repeat="weekly", until=until, tz=shanghai)
        parent_id = draft.id
    for later in (timedelta(hours=2), timedelta(hours=3), timedelta(days=7, hours=2)):
        with db.writing() as s:
            broadcasts.release_due(s, NOW + later, NOW.date(), quiet, lambda i, lang: (f"bc:got_it:{i}", "ok"))
    with db.reading() as s:
        runs = s.exec(select(Broadcast).where(col(Broadcast.parent_id) == parent_id).order_by(col(Broadcast.id))).all()
        assert [(r.groups, r.pin, r.recipients) for r in runs] == [([run_id], True, 1), ([run_id], True, 1)]
        posts = s.exec(select(OutboxMessage).where(col(OutboxMessage.kind).like("broadcast_group:%"))).all()
        assert sorted((p.chat_id, p.pin, p.kind) for p in posts) == [
            (GROUP, True, f"broadcast_group:{runs[0].id}"),
            (GROUP, True, f"broadcast_group:{runs[1].id}"),
        ]
    # Cancelling a run withdraws its group post that was not sent yet, with its members' copies.
    with db.writing() as s:
        actor = load_actor(s, CADRE, {ADMIN_ID})
        assert broadcasts.cancel(s, actor, runs[1].id, NOW) == 2
        left = s.exec(select(OutboxMessage).where(col(OutboxMessage.kind) == f"broadcast_group:{runs[1].id}")).all()
        assert left == []
