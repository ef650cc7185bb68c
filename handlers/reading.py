"""Reading (e校园): cadres' recommended books, reading / finished marks, notes with likes, and the reading festival
(读书节): daily check-in with a streak, leaderboards of members and units, points and a certificate at the goal."""

from __future__ import annotations

import re
from datetime import date
from functools import partial
from typing import Any

from buttons.menu import CancelFlow, Home
from buttons.reading import (
    BookList,
    BookNotes,
    Certificate,
    CheckIn,
    Leaderboard,
    LikeNote,
    MarkBook,
    NewBook,
    NewFestival,
    OpenBook,
    ReadingHome,
    RemoveBook,
    WriteNote,
)
from handlers import forms
from handlers.base import Command, Ctx, Need, Outgoing, Rows, Section, handler
from handlers.forms import Field, Form
from models import certificate, likes, reading
from models.errors import BadInput
from models.reading import Festival, GoalKind, GoalReached, Mark

BOOK_FORM = "reading"
FESTIVAL_FORM = "reading_festival"
NOTE_FLOW = "reading_note"
CHECKIN_FLOW = "reading_checkin"
CHECKIN_RULE = "reading_checkin"
GOAL_RULE = "reading_goal"
ERRORS = "reading"
PAGE = 8
NOTES_PAGE = 5
DAY = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")


def _rules(ctx: Ctx) -> tuple[Any, Any]:
    return ctx.config.rules.get(CHECKIN_RULE), ctx.config.rules.get(GOAL_RULE)


# --- home and the festival -----------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def reading_home(ctx: Ctx) -> None:
    """/reading: the festival (my progress, check-in), the book list, the leaderboard; cadres add books, festivals."""
    festival = reading.latest_festival(ctx.session, ctx.today)
    progress = reading.my_progress(ctx.session, festival, ctx.member) if festival else None
    running = festival is not None and festival.starts_on <= ctx.today <= festival.ends_on
    checked_today = progress is not None and progress.last_day == ctx.today
    keyboard: Rows = [[ctx.button("reading_books", BookList())]]
    if running:
        keyboard.append([ctx.button("reading_checkin", CheckIn())])
    if festival is not None:
        keyboard.append([ctx.button("reading_board", Leaderboard())])
    if progress is not None and progress.reached_at is not None:
        keyboard.append([ctx.button("reading_certificate", Certificate())])
    if ctx.actor.is_cadre:
        staff = [ctx.button("reading_new_book", NewBook())]
        if ctx.actor.is_bureau:
            # A festival is bureau-wide (its unit leaderboard compares every unit): bureau cadres open it.
            staff.append(ctx.button("reading_new_festival", NewFestival()))
        keyboard.append(staff)
    keyboard.append([ctx.button("home", Home())])
    ctx.show(
        "reading/home",
        keyboard,
        festival=festival,
        running=running,
        progress=progress,
        checked_today=checked_today,
        today=ctx.today,
    )


@handler(write=True, needs=Need.VERIFIED)
def ask_checkin(ctx: Ctx) -> None:
    """Button: today's check-in: what did you read?"""
    festival = reading.current_festival(ctx.session, ctx.today)
    if festival is None:
        raise BadInput("reading_no_festival")
    progress = reading.my_progress(ctx.session, festival, ctx.member)
    if progress is not None and progress.last_day == ctx.today:
        raise BadInput("reading_checked_in_today")
    ctx.set_flow(CHECKIN_FLOW, "text", {})
    ctx.reply("reading/ask_checkin", [[ctx.button("cancel", CancelFlow())]], max=reading.CHECKIN_MAX)


def checkin_text(ctx: Ctx, text: str) -> None:
    """The typed check-in: once a day, the streak, points; the certificate when it reaches the goal."""
    checkin_rule, goal_rule = _rules(ctx)
    done = reading.check_in(ctx.session, ctx.member, text, ctx.now, ctx.today, checkin_rule, goal_rule)
    ctx.clear_flow(CHECKIN_FLOW)
    progress = done.progress
    ctx.reply(
        "reading/checked_in",
        [[ctx.button("back", ReadingHome())]],
        checkins=progress.checkins,
        streak=progress.streak,
        points=done.points,
    )
    if done.reached is not None:
        _goal_reached(ctx, done.reached)


