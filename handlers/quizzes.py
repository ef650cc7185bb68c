"""Quizzes (知识竞赛): timed questions with a countdown edited in place, best scores, rankings; cadres' quiz list.

The countdown under a question is the one message edited every [quizzes] countdown_seconds by a JobQueue job.
Which question a message shows is remembered per process (bot_data[SHOWN]); a countdown edits only while its
question is still the one shown there and still the attempt's current one, so it never overwrites the next question.
Whether an answer counts is decided by the model from the stored times, never by the countdown.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.ext import Application, ContextTypes

from buttons.menu import Home
from buttons.quizzes import (
    AnswerQuiz,
    CloseQuiz,
    ManageQuiz,
    PublishQuiz,
    QuizAdmin,
    QuizCsv,
    QuizList,
    QuizRanking,
    ShowQuiz,
    SkipQuestion,
    StartQuiz,
)
from handlers.base import Command, Ctx, Need, Outgoing, Section, handler, runtime_of, services_of
from models import quizzes
from models.quizzes import QuizStatus, Shown

log = logging.getLogger(__name__)

# bot_data key: (chat_id, message_id) -> (attempt_id, position) of the question that message shows now.
SHOWN = "quiz_shown"
OPTION_LETTERS = "ABCDEF"
PAGE = 10


def _local(ctx: Ctx, at: datetime) -> datetime:
    return at.astimezone(ctx.config.timezone)


def _quiz_view(ctx: Ctx, quiz: quizzes.Quiz) -> dict[str, Any]:
    unit = ctx.config.unit(quiz.unit_code) if quiz.unit_code else None
    return {
        "id": quiz.id,
        "title": quiz.title,
        "intro": quiz.intro,
        "unit": unit.name(ctx.locale) if unit else None,
        "per_attempt": quiz.questions_per_attempt,
        "seconds": quiz.seconds_per_question,
        "per_day": quiz.attempts_per_day,
        "opens_at": _local(ctx, quiz.opens_at),
        "closes_at": _local(ctx, quiz.closes_at),
        "phase": quizzes.phase(quiz, ctx.now),
    }


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f}"


# --- members ---------------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_list(ctx: Ctx) -> None:
    """/quiz: the quizzes open (or upcoming) for my unit."""
    found = quizzes.open_quizzes(ctx.session, ctx.member, ctx.now)
    keyboard = [[ctx.button("quiz_item", ShowQuiz(q.id), title=q.title)] for q in found]
    keyboard.append([ctx.button("home", Home())])
    ctx.show("quizzes/list", keyboard, quizzes=[_quiz_view(ctx, q) for q in found])


@handler(needs=Need.VERIFIED)
def show_quiz(ctx: Ctx) -> None:
    """Button: a quiz's rules, my attempts left today and my best."""
    card = quizzes.quiz_card(ctx.session, ctx.member, ctx.pressed(ShowQuiz).quiz_id, ctx.today)
    quiz, left, best = card.quiz, card.left, card.best
    keyboard = []
    if quizzes.phase(quiz, ctx.now) == "open" and card.in_progress:
        keyboard.append([ctx.button("quiz_resume", StartQuiz(quiz.id))])
    elif quizzes.phase(quiz, ctx.now) == "open" and left:
        keyboard.append([ctx.button("quiz_start", StartQuiz(quiz.id), left=left)])
    keyboard.append([ctx.button("quiz_ranking", QuizRanking(quiz.id)), ctx.button("quiz_back", QuizList())])
    mine = {"score": best.score, "seconds": _seconds(best.elapsed_ms)} if best else None
    ctx.show("quizzes/card", keyboard, quiz=_quiz_view(ctx, quiz), left=left, best=mine)


def _question_view(shown: Shown, seconds: int, prev: dict[str, Any] | None) -> dict[str, Any]:
    question = shown.question
    return {
        "number": shown.position + 1,
        "total": shown.total,
        "text": question.text,
        "options": [{"letter": OPTION_LETTERS[i], "text": o} for i, o in enumerate(question.options)],
        "seconds": seconds,
        "prev": prev,
    }


def _previous(outcome: quizzes.Outcome) -> dict[str, Any]:
    """How the question just answered went, shown above the next question (or the result): learn as you play."""
    return {
        "right": outcome.correct,
        "in_time": outcome.in_time,
        "letter": OPTION_LETTERS[outcome.right_option],
        "answer": outcome.right_text,
        "explanation": outcome.explanation,
    }


