"""Show (我型我秀): post a talent (text, photo, album of up to 4 photos, short video), browse one card at a time with
◀ ▶ ❤️, report, delete my post, volunteers' moderation queue, the weekly top posts, and sharing with `@bot show`."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultCachedPhoto,
    InlineQueryResultCachedVideo,
    InputMediaPhoto,
    InputTextMessageContent,
    Message,
)
from telegram.error import TelegramError
from telegram.ext import InlineQueryHandler

from buttons.menu import CancelFlow, Home
from buttons.show import (
    AlbumPhotos,
    ApprovePost,
    AskDelete,
    Browse,
    DeletePost,
    LikePost,
    MyPosts,
    NewPost,
    OpenPost,
    PickCategory,
    PublishPost,
    Queue,
    RejectPost,
    ReportPost,
    ShowHome,
    SkipText,
    ToggleDigest,
)
from handlers.base import Command, Ctx, Need, Outgoing, Rows, Section, handler
from messages import pick_locale
from models import likes, show
from models.errors import BadInput
from models.members import Member
from models.show import Card, MediaKind, Order, PostStatus

log = logging.getLogger(__name__)

FLOW = "show_post"
REJECT_FLOW = "show_reject"
DEEP_LINK = "sp_"
LIST_SIZE = 10
INLINE_RESULTS = 10
CATEGORY_ROW = 3


def _author_locale(ctx: Ctx, member_id: int) -> tuple[Member | None, str]:
    author = ctx.session.get(Member, member_id)
    return author, pick_locale(author.language if author else None)


# --- home --------------------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_home(ctx: Ctx) -> None:
    """/show: browse newest or most liked, post, my posts, the weekly top posts; the queue for volunteers."""
    _home(ctx)


def _home(ctx: Ctx) -> None:
    moderator = show.is_moderator(ctx.actor)
    waiting = len(show.queue(ctx.session, ctx.actor, 100)) if moderator else 0
    subscribed = show.subscribed(ctx.session, ctx.member.id)
    keyboard = [
        [ctx.button("show_newest", Browse(Order.NEW, 0)), ctx.button("show_top", Browse(Order.TOP, 0))],
        [ctx.button("show_new_post", NewPost()), ctx.button("show_mine", MyPosts())],
        [ctx.button("show_digest_off" if subscribed else "show_digest_on", ToggleDigest())],
    ]
    if moderator:
        keyboard.append([ctx.button("show_queue", Queue(), count=waiting)])
    keyboard.append([ctx.button("home", Home())])
    ctx.show("show/home", keyboard, waiting=waiting, moderator=moderator, subscribed=subscribed)


@handler(write=True, needs=Need.VERIFIED)
def toggle_digest(ctx: Ctx) -> None:
    """Button: receive the weekly top posts, or stop."""
    on = show.toggle_digest(ctx.session, ctx.member.id, ctx.now)
    ctx.toast = ctx.label("show_digest_now_on" if on else "show_digest_now_off")
    _home(ctx)


# --- cards -------------------------------------------------------------------------------------------


def _card_keyboard(ctx: Ctx, card: Card, order: str | None) -> Rows:
    post = card.post
    rows: Rows = []
    if post.status == PostStatus.PUBLISHED:
        heart = ctx.button(
            "show_unlike" if card.liked else "show_like",
            LikePost(post.id, 0 if card.liked else 1, order, card.index if order else None),
            count=post.likes,
        )
        if order:
            nav = [heart]
            if card.index > 0:
                nav.insert(0, ctx.button("show_prev", Browse(order, card.index - 1)))
            if card.index + 1 < card.total:
                nav.append(ctx.button("show_next", Browse(order, card.index + 1)))
            rows.append(nav)
        else:
            rows.append([heart])
    if card.kind == "album":
        rows.append([ctx.button("show_album", AlbumPhotos(post.id), count=len(card.media))])
    if show.is_moderator(ctx.actor) and post.status in (PostStatus.PENDING, PostStatus.HIDDEN):
        rows.append([ctx.button("show_approve", ApprovePost(post.id)), ctx.button("show_reject", RejectPost(post.id))])
    if card.mine:
        rows.append([ctx.button("show_delete", AskDelete(post.id))])
    elif post.status == PostStatus.PUBLISHED:
        rows.append([ctx.button("show_report", ReportPost(post.id))])
    rows.append([ctx.button("back", ShowHome())])
    return rows


def _caption(ctx: Ctx, card: Card, locale: str | None = None) -> str:
    return ctx.t(
        "show/card",
        locale,
        post=card.post,
        author=card.author,
        kind=card.kind,
        photos=len(card.media),
        index=card.index,
        total=card.total,
        mine=card.mine,
    )


def _send_card(ctx: Ctx, card: Card, order: str | None, *, same: bool) -> None:
    """A card: text edits the pressed message; media come as a new message, or (same post) get a new caption."""
    keyboard = _card_keyboard(ctx, card, order)
    caption = _caption(ctx, card)
    if card.kind == "text":
        ctx.say(caption, keyboard, edit=True)
        return
    markup = InlineKeyboardMarkup(keyboard)
    query = ctx.update.callback_query
    pressed = query.message if query is not None and isinstance(query.message, Message) else None
    if same and pressed is not None:
        ctx.after_commit.append(lambda: _edit_caption(pressed, caption, markup))
        return
    first = card.media[0]
    if first.kind == MediaKind.PHOTO:
        ctx.replies.append(Outgoing(ctx.chat_id, caption, markup, photo=first.file_id))
        return
    bot, chat_id = ctx.context.bot, ctx.chat_id

    async def send_video() -> None:
        try:
            await bot.send_video(chat_id, first.file_id, caption=caption, reply_markup=markup)
        except TelegramError as exc:
            log.info("could not send a show video: %s", exc)

    ctx.after_commit.append(send_video)


async def _edit_caption(message: Message, caption: str, markup: InlineKeyboardMarkup) -> None:
    try:
        await message.edit_caption(caption, reply_markup=markup)
    except TelegramError as exc:
        if "not modified" not in str(exc).lower():
            log.info("could not edit a show card's caption: %s", exc)


def _order(word: str | None) -> Order | None:
    """The list order a button names (None for none, or a word no button of ours carries)."""
    return next((o for o in Order if o.value == word), None)


@handler(needs=Need.VERIFIED)
def browse(ctx: Ctx) -> None:
    """Button: one card of the newest or most liked posts, with ◀ ▶ and ❤️."""
    pressed = ctx.pressed(Browse)
    order = _order(pressed.order) or Order.NEW
    card = show.browse(ctx.session, ctx.actor, order, pressed.index)
    if card is None:
        ctx.show("show/empty", [[ctx.button("show_new_post", NewPost())], [ctx.button("back", ShowHome())]])
        return
    _send_card(ctx, card, order, same=False)


@handler(needs=Need.VERIFIED)
def open_post(ctx: Ctx) -> None:
    """Button: one post by id (from my posts, the queue, the weekly top posts)."""
    _send_card(ctx, show.card(ctx.session, ctx.actor, ctx.pressed(OpenPost).post_id), None, same=False)


def open_shared(ctx: Ctx, payload: str) -> None:
    """Deep link from a shared card (t.me/<bot>?start=sp_<id>): the post in the private chat."""
    if not ctx.actor.verified:
        raise BadInput("not_registered")
    if not payload.isascii() or not payload.isdigit() or len(payload) > 9:
        raise BadInput("show_post_unknown")
    _send_card(ctx, show.card(ctx.session, ctx.actor, int(payload)), None, same=False)


@handler(needs=Need.VERIFIED)
def like_post(ctx: Ctx) -> None:
    """Button: ❤️ like or take the like back; the author earns by the like_received rule (see models/likes.py)."""
    pressed = ctx.pressed(LikePost)
    ctx.require_write()
    rule = ctx.config.rules.get(likes.RULE)
    done = show.set_like(
        ctx.session, ctx.actor, pressed.post_id, bool(pressed.on), ctx.now, ctx.today, ctx.config.community, rule
    )
    ctx.toast = ctx.label("show_liked" if done.liked else "show_unliked")
    card = show.card(ctx.session, ctx.actor, pressed.post_id)
    order = _order(pressed.order)
    if order is not None:
        # The same card in its place in the list the member is browsing.
        card = replace(card, index=pressed.index or 0, total=show.count_published(ctx.session))
    _send_card(ctx, card, order, same=True)


@handler(needs=Need.VERIFIED)
def album_photos(ctx: Ctx) -> None:
    """Button: every photo of an album, as an album."""
    card = show.card(ctx.session, ctx.actor, ctx.pressed(AlbumPhotos).post_id)
    photos = [InputMediaPhoto(m.file_id) for m in card.media if m.kind == MediaKind.PHOTO]
    if len(photos) < 2:
        return
    bot, chat_id = ctx.context.bot, ctx.chat_id

    async def send_album() -> None:
        try:
            await bot.send_media_group(chat_id, photos)
        except TelegramError as exc:
            log.info("could not send a show album: %s", exc)

    ctx.after_commit.append(send_album)


@handler(write=True, needs=Need.VERIFIED)
def report_post(ctx: Ctx) -> None:
    """Button: report a post; enough reports hide it until a volunteer decides."""
    post_id = ctx.pressed(ReportPost).post_id
    hidden = show.report(ctx.session, ctx.member, post_id, ctx.now, ctx.config.community)
    ctx.toast = ctx.label("show_reported_hidden" if hidden else "show_reported")
    if hidden:
        post = ctx.session.get(show.ShowPost, post_id, populate_existing=True)
        author, locale = _author_locale(ctx, post.author_id)
        if author is not None and author.telegram_id and not author.blocked_bot:
            ctx.notify(author.telegram_id, ctx.t("show/hidden_notice", locale, title=post.title))
        _tell_volunteers(ctx, post)


def _tell_volunteers(ctx: Ctx, post: show.ShowPost) -> None:
    """A post waits in the queue: each volunteer is told once (in their language), with a button to it."""
    for volunteer in show.volunteers(ctx.session):
        locale = pick_locale(volunteer.language)
        keyboard = [[ctx.button("show_open", OpenPost(post.id), locale, title=post.title)]]
        text = ctx.t("show/waiting_notice", locale, title=post.title, status=post.status)
        key = f"show_waiting:{post.id}:{post.status}:{volunteer.id}"
        ctx.notify(volunteer.telegram_id, text, keyboard, dedupe_key=key)


@handler(needs=Need.VERIFIED)
def ask_delete(ctx: Ctx) -> None:
    """Button: are you sure you want to delete your post?"""
    card = show.card(ctx.session, ctx.actor, ctx.pressed(AskDelete).post_id)
    if not card.mine:
        raise BadInput("not_allowed")
    keyboard = [[ctx.button("show_delete_yes", DeletePost(card.post.id)), ctx.button("back", ShowHome())]]
    ctx.reply("show/confirm_delete", keyboard, title=card.post.title)


@handler(write=True, needs=Need.VERIFIED)
def delete_post(ctx: Ctx) -> None:
    """Button: delete my post."""
    post = show.delete_post(ctx.session, ctx.actor, ctx.pressed(DeletePost).post_id)
    ctx.show("show/deleted", [[ctx.button("back", ShowHome())]], title=post.title)


@handler(needs=Need.VERIFIED)
def my_posts(ctx: Ctx) -> None:
    """Button: my posts with their status and likes."""
    posts = show.my_posts(ctx.session, ctx.member, LIST_SIZE)
    keyboard = [[ctx.button("show_open", OpenPost(p.id), title=p.title)] for p in posts]
    keyboard.append([ctx.button("show_new_post", NewPost()), ctx.button("back", ShowHome())])
    ctx.show("show/mine", keyboard, posts=posts)


# --- posting -----------------------------------------------------------------------------------------


def _cancel_row(ctx: Ctx) -> list[InlineKeyboardButton]:
    return [ctx.button("cancel", CancelFlow())]


@handler(write=True, needs=Need.VERIFIED)
def new_post(ctx: Ctx) -> None:
    """Button: start a post: pick a category."""
    ctx.set_flow(FLOW, "category", {})
    buttons = [ctx.button(f"show_category_{c}", PickCategory(c)) for c in show.CATEGORIES]
    rows = [buttons[i : i + CATEGORY_ROW] for i in range(0, len(buttons), CATEGORY_ROW)]
    ctx.reply("show/ask_category", [*rows, _cancel_row(ctx)])


def _state(ctx: Ctx, step: str) -> dict[str, Any]:
    """The post being written, at this step; a button of another step is stale."""
    state = ctx.section_flow(FLOW)
    if state is None or state.name != FLOW or state.step != step:
        raise BadInput("form_step_passed")
    return dict(state.data)


@handler(write=True, needs=Need.VERIFIED)
def pick_category(ctx: Ctx) -> None:
    """Button: the post's category; next, its title."""
    category = ctx.pressed(PickCategory).category
    data = _state(ctx, "category")
    if category not in show.CATEGORIES:
        raise BadInput("form_step_passed")
    ctx.set_flow(FLOW, "title", {**data, "category": category})
    ctx.reply("show/ask_title", [_cancel_row(ctx)], max=show.TITLE_MAX)


