"""The one handler wrapper: session, current member, language, permissions, errors, replies.

Every handler is `async def name(ctx: Ctx) -> None`, decorated with `@handler(...)`. The wrapper
opens one transaction per update (read or write), loads the actor, checks the required standing,
runs the handler, commits once, and only then sends what the handler queued. A domain error rolls
back and its message is shown in the user's language. Sending after the commit means a reply never
claims something the database did not keep, and no network wait ever holds the database.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import html
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session
from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ContextTypes

from config import Config
from handlers.callback_data import BadCallback, Callback, Cb, pack, parse
from handlers.sending import ReplySender
from messages import Renderer, pick_locale
from models import inbox, members, outbox, vouchers
from models.clock import Clock, local_date
from models.db import Database
from models.errors import DomainError
from models.members import Actor
from models.stock_cache import SoldOutCache

log = logging.getLogger(__name__)

# Telegram shows at most 200 characters in a callback answer.
ALERT_MAX = 200
TAGS = re.compile(r"<[^>]+>")
# A reply waits at most this long for a flood-control pause before it is dropped and logged.
MAX_RETRY_AFTER = 30
SEND_ATTEMPTS = 2

PTBCallback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]
FastPath = Callable[["Services", Callback], DomainError | None]
# Users whose language is remembered for answers given from memory.
LOCALE_MEMORY = 100_000


@dataclass
class Services:
    """What every handler needs beside the update; one per Application (bot_data['services'])."""

    config: Config
    db: Database
    renderer: Renderer
    clock: Clock = field(default_factory=Clock)
    commands: list[Command] = field(default_factory=list)
    flows: dict[str, Callable[[Ctx, str], None]] = field(default_factory=dict)
    # /start payload prefixes (deep links) and what opens them, e.g. "r_" -> the voucher redeem screen.
    deep_links: dict[str, Callable[[Ctx, str], None]] = field(default_factory=dict)
    # Buttons sections add to the /admin overview: (label key, callback action).
    admin_entries: list[tuple[str, Cb]] = field(default_factory=list)
    # Keyboards that depend only on the language (and a key), built once: (key, locale) -> rows.
    keyboards: dict[tuple[str, str], list[list[InlineKeyboardButton]]] = field(default_factory=dict)
    # What each button does, from every section's BUTTONS (route_button dispatches by prefix).
    buttons: dict[Cb, PTBCallback] = field(default_factory=dict)
    # Replies are sent in the background, in order per chat (handlers/sending.py).
    replies: ReplySender = field(default_factory=lambda: ReplySender(deliver))
    # Items seen sold out lately (models/stock_cache.py), for presses answered before any database work.
    soldout: SoldOutCache = field(default_factory=SoldOutCache)
    # The language each recently seen user reads (for answers given before the member row is loaded).
    locales: dict[int, str] = field(default_factory=dict)

    def remember_locale(self, telegram_id: int, locale: str) -> None:
        """Keep a user's language for answers given from memory (bounded: forgotten wholesale when full)."""
        if len(self.locales) >= LOCALE_MEMORY and telegram_id not in self.locales:
            self.locales.clear()
        self.locales[telegram_id] = locale


def services_of(context: ContextTypes.DEFAULT_TYPE | Application) -> Services:
    """The Services object of this application."""
    app = context if isinstance(context, Application) else context.application
    return app.bot_data["services"]


class NeedsWrite(Exception):
    """Raised by Ctx.require_write() inside a read transaction; the wrapper retries with a write."""


class Need(enum.IntEnum):
    """Who may use a handler; checked on every command and every button press."""

    ANYONE = 0
    VERIFIED = 1
    CADRE = 2
    ADMIN = 3


@dataclass
class Outgoing:
    chat_id: int
    text: str = ""
    keyboard: InlineKeyboardMarkup | None = None
    edit: Message | None = None
    document: tuple[bytes, str] | None = None
    # A photo (bytes to upload, or a Telegram file_id) sent with `text` as its caption.
    photo: bytes | str | None = None


