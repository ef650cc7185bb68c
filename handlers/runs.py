"""Runs and club events (航天漫步): /runs, /newrun, the run card and its answers, calendar, check-in, inline sharing.

A card shown in private chat is personal (my answer, the organiser's tools). The same run shared through inline
mode (`@bot run`) or posted in a group is a public card: live counts and the three answer buttons, which work for
verified members (the card is edited in place) and give anyone else a short alert on how to join.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlmodel import Session
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, InlineQueryHandler

from buttons import BadCallback
from buttons.menu import CancelFlow, Home
from buttons.runs import (
    AskCancelRun,
    Calendar,
    CancelRun,
    CheckInCode,
    EditRun,
    MarkPresent,
    MyRuns,
    NewRun,
    People,
    PostToGroup,
    Respond,
    RunList,
    ShowPin,
    ShowRun,
)
from config import PointsRule
from handlers import forms
from handlers.base import Command, Ctx, Need, Section, handler, services_of
from handlers.forms import Field, Form
from models import clubs, runs
from models.errors import BadInput, DomainError
from models.runs import Answer, Visibility
from scheduled import runs as notices
from services import Services
from services import notify as services_notify

log = logging.getLogger(__name__)

PAGE = 10
# A posted card is edited at most this often (answers in between are shown by the next edit).
REFRESH_SECONDS = 3.0
MINE = 20
PEOPLE_SHOWN = 50
INLINE_RESULTS = 20
FORM = "runs"
EDIT_FLOW = "runs_edit"
ERRORS = "runs"
FILTERS = ("all", "club", *runs.BANDS)
EDITABLE = ("starts_at", "place")
# What `@bot ...` must start with to list my runs (and optionally a run id after it).
KIND_GROUP_POST = "runs_group_post"
INLINE_PATTERN = r"(?i)^\s*(run|跑步|约跑)"


def _window(ctx: Ctx) -> tuple[timedelta, timedelta]:
    settings = ctx.config.runs
    return timedelta(minutes=settings.checkin_before_minutes), timedelta(minutes=settings.checkin_after_minutes)


def _rule(ctx: Ctx) -> PointsRule:
    return ctx.config.rules[runs.ATTENDANCE_RULE]


def _view(ctx: Ctx, card: runs.Card) -> dict[str, Any]:
    return notices.run_view(card.event, ctx.config.timezone, card.club_name)


def _public(ctx: Ctx) -> bool:
    """A press on an inline-mode message or in a group: the card is shared, not personal."""
    query = ctx.update.callback_query
    if query is not None and query.inline_message_id is not None:
        return True
    chat = ctx.update.effective_chat
    return chat is not None and chat.type != ChatType.PRIVATE


def _answer_row(ctx: Ctx, event_id: int, locale: str | None = None) -> list[InlineKeyboardButton]:
    return [ctx.button(f"runs_answer_{a}", Respond(event_id, a.value), locale) for a in runs.CHOICES]


def _public_keyboard(ctx: Ctx, card: runs.Card, locale: str | None = None) -> list[list[InlineKeyboardButton]]:
    view = notices.run_view(card.event, ctx.config.timezone)
    return _shared_rows(ctx.services, locale or ctx.locale, ctx.context.bot.username, view)


def _card_keyboard(ctx: Ctx, card: runs.Card) -> list[list[InlineKeyboardButton]]:
    event, rows = card.event, []
    open_ = event.status == runs.EventStatus.OPEN
    if open_ and event.starts_at > ctx.now:
        rows.append(_answer_row(ctx, event.id))
    if event.latitude is not None:
        rows.append([ctx.button("runs_pin", ShowPin(event.id))])
    rows.append(
        [
            ctx.button("runs_calendar", Calendar(event.id)),
            InlineKeyboardButton(ctx.label("runs_share"), switch_inline_query=f"run {event.id}"),
        ]
    )
    if event.club_id is not None and open_ and event.starts_at > ctx.now:
        rows.append([ctx.button("runs_post_group", PostToGroup(event.id))])
    if card.is_organiser:
        rows.append([ctx.button("runs_people", People(event.id))])
        if runs.checkin_open(event, ctx.now, *_window(ctx)):
            rows.append([ctx.button("runs_checkin_code", CheckInCode(event.id))])
        if open_ and event.starts_at > ctx.now:
            rows.append([ctx.button(f"runs_edit_{f}", EditRun(event.id, f)) for f in EDITABLE])
            rows.append([ctx.button("runs_cancel", AskCancelRun(event.id))])
    rows.append([ctx.button("runs_back", RunList("all")), ctx.button("runs_mine", MyRuns())])
    return rows


def _show_card(ctx: Ctx, event_id: int, *, edit: bool = True) -> None:
    """My card of a run: counts, my answer and place on the waitlist, the buttons I may use."""
    card = runs.card(ctx.session, ctx.member, event_id)
    if card.event.kind == runs.Kind.WORKSHOP:
        # Workshops have their own card (handlers/workshops.py), without sharing.
        raise runs.RunNotFound()
    text = ctx.t(
        "runs/card",
        run=_view(ctx, card),
        organiser=card.organiser,
        maybe=card.maybe,
        waitlist=card.waitlist,
        mine=card.mine,
        position=card.position,
        checked_in=card.checked_in,
        public=False,
    )
    ctx.say(text, _card_keyboard(ctx, card), edit=edit)


def _public_text(ctx: Ctx, card: runs.Card, locale: str | None = None) -> str:
    return ctx.t(
        "runs/card",
        locale,
        run=_view(ctx, card),
        organiser=card.organiser,
        maybe=card.maybe,
        waitlist=card.waitlist,
        mine=None,
        position=None,
        checked_in=False,
        public=True,
    )


def _show_public(ctx: Ctx, event_id: int) -> None:
    card = runs.public_card(ctx.session, event_id)
    ctx.say(_public_text(ctx, card), _public_keyboard(ctx, card), edit=True)


def _remember_pressed_card(ctx: Ctx, event_id: int) -> None:
    """A press on a shared or posted card: keep that copy, so later answers elsewhere update it too."""
    query = ctx.update.callback_query
    if query.inline_message_id is not None:
        runs.remember_card(ctx.session, event_id, inline_message_id=query.inline_message_id)
    elif query.message is not None:
        runs.remember_card(ctx.session, event_id, chat_id=query.message.chat.id, message_id=query.message.message_id)


class CardRefresher:
    """Edits the posted copies of a card when its counts change: at once, then at most every REFRESH_SECONDS per
    run (changes in between are folded into one later edit), so a busy run never floods the edit limits."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}
        self.pending: dict[int, asyncio.Task[None]] = {}

    def request(self, app: Application, event_id: int, skip: runs.CardCopy | None) -> Callable[[], Awaitable[None]]:
        """A job for after the commit: refresh now, or once the throttle allows."""

        async def job() -> None:
            wait = self.last.get(event_id, -REFRESH_SECONDS) + REFRESH_SECONDS - asyncio.get_running_loop().time()
            if wait <= 0:
                await self._refresh(app, event_id, skip)
            elif event_id not in self.pending:
                self.pending[event_id] = asyncio.create_task(self._later(app, event_id, wait))

        return job

    async def _later(self, app: Application, event_id: int, wait: float) -> None:
        try:
            await asyncio.sleep(wait)
            await self._refresh(app, event_id, None)
        finally:
            self.pending.pop(event_id, None)

    async def _refresh(self, app: Application, event_id: int, skip: runs.CardCopy | None) -> None:
        self.last[event_id] = asyncio.get_running_loop().time()
        services = services_of(app)
        locale = services.config.default_language

        def read(session: Session) -> tuple[str, dict[str, Any], list[runs.CardCopy]]:
            card = runs.public_card(session, event_id)
            view = notices.run_view(card.event, services.config.timezone, card.club_name)
            text = services.renderer.render(
                locale,
                "runs/card",
                run=view,
                organiser=card.organiser,
                maybe=card.maybe,
                waitlist=card.waitlist,
                mine=None,
                position=None,
                checked_in=False,
                public=True,
            )
            return text, view, runs.card_copies(session, event_id)

        text, view, copies = await services.db.read(read)
        markup = InlineKeyboardMarkup(_shared_rows(services, locale, app.bot.username, view))
        for copy in copies:
            if copy == skip:
                continue
            try:
                if copy.inline_message_id is not None:
                    await app.bot.edit_message_text(text, inline_message_id=copy.inline_message_id, reply_markup=markup)
                else:
                    await app.bot.edit_message_text(text, copy.chat_id, copy.message_id, reply_markup=markup)
            except TelegramError as exc:
                log.info("could not refresh a posted run card: %s", exc)