def _goal_reached(ctx: Ctx, reached: GoalReached) -> None:
    """Congratulations and the certificate (an image drawn now, in the member's language)."""
    ctx.reply("reading/goal_reached", title=reached.festival.title, points=reached.points)
    _send_certificate(ctx, reached.festival)


def _send_certificate(ctx: Ctx, festival: Festival) -> None:
    org = ctx.config.org_name(ctx.locale)
    name = ctx.member.name or ""
    lines = certificate.Lines(
        heading=ctx.label("reading_cert_heading"),
        name=name,
        body=ctx.label("reading_cert_body"),
        festival=festival.title,
        footer=ctx.label("reading_cert_footer", org=org, day=ctx.today.isoformat()),
    )
    png = certificate.draw(lines, ctx.config.community.certificate_font)
    caption = ctx.t("reading/certificate", name=name, title=festival.title, org=org)
    ctx.replies.append(Outgoing(ctx.chat_id, caption, photo=png))


@handler(needs=Need.VERIFIED)
def send_certificate(ctx: Ctx) -> None:
    """Button: my certificate of the festival again."""
    festival = reading.latest_festival(ctx.session, ctx.today)
    progress = reading.my_progress(ctx.session, festival, ctx.member) if festival else None
    if progress is None or progress.reached_at is None:
        raise BadInput("reading_no_certificate")
    _send_certificate(ctx, festival)


@handler(needs=Need.VERIFIED)
def show_board(ctx: Ctx) -> None:
    """Button: the festival's leaderboard of members (opt-outs left out) and of units (share reaching the goal)."""
    festival = reading.latest_festival(ctx.session, ctx.today)
    if festival is None:
        raise BadInput("reading_no_festival")
    leaders = reading.leaders(ctx.session, festival, ctx.config.limits.ranking_size)
    names = {u.code: u.name(ctx.locale) for u in ctx.config.units}
    units = [
        {"name": names.get(s.unit_code, s.unit_code), "percent": s.percent, "reached": s.reached, "members": s.members}
        for s in reading.unit_shares(ctx.session, festival)
    ]
    ctx.show(
        "reading/board",
        [[ctx.button("back", ReadingHome())]],
        festival=festival,
        leaders=leaders,
        units=units,
        opted_out=ctx.member.ranking_opt_out,
    )


# --- books -----------------------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def book_list(ctx: Ctx) -> None:
    """Button: the recommended books, a page at a time."""
    pressed = ctx.callback
    page = (pressed.page or 0) if isinstance(pressed, BookList) else 0
    found = reading.books(ctx.session, PAGE + 1, page * PAGE)
    keyboard = [[ctx.button("reading_book", OpenBook(b.id), title=b.title)] for b in found[:PAGE]]
    keyboard += ctx.pager(BookList, page=page, has_next=len(found) > PAGE)
    keyboard.append([ctx.button("back", ReadingHome())])
    ctx.show("reading/books", keyboard, books=found[:PAGE])


def _book_card(ctx: Ctx, book_id: int) -> None:
    view = reading.book_view(ctx.session, ctx.member, book_id, ctx.config.community)
    book = view.book
    keyboard: Rows = [
        [
            ctx.button("reading_mark_reading", MarkBook(book.id, Mark.READING)),
            ctx.button("reading_mark_finished", MarkBook(book.id, Mark.FINISHED)),
        ],
        [
            ctx.button("reading_write_note", WriteNote(book.id)),
            ctx.button("reading_notes", BookNotes(book.id), count=view.notes),
        ],
    ]
    if ctx.actor.is_cadre:
        keyboard.append([ctx.button("reading_remove", RemoveBook(book.id))])
    keyboard.append([ctx.button("back", BookList())])
    context = {
        "book": book,
        "mark": view.mark,
        "readers": view.readers,
        "finished": view.finished,
        "has_note": view.my_note is not None,
    }
    if book.cover_file_id:
        ctx.show_photo("reading/book", book.cover_file_id, keyboard, **context)
    else:
        ctx.show("reading/book", keyboard, **context)


