"""The show (我型我秀) through the bot: posting text, photos, albums and videos, browsing and liking, the anti-farming
rules on the earn screen, reports, moderation, deleting, forged buttons, inline sharing, the weekly top posts."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from buttons.show import ApprovePost, DeletePost, LikePost, RejectPost
from models import points, show
from models.members import Member, Role
from scheduled import show as weekly
from tests.conftest import NOW, PG_URL, Bot, make_config, make_member, start_bot
from tests.harness import ChatClient, Shown, settle

_ids = itertools.count(500000)


def fake_media_api(bot: Bot) -> None:
    """Teach the fake Bot API sendVideo and sendMediaGroup (a video shows like a photo: it has a caption)."""
    api = bot.api
    api.KNOWN = api.KNOWN | {"sendVideo", "sendMediaGroup"}

    def send_video(params: dict[str, Any]) -> dict[str, Any]:
        markup = params.get("reply_markup") or {}
        shown = Shown(
            next(api._ids), int(params["chat_id"]), params.get("caption", ""), markup.get("inline_keyboard", [])
        )
        shown.photo = params["video"]
        api.chats.setdefault(shown.chat_id, []).append(shown)
        return api._message_json(shown)

    def send_media_group(params: dict[str, Any]) -> list[dict[str, Any]]:
        media = params["media"]
        media = json.loads(media) if isinstance(media, str) else media
        sent = []
        for item in media:
            shown = Shown(next(api._ids), int(params["chat_id"]), "", photo=item["media"])
            api.chats.setdefault(shown.chat_id, []).append(shown)
            sent.append(api._message_json(shown))
        return sent

    api._sendVideo = send_video
    api._sendMediaGroup = send_media_group


async def send_media(user: ChatClient, kind: str, file_id: str, **extra: Any) -> list[Shown]:
    """Send a photo, video, document or sticker as Telegram delivers it."""
    data: dict[str, Any] = {"message_id": next(_ids), "date": int(time.time()), "chat": user.chat, "from": user.user}
    unique = f"u-{file_id}"
    if kind == "photo":
        data["photo"] = [{"file_id": file_id, "file_unique_id": unique, "width": 800, "height": 800}]
    elif kind == "video":
        data["video"] = {"file_id": file_id, "file_unique_id": unique, "width": 1, "height": 1, "duration": 10, **extra}
    elif kind == "document":
        data["document"] = {"file_id": file_id, "file_unique_id": unique, "file_name": "song.mp3"}
    if "media_group_id" in extra:
        data["media_group_id"] = extra["media_group_id"]
    return await user._process({"update_id": next(_ids), "message": data})


async def seasoned(bot: Bot, *telegram_ids: int, **kw: Any) -> list[Member]:
    """Members registered long enough ago that their likes earn (the new-member rule)."""
    made = []
    for telegram_id in telegram_ids:
        member = await make_member(bot.db, telegram_id, **kw)
        with bot.db.writing() as s:
            s.exec(
                update(Member)
                .where(col(Member.id) == member.id)
                .values(verified_at=NOW - timedelta(days=60), created_at=NOW - timedelta(days=60))
            )
        made.append(member)
    return made


async def write_post(user: ChatClient, title: str, text: str | None, category: str = "音乐") -> None:
    await user.send("/show")
    await user.click("发布作品")
    await user.click(category)
    await user.send(title)
    if text is None:
        await user.click("跳过")
    else:
        await user.send(text)


def balance(bot: Bot, member: Member) -> int:
    with bot.db.reading() as s:
        return points.balance_of(s, member.id)


def posts(bot: Bot) -> list[show.ShowPost]:
    with bot.db.reading() as s:
        return list(s.exec(select(show.ShowPost).order_by(col(show.ShowPost.id))))


async def test_post_a_photo_browse_like_and_the_author_earns(bot):
    fake_media_api(bot)
    author, _fan = await seasoned(bot, 8001, 8002)
    user, other = bot.user(8001), bot.user(8002)
    await write_post(user, "晚霞", "下班路上拍的")
    await send_media(user, "photo", "PHOTO-1")
    assert "已收到 1/4 张照片" in user.last.text
    await user.click("发布")
    assert "《晚霞》已发布" in user.last.text

    await other.send("/show")
    await other.click("最新")
    card = other.last
    assert card.photo == "PHOTO-1" and "晚霞" in card.text and "下班路上拍的" in card.text
    await other.click("🤍 0")
    assert other.last_answer() == "已点赞 ❤️"
    assert other.last.labels[0] == "❤️ 1" and other.last.photo == "PHOTO-1"
    assert balance(bot, author) == 1
    # A double click of the old ❤️ button likes once and pays once.
    await other.press(LikePost(posts(bot)[0].id, 1, "new", 0).pack())
    assert balance(bot, author) == 1
    # Taking it back keeps the points (no claw-back); liking again pays nothing more.
    await other.click("❤️ 1")
    assert other.last.labels[0] == "🤍 0" and balance(bot, author) == 1
    await other.click("🤍 0")
    assert balance(bot, author) == 1
    # Liking one's own post earns nothing.
    await user.send("/show")
    await user.click("最新")
    await user.click("🤍 1")
    assert balance(bot, author) == 1
    with bot.db.reading() as s:
        assert points.ledger_sum(s, author.id) == points.balance_of(s, author.id)


async def test_a_new_member_likes_but_the_author_earns_nothing(bot):
    (author,) = await seasoned(bot, 8001)
    await make_member(bot.db, 8003)  # registered just now
    user, newcomer = bot.user(8001), bot.user(8003)
    await write_post(user, "一首歌", "我自己写的歌")
    await user.click("发布")
    await newcomer.send("/show")
    await newcomer.click("最新")
    await newcomer.click("🤍 0")
    assert newcomer.last.labels[0] == "❤️ 1"
    assert balance(bot, author) == 0


async def test_the_earn_screen_states_the_anti_farming_rules_in_both_languages(bot):
    await make_member(bot.db, 8001)
    await make_member(bot.db, 8002, language="en")
    zh, en = bot.user(8001), bot.user(8002, "en")
    await zh.send("/points")
    await zh.click("如何赚分")
    assert "给自己的作品或笔记点赞，不得积分" in zh.last.text
    assert "7 天内每个方向只有前 3 个赞得积分" in zh.last.text
    assert "注册未满 7 天" in zh.last.text and "取消点赞不扣回积分" in zh.last.text
    assert "读书节达成目标" in zh.last.text
    await en.send("/points")
    await en.click("How to earn")
    assert "Liking your own post or note earns nothing" in en.last.text
    assert "only the first 3 likes each way in 7 days earn" in en.last.text


async def test_album_of_four_video_and_unsupported_files(bot):
    fake_media_api(bot)
    await seasoned(bot, 8001, 8002)
    user, other = bot.user(8001), bot.user(8002)
    await write_post(user, "四季", None, "摄影")
    for i in range(4):
        await send_media(user, "photo", f"P{i}", media_group_id="album1")
    assert "已收到 4/4 张照片" in user.last.text
    await send_media(user, "photo", "P5", media_group_id="album1")
    assert "最多 4 张照片" in user.last.text
    await send_media(user, "document", "DOC")
    assert "这种文件不支持" in user.last.text
    await user.send("还有一句话")
    assert "现在请发照片或视频" in user.last.text
    await user.click("发布")

    await write_post(user, "晨跑", None, "运动")
    await send_media(user, "video", "LONG", duration=999)
    assert "视频最长 120 秒" in user.last.text
    await send_media(user, "video", "VIDEO-1", duration=30)
    assert "视频已收到" in user.last.text
    await send_media(user, "photo", "P9")
    assert "一个作品可以是一段视频" in user.last.text
    await user.click("发布")

    await write_post(user, "空的", None, "其他")
    await user.click("发布")
    assert "作品还没有内容" in user.last_answer()

    await other.send("/show")
    await other.click("最新")
    assert other.last.photo == "VIDEO-1" and "晨跑" in other.last.text
    await other.click("▶")
    album = other.last
    assert album.photo == "P0" and "📷 4 张" in album.text
    await other.click("看全部 4 张")
    assert [m.photo for m in other.messages[-4:]] == ["P0", "P1", "P2", "P3"]
    # A file outside any post is not a post: a hint, not a crash.
    await send_media(other, "document", "DOC2")
    assert other.last.text and "这种文件不支持" not in other.last.text


async def test_reports_hide_a_post_and_forged_buttons_change_nothing(bot):
    _author, *reporters = await seasoned(bot, 8001, 8002, 8003, 8004)
    await make_member(bot.db, 8009, role=Role.VOLUNTEER)
    user = bot.user(8001)
    await write_post(user, "剪纸", "我的剪纸作品")
    await user.click("发布")
    post_id = posts(bot)[0].id
    clients = [bot.user(r.telegram_id) for r in reporters]
    for client in clients[:3]:
        await client.send("/show")
        await client.click("最新")
        await client.click("举报")
    assert clients[2].last_answer() == "已举报，作品已暂时隐藏，等待志愿者处理"
    assert posts(bot)[0].status == show.PostStatus.HIDDEN
    assert "被多位会员举报，暂时隐藏" in user.last.text
    assert "作品《剪纸》被举报后已隐藏，等你处理" in bot.user(8009).last.text

    # Hidden: nobody but the author and the volunteers sees it, a forged like changes nothing.
    viewer = clients[0]
    await viewer.send("/show")
    await viewer.click("最新")
    assert "还没有作品" in viewer.last.text
    await viewer.press(LikePost(post_id, 1).pack())
    assert viewer.last_answer() == "这个作品不存在，或已被删除、隐藏。"
    # Approving as a member, or deleting someone else's post: refused, nothing changes.
    refused = "抱歉，您没有进行此操作的权限。"
    await viewer.press(ApprovePost(post_id).pack())
    assert viewer.last_answer() == refused
    await viewer.press(RejectPost(post_id).pack())
    assert viewer.last_answer() == "这个作品不存在，或已被删除、隐藏。"
    await viewer.press(DeletePost(post_id).pack())
    assert viewer.last_answer() == refused
    assert posts(bot)[0].status == show.PostStatus.HIDDEN and posts(bot)[0].likes == 0

    volunteer = bot.user(8009)
    await volunteer.send("/show")
    await volunteer.click("审核队列 (1)")
    await volunteer.click("剪纸")
    await volunteer.click("通过")
    assert posts(bot)[0].status == show.PostStatus.PUBLISHED
    assert "已通过审核" in user.last.text

    # The author deletes their post.
    await user.send("/show")
    await user.click("我的作品")
    await user.click("剪纸")
    await user.click("删除作品")
    await user.click("确认删除")
    assert "已删除" in user.last.text and posts(bot)[0].status == show.PostStatus.DELETED


@pytest.fixture
async def premoderated(config):
    settings = replace(config.community, show_premoderation=True)
    async for b in start_bot(replace(config, community=settings)):
        yield b


async def test_premoderation_reject_with_a_reason_the_author_reads(premoderated):
    bot = premoderated
    await seasoned(bot, 8001, 8002)
    await make_member(bot.db, 8009, role=Role.VOLUNTEER, language="en")
    user, other, volunteer = bot.user(8001), bot.user(8002), bot.user(8009, "en")
    await write_post(user, "吉他", "弹唱一首")
    await user.click("发布")
    assert "志愿者审核通过后" in user.last.text
    assert "A new post, “吉他”, waits for your review." in volunteer.last.text
    await other.send("/show")
    await other.click("最新")
    assert "还没有作品" in other.last.text
    await volunteer.send("/show")
    await volunteer.click("Review queue (1)")
    await volunteer.click("吉他")
    assert "waiting for review" in volunteer.last.text
    await volunteer.click("Reject")
    await volunteer.send("   ")
    assert "type the reason" in volunteer.last.text
    await volunteer.send("Please post it in the music club")
    assert "rejected" in volunteer.last.text
    assert "未通过审核" in user.last.text and "Please post it in the music club" in user.last.text
    await other.send("/show")
    await other.click("最新")
    assert "还没有作品" in other.last.text
    await user.send("/show")
    await user.click("我的作品")
    assert "未通过" in user.last.text


async def test_inline_sharing_gives_a_card_with_a_way_back_into_the_bot(bot):
    await seasoned(bot, 8001)
    user = bot.user(8001)
    await write_post(user, "书法", "临帖一幅")
    await user.click("发布")
    post_id = posts(bot)[0].id
    results = await user.inline("show 书法")
    assert len(results) == 1
    result = results[0]
    assert result["type"] == "article" and result["title"] == "书法"
    url = result["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert url.endswith(f"?start=sp_{post_id}")
    assert await user.inline("show 没有这个") == []
    # The deep link opens the card in the private chat.
    await user.send(f"/start sp_{post_id}")
    assert "临帖一幅" in user.last.text


async def test_weekly_top_posts_reach_members_who_opted_in(bot):
    await seasoned(bot, 8001, 8002, 8003)
    user, fan, reader = bot.user(8001), bot.user(8002), bot.user(8003)
    await write_post(user, "舞蹈", "街舞一段")
    await user.click("发布")
    await fan.send("/show")
    await fan.click("最新")
    await fan.click("🤍 0")
    await reader.send("/show")
    await reader.click("订阅每周精选")
    assert reader.last_answer() == "已订阅每周精选"
    services = bot.app.bot_data["services"]
    assert await weekly.send_top_posts(services) == "sent:1"
    # Run twice in the same week: nobody gets it twice.
    assert await weekly.send_top_posts(services) == "sent:0"
    await settle(bot.app)
    assert "本周精选" in reader.last.text and "舞蹈" in reader.last.text
    assert not any("本周精选" in m.text for m in fan.messages)
    await reader.click("舞蹈")
    assert "街舞一段" in reader.last.text


@pytest.fixture(params=["sqlite", "postgresql"])
async def either_bot(request, config, tmp_path):
    """The bot on SQLite, then on PostgreSQL."""
    chosen = config if request.param == "sqlite" else make_config(PG_URL, tmp_path)
    async for b in start_bot(chosen):
        yield b


async def test_likes_pressed_at_once_count_once_and_pay_once(either_bot):
    """Every fan double-clicks ❤️ at the same moment (SQLite and PostgreSQL): one like each, points once each."""
    bot = either_bot
    (author,) = await seasoned(bot, 8001)
    fans = await seasoned(bot, *range(8100, 8106))
    user = bot.user(8001)
    await write_post(user, "合唱", "工会合唱团")
    await user.click("发布")
    post_id = posts(bot)[0].id
    clients = [bot.user(f.telegram_id) for f in fans]
    for client in clients:
        await client.send("/show")
        await client.click("最新")
    data = LikePost(post_id, 1, "new", 0).pack()
    await asyncio.gather(*(client.press(data) for client in clients * 2))
    assert posts(bot)[0].likes == len(fans)
    assert balance(bot, author) == len(fans)
    with bot.db.reading() as s:
        for member in [author, *fans]:
            assert points.ledger_sum(s, member.id) == points.balance_of(s, member.id)


async def test_an_english_member_posts_text_and_sees_it_in_english(bot):
    await seasoned(bot, 8001, language="en")
    user = bot.user(8001, "en")
    await user.send("/show")
    assert "Every like a post receives earns its author points" in user.last.text
    await user.click("New post")
    await user.click("Craft")
    await user.send("x" * 41)
    assert "at most 40 characters" in user.last.text
    await user.send("Paper cranes")
    await user.send("A thousand of them, folded in the lunch breaks")
    assert "press Publish to post the text alone" in user.last.text
    await user.click("Publish")
    assert "“Paper cranes” is published!" in user.last.text
    await user.click("Paper cranes")
    assert "🧶 Craft" in user.last.text and "A thousand of them" in user.last.text
    assert user.last.labels[:2] == ["🤍 0", "🗑 Delete post"]
