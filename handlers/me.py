"""Me (我的): profile, language, ranking opt-out, export my data, delete my account; /lang."""

from __future__ import annotations

import json

from handlers.base import Command, Ctx, Need, handler
from handlers.callback_data import Cb
from messages import LOCALES
from models import flows, members, points
from models.errors import BadInput
from models.me import export_member


def _me_keyboard(ctx: Ctx) -> list:
    other = "en" if ctx.locale == "zh" else "zh"
    return [
        [ctx.button(f"language_{other}", Cb.SET_LANGUAGE, other)],
        [ctx.button("ranking_show" if ctx.member.ranking_opt_out else "ranking_hide", Cb.TOGGLE_RANKING)],
        [ctx.button("export_data", Cb.EXPORT_DATA), ctx.button("delete_account", Cb.DELETE_ACCOUNT)],
        [ctx.button("home", Cb.HOME)],
    ]


def _render_profile(ctx: Ctx) -> None:
    member = ctx.member
    roles = members.roles_of(ctx.session, member.id)
    unit = ctx.config.unit(member.unit_code)
    units = {u.code: u.name(ctx.locale) for u in ctx.config.units}
    ctx.show(
        "me/profile",
        _me_keyboard(ctx),
        member=member,
        unit=unit.name(ctx.locale) if unit else member.unit_code,
        roles=[(r.role, units.get(r.unit_code) if r.unit_code else None) for r in roles],
        balance=points.balance_of(ctx.session, member.id),
        is_admin=ctx.actor.is_admin,
    )


@handler(needs=Need.VERIFIED)
def show_me(ctx: Ctx) -> None:
    """/me: my profile and settings."""
    _render_profile(ctx)


@handler(write=True, needs=Need.VERIFIED)
def set_language(ctx: Ctx) -> None:
    """Button or /lang [zh|en]: switch the language the bot speaks to me."""
    if ctx.callback is not None:
        language = ctx.callback.str_arg()
    elif ctx.args:
        language = ctx.args[0].lower()
    else:
        language = "en" if ctx.locale == "zh" else "zh"
    if language not in LOCALES:
        raise BadInput("language_unknown")
    members.set_language(ctx.session, ctx.member.id, language)
    ctx.member.language = language
    ctx.locale = language
    if ctx.callback is not None:
        _render_profile(ctx)
    else:
        ctx.reply("me/language_set")


@handler(write=True, needs=Need.VERIFIED)
def toggle_ranking(ctx: Ctx) -> None:
    """Button: appear in, or leave, the monthly ranking."""
    ctx.member.ranking_opt_out = members.toggle_ranking_opt_out(ctx.session, ctx.member.id)
    _render_profile(ctx)


@handler(needs=Need.VERIFIED)
def export_data(ctx: Ctx) -> None:
    """Button: a JSON document with everything stored about me."""
    data = export_member(ctx.session, ctx.member.id)
    content = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode()
    ctx.send_document(content, "gongshe-my-data.json", "me/export_caption")
    ctx.toast = ctx.label("export_ready")


@handler(needs=Need.VERIFIED)
def ask_delete(ctx: Ctx) -> None:
    """Button: explain what deleting my account does, and ask to confirm."""
    ctx.show(
        "me/confirm_delete",
        [[ctx.button("confirm_delete", Cb.CONFIRM_DELETE)], [ctx.button("keep_account", Cb.ME_HOME)]],
    )


@handler(write=True, needs=Need.VERIFIED)
def delete_account(ctx: Ctx) -> None:
    """Button: erase my personal data; my ledger stays, anonymised, so totals stay right."""
    members.erase_member(ctx.session, ctx.member.id)
    flows.clear_flow(ctx.session, ctx.actor.telegram_id)
    ctx.show("me/deleted")


COMMANDS = (
    Command("me", show_me, menu_order=90),
    Command("lang", set_language),
)


BUTTONS = {
    Cb.ME_HOME: show_me,
    Cb.SET_LANGUAGE: set_language,
    Cb.TOGGLE_RANKING: toggle_ranking,
    Cb.EXPORT_DATA: export_data,
    Cb.DELETE_ACCOUNT: ask_delete,
    Cb.CONFIRM_DELETE: delete_account,
}
