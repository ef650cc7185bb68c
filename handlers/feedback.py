"""Feedback box (意见箱) and satisfaction ratings (评家): members write to their unit's cadres, cadres reply.

Every message to the other side is a durable outbox notice (services.notify); an anonymous sender is known to
cadres only by the thread's random token (models/feedback.py).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from buttons import BadCallback
from buttons.feedback import (
    AnswerBack,
    CadreThread,
    CloseThread,
    FeedbackHome,
    MyThread,
    MyThreads,
    Queue,
    RateUnion,
    ReplyThread,
    SatisfactionCsv,
    SatisfactionIndex,
    SubmitRating,
    Write,
)
from buttons.menu import CancelFlow, Home
from handlers.base import Command, Ctx, Need, Section, handler
from models import feedback
from models.feedback import ThreadView

WRITE_FLOW = "feedback_write"
ANSWER_FLOW = "feedback_answer"
REPLY_FLOW = "feedback_reply"
RATE_FLOW = "feedback_rate"
PAGE = feedback.PAGE
COMMENTS_SHOWN = 5
KIND_CADRE = "feedback_to_cadre"
KIND_MEMBER = "feedback_to_member"


def _local(ctx: Ctx, at: datetime) -> datetime:
    return at.astimezone(ctx.config.timezone)


def _thread(ctx: Ctx, view: ThreadView) -> dict[str, Any]:
    """A thread for the templates: reference, unit name, status, sender (None when anonymous), newest messages."""
    unit = ctx.config.unit(view.unit_code)
    return {
        "ref": view.token[:6],
        "unit": unit.name(ctx.locale) if unit else view.unit_code,
        "anonymous": view.anonymous,
        "status": view.status,
        "sender": view.sender_name,
        "updated_at": _local(ctx, view.updated_at),
        "messages": [{"mine": m.from_member, "body": m.body, "at": _local(ctx, m.at)} for m in view.messages],
        "earlier": view.total - len(view.messages),
    }


def _period(ctx: Ctx) -> date:
    return feedback.period_of(ctx.today, ctx.config.feedback.satisfaction_every_months)


def _period_code(period: date) -> int:
    return period.year * 10000 + period.month * 100 + period.day


def _period_of_code(code: int) -> date:
    try:
        return date(code // 10000, code // 100 % 100, code % 100)
    except ValueError:
        raise BadCallback("not a period") from None


def rating_keyboard(ctx: Ctx, period: date) -> list[list[Any]]:
    """Five score buttons for a period."""
    code = _period_code(period)
    return [[ctx.button(f"feedback_score_{s}", RateUnion(code, s)) for s in feedback.SCORES]]


# --- members ---------------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_home(ctx: Ctx) -> None:
    """/feedback: write to my unit's union (named or anonymous), my threads, this period's rating."""
    period = _period(ctx)
    rated = feedback.has_rated(ctx.session, ctx.member.id, period)
    keyboard = [
        [ctx.button("feedback_write_named", Write(0)), ctx.button("feedback_write_anonymous", Write(1))],
        [ctx.button("feedback_mine", MyThreads())],
    ]
    if ctx.actor.is_cadre:
        keyboard.append([ctx.button("feedback_queue", Queue()), ctx.button("feedback_index", SatisfactionIndex())])
    keyboard.append([ctx.button("home", Home())])
    unit = ctx.config.unit(ctx.member.unit_code)
    rows = [] if rated else rating_keyboard(ctx, period)
    ctx.show("feedback/home", rows + keyboard, unit=unit.name(ctx.locale) if unit else "", rated=rated)


@handler(write=True, needs=Need.VERIFIED)
def start_write(ctx: Ctx) -> None:
    """Button: named or anonymous; the next text typed is the message."""
    anonymous = ctx.pressed(Write).anonymous == 1
    ctx.set_flow(WRITE_FLOW, "text", {"anonymous": anonymous})
    ctx.reply("feedback/ask_text", [[ctx.button("cancel", CancelFlow())]], anonymous=anonymous, max=feedback.TEXT_MAX)


def _tell_cadres(ctx: Ctx, posted: feedback.Posted, template: str) -> None:
    """Each cadre gets the message in their own language, with a button to the thread (no sender for anonymous)."""
    for chat_id, language in posted.recipients:
        ctx_view = _thread(ctx, posted.thread)
        text = ctx.t(template, language, thread=ctx_view)
        button = ctx.button("feedback_open_thread", CadreThread(posted.thread.token), locale=language)
        ctx.notify(chat_id, text, [[button]], kind=KIND_CADRE)


def write_text(ctx: Ctx, text: str) -> None:
    """The message typed after Write: stored as a new thread, the unit's cadres are told."""
    state = ctx.section_flow(WRITE_FLOW)
    posted = feedback.write(ctx.session, ctx.member, text, bool(state.data.get("anonymous")), ctx.now)
    ctx.clear_flow(WRITE_FLOW)
    _tell_cadres(ctx, posted, "feedback/to_cadre_new")
    keyboard = [[ctx.button("feedback_view", MyThread(posted.thread.token))]]
    ctx.reply("feedback/sent", keyboard, thread=_thread(ctx, posted.thread))