@dataclass
class Countdown:
    """What a countdown job needs to edit its question message."""

    chat_id: int
    message: Message
    attempt_id: int
    position: int
    deadline: datetime
    locale: str
    view: dict[str, Any]
    keyboard: InlineKeyboardMarkup
    next_label: str


def _show_question(ctx: Ctx, shown: Shown, seconds: int, prev: dict[str, Any] | None = None) -> None:
    """The question in place of the pressed message, with its options; its countdown starts after the commit."""
    view = _question_view(shown, seconds, prev)
    remaining = max(0, math.ceil((shown.deadline - ctx.now).total_seconds()))
    rows = [
        [ctx.button("quiz_option", AnswerQuiz(shown.attempt_id, shown.position, i), letter=o["letter"])]
        for i, o in enumerate(view["options"])
    ]
    keyboard = [[b for row in rows for b in row]]
    ctx.show("quizzes/question", keyboard, q=view, remaining=remaining)
    query = ctx.update.callback_query
    message = query.message if query is not None and isinstance(query.message, Message) else None
    if message is None:
        return
    countdown = Countdown(
        ctx.chat_id,
        message,
        shown.attempt_id,
        shown.position,
        shown.deadline,
        ctx.locale,
        view,
        InlineKeyboardMarkup(keyboard),
        ctx.label("quiz_next"),
    )
    app = ctx.context.application
    ctx.committed.append(lambda: start_countdown(app, countdown))


def start_countdown(app: Application, countdown: Countdown) -> None:
    """Remember which question the message shows, and edit its countdown every few seconds (JobQueue)."""
    key = (countdown.chat_id, countdown.message.message_id)
    app.bot_data.setdefault(SHOWN, {})[key] = (countdown.attempt_id, countdown.position)
    queue = app.job_queue
    if queue is None:
        return
    name = f"quiz:{key[0]}:{key[1]}"
    for old in queue.get_jobs_by_name(name):
        old.schedule_removal()
    every = services_of(app).config.quizzes.countdown_seconds
    queue.run_repeating(_countdown_job, interval=every, first=every, data=countdown, name=name)


async def _countdown_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    try:
        going = await countdown_tick(context.application, context.job.data)
    except Exception:  # a failed edit must not keep a job alive forever
        log.exception("quiz countdown failed")
        going = False
    if not going:
        context.job.schedule_removal()


def _still_shown(app: Application, countdown: Countdown) -> bool:
    shown = app.bot_data.get(SHOWN, {})
    return shown.get((countdown.chat_id, countdown.message.message_id)) == (countdown.attempt_id, countdown.position)


async def countdown_tick(app: Application, countdown: Countdown) -> bool:
    """One edit of the countdown (remaining seconds, or "time is up" with a Next button); False when done."""
    services = services_of(app)
    if not _still_shown(app, countdown):
        return False
    current = await services.db.read(quizzes.still_current, countdown.attempt_id, countdown.position)
    # Checked again after the read, with nothing awaited before the edit is queued: a newer question wins.
    if not current or not _still_shown(app, countdown):
        return False
    remaining = math.ceil((countdown.deadline - services.clock.now()).total_seconds())
    renderer = services.renderer
    if remaining <= 0:
        text = renderer.render(countdown.locale, "quizzes/timeout", q=countdown.view)
        button = SkipQuestion(countdown.attempt_id, countdown.position).pack()
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(countdown.next_label, callback_data=button)]])
        going = False
    else:
        text = renderer.render(countdown.locale, "quizzes/question", q=countdown.view, remaining=remaining)
        markup, going = countdown.keyboard, True
    item = Outgoing(countdown.chat_id, text, markup, edit=countdown.message)
    runtime_of(app).replies.submit(app, countdown.chat_id, [item])
    return going