@dataclass
class Ctx:
    """One update being handled: the session, who is acting, their language, and queued replies."""

    update: Update
    context: ContextTypes.DEFAULT_TYPE
    services: Services
    session: Session
    actor: Actor
    locale: str
    callback: Callback | None = None
    writable: bool = False
    replies: list[Outgoing] = field(default_factory=list)
    toast: str | None = None
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Outbox rows this update wrote (the sender is woken after the commit instead of at its next poll).
    notices: int = 0
    # Plain callbacks run on the event loop as soon as the commit is done (e.g. forget a cached "sold out").
    committed: list[Callable[[], None]] = field(default_factory=list)

    def require_write(self) -> None:
        """In a read-only pass, stop here and run the update again in a write transaction.

        Lets a handler answer the common case (sold out, nothing to do) from a cheap read and pay
        for a write transaction only when it will really write.
        """
        if not self.writable:
            raise NeedsWrite()

    @property
    def config(self) -> Config:
        """The organisation's configuration."""
        return self.services.config

    @property
    def now(self) -> datetime:
        """The current moment from the one injectable clock (aware UTC)."""
        return self.services.clock.now()

    @property
    def today(self) -> date:
        """The organisation's calendar day now."""
        return local_date(self.config.timezone, self.now)

    @property
    def chat_id(self) -> int:
        """The chat the update came from."""
        return self.update.effective_chat.id

    @property
    def member(self) -> members.Member:
        """The current member (handlers that need VERIFIED always have one)."""
        assert self.actor.member is not None
        return self.actor.member

    @property
    def args(self) -> list[str]:
        """Words after the command."""
        return list(self.context.args or [])

    def t(self, template: str, locale: str | None = None, /, **kw: Any) -> str:
        """Render a message template in the user's (or the given) language."""
        return self.services.renderer.render(locale or self.locale, template, **kw)

    def label(self, key: str, locale: str | None = None, /, **kw: Any) -> str:
        """A button label in the user's (or the given) language."""
        return self.services.renderer.label(locale or self.locale, key, **kw)

    def button(self, key: str, action: Cb, /, *args: int | str, **kw: Any) -> InlineKeyboardButton:
        """An inline button with a label and packed callback data."""
        return InlineKeyboardButton(self.label(key, **kw), callback_data=pack(action, *args))

    def keyboard(
        self, key: str, build: Callable[[], list[list[InlineKeyboardButton]]]
    ) -> list[list[InlineKeyboardButton]]:
        """A keyboard that depends only on `key` and the language: built on first use, then reused."""
        cache = self.services.keyboards
        rows = cache.get((key, self.locale))
        if rows is None:
            rows = cache[(key, self.locale)] = build()
        return rows

    def pager(self, action: Cb, *ids: int | str, page: int, has_next: bool) -> list[list[InlineKeyboardButton]]:
        """The Previous/Next row of a paged list (no row at all on a single page)."""
        row = []
        if page > 0:
            row.append(self.button("prev", action, *ids, page - 1))
        if has_next:
            row.append(self.button("next", action, *ids, page + 1))
        return [row] if row else []

    def reply(self, template: str, keyboard: list[list[InlineKeyboardButton]] | None = None, /, **kw: Any) -> None:
        """Send a message to this chat after the commit."""
        markup = InlineKeyboardMarkup(keyboard) if keyboard else None
        self.replies.append(Outgoing(self.chat_id, self.t(template, **kw), markup))

    def show(self, template: str, keyboard: list[list[InlineKeyboardButton]] | None = None, /, **kw: Any) -> None:
        """Edit the pressed message in place (button presses) or send a new one (commands)."""
        markup = InlineKeyboardMarkup(keyboard) if keyboard else None
        query = self.update.callback_query
        message = query.message if query is not None and isinstance(query.message, Message) else None
        self.replies.append(Outgoing(self.chat_id, self.t(template, **kw), markup, edit=message))

    def show_photo(
        self, template: str, photo: bytes | str, keyboard: list[list[InlineKeyboardButton]] | None = None, /, **kw: Any
    ) -> None:
        """A photo with a caption: edits the caption of a pressed photo message, otherwise sends a new one."""
        markup = InlineKeyboardMarkup(keyboard) if keyboard else None
        query = self.update.callback_query
        message = query.message if query is not None and isinstance(query.message, Message) else None
        self.replies.append(Outgoing(self.chat_id, self.t(template, **kw), markup, edit=message, photo=photo))

    def notify(
        self,
        chat_id: int,
        text: str,
        keyboard: list[list[InlineKeyboardButton]] | None = None,
        /,
        *,
        kind: str = "notice",
        photo: str | None = None,
        dedupe_key: str | None = None,
    ) -> None:
        """A message that must not be lost (a notice to someone, a voucher): a durable outbox row.

        The row is written in this update's transaction, so it exists exactly when the change it reports
        does, and the outbox sender delivers it (personal lane first) even after a crash. The text is
        already rendered in the recipient's language. In a read pass this re-runs the update as a write.
        """
        self.require_write()
        markup = InlineKeyboardMarkup(keyboard).to_dict() if keyboard else None
        outbox.enqueue(
            self.session,
            chat_id,
            text,
            kind=kind,
            keyboard=markup,
            photo=photo,
            dedupe_key=dedupe_key,
            not_before=self.now,
            priority=outbox.PRIORITY_PERSONAL,
        )
        self.notices += 1

    def send_document(self, content: bytes, filename: str, caption_template: str, /, **kw: Any) -> None:
        """Send a file to this chat after the commit."""
        self.replies.append(Outgoing(self.chat_id, self.t(caption_template, **kw), document=(content, filename)))