def post_text(ctx: Ctx, text: str) -> None:
    """Typed text while writing a post: the title, then the text; at the media step, a hint."""
    state = ctx.section_flow(FLOW)
    data = dict(state.data)
    if state.step == "title":
        data["title"] = show.clean_text(text, show.TITLE_MAX, "show_title")
        ctx.set_flow(FLOW, "text", data)
        ctx.reply("show/ask_text", [[ctx.button("skip", SkipText())], _cancel_row(ctx)], max=show.TEXT_MAX)
    elif state.step == "text":
        _to_media(ctx, data, show.clean_text(text, show.TEXT_MAX, "show_text"))
    elif state.step == "media":
        raise BadInput("show_media_expected")
    else:
        raise BadInput("use_buttons")


@handler(write=True, needs=Need.VERIFIED)
def skip_text(ctx: Ctx) -> None:
    """Button: no text (a photo or a video must follow)."""
    _to_media(ctx, _state(ctx, "text"), "")


def _to_media(ctx: Ctx, data: dict[str, Any], text: str) -> None:
    post = show.start_draft(ctx.session, ctx.member, data["category"], data["title"], text, ctx.now)
    ctx.set_flow(FLOW, "media", {**data, "post_id": post.id})
    keyboard = [[ctx.button("show_publish", PublishPost())], _cancel_row(ctx)]
    ctx.reply("show/ask_media", keyboard, has_text=bool(text), album=show.ALBUM_MAX)