@handler(needs=Need.VERIFIED)
def open_book(ctx: Ctx) -> None:
    """Button: a book with my mark, how many read it, and the ways to mark it and write a note."""
    _book_card(ctx, ctx.pressed(OpenBook).book_id)


@handler(write=True, needs=Need.VERIFIED)
def mark_book(ctx: Ctx) -> None:
    """Button: I am reading / I finished this book (finishing counts towards a festival's books goal)."""
    pressed = ctx.pressed(MarkBook)
    if pressed.mark not in {m.value for m in Mark}:
        raise BadInput("form_step_passed")
    _checkin, goal_rule = _rules(ctx)
    reached = reading.set_mark(
        ctx.session, ctx.member, pressed.book_id, Mark(pressed.mark), ctx.now, ctx.today, goal_rule
    )
    ctx.toast = ctx.label(f"reading_marked_{pressed.mark}")
    _book_card(ctx, pressed.book_id)
    if reached is not None:
        _goal_reached(ctx, reached)


@handler(write=True, needs=Need.CADRE)
def remove_book(ctx: Ctx) -> None:
    """Button: take a book off the list (its marks and notes stay)."""
    book = reading.remove_book(ctx.session, ctx.actor, ctx.pressed(RemoveBook).book_id)
    ctx.show("reading/removed", [[ctx.button("back", BookList())]], title=book.title)


@handler(write=True, needs=Need.VERIFIED)
def ask_note(ctx: Ctx) -> None:
    """Button: write (or rewrite) my note on a book."""
    book = reading.get_book(ctx.session, ctx.pressed(WriteNote).book_id)
    ctx.set_flow(NOTE_FLOW, "text", {"book_id": book.id})
    ctx.reply(
        "reading/write_note",
        [[ctx.button("cancel", CancelFlow())]],
        title=book.title,
        min=ctx.config.community.reading_note_min_length,
        max=reading.READING_NOTE_MAX,
    )


def note_text(ctx: Ctx, text: str) -> None:
    """The typed note: stored; it counts (listed, likeable) from the configured length."""
    state = ctx.section_flow(NOTE_FLOW)
    note = reading.write_note(ctx.session, ctx.member, state.data["book_id"], text, ctx.now)
    ctx.clear_flow(NOTE_FLOW)
    counts = reading.counts(note, ctx.config.community)
    keyboard = [[ctx.button("reading_read_notes", BookNotes(note.book_id))], [ctx.button("back", ReadingHome())]]
    ctx.reply(
        "reading/note_saved",
        keyboard,
        counts=counts,
        length=len(note.text),
        min=ctx.config.community.reading_note_min_length,
    )


def _notes(ctx: Ctx, book_id: int, page: int) -> None:
    settings = ctx.config.community
    found = reading.notes_of(ctx.session, ctx.member, book_id, settings, NOTES_PAGE + 1, page * NOTES_PAGE)
    shown = found[:NOTES_PAGE]
    keyboard: Rows = [
        [
            ctx.button(
                "reading_unlike" if n.liked else "reading_like",
                LikeNote(n.note.id, 0 if n.liked else 1, page),
                count=n.note.likes,
                name=n.author,
            )
        ]
        for n in shown
    ]
    keyboard += ctx.pager(lambda p: BookNotes(book_id, p), page=page, has_next=len(found) > NOTES_PAGE)
    keyboard.append([ctx.button("back", OpenBook(book_id))])
    book = reading.get_book(ctx.session, book_id)
    ctx.show("reading/notes", keyboard, title=book.title, notes=shown, page=page)


@handler(needs=Need.VERIFIED)
def book_notes(ctx: Ctx) -> None:
    """Button: the notes on a book that count, most liked first."""
    pressed = ctx.pressed(BookNotes)
    _notes(ctx, pressed.book_id, pressed.page or 0)


@handler(write=True, needs=Need.VERIFIED)
def like_note(ctx: Ctx) -> None:
    """Button: like a note or take the like back; the same anti-farming rules as the show (models/likes.py)."""
    pressed = ctx.pressed(LikeNote)
    note, _result = reading.set_note_like(
        ctx.session,
        ctx.member,
        pressed.note_id,
        bool(pressed.on),
        ctx.now,
        ctx.today,
        ctx.config.community,
        ctx.config.rules.get(likes.RULE),
    )
    ctx.toast = ctx.label("reading_liked" if pressed.on else "reading_unliked")
    _notes(ctx, note.book_id, pressed.page or 0)