def _thread_page(
    ctx: Ctx, found: list[ThreadView], page: int, opens: type[MyThread | CadreThread], pages: type[MyThreads | Queue]
) -> tuple[list[ThreadView], list[list[Any]]]:
    """One page of threads (found holds one more when there is a next page): a button each, then the pager."""
    shown = found[:PAGE]
    keyboard = [[ctx.button("feedback_thread_item", opens(t.token), ref=t.token[:6])] for t in shown]
    keyboard += ctx.pager(pages, page=page, has_next=len(found) > PAGE)
    return shown, keyboard


@handler(needs=Need.VERIFIED)
def show_my_threads(ctx: Ctx) -> None:
    """Button: my threads, most recent first."""
    pressed = ctx.callback
    page = (pressed.page or 0) if isinstance(pressed, MyThreads) else 0
    found = feedback.my_threads(ctx.session, ctx.member, PAGE + 1, page * PAGE)
    shown, keyboard = _thread_page(ctx, found, page, MyThread, MyThreads)
    keyboard.append([ctx.button("feedback_back", FeedbackHome())])
    ctx.show("feedback/mine", keyboard, threads=[_thread(ctx, t) for t in shown])


@handler(needs=Need.VERIFIED)
def show_my_thread(ctx: Ctx) -> None:
    """Button: one of my threads; answer back while it is open."""
    view = feedback.my_thread(ctx.session, ctx.member, ctx.pressed(MyThread).token)
    keyboard = []
    if view.status != feedback.ThreadStatus.CLOSED:
        keyboard.append([ctx.button("feedback_answer", AnswerBack(view.token))])
    keyboard.append([ctx.button("feedback_back", MyThreads())])
    ctx.show("feedback/my_thread", keyboard, thread=_thread(ctx, view))


@handler(write=True, needs=Need.VERIFIED)
def start_answer(ctx: Ctx) -> None:
    """Button: answer back in my thread (checked: it is mine and open)."""
    view = feedback.my_thread(ctx.session, ctx.member, ctx.pressed(AnswerBack).token)
    if view.status == feedback.ThreadStatus.CLOSED:
        raise feedback.ThreadClosed()
    ctx.set_flow(ANSWER_FLOW, "text", {"token": view.token})
    ctx.reply("feedback/ask_answer", [[ctx.button("cancel", CancelFlow())]], thread=_thread(ctx, view))


def answer_text(ctx: Ctx, text: str) -> None:
    """The member's answer: stored, the thread waits for a cadre again, the cadres are told."""
    state = ctx.section_flow(ANSWER_FLOW)
    posted = feedback.answer_back(ctx.session, ctx.member, state.data["token"], text, ctx.now)
    ctx.clear_flow(ANSWER_FLOW)
    _tell_cadres(ctx, posted, "feedback/to_cadre_answer")
    keyboard = [[ctx.button("feedback_view", MyThread(posted.thread.token))]]
    ctx.reply("feedback/sent", keyboard, thread=_thread(ctx, posted.thread))


# --- cadres ----------------------------------------------------------------------------------------


