"""Ideas (创客空间) through the bot: submitting, browsing, upvoting, comments, cadres' steps, forged buttons."""

from __future__ import annotations

from sqlmodel import col, select

from buttons.ideas import (
    AddComment,
    BrowseIdea,
    DeleteComment,
    HideComment,
    IdeaListPage,
    MoveIdea,
    ShowIdea,
    TakeBack,
    Upvote,
    WithdrawIdea,
)
from models import points
from models.ideas import Idea, IdeaComment, IdeaStatus, IdeaUpvote
from models.members import Role
from models.outbox import OutboxMessage
from tests.conftest import make_member
from tests.harness import ChatClient


async def submit(user: ChatClient, title: str, description: str, unit_label: str, photo: str | None = None) -> None:
    """A member shares an idea through the form (skipping the photo unless one is given)."""
    await user.send("/ideas")
    await user.click("✍️")
    await user.send(title)
    await user.send(description)
    if photo:
        await user.send_photo(photo)
    else:
        await user.click("跳过" if user.user.get("language_code") == "zh" else "Skip")
    await user.click(unit_label)


def idea_rows(bot) -> list[Idea]:
    with bot.db.reading() as s:
        return list(s.exec(select(Idea).order_by(col(Idea.id))))


def notices_to(bot, chat_id: int) -> list[str]:
    """Texts the outbox delivered to one chat (step notices)."""
    with bot.db.reading() as s:
        rows = s.exec(select(OutboxMessage.text).where(col(OutboxMessage.chat_id) == chat_id))
        return [t for t in rows if t and "💡" in t]


async def test_a_member_shares_an_idea_others_upvote_and_comment_cadres_carry_it_through(bot):
    author_row = await make_member(bot.db, 7001, "i801", name="张小创")
    await make_member(bot.db, 7002, "i801", name="李点赞")
    await make_member(bot.db, 7003, "i801", name="王干事", role=Role.CADRE)
    author, fan, cadre = bot.user(7001), bot.user(7002), bot.user(7003)

    await submit(author, "食堂增加夜宵窗口", "加班的同事晚上没地方吃饭，建议 20:00-22:00 开一个窗口。", "八〇一所工会")
    assert "已提交" in author.messages[-2].text and author.messages[-2].labels == []
    card = author.last
    assert "食堂增加夜宵窗口" in card.text and "待处理" in card.text and "张小创" in card.text
    assert not any("点赞" in label for label in card.labels if "取消" not in label)  # no upvote on one's own idea
    [idea] = idea_rows(bot)
    assert (idea.unit_code, idea.status, idea.upvotes) == ("i801", "new", 0)

    # Another member of the unit finds it, upvotes once: a second press (an old button) changes nothing.
    await fan.send("/ideas")
    await fan.click("最新")
    assert "食堂增加夜宵窗口" in fan.last.text
    await fan.click("食堂增加夜宵窗口")
    fan_card = fan.last
    await fan.click("👍 点赞（0）")
    assert fan.last_answer() == "点赞成功 👍"
    assert "↩️ 取消点赞（1）" in fan_card.labels and "您已点赞" in fan_card.text
    await fan.press(Upvote(idea.id).pack(), fan_card)
    assert fan.last_answer() == "您已经点过赞了"
    assert idea_rows(bot)[0].upvotes == 1
    # Take it back and give it again.
    await fan.click("取消点赞")
    assert fan.last_answer() == "已取消点赞" and idea_rows(bot)[0].upvotes == 0
    await fan.click("👍 点赞（0）")
    assert idea_rows(bot)[0].upvotes == 1

    # A comment, shown with the commenter's name.
    await fan.click("💬 评论")
    assert "还没有评论" in fan.last.text
    await fan.click("写评论")
    await fan.send("   ")
    assert "评论不能为空" in fan.last.text
    await fan.send("好主意" * 101)
    assert "最多 300 字" in fan.last.text
    await fan.send("支持！我们组经常加班到九点。")
    assert "评论已发表" in fan.messages[-2].text
    assert "李点赞" in fan.last.text and "支持！我们组经常加班到九点。" in fan.last.text

    # The unit's cadre takes it from /admin: review, adopt, done. The author and the upvoter hear each step once.
    await cadre.send("/admin")
    await cadre.click("创客空间待办")
    assert "食堂增加夜宵窗口" in cadre.last.text
    await cadre.click("食堂增加夜宵窗口")
    assert "🔍 开始评估" in cadre.last.labels and "🙅 不采纳" in cadre.last.labels
    await cadre.click("开始评估")
    assert cadre.last_answer() == "已开始评估，已通知相关会员"
    await cadre.click("✅ 采纳")
    # A double click of the old button: the step is refused, nothing is paid twice.
    await cadre.press(MoveIdea(idea.id, "adopted").pack())
    assert "评估中" not in cadre.last_answer() and "已采纳" in cadre.last_answer()
    await cadre.click("🎉 已落地")
    assert idea_rows(bot)[0].status == IdeaStatus.DONE

    steps = notices_to(bot, 7001)
    assert len(steps) == 3
    assert "您提交的想法" in steps[0] and "评估中" in steps[0]
    assert "您获得 50 积分奖励" in steps[1]
    assert "已落地" in steps[2]
    fan_steps = notices_to(bot, 7002)
    assert len(fan_steps) == 3 and all("您点赞的想法" in t for t in fan_steps)
    assert "积分" not in fan_steps[1]
    assert notices_to(bot, 7003) == []
    # The notice's button opens the idea.
    await author.click("查看想法")
    assert "🎉 已落地" in author.last.text and "这是您的想法" in author.last.text
    with bot.db.reading() as s:
        assert points.balance_of(s, author_row.id) == 50 == points.ledger_sum(s, author_row.id)

    # Lists: the author's own, the done list; the cadre's queue is empty now.
    await author.send("/ideas")
    await author.click("我的想法")
    assert "食堂增加夜宵窗口" in author.last.text and "已落地" in author.last.text
    await cadre.send("/ideas")
    assert "待您处理的想法：<b>0</b>" in cadre.last.text