async def deliver(app: Application, item: Outgoing) -> Message | bool | None:
    """Send one message, handling every Telegram error on purpose; never raises."""
    for attempt in range(SEND_ATTEMPTS):
        try:
            if item.photo is not None:
                return await _deliver_photo(app, item)
            if item.document is not None:
                content, filename = item.document
                return await app.bot.send_document(
                    item.chat_id, InputFile(content, filename=filename), caption=item.text or None
                )
            if item.edit is not None:
                try:
                    return await item.edit.edit_text(item.text, reply_markup=item.keyboard)
                except BadRequest as exc:
                    if "not modified" in str(exc).lower():
                        return None
                    # Too old, deleted or not a text message: say it in a new message instead.
                    log.info("edit failed (%s); sending a new message", exc)
                    item = Outgoing(item.chat_id, item.text, item.keyboard)
                    continue
            return await app.bot.send_message(item.chat_id, item.text, reply_markup=item.keyboard)
        except RetryAfter as exc:
            wait = exc.retry_after if isinstance(exc.retry_after, int | float) else exc.retry_after.total_seconds()
            if wait > MAX_RETRY_AFTER or attempt + 1 == SEND_ATTEMPTS:
                log.warning("flood control: dropping a reply after retry_after=%s", wait)
                return None
            await asyncio.sleep(wait)
        except Forbidden:
            log.info("chat %s blocked the bot or left; marking it", item.chat_id)
            await services_of(app).db.write(members.mark_blocked, item.chat_id)
            return None
        except (TimedOut, NetworkError) as exc:
            if attempt + 1 == SEND_ATTEMPTS:
                log.warning("giving up on a reply after %s", type(exc).__name__)
                return None
        except BadRequest as exc:
            log.warning("Telegram refused a reply: %s", exc)
            return None
    return None


