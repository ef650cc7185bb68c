"""Joining (入会): /start, registration steps, deep links, and cadres' /approve."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton

from buttons.members import ApproveMember, DeclineMember, PendingPage, PickUnit, WithdrawRequest
from buttons.menu import CancelFlow
from handlers.base import Command, Ctx, Need, Section, handler
from handlers.menu import home_keyboard
from messages import pick_locale
from models import members
from models.errors import DomainError, NotFound
from models.members import Member, Status

log = logging.getLogger(__name__)

FLOW = "register"
STEP_UNIT, STEP_EMPLOYEE_NO, STEP_NAME = "unit", "employee_no", "name"
UNIT_BUTTONS_PER_ROW = 2
INVITE_PREFIX = "u_"


def _unit_keyboard(ctx: Ctx) -> list[list[InlineKeyboardButton]]:
    """Every unit as a button, and Cancel (built once per language)."""

    def build() -> list[list[InlineKeyboardButton]]:
        buttons = [
            InlineKeyboardButton(unit.name(ctx.locale), callback_data=PickUnit(unit.code).pack())
            for unit in ctx.config.units
        ]
        rows = [buttons[i : i + UNIT_BUTTONS_PER_ROW] for i in range(0, len(buttons), UNIT_BUTTONS_PER_ROW)]
        return [*rows, [ctx.button("cancel", CancelFlow())]]

    return ctx.keyboard("units", build)


def _cancel_row(ctx: Ctx) -> list[list[InlineKeyboardButton]]:
    return [[ctx.button("cancel", CancelFlow())]]


@handler(write=True, needs=Need.ANYONE)
def start(ctx: Ctx) -> None:
    """/start [u_<unit>]: welcome back a member, or begin registration (an invite preselects the unit)."""
    actor = ctx.actor
    payload = ctx.args[0] if ctx.args else ""
    for prefix, open_link in ctx.runtime.deep_links.items():
        if payload.startswith(prefix):
            open_link(ctx, payload[len(prefix) :])
            return
    if actor.verified:
        ctx.clear_flow(FLOW)
        ctx.reply("menu/home", home_keyboard(ctx), name=ctx.member.name, org=ctx.config.org_name(ctx.locale))
        return
    if actor.member is not None and actor.member.status == Status.PENDING:
        unit = ctx.config.unit(actor.member.unit_code)
        ctx.reply(
            "members/waiting",
            [[ctx.button("withdraw_request", WithdrawRequest())]],
            unit=unit.name(ctx.locale) if unit else actor.member.unit_code,
        )
        return
    payload = ctx.args[0] if ctx.args else ""
    unit = ctx.config.unit(payload[len(INVITE_PREFIX) :]) if payload.startswith(INVITE_PREFIX) else None
    if unit is not None:
        ctx.set_flow(FLOW, STEP_EMPLOYEE_NO, {"unit": unit.code})
        ctx.reply("members/ask_employee_no", _cancel_row(ctx), unit=unit.name(ctx.locale), invited=True)
        return
    ctx.set_flow(FLOW, STEP_UNIT, {})
    ctx.reply(
        "members/welcome",
        _unit_keyboard(ctx),
        org=ctx.config.org_name(ctx.locale),
        bad_invite=payload.startswith(INVITE_PREFIX),
    )


@handler(write=True, needs=Need.ANYONE)
def pick_unit(ctx: Ctx) -> None:
    """Button: the applicant chose their unit."""
    if ctx.actor.member is not None:
        raise DomainError("already_registered" if ctx.actor.verified else "already_pending")
    unit = ctx.config.unit(ctx.pressed(PickUnit).unit)
    if unit is None:
        raise NotFound("unit_unknown")
    ctx.set_flow(FLOW, STEP_EMPLOYEE_NO, {"unit": unit.code})
    ctx.show("members/ask_employee_no", _cancel_row(ctx), unit=unit.name(ctx.locale), invited=False)


def registration_text(ctx: Ctx, text: str) -> None:
    """A message typed during registration: the employee number, then the name."""
    flow = ctx.section_flow(FLOW)
    limits = ctx.config.limits
    if flow is None or flow.step == STEP_UNIT:
        ctx.reply("members/pick_unit_first", _unit_keyboard(ctx))
        return
    unit_code = flow.data["unit"]
    if flow.step == STEP_EMPLOYEE_NO:
        employee_no = members.clean_employee_no(text, limits.employee_no_pattern)
        if members.find_member(ctx.session, unit_code, employee_no) is not None:
            raise DomainError("employee_no_taken")
        data = {"unit": unit_code, "employee_no": employee_no}
        ctx.set_flow(FLOW, STEP_NAME, data)
        ctx.reply("members/ask_name", _cancel_row(ctx), employee_no=employee_no)
        return
    name = members.clean_name(text, limits.name_max_length)
    member = members.register(ctx.session, ctx.actor.telegram_id, unit_code, flow.data["employee_no"], name, ctx.locale)
    ctx.clear_flow(FLOW)
    unit = ctx.config.unit(unit_code)
    if member.verified:
        ctx.reply("members/verified", name=name, unit=unit.name(ctx.locale), org=ctx.config.org_name(ctx.locale))
        return
    ctx.reply("members/pending", unit=unit.name(ctx.locale))
    _notify_cadres(ctx, member)


def _notify_cadres(ctx: Ctx, member: Member) -> None:
    """Tell the unit's cadres (and the configured admins) that a request waits, in each one's language."""
    recipients: dict[int, str] = {}
    for cadre in members.cadres_of(ctx.session, member.unit_code):
        if cadre.telegram_id and not cadre.blocked_bot:
            recipients[cadre.telegram_id] = cadre.language
    # A configured admin reads the language they chose as a member, or the one Telegram last told us.
    chosen = members.languages_of(ctx.session, ctx.config.admin_ids)
    for admin_id in ctx.config.admin_ids:
        language = chosen.get(admin_id) or ctx.services.locales.get(admin_id) or ctx.config.default_language
        recipients.setdefault(admin_id, language)
    unit = ctx.config.unit(member.unit_code)
    for telegram_id, language in recipients.items():
        locale = pick_locale(language)
        text = ctx.t("members/new_request", locale, member=member, unit=unit.name(locale))
        ctx.notify(telegram_id, text, _decision_row(ctx, member, locale))


def _decision_row(ctx: Ctx, member: Member, locale: str) -> list[list[InlineKeyboardButton]]:
    return [
        [
            InlineKeyboardButton(ctx.label("approve", locale), callback_data=ApproveMember(member.id).pack()),
            InlineKeyboardButton(ctx.label("decline", locale), callback_data=DeclineMember(member.id).pack()),
        ]
    ]


@handler(write=True, needs=Need.ANYONE)
def withdraw_request(ctx: Ctx) -> None:
    """Button: a pending applicant takes back their request and may register again."""
    members.withdraw_request(ctx.session, ctx.actor.telegram_id)
    ctx.show("members/withdrawn")


@handler(needs=Need.CADRE)
def list_pending(ctx: Ctx) -> None:
    """/approve: registration requests waiting for this cadre, with Approve/Decline buttons."""
    page = ctx.pressed(PendingPage).page if ctx.callback else 0
    size = ctx.config.limits.pending_page_size
    rows = members.pending_members(ctx.session, ctx.actor, size + 1, page * size)
    keyboard = []
    for member in rows[:size]:
        keyboard.append(
            [
                ctx.button("approve_named", ApproveMember(member.id), name=member.name),
                ctx.button("decline", DeclineMember(member.id)),
            ]
        )
    keyboard += ctx.pager(PendingPage, page=page, has_next=len(rows) > size)
    units = {u.code: u.name(ctx.locale) for u in ctx.config.units}
    ctx.show("members/pending_list", keyboard, requests=rows[:size], units=units, page=page)


def _decide(ctx: Ctx, approve: bool) -> None:
    decision = ctx.pressed(ApproveMember if approve else DeclineMember)
    member = members.decide(ctx.session, ctx.actor, decision.member_id, approve)
    unit = ctx.config.unit(member.unit_code)
    ctx.show(
        "members/decided",
        approved=approve,
        member=member,
        unit=unit.name(ctx.locale) if unit else member.unit_code,
    )
    if member.telegram_id:
        locale = pick_locale(member.language)
        text = ctx.t("members/decision_notice", locale, approved=approve, org=ctx.config.org_name(locale))
        ctx.notify(member.telegram_id, text)


@handler(write=True, needs=Need.CADRE)
def approve_member(ctx: Ctx) -> None:
    """Button: a cadre of the member's unit approves the request."""
    _decide(ctx, True)


@handler(write=True, needs=Need.CADRE)
def decline_member(ctx: Ctx) -> None:
    """Button: a cadre of the member's unit declines the request."""
    _decide(ctx, False)


SECTION = Section(
    "members",
    commands=(
        Command("start", start),
        Command("approve", list_pending),
    ),
    buttons={
        PickUnit: pick_unit,
        WithdrawRequest: withdraw_request,
        PendingPage: list_pending,
        ApproveMember: approve_member,
        DeclineMember: decline_member,
    },
    flows={FLOW: registration_text},
)