async def test_in_english_with_a_photo_bureau_wide_bad_input_and_a_declined_idea(bot):
    await make_member(bot.db, 7101, "i801", name="Lily", language="en")
    await make_member(bot.db, 7102, "i805", name="Tom", language="en")
    await make_member(bot.db, 7103, "hq", name="Bureau Wang", language="en", role=Role.CADRE, role_unit=None)
    await make_member(bot.db, 7104, "i805", name="Unit Li", language="en", role=Role.CADRE)
    lily, tom = bot.user(7101, "en"), bot.user(7102, "en")
    bureau, unit_cadre = bot.user(7103, "en"), bot.user(7104, "en")

    await lily.send("/ideas")
    assert "Idea Space" in lily.last.text
    await lily.click("Share an idea")
    assert "Step 1 of 4" in lily.last.text
    await lily.send("   ")
    assert "The title cannot be empty" in lily.last.text
    await lily.send("x" * 61)
    assert "at most 60 characters" in lily.last.text
    await lily.send("Bike racks at the east gate")
    await lily.send("Many of us cycle; the east gate has nowhere to lock a bike.")
    await lily.send("a photo, in words")
    assert "Send a photo here, or press Skip." in lily.last.text
    # A video is not a photo: said plainly, and the question stays.
    await lily._process(
        {
            "update_id": 990001,
            "message": {
                "message_id": 5,
                "date": 0,
                "chat": lily.chat,
                "from": lily.user,
                "video": {"file_id": "v1", "file_unique_id": "v", "width": 1, "height": 1, "duration": 3},
            },
        }
    )
    assert "Only a photo can go with an idea" in lily.last.text
    await lily.send_photo("rack-photo")
    await lily.click("Whole bureau")
    card = lily.last
    assert card.photo == "rack-photo" and "Bike racks at the east gate" in card.text and "bureau-wide" in card.text
    [idea] = idea_rows(bot)
    assert idea.unit_code is None and idea.photo_file_id == "rack-photo"

    # A member of another unit sees a bureau-wide idea and upvotes it.
    await tom.send("/ideas")
    await tom.click("Most upvoted")
    assert "Bike racks" in tom.last.text and "Lily" in tom.last.text
    await tom.click("One at a time")
    assert "(1 of 1)" in tom.last.text
    photo_card = tom.last
    assert photo_card.photo == "rack-photo"
    await tom.click("Upvote (0)")
    assert tom.last_answer() == "Upvoted 👍"
    # The photo's caption is edited in place; the comments (text) come as a new message below it.
    assert tom.last is photo_card and "👍 1 · 💬 0 · you upvoted it" in photo_card.text
    await tom.click("Comments (0)")
    assert tom.last is not photo_card and "No comments yet" in tom.last.text

    # A unit cadre does not decide on bureau-wide ideas: no buttons, and a forged press changes nothing.
    await unit_cadre.send("/ideas")
    await unit_cadre.press(ShowIdea(idea.id).pack())
    assert not any("Decline" in label for label in unit_cadre.last.labels)
    await unit_cadre.press(MoveIdea(idea.id, "reviewing").pack())
    assert unit_cadre.last_answer() == "Sorry, you are not allowed to do that."
    assert idea_rows(bot)[0].status == IdeaStatus.NEW

    # The bureau cadre declines it, with a reason (checked like any typed text).
    await bureau.send("/admin")
    await bureau.click("Ideas to decide on")
    await bureau.click("Bike racks at the east gate")
    await bureau.click("Decline")
    assert "Why is" in bureau.last.text
    await bureau.send("r" * 201)
    assert "at most 200 characters" in bureau.last.text
    await bureau.send("The east gate is being rebuilt next year; racks come with it.")
    assert "is now: 🙅 declined" in bureau.messages[-2].text and "(2)" in bureau.messages[-2].text
    stored = idea_rows(bot)[0]
    assert stored.status == "declined" and stored.decline_reason.startswith("The east gate")
    [told] = notices_to(bot, 7101)
    assert "Your idea" in told and "Why: The east gate is being rebuilt" in told
    [told_tom] = notices_to(bot, 7102)
    assert "An idea you upvoted" in told_tom
    # A declined idea takes no more upvotes and leaves the latest list; it is in the declined list with its reason.
    await tom.press(TakeBack(idea.id).pack())
    await tom.press(Upvote(idea.id).pack())
    assert tom.last_answer() == "This idea is closed: upvotes are no longer taken."
    await tom.send("/ideas")
    await tom.click("Latest")
    assert "No ideas here yet." in tom.last.text
    await tom.click("Back")
    await tom.click("Declined")
    await tom.click("Bike racks at the east gate")
    assert "Why it was declined: The east gate" in tom.last.text


