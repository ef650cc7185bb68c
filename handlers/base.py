"""The one handler wrapper and the section protocol: session, current member, language, permissions, replies.

Every handler is a plain `def name(ctx: Ctx) -> None` under `@handler(...)`, for every kind of update: messages
and commands, button presses (in chats and on inline-mode messages), inline queries, chat join requests and
member changes. The wrapper runs the handler body where the database says (models/db.py) as one atomic unit:
it loads the actor, checks the required standing, runs the handler, commits once. Only then, on the event
loop, does it answer (the button press, the inline query) and hand the queued replies to the background
sender. A domain error rolls back that update only and its message is shown in the user's language.

A section (handlers/<name>.py) declares one `SECTION = Section(...)`: its commands, buttons, flows, deep links,
admin entries and any other PTB handlers. bot.py installs an explicit, ordered list of sections.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import html
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlmodel import Session
from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResult,
    InputFile,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes, filters

import services as notices
from buttons import BadCallback, Button, parse
from buttons.menu import OpenSection
from config import Config
from handlers.sending import ReplySender
from messages import LOCALES, Renderer, pick_locale
from models import flows, inbox, members, vouchers
from models.clock import local_date
from models.errors import DomainError
from models.members import Actor
from services import Services

log = logging.getLogger(__name__)

# Telegram shows at most 200 characters in a callback answer.
ALERT_MAX = 200
TAGS = re.compile(r"<[^>]+>")
# A reply waits at most this long for a flood-control pause before it is dropped and logged.
MAX_RETRY_AFTER = 30
SEND_ATTEMPTS = 2
# A flow untouched this long has expired: its questions are no longer answered (the user starts again).
FLOW_LIFETIME = timedelta(hours=48)
# How long Telegram may cache an inline query's answer (seconds): results are personal, so briefly.
INLINE_CACHE_SECONDS = 10

PTBCallback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]
FastPath = Callable[[Services, Button], DomainError | None]
FlowStep = Callable[["Ctx", str], None]
# A photo, video, file, location... sent while the user is in a flow: (ctx, the message).
MediaStep = Callable[["Ctx", Message], None]
DeepLink = Callable[["Ctx", str], None]
B = TypeVar("B", bound=Button)
Rows = list[list[InlineKeyboardButton]]


@dataclass
class Runtime:
    """What the handlers share beside Services: the installed sections and the reply sender (bot_data['runtime'])."""

    commands: list[Command] = field(default_factory=list)
    flows: dict[str, FlowStep] = field(default_factory=dict)
    # Which section each flow belongs to (a user has one flow per section).
    flow_sections: dict[str, str] = field(default_factory=dict)
    # What a non-text message does in a flow (handlers/menu.py on_media dispatches on the user's flow).
    media: dict[str, MediaStep] = field(default_factory=dict)
    # /start payload prefixes (deep links) and what opens them, e.g. "r_" -> the voucher redeem screen.
    deep_links: dict[str, DeepLink] = field(default_factory=dict)
    # Buttons sections add to the /admin overview: (label key, button).
    admin_entries: list[tuple[str, Button]] = field(default_factory=list)
    # What each button does (route_button dispatches on the button's class).
    buttons: dict[type[Button], PTBCallback] = field(default_factory=dict)
    # Keyboards that depend only on the language (and a key), built once: (key, locale) -> rows.
    keyboards: dict[tuple[str, str], Rows] = field(default_factory=dict)
    # Replies are sent in the background, in order per chat (handlers/sending.py).
    replies: ReplySender = field(default_factory=lambda: ReplySender(deliver))


def services_of(context: ContextTypes.DEFAULT_TYPE | Application) -> Services:
    """The Services object of this application."""
    app = context if isinstance(context, Application) else context.application
    return app.bot_data["services"]


def runtime_of(context: ContextTypes.DEFAULT_TYPE | Application) -> Runtime:
    """The handler runtime of this application."""
    app = context if isinstance(context, Application) else context.application
    return app.bot_data["runtime"]


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
    """One reply: a new message, or an edit of a chat message or of an inline-mode message."""

    chat_id: int
    text: str = ""
    keyboard: InlineKeyboardMarkup | None = None
    edit: Message | None = None
    # An inline-mode message (sent by a user through @bot in any chat) has no chat: it is edited by this id.
    inline_message_id: str | None = None
    document: tuple[bytes, str] | None = None
    # A photo (bytes to upload, a Telegram file_id, or a voucher QR reference) sent with `text` as its caption.
    photo: bytes | str | None = None

    @property
    def edit_key(self) -> tuple[int | str, ...] | None:
        """Which message this reply edits (None for a new message); a newer edit of it replaces this one."""
        if self.inline_message_id is not None:
            return ("inline", self.inline_message_id)
        if self.edit is not None:
            return (self.chat_id, self.edit.message_id)
        return None


@dataclass
class Ctx:
    """One update being handled: the session, who is acting, their language, and what to answer."""

    update: Update
    context: ContextTypes.DEFAULT_TYPE
    services: Services
    runtime: Runtime
    session: Session
    actor: Actor
    locale: str
    callback: Button | None = None
    writable: bool = False
    replies: list[Outgoing] = field(default_factory=list)
    toast: str | None = None
    # The answer to an inline query: (results, personal switch-to-private button or None).
    inline_results: list[InlineQueryResult] | None = None
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
        """Where replies go: the chat of the update, or the user's private chat when there is no chat to answer in
        (a button on an inline-mode message, an inline query) or the answer belongs to the user (a join request)."""
        update = self.update
        if update.chat_join_request is not None:
            return update.chat_join_request.user_chat_id
        chat = update.effective_chat
        return chat.id if chat is not None else update.effective_user.id

    @property
    def member(self) -> members.Member:
        """The current member (handlers that need VERIFIED always have one)."""
        assert self.actor.member is not None
        return self.actor.member

    @property
    def args(self) -> list[str]:
        """Words after the command."""
        return list(self.context.args or [])

    def flow(self) -> flows.Flow | None:
        """The flow this user touched last (typed text goes there), unless it has expired."""
        return flows.get_flow(self.session, self.actor.telegram_id, self.now, FLOW_LIFETIME)

    def section_flow(self, name: str) -> flows.Flow | None:
        """This user's flow in the section that owns flow `name`, unless it has expired."""
        section = self.runtime.flow_sections[name]
        return flows.section_flow(self.session, self.actor.telegram_id, section, self.now, FLOW_LIFETIME)

    def set_flow(self, name: str, step: str, data: dict[str, Any]) -> None:
        """Start or advance flow `name` (it replaces only the flow of its own section)."""
        section = self.runtime.flow_sections[name]
        # A write anyway: the user's expired flows (of any section) go with it.
        flows.drop_expired(self.session, self.actor.telegram_id, self.now, FLOW_LIFETIME)
        flows.set_flow(self.session, self.actor.telegram_id, section, name, step, data, self.now)

    def clear_flow(self, name: str | None = None) -> bool:
        """Leave flow `name`'s section flow (None: every flow of this user); True if there was one."""
        section = self.runtime.flow_sections[name] if name is not None else None
        return flows.clear_flow(self.session, self.actor.telegram_id, section)

    def pressed(self, kind: type[B]) -> B:
        """The pressed button as its feature's type; BadCallback (a polite answer) for anything else."""
        if not isinstance(self.callback, kind):
            raise BadCallback(f"expected {kind.__name__}")
        return self.callback

    def t(self, template: str, locale: str | None = None, /, **kw: Any) -> str:
        """Render a message template in the user's (or the given) language."""
        return self.services.renderer.render(locale or self.locale, template, **kw)

    def label(self, key: str, locale: str | None = None, /, **kw: Any) -> str:
        """A button label in the user's (or the given) language."""
        return self.services.renderer.label(locale or self.locale, key, **kw)

    def button(self, key: str, action: Button, /, locale: str | None = None, **kw: Any) -> InlineKeyboardButton:
        """An inline button: a label and the button's packed callback data."""
        return InlineKeyboardButton(self.label(key, locale, **kw), callback_data=action.pack())

    def keyboard(self, key: str, build: Callable[[], Rows]) -> Rows:
        """A keyboard that depends only on `key` and the language: built on first use, then reused."""
        cache = self.runtime.keyboards
        rows = cache.get((key, self.locale))
        if rows is None:
            rows = cache[(key, self.locale)] = build()
        return rows

    def pager(self, page_button: Callable[[int], Button], *, page: int, has_next: bool) -> Rows:
        """The Previous/Next row of a paged list (no row at all on a single page)."""
        row = []
        if page > 0:
            row.append(self.button("prev", page_button(page - 1)))
        if has_next:
            row.append(self.button("next", page_button(page + 1)))
        return [row] if row else []

    def reply(self, template: str, keyboard: Rows | None = None, /, **kw: Any) -> None:
        """Send a message after the commit (to this chat, or the user's private chat: see chat_id)."""
        markup = InlineKeyboardMarkup(keyboard) if keyboard else None
        self.replies.append(Outgoing(self.chat_id, self.t(template, **kw), markup))

    def show(self, template: str, keyboard: Rows | None = None, /, **kw: Any) -> None:
        """Edit the pressed message in place (button presses, inline-mode messages too) or send a new one."""
        self.say(self.t(template, **kw), keyboard, edit=True)

    def say(self, text: str, keyboard: Rows | None = None, /, *, edit: bool) -> None:
        """Queue text already rendered from templates: a new message, or (edit=True) an edit of the pressed one."""
        markup = InlineKeyboardMarkup(keyboard) if keyboard else None
        query = self.update.callback_query
        if not edit:
            self.replies.append(Outgoing(self.chat_id, text, markup))
            return
        if query is not None and query.inline_message_id is not None:
            self.replies.append(Outgoing(self.chat_id, text, markup, inline_message_id=query.inline_message_id))
            return
        message = query.message if query is not None and isinstance(query.message, Message) else None
        self.replies.append(Outgoing(self.chat_id, text, markup, edit=message))

    def show_photo(self, template: str, photo: bytes | str, keyboard: Rows | None = None, /, **kw: Any) -> None:
        """A photo with a caption: edits the caption of a pressed photo message, otherwise sends a new one."""
        markup = InlineKeyboardMarkup(keyboard) if keyboard else None
        query = self.update.callback_query
        message = query.message if query is not None and isinstance(query.message, Message) else None
        self.replies.append(Outgoing(self.chat_id, self.t(template, **kw), markup, edit=message, photo=photo))

    def answer_inline(self, results: list[InlineQueryResult]) -> None:
        """The answer to this inline query (sent after the commit; answerInlineQuery is not rate limited)."""
        self.inline_results = results

    def notify(
        self,
        chat_id: int,
        text: str,
        keyboard: Rows | None = None,
        /,
        *,
        kind: str = "notice",
        photo: str | None = None,
        dedupe_key: str | None = None,
    ) -> None:
        """A message that must not be lost (a notice to someone, a voucher): services.notify in this update's
        transaction. The text is already rendered in the recipient's language. A read pass re-runs as a write."""
        self.require_write()
        markup = InlineKeyboardMarkup(keyboard).to_dict() if keyboard else None
        notices.notify(
            self.session, chat_id, text, now=self.now, kind=kind, keyboard=markup, photo=photo, dedupe_key=dedupe_key
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
            if item.inline_message_id is not None:
                return await _edit_inline(app, item)
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


async def _edit_inline(app: Application, item: Outgoing) -> bool | None:
    """Edit an inline-mode message; one that cannot be edited any more is left as it is (it has no chat)."""
    try:
        return await app.bot.edit_message_text(
            item.text, inline_message_id=item.inline_message_id, reply_markup=item.keyboard
        )
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            log.info("inline message edit failed (%s)", exc)
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


def _user_locale(services: Services, update: Update) -> str:
    """The language to answer in before the member row is loaded: remembered, or Telegram's."""
    user = update.effective_user
    remembered = services.locales.get(user.id) if user is not None else None
    return remembered or pick_locale(user.language_code if user is not None else None)


def handler(
    *, write: bool = False, needs: Need = Need.VERIFIED, private: bool = True, fast: FastPath | None = None
) -> Callable[[Callable[[Ctx], None]], PTBCallback]:
    """Wrap `def fn(ctx)` into a PTB callback: one atomic unit of database work, the permission check, replies.

    The handler body is plain synchronous code and runs where the database says (models/db.py): the SQLite
    writer thread (write=True, group commit) or a reader thread (write=False, a read-only snapshot). It
    may call model functions with ctx.session and queue replies; they are sent on the event loop after the
    COMMIT. A read pass may call ctx.require_write() to be re-run as a write (its queued replies are dropped).
    `fast(services, button)` may answer a button press from memory with a DomainError, before any database
    work (the sold-out short-circuit); it must only refuse what the database would refuse too.
    private=True: in a group the user is pointed to the private chat instead.
    """

    def decorate(fn: Callable[[Ctx], None]) -> PTBCallback:
        # Activity is counted per section, by the module the handler lives in (handlers/<section>.py).
        section = fn.__module__.rpartition(".")[2]

        @functools.wraps(fn)
        async def wrapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            user = update.effective_user
            if user is None:
                return
            services, runtime = services_of(context), runtime_of(context)
            query = update.callback_query
            callback = None
            if query is not None:
                try:
                    callback = parse(query.data)
                except BadCallback:
                    expired = services.renderer.render(_user_locale(services, update), "errors/button_expired")
                    await answer_query(query, expired)
                    return
            if private and _requires_private(update):
                await _point_to_private(update, context, services)
                return
            if fast is not None and callback is not None:
                # Answered from this process's memory, before any database work (e.g. a sold-out item).
                early = fast(services, callback)
                if early is not None:
                    await _show_error(context.application, update, _user_locale(services, update), early)
                    return
            made: list[Ctx] = []

            def unit(session: Session, writable: bool) -> Ctx:
                """The update's database work, run in the database's thread."""
                actor = members.load_actor(session, user.id, services.config.admin_ids)
                locale = pick_locale(actor.member.language if actor.member else user.language_code)
                services.remember_locale(user.id, locale)
                ctx = Ctx(update, context, services, runtime, session, actor, locale, callback, writable=writable)
                made.append(ctx)
                if actor.member is not None and actor.member.verified:
                    services.activity.note(actor.member.id, ctx.today, section)  # type: ignore[arg-type]
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
            await _finish(context.application, update, ctx)

        wrapped.needs = needs  # type: ignore[attr-defined]
        return wrapped

    return decorate


async def _finish(app: Application, update: Update, ctx: Ctx) -> None:
    """After the commit: run the committed hooks, answer what must be answered, hand the replies to the sender."""
    for done in ctx.committed:
        done()
    # Answer first (answerCallbackQuery and answerInlineQuery are not rate limited), then free this update's
    # slot: replies go out in the background, where the rate limiter may hold them.
    if update.callback_query is not None:
        await answer_query(update.callback_query, ctx.toast)
    if update.inline_query is not None and ctx.inline_results is not None:
        try:
            await update.inline_query.answer(ctx.inline_results, cache_time=INLINE_CACHE_SECONDS, is_personal=True)
        except (BadRequest, TimedOut, NetworkError) as exc:
            log.info("could not answer an inline query: %s", exc)
    ctx.runtime.replies.submit(app, ctx.chat_id, ctx.replies, ctx.after_commit)
    if ctx.notices:
        wake_outbox(app)


def _check_standing(actor: Actor, needs: Need) -> None:
    if needs >= Need.ADMIN and not actor.is_admin:
        raise DomainError("not_allowed")
    if needs >= Need.CADRE and not actor.is_cadre:
        raise DomainError("not_allowed")
    # Staff commands are for staff, members or not; member sections need a verified member, admins too.
    if needs == Need.VERIFIED and not actor.verified:
        if actor.member is not None:
            raise DomainError("still_pending")
        # A configured admin who never registered: admin commands work, member sections need a membership.
        raise DomainError("admin_not_member" if actor.is_admin else "not_registered")


async def answer_query(query: CallbackQuery, text: str | None, alert: bool = False) -> None:
    """Answer a button press (a toast, or an alert the user must dismiss); a network hiccup is tried once more,
    an expired query is logged."""
    for attempt in range(SEND_ATTEMPTS):
        try:
            await query.answer(text, show_alert=alert)
            return
        except BadRequest as exc:
            # A query older than ~15 minutes cannot be answered any more; the user saw the spinner stop.
            log.info("could not answer a callback query: %s", exc)
            return
        except (TimedOut, NetworkError) as exc:
            if attempt + 1 == SEND_ATTEMPTS:
                log.warning("could not answer a callback query after %s", type(exc).__name__)


REGISTER_HINTS = ("not_registered", "admin_not_member")


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
        if error.key not in REGISTER_HINTS and len(plain) <= ALERT_MAX:
            await answer_query(query, plain, alert=True)
            return
        await answer_query(query, None)
    if update.inline_query is not None:
        return
    keyboard = None
    if error.key in REGISTER_HINTS:
        label = services.renderer.label(locale, "register")
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=OpenSection("start").pack())]])
    chat = update.effective_chat
    chat_id = chat.id if chat is not None and update.chat_join_request is None else update.effective_user.id
    runtime_of(app).replies.submit(app, chat_id, [Outgoing(chat_id, text, keyboard)])