def _shared_rows(
    services: Services, locale: str, username: str, view: dict[str, Any]
) -> list[list[InlineKeyboardButton]]:
    """The buttons of a shared or posted card (built without an update too: for the refresher)."""
    label = partial(services.renderer.label, locale)
    rows = []
    if view["status"] == runs.EventStatus.OPEN and view["starts_at"] > services.clock.now():
        rows.append(
            [
                InlineKeyboardButton(label(f"runs_answer_{a}"), callback_data=Respond(view["id"], a.value).pack())
                for a in runs.CHOICES
            ]
        )
    link = f"https://t.me/{username}?start={runs.CARD_PREFIX}{view['id']}"
    rows.append([InlineKeyboardButton(label("runs_open_bot"), url=link)])
    return rows


def _refresher(ctx: Ctx) -> CardRefresher:
    return ctx.context.application.bot_data.setdefault("run_cards", CardRefresher())


# --- members -------------------------------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_runs(ctx: Ctx) -> None:
    """/runs: upcoming runs visible to me, nearest first, with filters (my clubs, distance bands)."""
    pressed = ctx.callback
    chosen = pressed.filter if isinstance(pressed, RunList) else "all"
    if chosen not in FILTERS:
        raise BadCallback("unknown filter")
    page = (pressed.page or 0) if isinstance(pressed, RunList) else 0
    band = chosen if chosen in runs.BANDS else None
    found = runs.upcoming(
        ctx.session, ctx.member, ctx.now, PAGE + 1, page * PAGE, club_only=chosen == "club", band=band
    )
    shown = found[:PAGE]
    tz = ctx.config.timezone
    keyboard = [[ctx.button("runs_item", ShowRun(e.id), at=e.starts_at.astimezone(tz), place=e.place)] for e in shown]
    keyboard += ctx.pager(lambda p: RunList(chosen, p), page=page, has_next=len(found) > PAGE)
    keyboard.append(
        [ctx.button(f"runs_filter_{f}", RunList(f), chosen=f == chosen) for f in FILTERS[:2]]
        + [ctx.button(f"runs_filter_{f}", RunList(f), chosen=f == chosen) for f in FILTERS[2:]]
    )
    keyboard.append([ctx.button("runs_new", NewRun()), ctx.button("runs_mine", MyRuns())])
    keyboard.append([ctx.button("home", Home())])
    ctx.show("runs/list", keyboard, runs=[notices.run_view(e, tz) for e in shown], filter=chosen)