async def test_forged_and_stale_buttons_change_nothing(bot):
    await make_member(bot.db, 7201, "i801", name="作者")
    await make_member(bot.db, 7202, "i801", name="同事")
    await make_member(bot.db, 7203, "i802", name="外单位")
    await make_member(bot.db, 7204, "i801", name="干事", role=Role.CADRE)
    author, colleague, outsider, cadre = (bot.user(i) for i in (7201, 7202, 7203, 7204))
    for who in (colleague, outsider, cadre):
        await who.send("/ideas")
    await submit(author, "工位加装绿植", "每个工位一盆绿植，改善环境。", "八〇一所工会")
    [idea] = idea_rows(bot)

    # A member cannot move an idea (their own or another's), nor hide comments: refused, nothing changes.
    for who in (author, colleague):
        for to in ("reviewing", "adopted", "declined", "done"):
            await who.press(MoveIdea(idea.id, to).pack())
            assert who.last_answer() == "抱歉，您没有进行此操作的权限。", to
    assert idea_rows(bot)[0].status == IdeaStatus.NEW
    # A member of another unit does not see a unit's idea, in lists or by a forged button.
    await outsider.send("/ideas")
    await outsider.click("最新")
    assert "工位加装绿植" not in outsider.last.text
    for data in (ShowIdea(idea.id).pack(), Upvote(idea.id).pack(), AddComment(idea.id).pack()):
        await outsider.press(data)
        assert outsider.last_answer() == "没有找到这个想法，或它不对您开放。", data
    with bot.db.reading() as s:
        assert s.exec(select(IdeaUpvote)).all() == []
    # A stale step (adopting a new idea, finishing it before adoption) is refused with the status it has.
    await cadre.press(MoveIdea(idea.id, "adopted").pack())
    assert "待处理" in cadre.last_answer()
    await cadre.press(MoveIdea(idea.id, "done").pack())
    assert idea_rows(bot)[0].status == IdeaStatus.NEW
    # Upvoting one's own idea; nonsense lists and statuses; another member's comment.
    await author.press(Upvote(idea.id).pack())
    assert "您自己的想法" in author.last_answer()
    for data in ("id:list:bogus", "id:move:1:sideways", "id:browse:top:x", IdeaListPage("queue").pack()):
        await colleague.press(data)
        assert colleague.last_answer(), data
    assert colleague.last_answer() == "抱歉，您没有进行此操作的权限。"
    await author.press(BrowseIdea("mine", 5).pack())
    assert author.last_answer() == "这已经是列表里的最后一个想法了。"
    await colleague.press(AddComment(idea.id).pack())
    await colleague.send("同意")
    with bot.db.reading() as s:
        [comment] = s.exec(select(IdeaComment)).all()
    await author.press(DeleteComment(comment.id).pack())
    assert author.last_answer() == "抱歉，您没有进行此操作的权限。"
    await author.press(HideComment(comment.id, 1).pack())
    assert author.last_answer() == "抱歉，您没有进行此操作的权限。"
    with bot.db.reading() as s:
        assert s.get(IdeaComment, comment.id).hidden is False
    # A cadre may not decide on their own idea.
    await submit(cadre, "干部的想法", "由其他干部处理。", "八〇一所工会")
    own = idea_rows(bot)[-1]
    assert not any("采纳" in label for label in cadre.last.labels)
    await cadre.press(MoveIdea(own.id, "reviewing").pack())
    assert cadre.last_answer() == "这是您自己提交的想法，需由其他干部处理。"
    assert idea_rows(bot)[-1].status == IdeaStatus.NEW