async def _point_to_private(update: Update, context: ContextTypes.DEFAULT_TYPE, services: Services) -> None:
    locale = _user_locale(services, update)
    url = f"https://t.me/{context.bot.username}?start=go"
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(services.renderer.label(locale, "open_private"), url=url)]])
    text = services.renderer.render(locale, "common/use_private", org=services.config.org_name(locale))
    if update.callback_query is not None:
        await answer_query(update.callback_query, None)
    chat_id = update.effective_chat.id
    runtime_of(context).replies.submit(context.application, chat_id, [Outgoing(chat_id, text, keyboard)])


async def route_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one CallbackQueryHandler: the button's type picks its handler from one table (no regex tried in turn)."""
    query = update.callback_query
    try:
        callback = runtime_of(context).buttons.get(type(parse(query.data)))
    except BadCallback:
        callback = None
    if callback is None:
        # An old keyboard or a forged press: a polite answer.
        text = services_of(context).renderer.render(_user_locale(services_of(context), update), "errors/button_expired")
        await answer_query(query, text)
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


@dataclass(frozen=True)
class Section:
    """Everything one section adds to the bot; bot.py installs an explicit, ordered list of them."""

    name: str
    commands: tuple[Command, ...] = ()
    buttons: Mapping[type[Button], PTBCallback] = field(default_factory=dict)
    # Text typed while the user is in one of this section's flows: flow name -> step handler.
    flows: Mapping[str, FlowStep] = field(default_factory=dict)
    # A photo, video, file, location... sent in one of those flows: flow name -> step. Flows of the form engine
    # without an entry here take photos as forms.answer_media does; other flows answer that text is expected.
    media: Mapping[str, MediaStep] = field(default_factory=dict)
    # /start payload prefixes and what they open.
    deep_links: Mapping[str, DeepLink] = field(default_factory=dict)
    admin_entries: tuple[tuple[str, Button], ...] = ()
    # Other PTB handlers (photos, join requests, inline queries, member changes), in order.
    handlers: tuple[BaseHandler, ...] = ()