@handler(needs=Need.VERIFIED)
def show_mine(ctx: Ctx) -> None:
    """Button: runs I organise or answered, nearest first."""
    found = runs.mine(ctx.session, ctx.member, ctx.now, MINE)
    tz = ctx.config.timezone
    keyboard = [[ctx.button("runs_item", ShowRun(e.id), at=e.starts_at.astimezone(tz), place=e.place)] for e in found]
    keyboard.append([ctx.button("runs_back", RunList("all")), ctx.button("runs_new", NewRun())])
    views = [notices.run_view(e, tz) | {"organiser": e.organiser_id == ctx.member.id} for e in found]
    ctx.show("runs/mine", keyboard, runs=views)


@handler(needs=Need.VERIFIED)
def show_run(ctx: Ctx) -> None:
    """Button: one run's card."""
    _show_card(ctx, ctx.pressed(ShowRun).event_id)


def open_card(ctx: Ctx, payload: str) -> None:
    """Deep link run_<id> (the "open in the bot" button of a shared card)."""
    if not ctx.actor.verified:
        raise DomainError("not_registered")
    if not payload.isdigit() or len(payload) > 9:
        raise runs.RunNotFound()
    _show_card(ctx, int(payload), edit=False)


@handler(write=True, needs=Need.ANYONE, private=False)
def respond(ctx: Ctx) -> None:
    """Button: Going / Maybe / Can't go, on my card, a shared card or a group's card."""
    press = ctx.pressed(Respond)
    if not ctx.actor.verified:
        raise DomainError("runs_join_first")
    try:
        answer = Answer(press.answer)
    except ValueError:
        raise BadCallback("unknown answer") from None
    change = runs.respond(ctx.session, ctx.member, press.event_id, answer, ctx.now)
    ctx.notices += notices.tell_promotions(ctx.services, ctx.session, change.promoted, ctx.now)
    ctx.toast = ctx.label(f"runs_toast_{change.answer}", position=change.position or 0)
    pressed = None
    if _public(ctx):
        _remember_pressed_card(ctx, press.event_id)
        query = ctx.update.callback_query
        message = query.message
        pressed = runs.CardCopy(
            query.inline_message_id,
            message.chat.id if query.inline_message_id is None else None,
            message.message_id if query.inline_message_id is None else None,
        )
        _show_public(ctx, press.event_id)
    else:
        _show_card(ctx, press.event_id)
    ctx.after_commit.append(_refresher(ctx).request(ctx.context.application, press.event_id, pressed))


