"""Home menu (首页), /help, /cancel, and what happens to stray text and unknown commands.

The menu is built from the commands every installed section declares (those with a menu_order),
so a new section appears here by declaring itself, without editing a list in this file.
"""

from __future__ import annotations

import logging

from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    MenuButtonCommands,
    MenuButtonWebApp,
    Update,
    WebAppInfo,
)
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from buttons import parse
from buttons.menu import CancelFlow, Home, OpenSection
from handlers import forms
from handlers.base import Command, Ctx, Need, Section, answer_query, handler, runtime_of, services_of
from messages import LOCALES, pick_locale
from models import members
from models.errors import BadInput
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
    return [c for c in ctx.runtime.commands if c.needs <= level]


def home_keyboard(ctx: Ctx) -> list[list[InlineKeyboardButton]]:
    """The home menu: one button per section this user may open (built once per language and standing)."""

    def build() -> list[list[InlineKeyboardButton]]:
        entries = sorted((c for c in available(ctx) if c.menu_order is not None), key=lambda c: c.menu_order)
        buttons = [ctx.button(f"menu.{c.name}", OpenSection(c.name)) for c in entries]
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
    active = ctx.flow()
    had_flow = active is not None and ctx.clear_flow(active.name)
    keyboard = home_keyboard(ctx) if ctx.actor.verified else None
    ctx.show("menu/cancelled", keyboard, had_flow=had_flow)


@handler(write=True, needs=Need.ANYONE)
def on_text(ctx: Ctx) -> None:
    """Plain text: the next step of the user's flow, or a hint towards the menu."""
    flow = ctx.flow()
    step = ctx.runtime.flows.get(flow.name) if flow else None
    if step is None:
        ctx.reply("menu/hint", registered=ctx.actor.verified)
        return
    step(ctx, ctx.update.effective_message.text or "")


@handler(write=True, needs=Need.ANYONE)
def on_media(ctx: Ctx) -> None:
    """A photo, video, file, sticker, location...: the next step of the user's flow when it takes one (the section's
    media step, or a form's photo question), a clear answer when it wants text, the menu hint outside any flow."""
    message = ctx.update.effective_message
    flow = ctx.flow()
    if flow is None:
        ctx.reply("menu/hint", registered=ctx.actor.verified)
        return
    step = ctx.runtime.media.get(flow.name)
    if step is not None:
        step(ctx, message)
    elif flow.name in forms.FORMS:
        forms.answer_media(ctx, message)
    else:
        raise BadInput("text_expected")


@handler(needs=Need.ANYONE)
def unknown_command(ctx: Ctx) -> None:
    """A command the bot does not have: say so and point to /help."""
    ctx.reply("menu/unknown_command", registered=ctx.actor.verified)


async def open_section(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Menu button: run the section's own command handler (which checks permissions itself)."""
    pressed = parse(update.callback_query.data)
    name = pressed.command if isinstance(pressed, OpenSection) else ""
    command = next((c for c in runtime_of(context).commands if c.name == name), None)
    if command is None:
        user = update.effective_user
        locale = pick_locale(user.language_code if user else None)
        await answer_query(update.callback_query, services_of(context).renderer.render(locale, "errors/button_expired"))
        return
    await command.callback(update, context)


def command_list(app: Application, locale: str, level: Need) -> list[BotCommand]:
    """The command list shown in Telegram's menu for one language and standing."""
    renderer = services_of(app).renderer
    commands = [c for c in runtime_of(app).commands if c.needs <= level]
    return [BotCommand(c.name, renderer.label(locale, f"cmd.{c.name}")) for c in commands]


async def publish_chat_commands(app: Application, telegram_id: int) -> None:
    """Give one user's private chat the command list of their standing (after a promotion or demotion)."""
    services = services_of(app)
    actor = await services.db.read(load_actor, telegram_id, services.config.admin_ids)
    language = actor.member.language if actor.member else services.config.default_language
    try:
        await app.bot.set_my_commands(
            command_list(app, pick_locale(language), standing(actor)), scope=BotCommandScopeChat(telegram_id)
        )
    except (BadRequest, Forbidden) as exc:
        # Someone who never opened the bot has no chat with it yet.
        log.info("no chat-scoped commands for one staff member: %s", exc)
        return
    url = services.config.insight.webapp_url
    if url:
        # Cadres open the Insight Mini App from the menu button; everyone else keeps the command menu.
        label = services.renderer.label(pick_locale(language), "insight_webapp")
        button = MenuButtonWebApp(label, WebAppInfo(url)) if actor.is_cadre else MenuButtonCommands()
        try:
            await app.bot.set_chat_menu_button(chat_id=telegram_id, menu_button=button)
        except (BadRequest, Forbidden) as exc:
            log.info("no menu button for one staff member: %s", exc)


async def publish_commands(app: Application) -> None:
    """At start-up: member commands for private chats per language (groups get none: there they only redirect),
    fuller lists in staff chats, and the description an empty chat shows before /start."""
    services = services_of(app)
    await app.bot.delete_my_commands(scope=BotCommandScopeDefault())
    default = command_list(app, services.config.default_language, Need.VERIFIED)
    await app.bot.set_my_commands(default, scope=BotCommandScopeAllPrivateChats())
    for locale in LOCALES:
        commands = command_list(app, locale, Need.VERIFIED)
        await app.bot.set_my_commands(commands, scope=BotCommandScopeAllPrivateChats(), language_code=locale)
        org = services.config.org_name(locale)
        try:
            await app.bot.set_my_description(services.renderer.render(locale, "menu/description", org=org), locale)
            short = services.renderer.render(locale, "menu/short_description", org=org)
            await app.bot.set_my_short_description(short, locale)
        except TelegramError as exc:  # a self-hosted Bot API may not know these; commands matter more
            log.warning("could not set the bot's description (%s): %s", locale, exc)
    staff = set(await services.db.read(members.staff_telegram_ids))
    for telegram_id in sorted(staff | services.config.admin_ids):
        await publish_chat_commands(app, telegram_id)


SECTION = Section(
    "menu",
    commands=(
        Command("menu", show_menu),
        Command("help", show_help),
        Command("cancel", cancel_flow),
    ),
    buttons={
        OpenSection: open_section,
        Home: show_menu,
        CancelFlow: cancel_flow,
    },
)
# After every section's handlers: stray text and unknown commands (edited messages are never handled again).
# Messages that are not text: what a user may send in a private chat, in a flow or not (handlers/menu.py on_media).
MEDIA = (
    filters.PHOTO
    | filters.VIDEO
    | filters.ANIMATION
    | filters.Document.ALL
    | filters.AUDIO
    | filters.VOICE
    | filters.VIDEO_NOTE
    | filters.Sticker.ALL
    | filters.LOCATION
    | filters.VENUE
    | filters.CONTACT
    | filters.POLL
    | filters.Dice.ALL
    | filters.STORY
)

FALLBACKS = (
    MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE, on_text),
    MessageHandler(filters.UpdateType.MESSAGE & filters.COMMAND & filters.ChatType.PRIVATE, unknown_command),
    MessageHandler(filters.UpdateType.MESSAGE & MEDIA & filters.ChatType.PRIVATE, on_media),
)