@handler(write=True, needs=Need.VERIFIED)
def start_quiz(ctx: Ctx) -> None:
    """Button: start an attempt (or resume the one in progress) at its current question."""
    quiz_id = ctx.pressed(StartQuiz).quiz_id
    shown = quizzes.start(ctx.session, ctx.member, quiz_id, ctx.now, ctx.today)
    quiz = ctx.session.get(quizzes.Quiz, quiz_id)
    if shown.deadline + quizzes.GRACE < ctx.now:
        # An attempt left half-way: its current question's time ran out meanwhile.
        keyboard = [[ctx.button("quiz_next", SkipQuestion(shown.attempt_id, shown.position))]]
        ctx.show("quizzes/timeout", keyboard, q=_question_view(shown, quiz.seconds_per_question, None))
        return
    _show_question(ctx, shown, quiz.seconds_per_question)


def _after_answer(ctx: Ctx, outcome: quizzes.Outcome, quiz: quizzes.Quiz) -> None:
    """The toast says how the answer went; then the next question, or the result."""
    if not outcome.in_time:
        ctx.toast = ctx.label("quiz_too_late")
    elif outcome.correct:
        ctx.toast = ctx.label("quiz_right")
    else:
        ctx.toast = ctx.label("quiz_wrong", letter=OPTION_LETTERS[outcome.right_option])
    if outcome.next is not None:
        _show_question(ctx, outcome.next, quiz.seconds_per_question, _previous(outcome))
        return
    result = outcome.result
    keyboard = []
    if result.attempts_left and quizzes.phase(quiz, ctx.now) == "open":
        keyboard.append([ctx.button("quiz_again", StartQuiz(quiz.id), left=result.attempts_left)])
    keyboard.append([ctx.button("quiz_ranking", QuizRanking(quiz.id)), ctx.button("quiz_back", QuizList())])
    ctx.show(
        "quizzes/result",
        keyboard,
        title=quiz.title,
        score=result.score,
        total=result.total,
        seconds=_seconds(result.elapsed_ms),
        best=result.best_score,
        best_seconds=_seconds(result.best_elapsed_ms),
        new_best=result.new_best,
        points=result.points,
        left=result.attempts_left,
        prev=_previous(outcome),
    )


def _answer(ctx: Ctx, attempt_id: int, position: int, chosen: int | None) -> None:
    rule = ctx.config.rules.get(quizzes.POINTS_RULE)
    outcome = quizzes.answer(ctx.session, ctx.member, attempt_id, position, chosen, ctx.now, ctx.today, rule)
    attempt = ctx.session.get(quizzes.QuizAttempt, attempt_id)
    _after_answer(ctx, outcome, ctx.session.get(quizzes.Quiz, attempt.quiz_id))


@handler(write=True, needs=Need.VERIFIED)
def answer_quiz(ctx: Ctx) -> None:
    """Button: an option of the current question (late: stored as not counted; any other question: refused)."""
    press = ctx.pressed(AnswerQuiz)
    _answer(ctx, press.attempt_id, press.position, press.option)


@handler(write=True, needs=Need.VERIFIED)
def skip_question(ctx: Ctx) -> None:
    """Button: the time ran out; on to the next question."""
    press = ctx.pressed(SkipQuestion)
    _answer(ctx, press.attempt_id, press.position, None)


def _ranking_rows(ctx: Ctx, quiz_id: int) -> dict[str, Any]:
    members = [
        {"rank": r.rank, "name": r.name, "unit": ctx.config.unit(r.unit_code).name(ctx.locale), "score": r.score}
        | {"seconds": _seconds(r.elapsed_ms)}
        for r in quizzes.ranking(ctx.session, quiz_id)
    ]
    units = [
        {"rank": u.rank, "unit": ctx.config.unit(u.unit_code).name(ctx.locale), "mean": u.mean, "members": u.members}
        for u in quizzes.unit_ranking(ctx.session, quiz_id)
    ]
    return {"members": members, "units": units}


@handler(needs=Need.VERIFIED)
def show_ranking(ctx: Ctx) -> None:
    """Button: the best members (opted-out members left out) and units by the average best score; my place."""
    card = quizzes.quiz_card(ctx.session, ctx.member, ctx.pressed(QuizRanking).quiz_id, ctx.today)
    quiz, best = card.quiz, card.best
    rank = quizzes.my_rank(ctx.session, quiz.id, ctx.member.id)
    keyboard = [[ctx.button("quiz_back", ShowQuiz(quiz.id))]]
    mine = {"rank": rank, "score": best.score, "seconds": _seconds(best.elapsed_ms)} if best else None
    ctx.show("quizzes/ranking", keyboard, title=quiz.title, mine=mine, **_ranking_rows(ctx, quiz.id))