async def _deliver_photo(app: Application, item: Outgoing) -> Message | bool:
    """A photo message: a pressed photo message gets a new caption, anything else a new photo message."""
    if item.edit is not None and item.edit.photo:
        try:
            return await item.edit.edit_caption(item.text, reply_markup=item.keyboard)
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return True
            raise
    photo = item.photo
    code = vouchers.code_of_qr_ref(photo)
    if code is not None:
        # Drawing a QR image takes milliseconds of CPU: off the event loop.
        photo = await asyncio.to_thread(vouchers.voucher_qr_png, code, app.bot.username)
    photo = InputFile(photo, filename="photo.png") if isinstance(photo, bytes) else photo
    return await app.bot.send_photo(item.chat_id, photo, caption=item.text, reply_markup=item.keyboard)


def wake_outbox(app: Application) -> None:
    """New outbox rows were committed: let the sender (when this process runs one) look now."""
    sender = app.bot_data.get("outbox")
    if sender is not None:
        sender.wake()


def _requires_private(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type != ChatType.PRIVATE


def handler(
    *, write: bool = False, needs: Need = Need.VERIFIED, private: bool = True, fast: FastPath | None = None
) -> Callable[[Callable[[Ctx], None]], PTBCallback]:
    """Wrap `def fn(ctx)` into a PTB callback: one atomic unit of database work, the permission check, replies.

    The handler body is plain synchronous code and runs where the database says (models/db.py): the SQLite
    writer thread (write=True, group commit) or a reader thread (write=False, a read-only snapshot). It
    may call model functions with ctx.session and queue replies; they are sent on the event loop after the
    COMMIT. A read pass may call ctx.require_write() to be re-run as a write (its queued replies are dropped).
    `fast(services, callback)` may answer a button press from memory with a DomainError, before any database
    work (the sold-out short-circuit); it must only refuse what the database would refuse too.
    """

    def decorate(fn: Callable[[Ctx], None]) -> PTBCallback:
        @functools.wraps(fn)
        async def wrapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            user = update.effective_user
            if user is None or update.effective_chat is None:
                return
            services = services_of(context)
            query = update.callback_query
            callback = None
            if query is not None:
                try:
                    callback = parse(query.data)
                except BadCallback:
                    await answer_query(
                        query, services.renderer.label(pick_locale(user.language_code), "button_expired")
                    )
                    return
            if private and _requires_private(update):
                await _point_to_private(update, context, services)
                return
            if fast is not None and callback is not None:
                # Answered from this process's memory, before any database work (e.g. a sold-out item).
                early = fast(services, callback)
                if early is not None:
                    locale = services.locales.get(user.id) or pick_locale(user.language_code)
                    await _show_error(context.application, update, locale, early)
                    return
            made: list[Ctx] = []

            def unit(session: Session, writable: bool) -> Ctx:
                """The update's database work, run in the database's thread."""
                actor = members.load_actor(session, user.id, services.config.admin_ids)
                locale = pick_locale(actor.member.language if actor.member else user.language_code)
                services.remember_locale(user.id, locale)
                ctx = Ctx(update, context, services, session, actor, locale, callback, writable=writable)
                made.append(ctx)
                _check_standing(actor, needs)
                fn(ctx)
                if writable:
                    # Handled exactly once: a restart does not handle a stored update again (models/inbox.py).
                    inbox.mark_processed(session, (update.update_id,), ctx.now)
                return ctx

            error: DomainError | None = None
            try:
                try:
                    run = services.db.write if write else services.db.read
                    ctx = await run(unit, write)
                except NeedsWrite:
                    # The read-only pass found real work to do: run the whole update again, writing.
                    ctx = await services.db.write(unit, True)
            except DomainError as exc:
                error = exc
            except BadCallback:
                error = DomainError("button_expired")
            except Exception:
                # A bug: stop the button's spinner, then let the global error handler report it.
                if query is not None:
                    await answer_query(query, None)
                raise
            if error is not None:
                if made:
                    await _show_error(context.application, update, made[-1].locale, error)
                return
            for done in ctx.committed:
                done()
            # Answer the press first (answerCallbackQuery is not rate limited), then free this update's slot:
            # replies go out in the background, where the rate limiter may hold them.
            if query is not None:
                await answer_query(query, ctx.toast)
            services.replies.submit(context.application, ctx.chat_id, ctx.replies, ctx.after_commit)
            if ctx.notices:
                wake_outbox(context.application)

        wrapped.needs = needs  # type: ignore[attr-defined]
        return wrapped

    return decorate


def _check_standing(actor: Actor, needs: Need) -> None:
    if needs >= Need.ADMIN and not actor.is_admin:
        raise DomainError("not_allowed")
    if needs >= Need.CADRE and not actor.is_cadre:
        raise DomainError("not_allowed")
    if needs >= Need.VERIFIED and not actor.verified and not actor.is_admin:
        if actor.member is not None:
            raise DomainError("still_pending")
        raise DomainError("not_registered")


async def answer_query(query: CallbackQuery, text: str | None, alert: bool = False) -> None:
    """Answer a button press (a toast, or an alert the user must dismiss); an expired query is logged."""
    try:
        await query.answer(text, show_alert=alert)
    except (BadRequest, TimedOut, NetworkError) as exc:
        # A query older than ~15 minutes cannot be answered any more; the user saw the spinner stop.
        log.info("could not answer a callback query: %s", exc)


async def _show_error(app: Application, update: Update, locale: str, error: DomainError) -> None:
    """A domain error: an alert on the pressed button when it fits, otherwise a message."""
    services = services_of(app)
    # Times in errors (opens at, redeemed at) are stored in UTC; members read them in local time.
    tz = services.config.timezone
    params = {k: v.astimezone(tz) if isinstance(v, datetime) else v for k, v in error.params.items()}
    text = services.renderer.render(locale, f"errors/{error.key}", **params)
    query = update.callback_query
    if query is not None:
        plain = html.unescape(TAGS.sub("", text))
        if error.key != "not_registered" and len(plain) <= ALERT_MAX:
            await answer_query(query, plain, alert=True)
            return
        await answer_query(query, None)
    keyboard = None
    if error.key == "not_registered":
        label = services.renderer.label(locale, "register")
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=pack(Cb.OPEN_SECTION, "start"))]])
    chat_id = update.effective_chat.id
    services.replies.submit(app, chat_id, [Outgoing(chat_id, text, keyboard)])