def post_media(ctx: Ctx, message: Message) -> None:
    """A photo, video or other file sent while writing a post (handlers/menu.py on_media): part of the post."""
    state = ctx.flow()
    if not ctx.actor.verified:
        raise BadInput("not_registered")
    if state.step != "media":
        raise BadInput("show_media_not_yet")
    settings = ctx.config.community
    post_id = state.data["post_id"]
    if message.photo:
        size = message.photo[-1]
        count = show.add_media(
            ctx.session, ctx.member, post_id, MediaKind.PHOTO, size.file_id, size.file_unique_id, settings
        )
        video = False
    elif message.video:
        v = message.video
        # A timedelta with PTB_TIMEDELTA=1 (PTB 22's coming default), seconds otherwise.
        seconds = int(v.duration.total_seconds()) if isinstance(v.duration, timedelta) else int(v.duration or 0)
        count = show.add_media(
            ctx.session, ctx.member, post_id, MediaKind.VIDEO, v.file_id, v.file_unique_id, settings, seconds
        )
        video = True
    else:
        raise BadInput("show_media_unsupported")
    keyboard = [[ctx.button("show_publish", PublishPost())], _cancel_row(ctx)]
    ctx.reply("show/media_added", keyboard, count=count, video=video, album=show.ALBUM_MAX)


