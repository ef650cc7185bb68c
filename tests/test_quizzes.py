"""Quizzes (知识竞赛): attempts through the bot, timing on the frozen clock, the countdown, forged presses,
points once, rankings, and the TOML import with line-precise errors."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

import bot as bot_module
from buttons.quizzes import AnswerQuiz, ManageQuiz, SkipQuestion
from config import PointsRule
from handlers.quizzes import countdown_tick
from models import points, quizzes
from models.members import Member, Role, Status
from models.quizzes import QuizAnswer, QuizAttempt, QuizBest
from models.quizzes.importing import QuizFileError, parse_quiz_file, store_quiz
from tests.conftest import ADMIN_ID, NOW, make_member
from tests.harness import settle

SHANGHAI = ZoneInfo("Asia/Shanghai")
UNITS = {"i801", "i802", "hq"}
RULE = PointsRule("quiz_best", 2, 40)


def quiz_toml(*, per_attempt: int = 3, seconds: int = 20, per_day: int = 2, unit: str = "", key: str = "safety") -> str:
    """A quiz open around NOW whose every right answer is A."""
    unit_line = f'unit = "{unit}"\n' if unit else ""
    questions = "".join(
        f'\n[[question]]\ntext = "第{i}题：安全出口标志是什么颜色？"\noptions = ["绿色", "红色", "蓝色"]\n'
        'answer = 1\nexplanation = "绿色表示安全"\n'
        for i in range(1, 5)
    )
    return (
        f'[quiz]\nkey = "{key}"\ntitle = "安全知识竞赛"\nintro = "每天两次机会"\n{unit_line}'
        f"questions_per_attempt = {per_attempt}\nseconds_per_question = {seconds}\nattempts_per_day = {per_day}\n"
        f"opens_at = 2026-11-01T09:00:00\ncloses_at = 2026-12-31T18:00:00\n{questions}"
    )


def import_quiz(db, text: str | None = None) -> int:
    parsed = parse_quiz_file(text or quiz_toml(), SHANGHAI, UNITS)
    with db.writing() as s:
        quiz, _created = store_quiz(s, parsed, ADMIN_ID, NOW)
        return quiz.id


async def _attempts(db, member_id: int) -> list[QuizAttempt]:
    with db.reading() as s:
        return list(s.exec(select(QuizAttempt).where(QuizAttempt.member_id == member_id).order_by(QuizAttempt.id)))


async def test_attempts_timing_points_once_and_the_daily_limit(bot):
    import_quiz(bot.db)
    member = await make_member(bot.db, 6001, "i801")
    user = bot.user(6001)
    await user.send("/quiz")
    assert "安全知识竞赛" in user.last.text
    await user.click("安全知识竞赛")
    assert "今天还可答：2 次" in user.last.text
    await user.click("开始答题")
    question = user.last
    assert "第 1/3 题" in question.text and "剩余 20 秒" in question.text and question.labels == ["A", "B", "C"]
    await user.click("A")
    assert user.last_answer() == "✅ 答对了！"
    assert "第 2/3 题" in user.last.text and user.last.message_id == question.message_id
    bot.clock.advance(seconds=5)
    await user.click("B")
    assert user.last_answer() == "❌ 答错了，正确答案是 A"
    assert "❌ 上一题答错了，正确答案：A. 绿色" in user.last.text and "💡 绿色表示安全" in user.last.text
    # The third question is answered right, but after its 20 seconds (and the one second of grace): not counted.
    bot.clock.advance(seconds=22)
    await user.click("A")
    assert user.last_answer() == "⏰ 超时了，本题不计分"
    assert "答对 1/3 题" in user.last.text and "获得 2 积分" in user.last.text
    [attempt] = await _attempts(bot.db, member.id)
    assert attempt.score == 1 and attempt.finished_at is not None
    assert attempt.elapsed_ms == 0 + 5000 + 20000
    with bot.db.reading() as s:
        answers = list(s.exec(select(QuizAnswer).order_by(col(QuizAnswer.position))))
    assert [(a.correct, a.in_time) for a in answers] == [(True, True), (False, True), (False, False)]
    # A better attempt pays only the difference; the best is kept.
    await user.click("再来一次")
    for _ in range(3):
        bot.clock.advance(seconds=2)
        await user.click("A")
    assert "答对 3/3 题" in user.last.text and "新的最好成绩" in user.last.text and "获得 4 积分" in user.last.text
    with bot.db.reading() as s:
        assert points.balance_of(s, member.id) == 6
        best = s.get(QuizBest, (1, member.id))
    assert (best.score, best.elapsed_ms) == (3, 6000)
    # Two attempts a day: the third is refused, tomorrow it works again; the same best pays nothing more.
    await user.send("/quiz")
    await user.click("安全知识竞赛")
    assert "今天还可答：0 次" in user.last.text and "开始答题" not in " ".join(user.last.labels)
    from buttons.quizzes import StartQuiz

    await user.press(StartQuiz(1).pack())
    assert user.last_answer() == "今天的 2 次答题机会已用完，明天再来吧！"
    bot.clock.advance(days=1)
    await user.send("/quiz")
    await user.click("安全知识竞赛")
    await user.click("开始答题")
    for _ in range(3):
        bot.clock.advance(seconds=1)
        await user.click("A")
    assert "新的最好成绩" in user.last.text and "获得" not in user.last.text
    with bot.db.reading() as s:
        assert points.balance_of(s, member.id) == 6 == points.ledger_sum(s, member.id)


async def test_countdown_is_edited_in_place_then_times_out(bot):
    import_quiz(bot.db)
    await make_member(bot.db, 6011, "i801", language="en")
    user = bot.user(6011, "en")
    await user.send("/quiz")
    await user.click("安全知识竞赛")
    await user.click("Start")
    question = user.last
    assert "20 s left" in question.text
    [job] = bot.app.job_queue.get_jobs_by_name(f"quiz:6011:{question.message_id}")
    countdown = job.data
    bot.clock.advance(seconds=6)
    assert await countdown_tick(bot.app, countdown) is True
    await settle(bot.app)
    assert "14 s left" in question.text and question.edits >= 1 and question.labels == ["A", "B", "C"]
    bot.clock.advance(seconds=15)
    assert await countdown_tick(bot.app, countdown) is False
    await settle(bot.app)
    assert "time is up" in question.text and question.labels == ["➡️ Next question"]
    await user.click("Next question")
    assert user.last_answer() == "⏰ Too late: this one does not count"
    assert "Question 2/3" in question.text
    # The first question's countdown has nothing more to do, and never overwrites the second question.
    assert await countdown_tick(bot.app, countdown) is False
    await settle(bot.app)
    assert "Question 2/3" in question.text
    # Answering moves on at once: the new question's countdown stops the moment it is answered.
    [job] = bot.app.job_queue.get_jobs_by_name(f"quiz:6011:{question.message_id}")
    second = job.data
    await user.click("A")
    assert await countdown_tick(bot.app, second) is False
    # Left half-way and opened again later: the question whose time ran out says so, Next goes on.
    bot.clock.advance(minutes=10)
    await user.send("/quiz")
    await user.click("安全知识竞赛")
    await user.click("Continue")
    assert "Question 3/3" in user.last.text and "time is up" in user.last.text
    await user.click("Next question")
    assert "finished" in user.last.text and "1/3 correct" in user.last.text


async def test_forged_and_stale_answer_presses_change_nothing(bot):
    import_quiz(bot.db)
    owner = await make_member(bot.db, 6021, "i801")
    await make_member(bot.db, 6022, "i801")
    user, other = bot.user(6021), bot.user(6022)
    await user.send("/quiz")
    await user.click("安全知识竞赛")
    await user.click("开始答题")
    question = user.last
    [attempt] = await _attempts(bot.db, owner.id)
    # Another question of my attempt, an option that does not exist, someone else's attempt: refused.
    for forged in (AnswerQuiz(attempt.id, 1, 0), AnswerQuiz(attempt.id, 2, 0), AnswerQuiz(attempt.id, 0, 7)):
        await user.press(forged.pack(), question)
        assert user.last_answer() == "这道题已经不是当前题目了，这次点击不计入。"
    await other.send("/quiz")
    await other.press(AnswerQuiz(attempt.id, 0, 0).pack())
    assert other.last_answer() == "这道题已经不是当前题目了，这次点击不计入。"
    await other.press(SkipQuestion(attempt.id, 0).pack())
    assert other.last_answer() == "这道题已经不是当前题目了，这次点击不计入。"
    with bot.db.reading() as s:
        assert list(s.exec(select(QuizAnswer))) == []
    # A double click: the first press counts, the second (for a question no longer current) is refused.
    await user.click("A", question)
    await user.press(AnswerQuiz(attempt.id, 0, 1).pack(), question)
    assert user.last_answer() == "这道题已经不是当前题目了，这次点击不计入。"
    [attempt] = await _attempts(bot.db, owner.id)
    assert (attempt.current, attempt.score) == (1, 1)
    # Another unit's quiz is not even visible; a cadre of another unit cannot manage a unit quiz.
    unit_quiz = import_quiz(bot.db, quiz_toml(unit="i802", key="i802-only"))
    await user.send("/quiz")
    assert "安全知识竞赛" in user.last.text and len([label for label in user.last.labels if "竞赛" in label]) == 1
    await make_member(bot.db, 6023, "i801", role=Role.CADRE)
    cadre = bot.user(6023)
    await cadre.send("/admin")
    await cadre.press(ManageQuiz(unit_quiz).pack())
    assert cadre.last_answer() == "找不到这个竞赛（可能不面向您所在的单位）。请发送 /quiz 查看。"


async def _finish(db, member: Member, quiz_id: int, right: int, seconds_each: int, start_at) -> None:
    """One whole attempt through the model: the first `right` answers right, each after `seconds_each`."""
    now = start_at
    with db.writing() as s:
        member = s.get(Member, member.id)
        shown = quizzes.start(s, member, quiz_id, now, now.astimezone(SHANGHAI).date())
    for position in range(shown.total):
        now += timedelta(seconds=seconds_each)
        with db.writing() as s:
            member = s.get(Member, member.id)
            quizzes.answer(s, member, shown.attempt_id, position, 0 if position < right else 1, now, now.date(), RULE)


async def test_rankings_respect_opt_out_ties_by_time_and_unit_means(db):
    """Model and database (SQLite and PostgreSQL): the member ranking, the unit ranking, points once."""
    quiz_id = import_quiz(db)
    with db.writing() as s:
        people = [
            Member(telegram_id=6100 + i, unit_code=unit, name=f"m{i}", status=Status.VERIFIED)
            for i, unit in enumerate(["i801", "i801", "i802", "i802"])
        ]
        people[3].ranking_opt_out = True
        s.add_all(people)
    await _finish(db, people[0], quiz_id, 2, 3, NOW)
    await _finish(db, people[1], quiz_id, 2, 2, NOW)  # same score, faster: ranked first
    await _finish(db, people[2], quiz_id, 1, 1, NOW)
    await _finish(db, people[3], quiz_id, 2, 1, NOW)  # the fastest, but opted out
    with db.reading() as s:
        ranked = quizzes.ranking(s, quiz_id)
        assert [(r.name, r.score, r.elapsed_ms) for r in ranked] == [("m1", 2, 6000), ("m0", 2, 9000), ("m2", 1, 3000)]
        units = quizzes.unit_ranking(s, quiz_id)
        assert [(u.unit_code, u.mean, u.members) for u in units] == [("i801", 2.0, 2), ("i802", 1.5, 2)]
        # My place counts everyone's best, the opted-out member's too (m3 was fastest with 2).
        assert quizzes.my_rank(s, quiz_id, people[1].id) == 2
        assert points.balance_of(s, people[3].id) == 4
    # A worse second attempt changes neither the best nor the points.
    await _finish(db, people[0], quiz_id, 0, 1, NOW + timedelta(hours=1))
    with db.reading() as s:
        best = s.get(QuizBest, (quiz_id, people[0].id))
        assert (best.score, best.elapsed_ms) == (2, 9000)
        assert points.balance_of(s, people[0].id) == 4


def test_import_reports_every_problem_with_its_line():
    text = (
        "[quiz]\n"  # 1
        'key = "k"\n'  # 2
        'title = ""\n'  # 3
        "questions_per_attempt = 9\n"  # 4
        "seconds_per_question = 2\n"  # 5
        "attempts_per_day = 1\n"  # 6
        "opens_at = 2026-12-02T09:00:00\n"  # 7
        'closes_at = "yesterday"\n'  # 8
        'colour = "red"\n'  # 9
        "\n"  # 10
        "[[question]]\n"  # 11
        'text = "一"\n'  # 12
        'options = ["甲"]\n'  # 13
        "answer = 1\n"  # 14
        "\n"  # 15
        "[[question]]\n"  # 16
        'text = "二"\n'  # 17
        'options = ["甲", "乙"]\n'  # 18
        "answer = 3\n"  # 19
    )
    with pytest.raises(QuizFileError) as caught:
        parse_quiz_file(text, SHANGHAI, UNITS)
    problems = {(line, key) for line, key, _detail in caught.value.problems}
    assert problems == {
        (3, "missing"),
        (4, "bank_too_small"),
        (5, "out_of_range"),
        (8, "bad_time"),
        (9, "unknown_key"),
        (13, "bad_options"),
        (19, "bad_answer"),
    }
    with pytest.raises(QuizFileError) as caught:
        parse_quiz_file("[quiz\nkey=1", SHANGHAI, UNITS)
    assert caught.value.problems[0][:2] == (1, "syntax")


async def test_reimport_replaces_the_bank_until_someone_starts(db):
    quiz_id = import_quiz(db)
    assert import_quiz(db, quiz_toml(per_attempt=2)) == quiz_id
    with db.writing() as s:
        member = Member(telegram_id=6200, unit_code="i801", name="x", status=Status.VERIFIED)
        s.add(member)
        s.flush()
        quizzes.start(s, member, quiz_id, NOW, NOW.date())
    with pytest.raises(QuizFileError) as caught:
        import_quiz(db, quiz_toml(per_attempt=1))
    assert caught.value.problems[0][1] == "started"


def test_import_quiz_command(tmp_path, monkeypatch, capsys):
    """`python bot.py import-quiz FILE`: errors by line (nothing stored), then the quiz is created."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'gongshe.db'}")
    monkeypatch.setenv("BOT_TOKEN", "")
    bad = tmp_path / "bad.toml"
    bad.write_text(quiz_toml().replace("answer = 1\n", "answer = 5\n", 1), encoding="utf-8")
    assert bot_module.main(["import-quiz", str(bad)]) == 1
    assert "第 14 行：answer 应为正确选项的序号" in capsys.readouterr().err
    good = tmp_path / "good.toml"
    good.write_text(quiz_toml(), encoding="utf-8")
    assert bot_module.main(["import-quiz", str(good)]) == 0
    assert "已创建竞赛 #1「安全知识竞赛」，题库 4 题。" in capsys.readouterr().out
    assert bot_module.main(["import-quiz", str(tmp_path / "quiz.csv")]) == 2


async def test_an_attempt_through_the_bot_on_postgresql(pg_bot):
    import_quiz(pg_bot.db)
    await make_member(pg_bot.db, 6301, "i801")
    user = pg_bot.user(6301)
    await user.send("/quiz")
    await user.click("安全知识竞赛")
    await user.click("开始答题")
    await user.click("A")
    pg_bot.clock.advance(seconds=30)
    await user.click("A")
    assert user.last_answer() == "⏰ 超时了，本题不计分"
    await user.click("B")
    assert "答对 1/3 题" in user.last.text and "获得 2 积分" in user.last.text
    await user.click("排行榜")
    assert "1. 成员6301" in user.last.text and "我的名次：第 1 名" in user.last.text
