"""Every kind of update goes through the one wrapper: inline queries, buttons on inline-mode messages, join requests,
member changes; edited messages never run a command again."""

from __future__ import annotations

from telegram import InlineQueryResultArticle, InputTextMessageContent, Update
from telegram.ext import ChatJoinRequestHandler, ChatMemberHandler, InlineQueryHandler

from buttons.points import PointsHome
from handlers.base import Ctx, Need, handler
from models import points
from models.members import Role
from tests.conftest import make_member

GROUP = -100777


async def test_an_inline_query_is_answered_after_its_unit_of_work(bot):
    await make_member(bot.db, 8901, "i801")
    seen: list[tuple[str, str]] = []

    @handler(needs=Need.VERIFIED, private=False)
    def share(ctx: Ctx) -> None:
        seen.append((ctx.update.inline_query.query, ctx.member.name))
        article = InlineQueryResultArticle("run-1", "Run", InputTextMessageContent(ctx.t("menu/hint", registered=True)))
        ctx.answer_inline([article])

    bot.app.add_handler(InlineQueryHandler(share), group=-1)
    results = await bot.user(8901).inline("周六 晨跑")
    assert [r["id"] for r in results] == ["run-1"]
    assert seen == [("周六 晨跑", "成员8901")]
    # Someone who is not a member gets no results (and no message: an inline query has no chat to answer in).
    stranger = bot.user(8902)
    assert await stranger.inline("晨跑") == []
    assert 8902 not in bot.api.chats


async def test_a_button_on_an_inline_message_edits_that_message(bot):
    """A button on a message a member shared through @bot (no chat): the real section's handler edits it in place."""
    await make_member(bot.db, 8911, "i801")
    user = bot.user(8911)
    await user.press_inline(PointsHome().pack(), "inline-abc")
    shown = bot.api.inline_messages["inline-abc"]
    assert "我的积分" in shown.text and shown.edits == 1
    assert 8911 not in bot.api.chats, "an edit in place, nothing sent to the private chat"
    # A stranger pressing it is told to register: in their private chat, since the message has no chat.
    await bot.user(8912).press_inline(PointsHome().pack(), "inline-abc")
    assert shown.edits == 1 and "入会登记" in bot.user(8912).last.text


async def test_a_join_request_is_answered_to_the_user_not_the_group(bot):
    await make_member(bot.db, 8921, "i801")

    @handler(needs=Need.ANYONE, private=False)
    def gate(ctx: Ctx) -> None:
        request = ctx.update.chat_join_request
        approve = ctx.actor.verified

        async def decide() -> None:
            if approve:
                await request.approve()
            else:
                await request.decline()

        ctx.after_commit.append(decide)
        ctx.reply("menu/hint", registered=approve)

    bot.app.add_handler(ChatJoinRequestHandler(gate), group=-1)
    member, stranger = bot.user(8921), bot.user(8922)
    await member.request_join(GROUP)
    await stranger.request_join(GROUP)
    assert bot.api.join_decisions == [("approve", GROUP, 8921), ("decline", GROUP, 8922)]
    assert GROUP not in bot.api.chats
    assert member.messages and stranger.messages


async def test_member_changes_reach_the_wrapper(bot):
    cadre = await make_member(bot.db, 8931, "i801", role=Role.CADRE)
    seen: list[tuple[int, bool, str]] = []

    @handler(needs=Need.ANYONE, private=False)
    def bot_added(ctx: Ctx) -> None:
        change = ctx.update.my_chat_member
        seen.append((change.chat.id, ctx.actor.is_cadre, change.new_chat_member.status))

    bot.app.add_handler(ChatMemberHandler(bot_added, ChatMemberHandler.MY_CHAT_MEMBER), group=-1)
    user = {"id": cadre.telegram_id, "is_bot": False, "first_name": "Cadre"}
    me = {"id": 999000, "is_bot": True, "first_name": "Gongshe", "username": "gongshe_test_bot"}
    update = {
        "update_id": 991,
        "my_chat_member": {
            "chat": {"id": GROUP, "type": "supergroup", "title": "Club group"},
            "from": user,
            "date": 0,
            "old_chat_member": {"status": "left", "user": me},
            "new_chat_member": {"status": "member", "user": me},
        },
    }
    await bot.app.process_update(Update.de_json(update, bot.app.bot))
    assert seen == [(GROUP, True, "member")]


async def test_an_edited_command_does_not_run_again(bot):
    await make_member(bot.db, 1000, "hq", role=Role.ADMIN, role_unit=None)
    member = await make_member(bot.db, 8941, "i801", employee_no="E8941")
    admin = bot.user(1000)
    await admin.send("/grant i801 E8941 20 读书节", message_id=777)
    said = len(admin.messages)
    assert await admin.edit(777, "/grant i801 E8941 30 读书节") == []
    with bot.db.reading() as s:
        assert points.balance_of(s, member.id) == 20
    assert len(admin.messages) == said