# --- cadres' forms: a book, a festival ------------------------------------------------------------------


@handler(write=True, needs=Need.CADRE)
def new_book(ctx: Ctx) -> None:
    """Button: add a book to the list, step by step."""
    forms.start_form(ctx, BOOK_FORM)


@handler(write=True, needs=Need.CADRE)
def new_festival(ctx: Ctx) -> None:
    """Button: open a reading festival, step by step."""
    if not ctx.actor.is_bureau:
        raise BadInput("not_allowed")
    forms.start_form(ctx, FESTIVAL_FORM)


_text = partial(forms.text_answer, ERRORS)


def _photo_text(_ctx: Ctx, _text: str, _data: dict[str, Any]) -> str:
    raise BadInput("reading_photo_expected")


def _day(ctx: Ctx, text: str, data: dict[str, Any]) -> str:
    """A day typed as YYYY-MM-DD, kept as ISO text."""
    if not DAY.fullmatch(text.strip()):
        raise BadInput("reading_date_format")
    try:
        day = date.fromisoformat("-".join(part.zfill(2) for part in text.strip().split("-")))
    except ValueError:
        raise BadInput("reading_date_format") from None
    if "starts_on" in data and day < date.fromisoformat(data["starts_on"]):
        raise BadInput("reading_dates_order")
    return day.isoformat()


def _goal_kinds(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.label(f"reading_goal_{k.value}"), k.value) for k in GoalKind]


def _add_book(ctx: Ctx, data: dict[str, Any]) -> None:
    book = reading.add_book(
        ctx.session,
        ctx.actor,
        data["title"],
        data.get("author") or "",
        data.get("note") or "",
        data.get("where") or "",
        data.get("cover"),
        ctx.now,
    )
    ctx.reply(
        "reading/book_added", [[ctx.button("reading_book", OpenBook(book.id), title=book.title)]], title=book.title
    )


def _open_festival(ctx: Ctx, data: dict[str, Any]) -> None:
    festival = reading.open_festival(
        ctx.session,
        ctx.actor,
        data["title"],
        date.fromisoformat(data["starts_on"]),
        date.fromisoformat(data["ends_on"]),
        GoalKind(data["goal_kind"]),
        data["goal"],
        ctx.now,
    )
    ctx.reply("reading/festival_opened", [[ctx.button("back", ReadingHome())]], festival=festival)


forms.register_form(
    Form(
        BOOK_FORM,
        (
            Field("title", parse=_text(reading.TITLE_MAX)),
            Field("author", parse=_text(reading.AUTHOR_MAX), optional=True),
            Field("note", parse=_text(reading.NOTE_MAX), optional=True),
            Field("where", parse=_text(reading.WHERE_MAX), optional=True),
            Field("cover", parse=_photo_text, optional=True, accepts_photo=True),
        ),
        _add_book,
    )
)
forms.register_form(
    Form(
        FESTIVAL_FORM,
        (
            Field("title", parse=_text(reading.TITLE_MAX)),
            Field("starts_on", parse=_day),
            Field("ends_on", parse=_day),
            Field("goal_kind", choices=_goal_kinds),
            Field("goal", parse=forms.number_answer(ERRORS, 1, reading.GOAL_MAX)),
        ),
        _open_festival,
    )
)


SECTION = Section(
    "reading",
    commands=(Command("reading", reading_home, menu_order=45),),
    buttons={
        ReadingHome: reading_home,
        BookList: book_list,
        OpenBook: open_book,
        MarkBook: mark_book,
        WriteNote: ask_note,
        BookNotes: book_notes,
        LikeNote: like_note,
        RemoveBook: remove_book,
        NewBook: new_book,
        NewFestival: new_festival,
        CheckIn: ask_checkin,
        Leaderboard: show_board,
        Certificate: send_certificate,
    },
    flows={
        BOOK_FORM: forms.answer_text,
        FESTIVAL_FORM: forms.answer_text,
        NOTE_FLOW: note_text,
        CHECKIN_FLOW: checkin_text,
    },
)
