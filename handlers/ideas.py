"""Ideas (创客空间): submit an idea, browse and upvote, comment; cadres move ideas new → reviewing → adopted → done."""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message

import services
from buttons import BadCallback, Button
from buttons.ideas import (
    AddComment,
    BrowseIdea,
    Comments,
    DeleteComment,
    HideComment,
    IdeaListPage,
    IdeasHome,
    MoveIdea,
    NewIdea,
    ShowIdea,
    TakeBack,
    Upvote,
    WithdrawIdea,
)
from buttons.menu import Home
from config import PointsRule
from handlers import forms
from handlers.base import Command, Ctx, Need, Section, handler
from handlers.forms import Field, Form
from messages import pick_locale
from models import ideas
from models.errors import BadInput, NotAllowed
from models.ideas import IdeaList, IdeaStatus

FORM = "ideas"
COMMENT_FORM = "ideas_comment"
DECLINE_FORM = "ideas_decline"
# The answer "bureau-wide" to "which unit is it for?".
BUREAU = "bureau"
# Lists offered on the home screen, in this order (the cadre's queue is added for cadres).
BROWSE = (IdeaList.LATEST, IdeaList.TOP, IdeaList.MINE)
BY_STATUS = (IdeaList.NEW, IdeaList.REVIEWING, IdeaList.ADOPTED, IdeaList.DONE, IdeaList.DECLINED)
ROW = 2
Rows = list[list[InlineKeyboardButton]]


def _kind(text: str | None) -> IdeaList | None:
    """A list named on a button; BadCallback (a polite answer) for a name we never made."""
    if text is None:
        return None
    try:
        return IdeaList(text)
    except ValueError:
        raise BadCallback("unknown list") from None


def _rule(ctx: Ctx) -> PointsRule:
    return ctx.config.rules.get(ideas.RULE) or PointsRule(ideas.RULE, 0, 0)


def _unit_name(ctx: Ctx, code: str | None, locale: str | None = None) -> str | None:
    unit = ctx.config.unit(code) if code else None
    return unit.name(locale or ctx.locale) if unit else None


def _view(ctx: Ctx, idea: ideas.Idea, author: str | None, comments: int) -> dict[str, Any]:
    """What the templates show of an idea (times in local time)."""
    return {
        "id": idea.id,
        "title": idea.title,
        "description": idea.description,
        "status": idea.status,
        "reason": idea.decline_reason,
        "upvotes": idea.upvotes,
        "comments": comments,
        "author": author,
        "unit": _unit_name(ctx, idea.unit_code),
        "created_at": idea.created_at.astimezone(ctx.config.timezone),
        "has_photo": idea.photo_file_id is not None,
    }


# --- browsing --------------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_home(ctx: Ctx) -> None:
    """/ideas: what the idea space is, and the lists to browse."""
    lists = [ctx.button(f"ideas_list_{k.value}", IdeaListPage(k.value)) for k in (*BROWSE, *BY_STATUS)]
    keyboard = [[ctx.button("ideas_new", NewIdea())]]
    keyboard += [lists[i : i + ROW] for i in range(0, len(lists), ROW)]
    waiting = None
    if ctx.actor.is_cadre:
        waiting = ideas.queue_count(ctx.session, ctx.actor)
        keyboard.append([ctx.button("ideas_queue", IdeaListPage(IdeaList.QUEUE.value), count=waiting)])
    keyboard.append([ctx.button("home", Home())])
    ctx.show("ideas/home", keyboard, waiting=waiting, points=_rule(ctx).amount)


def _require_list(ctx: Ctx, kind: IdeaList) -> None:
    if kind == IdeaList.QUEUE and not ctx.actor.is_cadre:
        raise NotAllowed()