@handler(write=True, needs=Need.VERIFIED)
def publish_post(ctx: Ctx) -> None:
    """Button: publish the post (or hand it to the volunteers when the show is pre-moderated)."""
    data = _state(ctx, "media")
    post = show.publish(ctx.session, ctx.member, data["post_id"], ctx.now, ctx.config.community)
    ctx.clear_flow(FLOW)
    if post.status == PostStatus.PENDING:
        _tell_volunteers(ctx, post)
    keyboard = [[ctx.button("show_open", OpenPost(post.id), title=post.title)], [ctx.button("back", ShowHome())]]
    ctx.reply("show/published", keyboard, pending=post.status == PostStatus.PENDING, title=post.title)


# --- moderation (volunteers and cadres) --------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_queue(ctx: Ctx) -> None:
    """Button: posts waiting for a volunteer (pre-moderated or hidden by reports)."""
    _queue(ctx)


def _queue(ctx: Ctx) -> None:
    posts = show.queue(ctx.session, ctx.actor, LIST_SIZE)
    keyboard = [[ctx.button("show_open", OpenPost(p.id), title=p.title)] for p in posts]
    keyboard.append([ctx.button("back", ShowHome())])
    ctx.show("show/queue", keyboard, posts=posts)


@handler(write=True, needs=Need.VERIFIED)
def approve_post(ctx: Ctx) -> None:
    """Button: publish a waiting post; its author is told."""
    post = show.approve(ctx.session, ctx.actor, ctx.pressed(ApprovePost).post_id)
    author, locale = _author_locale(ctx, post.author_id)
    if author is not None and author.telegram_id and not author.blocked_bot:
        keyboard = [[ctx.button("show_open", OpenPost(post.id), locale, title=post.title)]]
        ctx.notify(author.telegram_id, ctx.t("show/approved_notice", locale, title=post.title), keyboard)
    ctx.toast = ctx.label("show_approved")
    _queue(ctx)


