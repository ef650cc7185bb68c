"""Errors: the global handler with a reference id, and every Telegram error handled on purpose."""

from __future__ import annotations

import dataclasses
import logging

from telegram.error import TimedOut

from models import members, points
from tests.conftest import make_member, start_bot
from tests.harness import TelegramFailure

OPS_CHAT = -100999


async def test_unexpected_error_gets_a_reference_id_in_chat_log_and_ops_chat(config, monkeypatch, caplog):
    async for bot in start_bot(dataclasses.replace(config, ops_chat_id=OPS_CHAT)):
        await make_member(bot.db, 8601, "i801")

        def broken(*_args, **_kwargs):
            raise RuntimeError("database on fire")

        monkeypatch.setattr(points, "history", broken)
        user = bot.user(8601)
        with caplog.at_level(logging.ERROR):
            await user.send("/points")
            await user.click("明细")
        assert "出了点问题" in user.last.text
        # The crashed press was still answered: the button's spinner stops.
        assert len(bot.api.calls_of("answerCallbackQuery")) == 1
        ref = user.last.text.split("<code>")[1].split("</code>")[0]
        assert len(ref) == 8
        assert any(ref in r.getMessage() for r in caplog.records)
        ops = bot.user(8601, chat_id=OPS_CHAT)
        assert ref in ops.last.text and "RuntimeError" in ops.last.text
        # The message text of the user never reaches the ops chat or the log line.
        assert "database on fire" not in ops.last.text


async def test_blocked_bot_marks_the_member_and_does_not_crash(bot):
    member = await make_member(bot.db, 8602, "i801")
    bot.api.fail("sendMessage", TelegramFailure(403, "Forbidden: bot was blocked by the user"), chat_id=8602)
    user = bot.user(8602)
    sent = await user.send("/points")
    assert sent == []
    with bot.db.reading() as s:
        assert (s.get(members.Member, member.id)).blocked_bot is True


async def test_message_not_modified_is_ignored(bot):
    await make_member(bot.db, 8603, "i801")
    user = bot.user(8603)
    await user.send("/points")
    bot.api.fail("editMessageText", TelegramFailure(400, "Bad Request: message is not modified"))
    before = len(user.messages)
    await user.click("明细")
    assert len(user.messages) == before
    assert bot.api.answers  # the button press was still answered


async def test_failed_edit_falls_back_to_a_new_message(bot):
    await make_member(bot.db, 8604, "i801")
    user = bot.user(8604)
    await user.send("/points")
    bot.api.fail("editMessageText", TelegramFailure(400, "Bad Request: message to edit not found"))
    await user.click("明细")
    assert "积分明细" in user.last.text and len(user.messages) == 2


async def test_flood_wait_is_waited_out_then_sent(bot):
    await make_member(bot.db, 8605, "i801")
    bot.api.fail("sendMessage", TelegramFailure(429, "Too Many Requests: retry after 1", retry_after=1), chat_id=8605)
    user = bot.user(8605)
    await user.send("/points")
    assert "我的积分" in user.last.text
    assert len(bot.api.calls_of("sendMessage")) == 2


async def test_timeout_is_retried_once(bot):
    await make_member(bot.db, 8606, "i801")
    bot.api.fail("sendMessage", TimedOut(), chat_id=8606)
    user = bot.user(8606)
    await user.send("/points")
    assert "我的积分" in user.last.text


async def test_timeout_twice_gives_up_quietly(bot):
    await make_member(bot.db, 8607, "i801")
    bot.api.fail("sendMessage", TimedOut(), chat_id=8607, times=2)
    user = bot.user(8607)
    assert await user.send("/points") == []


async def test_stray_text_unknown_commands_and_stale_buttons(bot):
    await make_member(bot.db, 8608, "i801")
    user = bot.user(8608)
    await user.send("你好")
    assert "发送 /menu 打开首页" in user.last.text
    await user.send("/nosuchcommand")
    assert "没有这个命令" in user.last.text
    await user.press("old:format:1")
    assert bot.api.answers[-1][1] == "这个按钮已过期，请发送 /menu 重新打开菜单。"
    await user.press("menu:open:nosuchsection")
    assert bot.api.answers[-1][1] == "这个按钮已过期，请发送 /menu 重新打开菜单。"
    await user.press("pts:hist:notanumber")
    assert "按钮已过期" in user.last_answer()


async def test_answering_an_expired_query_does_not_crash(bot):
    await make_member(bot.db, 8609, "i801")
    user = bot.user(8609)
    await user.send("/points")
    bot.api.fail(
        "answerCallbackQuery", TelegramFailure(400, "Bad Request: query is too old and response timeout expired")
    )
    await user.click("明细")
    assert "积分明细" in user.last.text


async def test_a_button_answer_lost_to_a_network_hiccup_is_sent_again(bot):
    await make_member(bot.db, 8611, "i801")
    user = bot.user(8611)
    await user.send("/points")
    bot.api.fail("answerCallbackQuery", TimedOut(), times=1)
    await user.click("如何赚分")
    answers = bot.api.calls_of("answerCallbackQuery")
    assert len(answers) == 2 and len(bot.api.answers) == 1
