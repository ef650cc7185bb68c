"""Surveys through the bot: answering one question per message, pause and resume across a restart, submit once,
forged and stale presses, results with charts and CSV for cadres, invitations and reminders."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select

from bot import build_application, on_startup
from buttons.surveys import Choose, OpenSurvey, SubmitSurvey, SurveyCsv, SurveyResults
from models import points, surveys
from models.audience import Audience
from models.clock import FrozenClock
from models.db import Database
from models.members import Actor, Role
from models.outbox import OutboxMessage
from models.surveys import Kind, Question, SurveyDraft
from scheduled.surveys import run_surveys
from tests.conftest import ADMIN_ID, NOW, make_member
from tests.harness import ChatClient, FakeBotAPI, settle

BUREAU = Actor(ADMIN_ID, None, True, frozenset({None}), frozenset())
QUESTIONS = (
    Question("您最希望工会组织哪类活动？", Kind.SINGLE, ("体育运动", "读书会", "亲子活动")),
    Question("您方便的时间？", Kind.MULTI, ("工作日晚上", "周六", "周日"), max_choices=2),
    Question("您对食堂满意吗？", Kind.RATING),
    Question("其他建议", Kind.TEXT, required=False, max_length=50),
)


def store(db, *, anonymous: bool = True, units=("i801",), opens=NOW - timedelta(minutes=1), **extra) -> int:
    """A published survey (made as a bureau admin), open now unless told otherwise."""
    draft = SurveyDraft(
        title=extra.pop("title", "职工需求调查"),
        opens_at=opens,
        closes_at=extra.pop("closes", NOW + timedelta(days=3)),
        questions=extra.pop("questions", QUESTIONS),
        intro="约 1 分钟",
        audience=Audience(units=tuple(units)),
        anonymous=anonymous,
        points=extra.pop("points", 5),
        **extra,
    )
    with db.writing() as s:
        return surveys.store_survey(s, BUREAU, draft, ("i801", "i802", "hq"), NOW - timedelta(hours=1)).id


async def answer_all(user: ChatClient, text: str | None = "多组织些活动") -> None:
    """Open /surveys, start the survey and answer every question (the text one typed, or skipped)."""
    await user.send("/surveys")
    await user.click("职工需求调查")
    await user.click("开始填写")
    await user.click("读书会")
    await user.click("周六")
    await user.click("完成本题")
    await user.click("4")
    if text is None:
        await user.click("跳过")
    else:
        await user.send(text)


async def test_a_member_answers_every_kind_changes_an_answer_and_submits_once(bot):
    survey_id = store(bot.db)
    member = await make_member(bot.db, 9101)
    user = bot.user(9101)
    await user.send("/surveys")
    assert "职工需求调查" in user.last.text and "4 题" in user.last.text
    await user.click("职工需求调查")
    assert "匿名调查" in user.last.text
    await user.click("开始填写")
    assert "第 1/4 题" in user.last.text and "请选择一项" in user.last.text
    await user.click("读书会")
    assert "第 2/4 题" in user.last.text
    await user.click("工作日晚上")
    await user.click("周六")
    assert "✅ 工作日晚上" in user.last.labels and "✅ 周六" in user.last.labels
    # A third tick is one too many; untick, then tick another.
    await user.click("周日")
    assert "最多选 2 项" in user.last_answer()
    await user.click("✅ 工作日晚上")
    await user.click("周日")
    await user.click("完成本题")
    assert "第 3/4 题" in user.last.text and user.last.labels[:5] == ["1", "2", "3", "4", "5"]
    # Back: question 2 again, with its answer kept.
    await user.click("返回")
    assert "第 2/4 题" in user.last.text and "当前答案：周六、周日" in user.last.text
    await user.click("完成本题")
    await user.click("5")
    assert "第 4/4 题（选答）" in user.last.text
    too_long = "长" * 51
    await user.send(too_long)
    assert "最多 50 字" in user.last.text
    await user.send("希望多组织亲子活动")
    summary = user.last.text
    assert (
        "提交前请核对" in summary
        and "读书会" in summary
        and "周六、周日" in summary
        and "希望多组织亲子活动" in summary
    )
    await user.click("📨 提交")
    assert "已提交" in user.last.text and "获得 5 积分" in user.last.text
    # The summary message's Submit pressed again: refused, nothing stored twice, points paid once.
    await user.press(SubmitSurvey(survey_id).pack())
    assert "已经提交过" in user.last_answer()
    with bot.db.reading() as s:
        assert points.balance_of(s, member.id) == 5
        assert s.exec(select(func.count()).select_from(surveys.SurveyParticipation)).one() == 1
        # Anonymous: sealed until a batch of 5 can be mixed.
        assert s.exec(select(func.count()).select_from(surveys.SurveyResponse)).one() == 0
    await user.send("/surveys")
    assert "✅ 已提交" in user.last.text


async def test_pause_and_resume_after_a_restart_at_the_right_question(bot, tmp_path):
    store(bot.db)
    await make_member(bot.db, 9102)
    user = bot.user(9102)
    await user.send("/surveys")
    await user.click("职工需求调查")
    await user.click("开始填写")
    await user.click("体育运动")
    await user.click("周日")
    await user.click("完成本题")
    await user.click("暂停")
    assert "已暂停" in user.last.text
    # A new process on the same database: nothing in memory, the progress comes from the database.
    api = FakeBotAPI()
    app = build_application(
        bot.config, request=api, db=Database(bot.config.database_url), scheduler=False, clock=FrozenClock(NOW)
    )
    await app.initialize()
    await on_startup(app)
    again = ChatClient(app, api, 9102, "User9102", "zh")
    try:
        await again.send("/surveys")
        assert "已暂停" in again.last.text
        await again.click("职工需求调查")
        await again.click("继续填写")
        assert "第 3/4 题" in again.last.text
        await again.click("3")
        await again.click("跳过")
        assert "（跳过）" in again.last.text and "体育运动" in again.last.text and "周日" in again.last.text
        await again.click("📨 提交")
        assert "已提交" in again.last.text
    finally:
        await settle(app)
        await app.shutdown()


async def test_forged_and_stale_presses_change_nothing(bot):
    first = store(bot.db)
    other = store(bot.db, title="另一份调查")
    outside = store(bot.db, title="八〇二所的调查", units=("i802",))
    await make_member(bot.db, 9103)
    user = bot.user(9103)
    await answer_all(user)
    summary = user.last
    # An answer id of another survey, a question that is not being asked, an option that does not exist.
    await user.press(Choose(other, 0, 1).pack(), summary)
    assert "还没有开始" in user.last_answer()
    await user.press(Choose(first, 0, 2).pack(), summary)
    assert "属于别的题目" in user.last_answer()
    await user.press(OpenSurvey(outside).pack(), summary)
    assert "不面向您" in user.last_answer()
    await user.press(SurveyResults(first).pack(), summary)
    assert "没有进行此操作的权限" in user.last_answer()
    await user.press("sv:pick:1:x:2", summary)
    assert "按钮已过期" in user.last_answer()
    with bot.db.reading() as s:
        progress = s.get(surveys.SurveyProgress, (first, s.exec(select(surveys.SurveyProgress.member_id)).one()))
        assert progress.answers == {"0": 1, "1": [1], "2": 4, "3": "多组织些活动"} and progress.position == 4


async def test_a_unit_cadre_cannot_read_results_outside_their_scope(bot):
    mine = store(bot.db, units=("i801",))
    theirs = store(bot.db, title="八〇二所的调查", units=("i802",))
    await make_member(bot.db, 9201, "i801", role=Role.CADRE)
    cadre = bot.user(9201)
    await cadre.send("/admin")
    await cadre.click("在线调查")
    assert "职工需求调查" in cadre.last.text and "八〇二所的调查" not in cadre.last.text
    await cadre.press(SurveyResults(theirs).pack())
    assert "没有进行此操作的权限" in cadre.last_answer()
    await cadre.press(SurveyCsv(theirs).pack())
    assert "没有进行此操作的权限" in cadre.last_answer()
    await cadre.press(SurveyResults(mine).pack())
    assert "结果 1/" in cadre.last.text


async def test_results_charts_and_csv_in_both_languages(bot):
    survey_id = store(bot.db, anonymous=False, units=())
    for n in range(6):
        await make_member(bot.db, 9300 + n, "i801", employee_no=f"C{n}")
        await answer_all(bot.user(9300 + n), text=None if n % 2 else f"建议{n}")
        await bot.user(9300 + n).click("📨 提交")
    await make_member(bot.db, ADMIN_ID, "hq", language="en")
    admin = bot.user(ADMIN_ID, "en")
    await admin.send("/admin")
    await admin.click("Surveys")
    assert "6 answered" in admin.last.text
    await admin.click("职工需求调查")
    assert "results 1/3" in admin.last.text and "6 answered" in admin.last.text
    await admin.click("Next")
    assert "Reading club: 6 (100.0%)" in admin.last.text.replace("读书会", "Reading club")
    await admin.click("Charts")
    photos = [m for m in admin.messages if m.photo is not None]
    assert len(photos) == 3 and all(isinstance(p.photo, bytes) and p.photo[:8] == b"\x89PNG\r\n\x1a\n" for p in photos)
    await admin.click("Export CSV")
    document = admin.last.document
    assert document is not None and document[0] == f"survey-{survey_id}.csv"
    rows = list(csv.reader(io.StringIO(document[1].decode("utf-8-sig"))))
    assert rows[0][:3] == ["Response", "Name", "Employee no."]
    assert sorted(r[2] for r in rows[1:7]) == [f"C{n}" for n in range(6)]


async def test_the_invitation_and_the_reminder_go_through_the_outbox_once(bot):
    survey_id = store(bot.db, opens=NOW + timedelta(minutes=5), closes=NOW + timedelta(days=2))
    for n in range(3):
        await make_member(bot.db, 9400 + n, "i801", language="en" if n == 2 else "zh")
    await make_member(bot.db, 9410, "i802")
    services = bot.app.bot_data["services"]
    await run_surveys(services, NOW)
    with bot.db.reading() as s:
        assert s.exec(select(func.count()).select_from(OutboxMessage)).one() == 0
    bot.clock.advance(minutes=6)
    await run_surveys(services)
    await run_surveys(services, NOW + timedelta(minutes=7))
    with bot.db.reading() as s:
        rows = list(s.exec(select(OutboxMessage).where(col(OutboxMessage.kind) == "survey_invite")))
    assert sorted(r.chat_id for r in rows) == [9400, 9401, 9402]
    assert any("New survey" in r.text for r in rows) and any("新调查" in r.text for r in rows)
    await settle(bot.app)
    user = bot.user(9400)
    assert "新调查" in user.last.text
    await user.click("开始填写")
    await user.click("开始填写")
    assert "第 1/4 题" in user.last.text
    # The reminder a day before closing goes to the whole audience of an anonymous survey (nobody is singled out).
    await run_surveys(services, NOW + timedelta(days=1, minutes=1))
    await run_surveys(services, NOW + timedelta(days=1, minutes=2))
    with bot.db.reading() as s:
        reminded = list(s.exec(select(OutboxMessage).where(col(OutboxMessage.kind) == "survey_remind")))
    assert sorted(r.chat_id for r in reminded) == [9400, 9401, 9402]
    chinese = [r for r in reminded if r.chat_id != 9402]
    assert all(f"sv:open:{survey_id}" in str(r.reply_markup) and "如果您已经提交" in r.text for r in chinese)


async def test_a_cadre_builds_previews_and_publishes_a_survey_in_chat(bot):
    await make_member(bot.db, 9501, "i801", role=Role.CADRE)
    cadre = bot.user(9501)
    await cadre.send("/admin")
    await cadre.click("在线调查")
    await cadre.click("新建调查")
    assert "调查标题" in cadre.last.text
    await cadre.send("食堂满意度调查")
    await cadre.click("跳过")
    await cadre.click("我负责范围内的全体会员")
    await cadre.click("否")
    await cadre.click("是")
    await cadre.send("2026-11-27 09:00")
    assert "已经过去" in cadre.last.text
    await cadre.send("2026-11-29 09:00")
    await cadre.send("2026-12-05 18:00")
    await cadre.send("16")
    assert "0 到 15" in cadre.last.text  # the survey_answer rule's daily cap
    await cadre.send("5")
    assert "请输入题目" in cadre.last.text
    await cadre.send("您最常去哪个食堂？")
    await cadre.click("单选")
    await cadre.send("只有一个")
    assert "2 到 10" in cadre.last.text
    await cadre.send("一食堂\n二食堂\n三食堂")
    await cadre.click("是")
    assert "调查草稿：食堂满意度调查" in cadre.last.text and "3 个选项" in cadre.last.text
    await cadre.click("添加题目")
    await cadre.send("还有什么建议？")
    await cadre.click("文字回答")
    await cadre.click("跳过")
    await cadre.click("否")
    assert "2. 还有什么建议？（文字，限 300 字，选答）" in cadre.last.text
    with bot.db.reading() as s:
        (survey,) = s.exec(select(surveys.Survey)).all()
    assert survey.status == "draft" and survey.target.units == ("i801",)
    # Members do not see a draft, even with a forged button.
    await make_member(bot.db, 9502, "i801")
    member = bot.user(9502)
    await member.send("/surveys")
    assert "食堂满意度调查" not in member.last.text
    await member.press(OpenSurvey(survey.id).pack())
    assert "不面向您" in member.last_answer()
    # The preview walks through it as a member would, and keeps nothing.
    await cadre.click("预览")
    assert "第 1/2 题" in cadre.last.text
    await cadre.click("二食堂")
    await cadre.send("多些面食")
    assert "提交前请核对" in cadre.last.text
    await cadre.click("📨 提交")
    assert "预览结束" in cadre.last.text
    with bot.db.reading() as s:
        assert s.exec(select(func.count()).select_from(surveys.SurveyProgress)).one() == 0
        assert s.exec(select(func.count()).select_from(surveys.SurveyParticipation)).one() == 0
    await cadre.click("回到草稿")
    await cadre.click("发布")
    assert "已发布「食堂满意度调查」" in cadre.last.text
    await cadre.press(f"sv:add_q:{survey.id}")
    assert "已经发布" in cadre.last_answer()
    bot.clock.advance(days=1, hours=2)
    await member.send("/surveys")
    assert "食堂满意度调查" in member.last.text