@handler(needs=Need.VERIFIED)
def send_calendar(ctx: Ctx) -> None:
    """Button: the run as an .ics file (time zone, place, a reminder) for the phone's calendar."""
    card = runs.card(ctx.session, ctx.member, ctx.pressed(Calendar).event_id)
    view = _view(ctx, card)
    content = runs.calendar_file(
        card.event,
        ctx.config.timezone,
        ctx.label("runs_ics_summary", run=view),
        ctx.label("runs_ics_description", run=view, organiser=card.organiser),
        ctx.label("runs_ics_alarm", run=view),
    )
    ctx.send_document(content, f"run-{card.event.id}.ics", "runs/calendar_caption", run=view)


@handler(needs=Need.VERIFIED)
def show_pin(ctx: Ctx) -> None:
    """Button: the meeting point's location pin, as a location message."""
    event = runs.card(ctx.session, ctx.member, ctx.pressed(ShowPin).event_id).event
    if event.latitude is None or event.longitude is None:
        raise runs.RunNotFound()
    bot, chat_id, place = ctx.context.bot, ctx.chat_id, event.place
    latitude, longitude = event.latitude, event.longitude

    async def send() -> None:
        try:
            await bot.send_venue(chat_id, latitude, longitude, title=place[:64], address=place)
        except TelegramError as exc:
            log.info("could not send a run's location: %s", exc)

    ctx.after_commit.append(send)


def run_media(ctx: Ctx, message: Message) -> None:
    """A non-text message while writing a run (handlers/menu.py on_media): the meeting point's pin where it is
    asked; anything else as the form engine answers it."""
    state = ctx.flow()
    if message.location is None:
        forms.answer_media(ctx, message)
        return
    if state.step != "location":
        raise BadInput("runs_location_not_expected")
    where = message.location
    forms.ask(ctx, RUN_FORM, {**state.data, "location": [where.latitude, where.longitude]}, after="location")


def check_in(ctx: Ctx, token: str) -> None:
    """Deep link c_<token> from the organiser's QR code: check in and earn the attendance points once."""
    if not ctx.actor.verified:
        raise DomainError("not_registered")
    result = runs.check_in(ctx.session, ctx.member, token, ctx.now, _window(ctx), _rule(ctx), ctx.today)
    card = runs.card(ctx.session, ctx.member, result.event.id)
    ctx.reply("runs/checked_in", run=_view(ctx, card), outcome=result.outcome, points=result.points)


# --- organising ----------------------------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_people(ctx: Ctx) -> None:
    """Button (organiser): who answered, who checked in, and buttons to mark attendance in the window."""
    _show_people(ctx, ctx.pressed(People).event_id)