class SectionError(ValueError):
    """A section declares something twice or names a label that does not exist: the bot refuses to start."""


def install(
    app: Application, sections: Iterable[Section], renderer: Renderer, *, fallbacks: Iterable[BaseHandler] = ()
) -> Runtime:
    """Register the sections in the given order, then the fallbacks; a duplicate or a missing label fails here."""
    runtime = Runtime()
    names: set[str] = set()
    for section in sections:
        if section.name in names:
            raise SectionError(f"section {section.name!r} is installed twice")
        names.add(section.name)
        for command in section.commands:
            if any(c.name == command.name for c in runtime.commands):
                raise SectionError(f"/{command.name} is declared twice ({section.name})")
            keys = [f"cmd.{command.name}"] + ([f"menu.{command.name}"] if command.menu_order is not None else [])
            _require_labels(renderer, keys, section.name)
            runtime.commands.append(command)
        for table, values, what in (
            (runtime.buttons, section.buttons, "button"),
            (runtime.flows, section.flows, "flow"),
            (runtime.flow_sections, dict.fromkeys(section.flows, section.name), "flow"),
            (runtime.deep_links, section.deep_links, "deep link"),
            (runtime.media, section.media, "media step of flow"),
        ):
            for key, value in values.items():
                if key in table:
                    raise SectionError(f"{what} {getattr(key, '__name__', key)!r} is declared twice ({section.name})")
                table[key] = value
        strays = set(section.media) - set(section.flows)
        if strays:
            raise SectionError(f"section {section.name!r}: media steps for flows it does not have: {sorted(strays)}")
        _require_labels(renderer, [key for key, _button in section.admin_entries], section.name)
        runtime.admin_entries.extend(section.admin_entries)
    # Commands in their sections' order (/start first), never for an edited message: an edit must not run again.
    for command in runtime.commands:
        app.add_handler(CommandHandler(command.name, command.callback, filters=filters.UpdateType.MESSAGE))
    app.add_handler(CallbackQueryHandler(route_button))
    for section in sections:
        for other in section.handlers:
            app.add_handler(other)
    for fallback in fallbacks:
        app.add_handler(fallback)
    return runtime


def _require_labels(renderer: Renderer, keys: Iterable[str], section: str) -> None:
    for locale in LOCALES:
        missing = [key for key in keys if key not in renderer.label_keys(locale)]
        if missing:
            raise SectionError(f"section {section!r}: no {locale} label for {', '.join(missing)}")