async def _point_to_private(update: Update, context: ContextTypes.DEFAULT_TYPE, services: Services) -> None:
    user = update.effective_user
    locale = pick_locale(user.language_code if user else None)
    url = f"https://t.me/{context.bot.username}?start=go"
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(services.renderer.label(locale, "open_private"), url=url)]])
    text = services.renderer.render(locale, "common/use_private", org=services.config.org_name(locale))
    if update.callback_query is not None:
        await answer_query(update.callback_query, None)
    chat_id = update.effective_chat.id
    services.replies.submit(context.application, chat_id, [Outgoing(chat_id, text, keyboard)])


async def route_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one CallbackQueryHandler: the button's prefix picks its handler from one table (no regex tried in turn)."""
    services = services_of(context)
    query = update.callback_query
    try:
        callback = services.buttons.get(parse(query.data).action)
    except BadCallback:
        callback = None
    if callback is None:
        # An old keyboard or a forged press: a polite answer.
        user = update.effective_user
        locale = services.locales.get(user.id) if user else None
        locale = locale or pick_locale(user.language_code if user else None)
        await answer_query(query, services.renderer.label(locale, "button_expired"))
        return
    await callback(update, context)


@dataclass(frozen=True)
class Command:
    """A slash command; with menu_order it is also a button in the home menu.

    Label keys: cmd.<name> (description in the command list and /help) and menu.<name> (button).
    """

    name: str
    callback: PTBCallback
    menu_order: int | None = None

    @property
    def needs(self) -> Need:
        """Who may use it (from the wrapped handler)."""
        return getattr(self.callback, "needs", Need.ANYONE)
