"""Points (积分): /points with history, how to earn and the monthly ranking; cadres' /grant and /deduct."""

from __future__ import annotations

import re

from telegram import InlineKeyboardButton

from buttons.menu import Home
from buttons.points import PointsEarn, PointsHistory, PointsHome, PointsRanking
from handlers.base import Command, Ctx, Need, Section, handler
from messages import pick_locale
from models import members, points
from models.clock import to_local
from models.errors import BadInput, NotFound

# An amount as typed: ASCII digits, short enough that int() never refuses it.
WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def _points_nav(ctx: Ctx) -> list[InlineKeyboardButton]:
    return [
        ctx.button("points_history", PointsHistory(0)),
        ctx.button("points_earn", PointsEarn()),
        ctx.button("points_ranking", PointsRanking()),
    ]


@handler(needs=Need.VERIFIED)
def show_points(ctx: Ctx) -> None:
    """/points: balance and the ways into history, earning rules and ranking."""
    # The member row was loaded in this same transaction by the wrapper: its balance is current.
    ctx.show("points/balance", [_points_nav(ctx), [ctx.button("home", Home())]], balance=ctx.member.balance)


@handler(needs=Need.VERIFIED)
def show_history(ctx: Ctx) -> None:
    """Button: one page of my ledger, newest first."""
    page = ctx.pressed(PointsHistory).page
    size = ctx.config.limits.history_page_size
    entries, pages = points.history(ctx.session, ctx.member.id, page, size)
    page = min(page, pages - 1)
    rows = [
        {"at": to_local(e.created_at, ctx.config.timezone), "delta": e.delta, "rule": e.rule, "reason": e.reason}
        for e in entries
    ]
    keyboard = [
        *ctx.pager(PointsHistory, page=page, has_next=page + 1 < pages),
        [ctx.button("back", PointsHome())],
    ]
    ctx.show("points/history", keyboard, entries=rows, page=page, pages=pages)


@handler(needs=Need.VERIFIED)
def show_earning(ctx: Ctx) -> None:
    """Button: how points are earned, from the configured rules."""
    rules = [r for r in ctx.config.rules.values() if r.amount > 0]
    keyboard = [[ctx.button("back", PointsHome())]]
    ctx.show("points/earn", keyboard, rules=rules, community=ctx.config.community)


@handler(needs=Need.VERIFIED)
def show_ranking(ctx: Ctx) -> None:
    """Button: this month's top earners in my unit (members who opted out are not listed)."""
    month_start = ctx.today.replace(day=1)
    size = ctx.config.limits.ranking_size
    ranking = points.monthly_ranking(ctx.session, ctx.member.unit_code, month_start, size)
    unit = ctx.config.unit(ctx.member.unit_code)
    ctx.show(
        "points/ranking",
        [[ctx.button("back", PointsHome())]],
        ranking=ranking,
        me=ctx.member.id,
        opted_out=ctx.member.ranking_opt_out,
        unit=unit.name(ctx.locale) if unit else ctx.member.unit_code,
        month=month_start,
    )


def _adjust(ctx: Ctx, sign: int) -> None:
    """Shared by /grant and /deduct: <unit> <employee_no> <amount> <reason…>."""
    if len(ctx.args) < 4:
        raise BadInput("grant_usage", command="grant" if sign > 0 else "deduct")
    unit_code, employee_no, amount_text, *reason_words = ctx.args
    # ASCII digits only: "²".isdigit() is True yet int("²") fails, and "٣" or "３" are not what a cadre means.
    if not WHOLE_NUMBER.fullmatch(amount_text):
        raise BadInput("amount_out_of_range", max=ctx.config.limits.grant_max_amount)
    target = members.find_member(ctx.session, unit_code.lower(), employee_no)
    if target is None:
        raise NotFound("member_unknown")
    amount = sign * int(amount_text)
    message = ctx.update.effective_message
    idem_key = f"adjust:{message.chat_id}:{message.message_id}"
    today = ctx.today
    reason = " ".join(reason_words)
    balance = points.adjust_by_cadre(ctx.session, ctx.actor, target, amount, reason, idem_key, today, ctx.config.limits)
    ctx.reply("points/adjusted", name=target.name, amount=amount, balance=balance, reason=reason)
    if target.telegram_id and not target.blocked_bot:
        locale = pick_locale(target.language)
        ctx.notify(
            target.telegram_id, ctx.t("points/adjusted_notice", locale, amount=amount, balance=balance, reason=reason)
        )


@handler(write=True, needs=Need.CADRE)
def grant_points(ctx: Ctx) -> None:
    """/grant <unit> <employee_no> <amount> <reason>: award points to a member of my unit."""
    _adjust(ctx, 1)


@handler(write=True, needs=Need.CADRE)
def deduct_points(ctx: Ctx) -> None:
    """/deduct <unit> <employee_no> <amount> <reason>: take points back (never below zero)."""
    _adjust(ctx, -1)


SECTION = Section(
    "points",
    commands=(
        Command("points", show_points, menu_order=10),
        Command("grant", grant_points),
        Command("deduct", deduct_points),
    ),
    buttons={
        PointsHome: show_points,
        PointsHistory: show_history,
        PointsEarn: show_earning,
        PointsRanking: show_ranking,
    },
)