@handler(needs=Need.CADRE)
def show_queue(ctx: Ctx) -> None:
    """/admin → Feedback: my units' threads, waiting ones first."""
    pressed = ctx.callback
    page = (pressed.page or 0) if isinstance(pressed, Queue) else 0
    found = feedback.queue(ctx.session, ctx.actor, PAGE + 1, page * PAGE)
    shown, keyboard = _thread_page(ctx, found, page, CadreThread, Queue)
    keyboard.append([ctx.button("feedback_index", SatisfactionIndex())])
    ctx.show("feedback/queue", keyboard, threads=[_thread(ctx, t) for t in shown], page=page)


def _show_cadre_thread(ctx: Ctx, view: ThreadView) -> None:
    keyboard = []
    if view.status != feedback.ThreadStatus.CLOSED:
        reply, close = ReplyThread(view.token), CloseThread(view.token)
        keyboard.append([ctx.button("feedback_reply", reply), ctx.button("feedback_close", close)])
    keyboard.append([ctx.button("feedback_back", Queue())])
    ctx.show("feedback/cadre_thread", keyboard, thread=_thread(ctx, view))


@handler(needs=Need.CADRE)
def show_cadre_thread(ctx: Ctx) -> None:
    """Button: a thread of my units (an anonymous sender stays anonymous)."""
    _show_cadre_thread(ctx, feedback.cadre_thread(ctx.session, ctx.actor, ctx.pressed(CadreThread).token))


@handler(write=True, needs=Need.CADRE)
def start_reply(ctx: Ctx) -> None:
    """Button: reply to a thread of my units; the next text typed is the reply."""
    view = feedback.cadre_thread(ctx.session, ctx.actor, ctx.pressed(ReplyThread).token)
    if view.status == feedback.ThreadStatus.CLOSED:
        raise feedback.ThreadClosed()
    ctx.set_flow(REPLY_FLOW, "text", {"token": view.token})
    ctx.reply("feedback/ask_reply", [[ctx.button("cancel", CancelFlow())]], thread=_thread(ctx, view))


def _tell_member(ctx: Ctx, posted: feedback.Posted, template: str) -> None:
    """The relay to the sender, by thread: rendered in their language, with a button to answer back."""
    for chat_id, language in posted.recipients:
        text = ctx.t(template, language, thread=_thread(ctx, posted.thread))
        button = ctx.button("feedback_view", MyThread(posted.thread.token), locale=language)
        ctx.notify(chat_id, text, [[button]], kind=KIND_MEMBER)


def reply_text(ctx: Ctx, text: str) -> None:
    """The cadre's reply: stored, the thread is replied, the sender gets it through the outbox."""
    state = ctx.section_flow(REPLY_FLOW)
    posted = feedback.reply(ctx.session, ctx.actor, state.data["token"], text, ctx.now)
    ctx.clear_flow(REPLY_FLOW)
    _tell_member(ctx, posted, "feedback/to_member_reply")
    ctx.reply("feedback/replied", delivered=bool(posted.recipients))
    _show_cadre_thread(ctx, posted.thread)


@handler(write=True, needs=Need.CADRE)
def close_thread(ctx: Ctx) -> None:
    """Button: close a thread; the sender is told once."""
    posted = feedback.close(ctx.session, ctx.actor, ctx.pressed(CloseThread).token, ctx.now)
    _tell_member(ctx, posted, "feedback/to_member_closed")
    ctx.toast = ctx.label("feedback_closed")
    _show_cadre_thread(ctx, posted.thread)


# --- satisfaction ----------------------------------------------------------------------------------


@handler(write=True, needs=Need.VERIFIED)
def rate_union(ctx: Ctx) -> None:
    """Button: a score 1–5 for this period; then an optional comment (typed) or Send."""
    press = ctx.pressed(RateUnion)
    period = _period_of_code(press.period)
    if period != _period(ctx):
        raise feedback.RoundOver()
    if press.score not in feedback.SCORES:
        raise BadCallback("score")
    if feedback.has_rated(ctx.session, ctx.member.id, period):
        raise feedback.AlreadyRated()
    ctx.set_flow(RATE_FLOW, "comment", {"period": press.period, "score": press.score})
    keyboard = [[ctx.button("feedback_rate_send", SubmitRating(press.period, press.score))]]
    ctx.show("feedback/rate_comment", keyboard, score=press.score, max=feedback.COMMENT_MAX)


