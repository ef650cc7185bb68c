"""Me (我的): profile, language, ranking opt-out, export my data, delete my account; /lang."""

from __future__ import annotations

import json

from buttons.broadcasts import MuteMenu
from buttons.me import ConfirmDelete, DeleteAccount, ExportData, MeHome, SetLanguage, ToggleDigest, ToggleRanking
from buttons.menu import Home
from handlers.base import Command, Ctx, Need, Section, handler
from handlers.clubs import remove_from_groups
from handlers.menu import publish_chat_commands
from messages import LOCALES
from models import insight, me, members, points
from models.errors import BadInput


def _me_keyboard(ctx: Ctx) -> list:
    other = "en" if ctx.locale == "zh" else "zh"
    return [
        [ctx.button(f"language_{other}", SetLanguage(other))],
        [ctx.button("ranking_show" if ctx.member.ranking_opt_out else "ranking_hide", ToggleRanking())],
        *_staff_rows(ctx),
        [ctx.button("broadcast_mutes", MuteMenu())],
        [ctx.button("export_data", ExportData()), ctx.button("delete_account", DeleteAccount())],
        [ctx.button("home", Home())],
    ]


def _staff_rows(ctx: Ctx) -> list:
    """Cadres and admins: the weekly Insight digest, on or off."""
    if not ctx.actor.is_cadre:
        return []
    on = insight.digest_on(ctx.session, ctx.member.id)
    return [[ctx.button("digest_on" if on else "digest_off", ToggleDigest())]]


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
        language = ctx.pressed(SetLanguage).language
    elif ctx.args:
        language = ctx.args[0].lower()
    else:
        language = "en" if ctx.locale == "zh" else "zh"
    if language not in LOCALES:
        raise BadInput("language_unknown")
    # One conditional UPDATE; it also refreshes ctx.member in this session (no ORM write of the row at COMMIT).
    members.set_language(ctx.session, ctx.member.id, language)
    ctx.locale = language
    if ctx.actor.is_cadre or ctx.actor.is_admin:
        # Staff have a command list of their own in this chat: it follows the new language too.
        app, telegram_id = ctx.context.application, ctx.actor.telegram_id
        ctx.after_commit.append(lambda: publish_chat_commands(app, telegram_id))
    if ctx.callback is not None:
        _render_profile(ctx)
    else:
        ctx.reply("me/language_set")


@handler(write=True, needs=Need.VERIFIED)
def toggle_ranking(ctx: Ctx) -> None:
    """Button: appear in, or leave, the monthly ranking."""
    members.toggle_ranking_opt_out(ctx.session, ctx.member.id)
    _render_profile(ctx)


@handler(write=True, needs=Need.CADRE)
def toggle_digest(ctx: Ctx) -> None:
    """Button (cadres): turn the weekly Insight digest off, or on again."""
    insight.toggle_digest(ctx.session, ctx.member.id)
    _render_profile(ctx)


@handler(needs=Need.VERIFIED)
def export_data(ctx: Ctx) -> None:
    """Button: a JSON document with everything stored about me."""
    data = me.export_member(ctx.session, ctx.member.id, ctx.config.care_key)
    content = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode()
    ctx.send_document(content, "gongshe-my-data.json", "me/export_caption")
    ctx.toast = ctx.label("export_ready")


@handler(needs=Need.VERIFIED)
def ask_delete(ctx: Ctx) -> None:
    """Button: explain what deleting my account does, and ask to confirm."""
    ctx.show(
        "me/confirm_delete",
        [[ctx.button("confirm_delete", ConfirmDelete())], [ctx.button("keep_account", MeHome())]],
    )


@handler(write=True, needs=Need.VERIFIED)
def delete_account(ctx: Ctx) -> None:
    """Button: release my welfare claims (refunded), erase my personal data; the ledger stays, anonymised.
    After the commit the account leaves its clubs' linked groups."""
    telegram_id = ctx.member.telegram_id
    deleted = me.delete_account(ctx.session, ctx.member.id, ctx.now, ctx.config.timezone)
    remove_from_groups(ctx, deleted.club_groups, telegram_id)
    for item_id in deleted.restocked:
        ctx.committed.append(lambda item_id=item_id: ctx.services.soldout.forget(item_id))
    ctx.show("me/deleted")


SECTION = Section(
    "me",
    commands=(
        Command("me", show_me, menu_order=90),
        Command("lang", set_language),
    ),
    buttons={
        MeHome: show_me,
        SetLanguage: set_language,
        ToggleRanking: toggle_ranking,
        ToggleDigest: toggle_digest,
        ExportData: export_data,
        DeleteAccount: ask_delete,
        ConfirmDelete: delete_account,
    },
)