async def test_comments_are_deleted_by_their_author_and_hidden_by_cadres(bot):
    await make_member(bot.db, 7301, "i801", name="作者")
    await make_member(bot.db, 7302, "i801", name="捣乱者")
    await make_member(bot.db, 7303, "i801", name="干事", role=Role.CADRE)
    author, rude, cadre = bot.user(7301), bot.user(7302), bot.user(7303)
    for who in (rude, cadre):
        await who.send("/ideas")
    await submit(author, "读书角", "在三楼开一个读书角。", "八〇一所工会")
    [idea] = idea_rows(bot)
    for text in ("第一条", "不好听的话", "第三条"):
        await rude.press(AddComment(idea.id).pack())
        await rude.send(text)
    assert "🗑 删除我的第 3 条" in rude.last.labels
    await rude.click("🗑 删除我的第 3 条")
    assert rude.last_answer() == "评论已删除" and "第三条" not in rude.last.text
    # The cadre hides the rude one: members no longer see its text, the cadre sees it marked hidden.
    await cadre.press(ShowIdea(idea.id).pack())
    await cadre.click("💬 评论（2）")
    await cadre.click("🙈 隐藏第 2 条")
    assert cadre.last_answer() == "评论已隐藏" and "已隐藏" in cadre.last.text
    await author.press(ShowIdea(idea.id).pack())
    assert "💬 评论（1）" in author.last.labels
    await author.click("💬 评论（1）")
    assert "第一条" in author.last.text and "不好听的话" not in author.last.text
    await cadre.click("👁 恢复第 2 条")
    await author.press(ShowIdea(idea.id).pack())
    await author.click("💬 评论（2）")
    assert "不好听的话" in author.last.text


