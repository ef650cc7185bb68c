"""Home menu (首页), /help, /cancel, and what happens to stray text and unknown commands.

The menu is built from the commands every handler module declares (COMMANDS with a menu_order),
so a new section appears here by declaring itself, without editing a list in this file.
"""

from __future__ import annotations

import logging

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, InlineKeyboardButton, Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from handlers.base import Command, Ctx, Need, Services, answer_query, handler, services_of
from handlers.callback_data import BadCallback, Cb, parse
from messages import LOCALES, pick_locale
from models import flows, members
from models.members import Actor, load_actor

log = logging.getLogger(__name__)

MENU_BUTTONS_PER_ROW = 2


def standing(actor: Actor) -> Need:
    """The highest Need this actor satisfies."""
    if actor.is_admin:
        return Need.ADMIN
    if actor.is_cadre:
        return Need.CADRE
    return Need.VERIFIED if actor.verified else Need.ANYONE


def available(ctx: Ctx) -> list[Command]:
    """Commands this user may use, in menu order then by name."""
    level = standing(ctx.actor)
    return [c for c in ctx.services.commands if c.needs <= level]


def home_keyboard(ctx: Ctx) -> list[list[InlineKeyboardButton]]:
    """The home menu: one button per section this user may open (built once per language and standing)."""

    def build() -> list[list[InlineKeyboardButton]]:
        entries = sorted((c for c in available(ctx) if c.menu_order is not None), key=lambda c: c.menu_order)
        buttons = [ctx.button(f"menu.{c.name}", Cb.OPEN_SECTION, c.name) for c in entries]
        return [buttons[i : i + MENU_BUTTONS_PER_ROW] for i in range(0, len(buttons), MENU_BUTTONS_PER_ROW)]

    return ctx.keyboard(f"home:{standing(ctx.actor).name}", build)


@handler(needs=Need.VERIFIED)
def show_menu(ctx: Ctx) -> None:
    """/menu and the Home button: the sections as buttons."""
    ctx.show("menu/home", home_keyboard(ctx), name=ctx.member.name, org=ctx.config.org_name(ctx.locale))


@handler(needs=Need.ANYONE)
def show_help(ctx: Ctx) -> None:
    """/help: every command this user may use, with what it does."""
    commands = [(c.name, ctx.label(f"cmd.{c.name}")) for c in available(ctx)]
    ctx.reply("menu/help", commands=commands, registered=ctx.actor.verified, org=ctx.config.org_name(ctx.locale))


@handler(write=True, needs=Need.ANYONE)
def cancel_flow(ctx: Ctx) -> None:
    """/cancel or a Cancel button: leave whatever multi-step flow the user is in."""
    had_flow = flows.clear_flow(ctx.session, ctx.actor.telegram_id)
    keyboard = home_keyboard(ctx) if ctx.actor.verified else None
    ctx.show("menu/cancelled", keyboard, had_flow=had_flow)


@handler(write=True, needs=Need.ANYONE)
def on_text(ctx: Ctx) -> None:
    """Plain text: the next step of the user's flow, or a hint towards the menu."""
    flow = flows.get_flow(ctx.session, ctx.actor.telegram_id)
    step = ctx.services.flows.get(flow.name) if flow else None
    if step is None:
        ctx.reply("menu/hint", registered=ctx.actor.verified)
        return
    step(ctx, ctx.update.effective_message.text or "")


@handler(needs=Need.ANYONE)
def unknown_command(ctx: Ctx) -> None:
    """A command the bot does not have: say so and point to /help."""
    ctx.reply("menu/unknown_command", registered=ctx.actor.verified)


async def open_section(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Menu button: run the section's own command handler (which checks permissions itself)."""
    services = services_of(context)
    query = update.callback_query
    try:
        name = parse(query.data).str_arg()
    except BadCallback:
        name = ""
    command = next((c for c in services.commands if c.name == name), None)
    if command is None:
        user = update.effective_user
        locale = pick_locale(user.language_code if user else None)
        await answer_query(query, services.renderer.label(locale, "button_expired"))
        return
    await command.callback(update, context)


COMMANDS = (
    Command("menu", show_menu),
    Command("help", show_help),
    Command("cancel", cancel_flow),
)


BUTTONS = {
    Cb.OPEN_SECTION: open_section,
    Cb.HOME: show_menu,
    Cb.CANCEL_FLOW: cancel_flow,
}


def register_fallbacks(app: Application) -> None:
    """Handlers that must come after every section's: stray text and unknown commands."""
    private = filters.ChatType.PRIVATE
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & private, on_text))
    app.add_handler(MessageHandler(filters.COMMAND & private, unknown_command))


def command_handler(command: Command) -> CommandHandler:
    """The PTB CommandHandler for a declared command."""
    return CommandHandler(command.name, command.callback)


def command_list(services: Services, locale: str, level: Need) -> list[BotCommand]:
    """The command list shown in Telegram's menu for one language and standing."""
    return [
        BotCommand(c.name, services.renderer.label(locale, f"cmd.{c.name}"))
        for c in services.commands
        if c.needs <= level
    ]


async def publish_chat_commands(app: Application, telegram_id: int) -> None:
    """Give one user's private chat the command list of their standing (after a promotion or demotion)."""
    services = services_of(app)
    actor = await services.db.read(load_actor, telegram_id, services.config.admin_ids)
    language = actor.member.language if actor.member else services.config.default_language
    try:
        await app.bot.set_my_commands(
            command_list(services, pick_locale(language), standing(actor)), scope=BotCommandScopeChat(telegram_id)
        )
    except (BadRequest, Forbidden) as exc:
        # Someone who never opened the bot has no chat with it yet.
        log.info("no chat-scoped commands for one staff member: %s", exc)


async def publish_commands(app: Application) -> None:
    """setMyCommands at start-up: member commands per language; fuller lists in staff chats."""
    services = services_of(app)
    default = command_list(services, services.config.default_language, Need.VERIFIED)
    await app.bot.set_my_commands(default, scope=BotCommandScopeDefault())
    for locale in LOCALES:
        commands = command_list(services, locale, Need.VERIFIED)
        await app.bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=locale)
    staff = set(await services.db.read(members.staff_telegram_ids))
    for telegram_id in sorted(staff | services.config.admin_ids):
        await publish_chat_commands(app, telegram_id)