@handler(needs=Need.VERIFIED)
def show_list(ctx: Ctx) -> None:
    """Button: one page of a list of ideas, each a button to its card."""
    pressed = ctx.pressed(IdeaListPage)
    kind, page = _kind(pressed.kind), pressed.page or 0
    _require_list(ctx, kind)
    size = ideas.LIST_PAGE
    found = ideas.list_ideas(ctx.session, ctx.actor, kind, size + 1, page * size)
    rows = found[:size]
    keyboard = [
        [ctx.button("ideas_item", ShowIdea(r.idea.id, kind.value, page * size + i), title=r.idea.title)]
        for i, r in enumerate(rows)
    ]
    if rows:
        keyboard.append([ctx.button("ideas_browse", BrowseIdea(kind.value, page * size))])
    keyboard += ctx.pager(lambda p: IdeaListPage(kind.value, p), page=page, has_next=len(found) > size)
    keyboard.append([ctx.button("ideas_back", IdeasHome())])
    shown = [_view(ctx, r.idea, r.author, r.comments) for r in rows]
    ctx.show("ideas/list", keyboard, kind=kind.value, ideas=shown, page=page)


def _card_keyboard(ctx: Ctx, card: ideas.IdeaCard, kind: IdeaList | None, pos: int | None, total: int) -> Rows:
    idea = card.idea
    where = (kind.value, pos) if kind is not None and pos is not None else (None, None)
    rows: Rows = []
    first: list[InlineKeyboardButton] = []
    if card.upvoted:
        first.append(ctx.button("ideas_take_back", TakeBack(idea.id, *where), count=idea.upvotes))
    elif not card.mine and idea.status in ideas.UPVOTABLE:
        first.append(ctx.button("ideas_upvote", Upvote(idea.id, *where), count=idea.upvotes))
    first.append(ctx.button("ideas_comments", Comments(idea.id), count=card.comments))
    rows.append(first)
    if kind is not None and pos is not None:
        nav = []
        if pos > 0:
            nav.append(ctx.button("ideas_prev", BrowseIdea(kind.value, pos - 1)))
        if pos + 1 < total:
            nav.append(ctx.button("ideas_next", BrowseIdea(kind.value, pos + 1)))
        if nav:
            rows.append(nav)
    if card.moves:
        rows.append([ctx.button(f"ideas_move_{to.value}", MoveIdea(idea.id, to.value)) for to in card.moves])
    if card.mine and idea.status == IdeaStatus.NEW:
        rows.append([ctx.button("ideas_withdraw", WithdrawIdea(idea.id, 0))])
    if kind is not None and pos is not None:
        back: Button = IdeaListPage(kind.value, pos // ideas.LIST_PAGE)
    else:
        # Opened from a notice or after a step: a cadre goes back to their queue, a member to the idea space.
        back = IdeaListPage(IdeaList.QUEUE.value) if card.can_move else IdeasHome()
    rows.append([ctx.button("ideas_back", back)])
    return rows


def _show_card(
    ctx: Ctx, idea_id: int, kind: IdeaList | None = None, pos: int | None = None, *, edit: bool = True
) -> None:
    """One idea's card; with the list it came from, "3 of 12" and ◀ ▶. A photo card edits only a photo message."""
    card = ideas.card(ctx.session, ctx.actor, idea_id)
    if kind is not None:
        _require_list(ctx, kind)
    total = ideas.count_list(ctx.session, ctx.actor, kind) if kind is not None and pos is not None else 0
    keyboard = _card_keyboard(ctx, card, kind, pos, total)
    context = {
        "idea": _view(ctx, card.idea, card.author, card.comments),
        "upvoted": card.upvoted,
        "mine": card.mine,
        "position": pos + 1 if pos is not None and total else None,
        "total": total,
    }
    if card.idea.photo_file_id:
        ctx.show_photo("ideas/card", card.idea.photo_file_id, keyboard, **context)
    else:
        ctx.say(ctx.t("ideas/card", **context), keyboard, edit=edit)


@handler(needs=Need.VERIFIED)
def show_idea(ctx: Ctx) -> None:
    """Button: one idea's card."""
    pressed = ctx.pressed(ShowIdea)
    _show_card(ctx, pressed.idea_id, _kind(pressed.kind), pressed.pos)


@handler(needs=Need.VERIFIED)
def browse(ctx: Ctx) -> None:
    """Button: the card at a position of a list (◀ ▶); past the end, the list's first page."""
    pressed = ctx.pressed(BrowseIdea)
    kind = _kind(pressed.kind)
    _require_list(ctx, kind)
    idea = ideas.idea_at(ctx.session, ctx.actor, kind, pressed.pos)
    if idea is None:
        raise BadInput("idea_list_end")
    _show_card(ctx, idea.id, kind, pressed.pos)


@handler(write=True, needs=Need.VERIFIED)
def upvote(ctx: Ctx) -> None:
    """Button: upvote an idea (once; a second press changes nothing)."""
    pressed = ctx.pressed(Upvote)
    added = ideas.upvote(ctx.session, ctx.member, ctx.actor, pressed.idea_id, ctx.now)
    ctx.toast = ctx.label("ideas_upvoted" if added else "ideas_already_upvoted")
    _show_card(ctx, pressed.idea_id, _kind(pressed.kind), pressed.pos)


@handler(write=True, needs=Need.VERIFIED)
def take_back(ctx: Ctx) -> None:
    """Button: take my upvote back."""
    pressed = ctx.pressed(TakeBack)
    ideas.take_back(ctx.session, ctx.member, ctx.actor, pressed.idea_id)
    ctx.toast = ctx.label("ideas_taken_back")
    _show_card(ctx, pressed.idea_id, _kind(pressed.kind), pressed.pos)


@handler(write=True, needs=Need.VERIFIED)
def withdraw(ctx: Ctx) -> None:
    """Button: the author takes back a new idea (asked once more first)."""
    pressed = ctx.pressed(WithdrawIdea)
    if not pressed.sure:
        card = ideas.card(ctx.session, ctx.actor, pressed.idea_id)
        if not card.mine:
            raise NotAllowed()
        keyboard = [
            [ctx.button("ideas_withdraw_yes", WithdrawIdea(pressed.idea_id, 1))],
            [ctx.button("ideas_keep", ShowIdea(pressed.idea_id))],
        ]
        ctx.say(ctx.t("ideas/withdraw_confirm", title=card.idea.title), keyboard, edit=False)
        return
    idea = ideas.withdraw(ctx.session, ctx.member, pressed.idea_id)
    ctx.show("ideas/withdrawn", [[ctx.button("ideas_back", IdeasHome())]], title=idea.title)


# --- comments --------------------------------------------------------------------------------------


def _show_comments(ctx: Ctx, idea_id: int, page: int | None, *, edit: bool = True) -> None:
    """A page of an idea's comments (the last page when none is named) with Write, Delete and Hide buttons."""
    size = ideas.COMMENTS_PAGE
    card = ideas.card(ctx.session, ctx.actor, idea_id)
    if page is None:
        total = ideas.count_comments(ctx.session, ctx.actor, idea_id)
        page = max(0, (total - 1) // size)
    found = ideas.comments(ctx.session, ctx.actor, idea_id, size + 1, page * size)
    rows = found[:size]
    keyboard: Rows = [[ctx.button("ideas_write_comment", AddComment(idea_id))]]
    manage = ideas.manages(ctx.actor, card.idea)
    for n, row in enumerate(rows, start=page * size + 1):
        buttons = []
        if row.mine:
            buttons.append(ctx.button("ideas_delete_comment", DeleteComment(row.comment.id), n=n))
        if manage:
            hide = 0 if row.comment.hidden else 1
            buttons.append(ctx.button(f"ideas_hide_comment_{hide}", HideComment(row.comment.id, hide), n=n))
        if buttons:
            keyboard.append(buttons)
    keyboard += ctx.pager(lambda p: Comments(idea_id, p), page=page, has_next=len(found) > size)
    keyboard.append([ctx.button("ideas_back_to_idea", ShowIdea(idea_id))])
    tz = ctx.config.timezone
    shown = [
        {"author": r.author, "text": r.comment.text, "hidden": r.comment.hidden, "at": r.comment.created_at}
        for r in rows
    ]
    shown = [{**c, "at": c["at"].astimezone(tz)} for c in shown]
    context = {"title": card.idea.title, "comments": shown, "first": page * size + 1, "page": page}
    if edit:
        ctx.show("ideas/comments", keyboard, **context)
    else:
        ctx.reply("ideas/comments", keyboard, **context)


@handler(needs=Need.VERIFIED)
def show_comments(ctx: Ctx) -> None:
    """Button: an idea's comments."""
    pressed = ctx.pressed(Comments)
    _show_comments(ctx, pressed.idea_id, pressed.page)


@handler(write=True, needs=Need.VERIFIED)
def add_comment(ctx: Ctx) -> None:
    """Button: write a comment (the next text is the comment)."""
    idea_id = ctx.pressed(AddComment).idea_id
    ideas.visible_idea(ctx.session, ctx.actor, idea_id)
    forms.start_form(ctx, COMMENT_FORM, {"idea_id": idea_id})


def _comment_written(ctx: Ctx, data: dict[str, Any]) -> None:
    """The comment form's answer: store it and show the comments with it."""
    ideas.add_comment(ctx.session, ctx.member, ctx.actor, data["idea_id"], data["text"], ctx.now)
    ctx.reply("ideas/comment_added")
    _show_comments(ctx, data["idea_id"], None, edit=False)


@handler(write=True, needs=Need.VERIFIED)
def delete_comment(ctx: Ctx) -> None:
    """Button: delete my own comment."""
    idea_id = ideas.delete_comment(ctx.session, ctx.member, ctx.pressed(DeleteComment).comment_id)
    ctx.toast = ctx.label("ideas_comment_deleted")
    _show_comments(ctx, idea_id, None)


@handler(write=True, needs=Need.CADRE)
def hide_comment(ctx: Ctx) -> None:
    """Button (cadres): hide an abusive comment, or show it again."""
    pressed = ctx.pressed(HideComment)
    idea_id = ideas.hide_comment(ctx.session, ctx.actor, pressed.comment_id, bool(pressed.hidden))
    ctx.toast = ctx.label(f"ideas_comment_hidden_{1 if pressed.hidden else 0}")
    _show_comments(ctx, idea_id, None)


# --- cadres: moving an idea ---------------------------------------------------------------------------


def _status(text: str) -> IdeaStatus:
    try:
        return IdeaStatus(text)
    except ValueError:
        raise BadCallback("unknown status") from None


@handler(write=True, needs=Need.CADRE)
def move_idea(ctx: Ctx) -> None:
    """Button (cadres): move an idea one step; declining asks for the reason first."""
    pressed = ctx.pressed(MoveIdea)
    to = _status(pressed.to)
    if to == IdeaStatus.DECLINED:
        idea = ideas.check_move(ctx.session, ctx.actor, pressed.idea_id, to)
        forms.start_form(ctx, DECLINE_FORM, {"idea_id": idea.id, "title": idea.title})
        return
    _move(ctx, pressed.idea_id, to, None)


def _declined(ctx: Ctx, data: dict[str, Any]) -> None:
    """The decline form's answer: decline with the reason."""
    _move(ctx, data["idea_id"], IdeaStatus.DECLINED, data["reason"])


def _move(ctx: Ctx, idea_id: int, to: IdeaStatus, reason: str | None) -> None:
    """Move, tell the author and the upvoters (once each, through the outbox), show the card again."""
    moved = ideas.move(ctx.session, ctx.actor, idea_id, to, ctx.now, ctx.today, _rule(ctx), reason)
    idea = moved.idea
    for who in moved.recipients:
        locale = pick_locale(who.language)
        text = ctx.t(
            "ideas/step_notice",
            locale,
            title=idea.title,
            status=idea.status,
            reason=idea.decline_reason,
            is_author=who.is_author,
            awarded=moved.awarded if who.is_author else 0,
        )
        keyboard = [[ctx.button("ideas_open", ShowIdea(idea.id), locale)]]
        written = services.notify(
            ctx.session,
            who.telegram_id,
            text,
            now=ctx.now,
            keyboard=InlineKeyboardMarkup(keyboard).to_dict(),
            dedupe_key=f"idea:{idea.id}:{idea.status}:{who.member_id}",
            member_id=who.member_id,
        )
        ctx.notices += int(written)
    ctx.toast = ctx.label(f"ideas_moved_{idea.status}")
    if not isinstance(ctx.callback, MoveIdea):
        # Declined after the typed reason: say so in a new message, then the card.
        ctx.reply("ideas/moved", title=idea.title, status=idea.status, told=len(moved.recipients))
    _show_card(ctx, idea.id)


# --- the forms ------------------------------------------------------------------------------------------


def _clean(limit: int, errors: str) -> forms.Parser:
    def parse(_ctx: Ctx, text: str, _data: dict[str, Any]) -> str:
        return ideas.clean_text(text, limit, errors)

    return parse


def _photo_text(_ctx: Ctx, _text: str, _data: dict[str, Any]) -> str:
    raise BadInput("idea_photo_expected")


def _units(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    """Their own unit, or the whole bureau."""
    own = ctx.member.unit_code
    return [(_unit_name(ctx, own) or own, own), (ctx.label("ideas_bureau_wide"), BUREAU)]


def _submitted(ctx: Ctx, data: dict[str, Any]) -> None:
    """The last answer is in: store the idea and show its card."""
    unit = None if data["unit"] == BUREAU else data["unit"]
    draft = ideas.IdeaDraft(data["title"], data["description"], unit, data.get("photo"))
    idea = ideas.submit(ctx.session, ctx.member, draft, ctx.now)
    # The last question (a button press) becomes the confirmation; the card follows as a new message.
    ctx.show("ideas/submitted", title=idea.title)
    _show_card(ctx, idea.id, IdeaList.MINE, 0, edit=False)


forms.register_form(
    Form(
        FORM,
        (
            Field("title", parse=_clean(ideas.TITLE_MAX, "idea_title")),
            Field("description", parse=_clean(ideas.DESCRIPTION_MAX, "idea_description")),
            Field("photo", parse=_photo_text, optional=True, accepts_photo=True),
            Field("unit", choices=_units),
        ),
        _submitted,
    )
)
forms.register_form(
    Form(COMMENT_FORM, (Field("text", parse=_clean(ideas.COMMENT_MAX, "idea_comment")),), _comment_written)
)
forms.register_form(Form(DECLINE_FORM, (Field("reason", parse=_clean(ideas.REASON_MAX, "idea_reason")),), _declined))


@handler(write=True, needs=Need.VERIFIED)
def new_idea(ctx: Ctx) -> None:
    """Button: start submitting an idea, one question at a time."""
    forms.start_form(ctx, FORM)


def idea_media(ctx: Ctx, message: Message) -> None:
    """A non-text message in an idea's questions (handlers/menu.py on_media): a photo where one is asked, otherwise
    what is expected."""
    state = ctx.flow()
    if message.photo and state.name == FORM:
        forms.answer_photo(ctx, message.photo[-1].file_id)
        return
    raise BadInput("idea_media_unsupported" if state.step == "photo" else "idea_text_expected")


SECTION = Section(
    "ideas",
    commands=(Command("ideas", show_home, menu_order=60),),
    buttons={
        IdeasHome: show_home,
        IdeaListPage: show_list,
        BrowseIdea: browse,
        ShowIdea: show_idea,
        Upvote: upvote,
        TakeBack: take_back,
        NewIdea: new_idea,
        Comments: show_comments,
        AddComment: add_comment,
        DeleteComment: delete_comment,
        HideComment: hide_comment,
        MoveIdea: move_idea,
        WithdrawIdea: withdraw,
    },
    flows={FORM: forms.answer_text, COMMENT_FORM: forms.answer_text, DECLINE_FORM: forms.answer_text},
    media={FORM: idea_media, COMMENT_FORM: idea_media, DECLINE_FORM: idea_media},
    admin_entries=(("ideas_admin", IdeaListPage(IdeaList.QUEUE.value)),),
)