def _show_people(ctx: Ctx, event_id: int) -> None:
    event, people = runs.participants(ctx.session, ctx.member, event_id)
    keyboard = []
    if runs.checkin_open(event, ctx.now, *_window(ctx)):
        keyboard = [
            [ctx.button("runs_mark", MarkPresent(event_id, p.member_id), name=p.name)]
            for p in people[:PEOPLE_SHOWN]
            if p.answer in (Answer.GOING, Answer.MAYBE) and not p.checked_in
        ]
    keyboard.append([ctx.button("runs_back_card", ShowRun(event_id))])
    rows = [{"name": p.name, "answer": p.answer, "checked_in": p.checked_in} for p in people[:PEOPLE_SHOWN]]
    view = notices.run_view(event, ctx.config.timezone)
    ctx.show("runs/people", keyboard, run=view, people=rows, more=max(0, len(people) - PEOPLE_SHOWN))


@handler(write=True, needs=Need.VERIFIED)
def mark_present(ctx: Ctx) -> None:
    """Button (organiser): mark a participant present (points once, like a scan)."""
    press = ctx.pressed(MarkPresent)
    result = runs.mark_attendance(
        ctx.session, ctx.member, press.event_id, press.member_id, ctx.now, _window(ctx), _rule(ctx), ctx.today
    )
    ctx.toast = ctx.label(f"runs_marked_{result.outcome}")
    _show_people(ctx, press.event_id)


@handler(needs=Need.VERIFIED)
def show_checkin_code(ctx: Ctx) -> None:
    """Button (organiser): the check-in QR code, inside the check-in window only."""
    event_id = ctx.pressed(CheckInCode).event_id
    event, _people = runs.participants(ctx.session, ctx.member, event_id)
    before, after = _window(ctx)
    if not runs.checkin_open(event, ctx.now, before, after):
        raise DomainError("runs_checkin_closed", opens=event.starts_at - before, closes=event.starts_at + after)
    png = runs.checkin_qr_png(event.checkin_token, ctx.context.bot.username)
    link = runs.checkin_link(event.checkin_token, ctx.context.bot.username)
    view = notices.run_view(event, ctx.config.timezone)
    ctx.show_photo("runs/checkin_code", png, [[ctx.button("runs_people", People(event_id))]], run=view, link=link)


@handler(needs=Need.VERIFIED)
def ask_cancel(ctx: Ctx) -> None:
    """Button (organiser): are you sure? Everyone who answered will be told."""
    event_id = ctx.pressed(AskCancelRun).event_id
    event, _people = runs.participants(ctx.session, ctx.member, event_id)
    keyboard = [[ctx.button("runs_cancel_yes", CancelRun(event_id)), ctx.button("runs_keep", ShowRun(event_id))]]
    ctx.show("runs/cancel_confirm", keyboard, run=notices.run_view(event, ctx.config.timezone))


@handler(write=True, needs=Need.VERIFIED)
def cancel_run(ctx: Ctx) -> None:
    """Button (organiser): cancel the run; everyone who answered is told (through the outbox)."""
    event, people = runs.cancel_event(ctx.session, ctx.member, ctx.pressed(CancelRun).event_id, ctx.now)
    view = notices.run_view(event, ctx.config.timezone)
    key = f"runs:cancelled:{event.id}"
    ctx.require_write()
    ctx.notices += notices.tell(
        ctx.services, ctx.session, people, "runs_notices/cancelled", notices.KIND_CANCELLED, key, ctx.now, run=view
    )
    ctx.show("runs/cancelled", run=view, told=len(people))


@handler(write=True, needs=Need.VERIFIED)
def edit_run(ctx: Ctx) -> None:
    """Button (organiser): type a new time or place."""
    press = ctx.pressed(EditRun)
    if press.field not in EDITABLE:
        raise BadCallback("unknown field")
    event, _people = runs.participants(ctx.session, ctx.member, press.event_id)
    ctx.set_flow(EDIT_FLOW, press.field, {"event_id": event.id})
    ctx.reply(f"runs/ask_{press.field}", [[ctx.button("cancel", CancelFlow())]], data={})