@handler(write=True, needs=Need.VERIFIED)
def reject_post(ctx: Ctx) -> None:
    """Button: reject a waiting post: the volunteer types the reason its author will read."""
    post_id = ctx.pressed(RejectPost).post_id
    post = show.card(ctx.session, ctx.actor, post_id).post
    if not show.is_moderator(ctx.actor):
        raise BadInput("not_allowed")
    if post.status not in (PostStatus.PENDING, PostStatus.HIDDEN):
        raise BadInput("show_already_decided")
    ctx.set_flow(REJECT_FLOW, "reason", {"post_id": post_id})
    ctx.reply("show/ask_reason", [_cancel_row(ctx)], title=post.title, max=show.REASON_MAX)


def reject_reason(ctx: Ctx, text: str) -> None:
    """The typed reason: the post is rejected and its author told why."""
    state = ctx.section_flow(REJECT_FLOW)
    post = show.reject(ctx.session, ctx.actor, state.data["post_id"], text)
    ctx.clear_flow(REJECT_FLOW)
    author, locale = _author_locale(ctx, post.author_id)
    if author is not None and author.telegram_id and not author.blocked_bot:
        notice = ctx.t("show/rejected_notice", locale, title=post.title, reason=post.reject_reason)
        ctx.notify(author.telegram_id, notice)
    ctx.reply("show/rejected", [[ctx.button("show_queue", Queue(), count=0)]], title=post.title)


# --- inline sharing ----------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED, private=False)
def share_inline(ctx: Ctx) -> None:
    """`@bot show [words]` in any chat: recent posts as cards, each with a button back into the bot."""
    words = ctx.update.inline_query.query.removeprefix("show").strip()
    url = f"https://t.me/{ctx.context.bot.username}?start={DEEP_LINK}"
    results = []
    for post, media in show.search(ctx.session, words, INLINE_RESULTS):
        card = Card(post, _author_name(ctx, post.author_id), media, False, False)
        caption = ctx.t("show/shared", post=post, author=card.author, kind=card.kind)
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(ctx.label("show_open_in_bot"), url=f"{url}{post.id}")]])
        key = f"show{post.id}"
        if card.kind in ("photo", "album"):
            results.append(InlineQueryResultCachedPhoto(key, media[0].file_id, caption=caption, reply_markup=markup))
        elif card.kind == "video":
            video = InlineQueryResultCachedVideo(
                key, media[0].file_id, post.title, caption=caption, reply_markup=markup
            )
            results.append(video)
        else:
            content = InputTextMessageContent(caption)
            results.append(InlineQueryResultArticle(key, post.title, content, reply_markup=markup))
    ctx.answer_inline(results)


def _author_name(ctx: Ctx, member_id: int) -> str:
    author = ctx.session.get(Member, member_id)
    return (author.name if author else None) or ""


SECTION = Section(
    "show",
    commands=(Command("show", show_home, menu_order=40),),
    buttons={
        ShowHome: show_home,
        Browse: browse,
        OpenPost: open_post,
        LikePost: like_post,
        AlbumPhotos: album_photos,
        ReportPost: report_post,
        AskDelete: ask_delete,
        DeletePost: delete_post,
        MyPosts: my_posts,
        NewPost: new_post,
        PickCategory: pick_category,
        SkipText: skip_text,
        PublishPost: publish_post,
        Queue: show_queue,
        ApprovePost: approve_post,
        RejectPost: reject_post,
        ToggleDigest: toggle_digest,
    },
    flows={FLOW: post_text, REJECT_FLOW: reject_reason},
    media={FLOW: post_media},
    deep_links={DEEP_LINK: open_shared},
    handlers=(InlineQueryHandler(share_inline, pattern=r"^show\b"),),
)