# --- cadres ----------------------------------------------------------------------------------------


@handler(needs=Need.CADRE)
def show_admin(ctx: Ctx) -> None:
    """/admin → Quizzes: the quizzes I manage (imported with `bot.py import-quiz`)."""
    pressed = ctx.callback
    page = (pressed.page or 0) if isinstance(pressed, QuizAdmin) else 0
    found = quizzes.list_managed(ctx.session, ctx.actor, PAGE + 1, page * PAGE)
    shown = found[:PAGE]
    keyboard = [[ctx.button("quiz_item", ManageQuiz(q.id), title=q.title)] for q in shown]
    keyboard += ctx.pager(QuizAdmin, page=page, has_next=len(found) > PAGE)
    ctx.show("quizzes/admin_list", keyboard, quizzes=[_quiz_view(ctx, q) for q in shown])


def _show_manage(ctx: Ctx, quiz: quizzes.Quiz) -> None:
    keyboard = []
    if quiz.status == QuizStatus.DRAFT:
        keyboard.append([ctx.button("quiz_publish", PublishQuiz(quiz.id))])
    if quiz.status == QuizStatus.PUBLISHED:
        keyboard.append([ctx.button("quiz_close", CloseQuiz(quiz.id))])
    keyboard.append([ctx.button("quiz_csv", QuizCsv(quiz.id)), ctx.button("quiz_back", QuizAdmin())])
    stats = quizzes.stats(ctx.session, quiz.id)
    ctx.show("quizzes/admin_card", keyboard, quiz=_quiz_view(ctx, quiz), stats=stats, **_ranking_rows(ctx, quiz.id))


@handler(needs=Need.CADRE)
def manage_quiz(ctx: Ctx) -> None:
    """Button: a quiz I manage: counts, rankings, publish or close."""
    _show_manage(ctx, quizzes.managed(ctx.session, ctx.actor, ctx.pressed(ManageQuiz).quiz_id))


@handler(write=True, needs=Need.CADRE)
def publish_quiz(ctx: Ctx) -> None:
    """Button: publish a draft quiz."""
    quiz = quizzes.set_status(ctx.session, ctx.actor, ctx.pressed(PublishQuiz).quiz_id, QuizStatus.PUBLISHED, ctx.now)
    ctx.toast = ctx.label("quiz_published")
    _show_manage(ctx, quiz)


@handler(write=True, needs=Need.CADRE)
def close_quiz(ctx: Ctx) -> None:
    """Button: end a quiz now (attempts in progress can no longer be answered)."""
    quiz = quizzes.set_status(ctx.session, ctx.actor, ctx.pressed(CloseQuiz).quiz_id, QuizStatus.CLOSED, ctx.now)
    ctx.toast = ctx.label("quiz_closed")
    _show_manage(ctx, quiz)


@handler(needs=Need.CADRE)
def export_quiz(ctx: Ctx) -> None:
    """Button: every participant's best as CSV (members who opted out of rankings without their name)."""
    quiz = quizzes.managed(ctx.session, ctx.actor, ctx.pressed(QuizCsv).quiz_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "name", "unit_code", "unit", "score", "seconds"])
    for rank, (name, unit, score, ms, _out) in enumerate(quizzes.full_ranking(ctx.session, quiz.id), start=1):
        writer.writerow([rank, name, unit, ctx.config.unit(unit).name(ctx.locale), score, _seconds(ms)])
    ctx.send_document(
        out.getvalue().encode("utf-8-sig"), f"quiz-{quiz.id}.csv", "quizzes/csv_caption", title=quiz.title
    )


SECTION = Section(
    "quizzes",
    commands=(Command("quiz", show_list, menu_order=65),),
    buttons={
        QuizList: show_list,
        ShowQuiz: show_quiz,
        StartQuiz: start_quiz,
        AnswerQuiz: answer_quiz,
        SkipQuestion: skip_question,
        QuizRanking: show_ranking,
        QuizAdmin: show_admin,
        ManageQuiz: manage_quiz,
        PublishQuiz: publish_quiz,
        CloseQuiz: close_quiz,
        QuizCsv: export_quiz,
    },
    admin_entries=(("quiz_admin", QuizAdmin()),),
)