def edit_text(ctx: Ctx, text: str) -> None:
    """The new time or place; everyone who answered is told."""
    state = ctx.section_flow(EDIT_FLOW)
    field = RUN_FORM.field(state.step)
    value = field.parse(ctx, text.strip(), {})
    changes = {"starts_at": None, "place": None}
    if state.step == "starts_at":
        changes["starts_at"] = datetime.fromisoformat(value)
    else:
        changes["place"] = value
    event, people = runs.change_event(ctx.session, ctx.member, state.data["event_id"], ctx.now, **changes)
    ctx.clear_flow(EDIT_FLOW)
    view = notices.run_view(event, ctx.config.timezone)
    key = f"runs:changed:{event.id}:{int(ctx.now.timestamp())}:{state.step}"
    ctx.require_write()
    ctx.notices += notices.tell(
        ctx.services,
        ctx.session,
        people,
        "runs_notices/changed",
        notices.KIND_CHANGED,
        key,
        ctx.now,
        run=view,
        changed=state.step,
    )
    ctx.reply("runs/edited", run=view, told=len(people))
    _show_card(ctx, event.id, edit=False)


@handler(write=True, needs=Need.VERIFIED)
def post_to_group(ctx: Ctx) -> None:
    """Button (organiser or club leader): post the run's live card in the club's group, once, through the outbox."""
    event_id = ctx.pressed(PostToGroup).event_id
    event = runs.get_event(ctx.session, ctx.member, event_id)
    club = clubs.group_of_event(ctx.session, ctx.member, event.club_id, event.organiser_id)
    locale = ctx.config.default_language
    card = runs.public_card(ctx.session, event_id)
    text = _public_text(ctx, card, locale)
    keyboard = _public_keyboard(ctx, card, locale)
    markup = InlineKeyboardMarkup(keyboard).to_dict()
    # The outbox paces group posts (at most 20 a minute per group) and the key posts each run once.
    new = services_notify(
        ctx.session,
        club.chat_id,
        text,
        now=ctx.now,
        kind=KIND_GROUP_POST,
        keyboard=markup,
        dedupe_key=runs.group_post_key(event_id),
        personal=False,
    )
    ctx.notices += int(new)
    ctx.toast = ctx.label("runs_posted" if new else "runs_posted_before")


# --- the /newrun form ------------------------------------------------------------------------------------------------


@handler(write=True, needs=Need.VERIFIED)
def new_run(ctx: Ctx) -> None:
    """/newrun and its button: the step-by-step invitation to a run (the answers survive restarts)."""
    forms.start_form(ctx, FORM)


_text = partial(forms.text_answer, ERRORS)
_number = partial(forms.number_answer, ERRORS)