async def test_unsupported_media_outside_a_form_gets_the_usual_hint(bot):
    await make_member(bot.db, 7401, "i801")
    user = bot.user(7401)
    await user._process(
        {
            "update_id": 990101,
            "message": {
                "message_id": 6,
                "date": 0,
                "chat": user.chat,
                "from": user.user,
                "sticker": {
                    "file_id": "s1",
                    "file_unique_id": "s",
                    "width": 1,
                    "height": 1,
                    "is_animated": False,
                    "is_video": False,
                    "type": "regular",
                },
            },
        }
    )
    assert "我没太明白" in user.last.text


async def test_the_author_withdraws_a_new_idea_but_not_one_a_cadre_took_up(bot):
    await make_member(bot.db, 7501, "i801", name="作者")
    await make_member(bot.db, 7502, "i801", name="同事")
    await make_member(bot.db, 7503, "i801", name="干事", role=Role.CADRE)
    author, colleague, cadre = bot.user(7501), bot.user(7502), bot.user(7503)
    for who in (colleague, cadre):
        await who.send("/ideas")
    await submit(author, "周五便装日", "每周五可以穿便装上班。", "八〇一所工会")
    await submit(author, "午休音乐", "午休时放轻音乐。", "八〇一所工会")
    first, second = idea_rows(bot)
    await colleague.press(Upvote(first.id).pack())
    # Only the author may withdraw: another member's forged press changes nothing.
    await colleague.press(WithdrawIdea(first.id, 1).pack())
    assert colleague.last_answer() == "没有找到这个想法，或它不对您开放。"
    await author.press(ShowIdea(first.id).pack())
    await author.click("撤回这个想法")
    assert "确定要撤回「周五便装日」吗" in author.last.text
    await author.click("确认撤回")
    assert "已撤回「周五便装日」" in author.last.text
    assert [i.id for i in idea_rows(bot)] == [second.id]
    with bot.db.reading() as s:
        assert s.exec(select(IdeaUpvote)).all() == []
    # Once a cadre has started the review, the button is gone and a stale press is refused.
    await author.press(ShowIdea(second.id).pack())
    stale = author.last
    await cadre.press(MoveIdea(second.id, "reviewing").pack())
    await author.press(WithdrawIdea(second.id, 1).pack(), stale)
    assert author.last_answer() == "工会干部已经开始处理这个想法（🔍 评估中），不能再撤回了。"
    assert [i.status for i in idea_rows(bot)] == [IdeaStatus.REVIEWING]
    await author.press(ShowIdea(second.id).pack())
    assert not any("撤回" in label for label in author.last.labels)
    # After a step the cadre's card leads back to their queue.
    assert cadre.last.button("返回")["callback_data"] == IdeaListPage("queue").pack()


async def test_the_whole_path_on_postgresql(pg_bot):
    bot = pg_bot
    author_row = await make_member(bot.db, 7601, "i801", name="作者")
    await make_member(bot.db, 7602, "i801", name="同事")
    await make_member(bot.db, 7603, "i801", name="干事", role=Role.CADRE)
    author, colleague, cadre = bot.user(7601), bot.user(7602), bot.user(7603)
    await submit(author, "共享雨伞", "门口放一些共享雨伞。", "八〇一所工会")
    await colleague.send("/ideas")
    await colleague.click("最热")
    await colleague.click("逐条浏览")
    assert "（第 1/1 条）" in colleague.last.text
    await colleague.click("👍 点赞（0）")
    await colleague.click("💬 评论（0）")
    await colleague.click("写评论")
    await colleague.send("赞成")
    await cadre.send("/ideas")
    await cadre.click("待我处理（1）")
    await cadre.click("共享雨伞")
    await cadre.click("开始评估")
    await cadre.click("✅ 采纳")
    assert idea_rows(bot)[0].status == IdeaStatus.ADOPTED and idea_rows(bot)[0].upvotes == 1
    assert len(notices_to(bot, 7601)) == 2 and len(notices_to(bot, 7602)) == 2
    with bot.db.reading() as s:
        assert points.balance_of(s, author_row.id) == 50 == points.ledger_sum(s, author_row.id)