def _rate(ctx: Ctx, code: int, score: int, comment: str | None) -> None:
    feedback.rate(ctx.session, ctx.member, _period_of_code(code), _period(ctx), score, comment)
    ctx.clear_flow(RATE_FLOW)


@handler(write=True, needs=Need.VERIFIED)
def submit_rating(ctx: Ctx) -> None:
    """Button: send the score without a comment (once per period)."""
    press = ctx.pressed(SubmitRating)
    _rate(ctx, press.period, press.score, None)
    ctx.show("feedback/rated", score=press.score, comment=False)


def rate_comment(ctx: Ctx, text: str) -> None:
    """The comment typed after a score: the rating is stored with it."""
    state = ctx.section_flow(RATE_FLOW)
    _rate(ctx, state.data["period"], state.data["score"], text)
    ctx.reply("feedback/rated", score=state.data["score"], comment=True)


def _scope_units(ctx: Ctx) -> list[str]:
    return [u.code for u in ctx.config.units if ctx.actor.can_manage(u.code)]


def _periods(ctx: Ctx) -> list[date]:
    """The current period and the ones before it, newest first."""
    every = ctx.config.feedback.satisfaction_every_months
    periods = [_period(ctx)]
    for _ in range(ctx.config.feedback.index_periods - 1):
        previous = periods[-1]
        months = previous.year * 12 + previous.month - 1 - every
        periods.append(date(months // 12, months % 12 + 1, 1))
    return periods


@handler(needs=Need.CADRE)
def show_index(ctx: Ctx) -> None:
    """Button: the satisfaction index of my units, this period and the ones before (hidden below 5 ratings)."""
    periods = _periods(ctx)
    units = _scope_units(ctx)
    cells = feedback.satisfaction_index(ctx.session, units, periods)
    by_unit: dict[str, list[feedback.IndexCell]] = {}
    for cell in cells:
        by_unit.setdefault(cell.unit_code, []).append(cell)
    rows = [
        {"unit": ctx.config.unit(code).name(ctx.locale), "cells": [{"count": c.count, "mean": c.mean} for c in cs]}
        for code, cs in by_unit.items()
    ]
    notes = []
    if len(units) == 1:
        notes = feedback.comments(ctx.session, units[0], periods[0], COMMENTS_SHOWN)
    keyboard = [[ctx.button("feedback_csv", SatisfactionCsv())], [ctx.button("feedback_queue", Queue())]]
    ctx.show(
        "feedback/index",
        keyboard,
        rows=rows,
        periods=periods,
        every=ctx.config.feedback.satisfaction_every_months,
        minimum=feedback.MIN_SHOWN,
        comments=notes,
    )


@handler(needs=Need.CADRE)
def export_index(ctx: Ctx) -> None:
    """Button: the satisfaction index of my units as CSV (means below 5 ratings left empty)."""
    periods = _periods(ctx)
    cells = feedback.satisfaction_index(ctx.session, _scope_units(ctx), periods)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["unit_code", "unit", "period_start", "ratings", "mean"])
    for cell in cells:
        unit = ctx.config.unit(cell.unit_code)
        mean = "" if cell.mean is None else f"{cell.mean:.2f}"
        writer.writerow([cell.unit_code, unit.name(ctx.locale), cell.period.isoformat(), cell.count, mean])
    name = f"satisfaction-{ctx.today.isoformat()}.csv"
    ctx.send_document(out.getvalue().encode("utf-8-sig"), name, "feedback/csv_caption", minimum=feedback.MIN_SHOWN)


SECTION = Section(
    "feedback",
    commands=(Command("feedback", show_home, menu_order=70),),
    buttons={
        FeedbackHome: show_home,
        Write: start_write,
        MyThreads: show_my_threads,
        MyThread: show_my_thread,
        AnswerBack: start_answer,
        Queue: show_queue,
        CadreThread: show_cadre_thread,
        ReplyThread: start_reply,
        CloseThread: close_thread,
        RateUnion: rate_union,
        SubmitRating: submit_rating,
        SatisfactionIndex: show_index,
        SatisfactionCsv: export_index,
    },
    flows={WRITE_FLOW: write_text, ANSWER_FLOW: answer_text, REPLY_FLOW: reply_text, RATE_FLOW: rate_comment},
    admin_entries=(("feedback_admin", Queue()),),
)