def _distance(_ctx: Ctx, text: str, _data: dict[str, Any]) -> int:
    """Kilometres, e.g. 5 or 10.5 (stored in metres)."""
    cleaned = text.lower().removesuffix("km").strip().replace("，", ".").replace(",", ".")
    try:
        km = float(cleaned) if cleaned.replace(".", "", 1).isdigit() and cleaned.isascii() else -1.0
    except ValueError:
        km = -1.0
    metres = round(km * 1000)
    if not 0 < metres <= runs.MAX_DISTANCE_M:
        raise BadInput("runs_distance_format", high=runs.MAX_DISTANCE_M // 1000)
    return metres


def _location_text(_ctx: Ctx, _text: str, _data: dict[str, Any]) -> None:
    raise BadInput("runs_location_expected")


def _visibilities(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    """My unit, the whole bureau, or one of my clubs."""
    choices = [(ctx.label(f"runs_visibility_{v}"), v.value) for v in (Visibility.UNIT, Visibility.BUREAU)]
    choices += [(ctx.label("runs_visibility_club_named", name=c.name), f"club_{c.id}") for c in _my_clubs(ctx)]
    return choices


def _my_clubs(ctx: Ctx) -> list[clubs.Club]:
    return clubs.clubs_of(ctx.session, ctx.member.id)


def _create(ctx: Ctx, data: dict[str, Any]) -> None:
    """The last answer is in: the run exists and its card is shown (to share or post)."""
    chosen, pin = data["visibility"], data.get("location")
    club_id = int(chosen.removeprefix("club_")) if chosen.startswith("club_") else None
    draft = runs.Draft(
        starts_at=datetime.fromisoformat(data["starts_at"]),
        place=data["place"],
        capacity=data["capacity"],
        distance_m=data.get("distance"),
        pace=data.get("pace") or "",
        title=data.get("title") or "",
        visibility=Visibility.CLUB if club_id is not None else Visibility(chosen),
        club_id=club_id,
        kind=runs.Kind.CLUB if club_id is not None else runs.Kind.RUN,
        latitude=pin[0] if pin else None,
        longitude=pin[1] if pin else None,
    )
    event = runs.create_event(ctx.session, ctx.member, draft, ctx.now)
    ctx.reply("runs/created", run=notices.run_view(event, ctx.config.timezone))
    _show_card(ctx, event.id, edit=False)


def _stored_time(_ctx: Ctx, answer: str) -> datetime:
    return datetime.fromisoformat(answer)


RUN_FORM = forms.register_form(
    Form(
        FORM,
        (
            Field("starts_at", parse=forms.time_answer(ERRORS, None, _stored_time)),
            Field("place", parse=_text(runs.PLACE_MAX)),
            Field("location", parse=_location_text, optional=True),
            Field("distance", parse=_distance, optional=True),
            Field("pace", parse=_text(runs.PACE_MAX), optional=True),
            Field("capacity", parse=_number(1, runs.MAX_CAPACITY)),
            Field("visibility", choices=_visibilities),
            Field("title", parse=_text(runs.TITLE_MAX), optional=True),
        ),
        _create,
    )
)


# --- inline mode -----------------------------------------------------------------------------------------------------


@handler(needs=Need.ANYONE, private=False)
def share_inline(ctx: Ctx) -> None:
    """`@bot run [id]` in any chat: my upcoming runs as cards to post (nothing for non-members)."""
    if not ctx.actor.verified:
        ctx.answer_inline([])
        return
    words = ctx.update.inline_query.query.split()
    wanted = words[1] if len(words) > 1 and words[1].isdigit() and len(words[1]) <= 9 else None
    found = runs.mine(ctx.session, ctx.member, ctx.now, INLINE_RESULTS)
    if wanted is not None:
        try:
            found = [runs.get_event(ctx.session, ctx.member, int(wanted))]
        except DomainError:
            found = []
        found = [e for e in found if e.kind != runs.Kind.WORKSHOP]
    tz = ctx.config.timezone
    results = []
    for event in found:
        card = runs.public_card(ctx.session, event.id)
        view = notices.run_view(event, tz)
        results.append(
            InlineQueryResultArticle(
                id=f"run-{event.id}",
                title=ctx.label("runs_inline_title", run=view),
                description=event.place,
                input_message_content=InputTextMessageContent(_public_text(ctx, card), parse_mode=ParseMode.HTML),
                reply_markup=InlineKeyboardMarkup(_public_keyboard(ctx, card)),
            )
        )
    ctx.answer_inline(results)


SECTION = Section(
    "runs",
    commands=(
        Command("runs", show_runs, menu_order=30),
        Command("newrun", new_run),
    ),
    buttons={
        RunList: show_runs,
        MyRuns: show_mine,
        NewRun: new_run,
        ShowRun: show_run,
        Respond: respond,
        Calendar: send_calendar,
        People: show_people,
        MarkPresent: mark_present,
        CheckInCode: show_checkin_code,
        EditRun: edit_run,
        AskCancelRun: ask_cancel,
        CancelRun: cancel_run,
        PostToGroup: post_to_group,
        ShowPin: show_pin,
    },
    flows={FORM: forms.answer_text, EDIT_FLOW: edit_text},
    media={FORM: run_media},
    deep_links={runs.CHECKIN_PREFIX: check_in, runs.CARD_PREFIX: open_card},
    handlers=(InlineQueryHandler(share_inline, pattern=INLINE_PATTERN),),
)
