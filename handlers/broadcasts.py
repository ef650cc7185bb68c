"""Broadcasts (宣传与通知): /broadcast composes, previews and sends a cadre's own message; /scheduled tracks them.

The cadre's message is kept where they wrote it and copied to members by the outbox (models/broadcasts.py), so
what members receive is exactly what the cadre wrote. Nothing goes out without the Send now or Schedule press.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application

from buttons.broadcasts import (
    AllUnits,
    AskButtons,
    AskSchedule,
    CancelBroadcast,
    ChooseAudience,
    ChooseGroups,
    ChooseRepeat,
    Discard,
    GotIt,
    ListBroadcasts,
    MuteMenu,
    NextCategory,
    PauseBroadcast,
    Preview,
    ReportCsv,
    ResumeBroadcast,
    SendNow,
    ShowBroadcast,
    ShowDraft,
    StartBroadcast,
    ToggleAck,
    ToggleClub,
    ToggleGroup,
    ToggleMandatory,
    ToggleMute,
    TogglePin,
    ToggleRole,
    ToggleUnit,
    ToggleUrgent,
    ToggleYoung,
)
from buttons.me import MeHome
from buttons.menu import CancelFlow
from handlers.base import Command, Ctx, Need, Section, handler, services_of
from messages import pick_locale
from models import broadcasts
from models.audience import Audience
from models.broadcasts import Broadcast, BroadcastStatus, QuietHours
from models.clock import parse_local_datetime, to_local
from models.errors import BadInput
from models.members import load_actor
from services import Services

log = logging.getLogger(__name__)

FLOW = "broadcast"
COMPOSE, DRAFT, BUTTONS, SCHEDULE, REPEAT, UNTIL = "compose", "draft", "buttons", "schedule", "repeat", "until"
# The repeat button that means "only once".
ONCE = "once"
# Message kinds as Telegram marks them, in the order they are looked for.
MEDIA_ATTRIBUTES = ("photo", "video", "animation", "document", "audio", "voice")
# Telegram's progress bar: this many blocks.
BAR_WIDTH = 10
# At most this many clubs on the audience and club-groups screens (the clubs in the cadre's scope, by name).
CLUBS_SHOWN = 20


# --- helpers -------------------------------------------------------------------------------------------


def _unit_codes(ctx: Ctx) -> list[str]:
    return [unit.code for unit in ctx.config.units]


def quiet_hours(services: Services) -> QuietHours:
    """The configured quiet hours in the organisation's time zone."""
    settings = services.config.broadcasts
    return QuietHours(settings.quiet_start, settings.quiet_end, services.config.timezone)


def ack_button(services: Services) -> Callable[[int, str], tuple[str, str]]:
    """The "Got it" button of a broadcast in a recipient's language: (callback data, label)."""
    return lambda broadcast_id, locale: (
        GotIt(broadcast_id).pack(),
        services.renderer.label(locale, "broadcast_got_it"),
    )


def _draft_id(ctx: Ctx) -> int:
    """The broadcast a pressed button belongs to."""
    pressed = ctx.callback
    broadcast_id = getattr(pressed, "broadcast_id", None)
    if not isinstance(broadcast_id, int):
        raise BadInput("button_expired")
    return broadcast_id


def _describe(ctx: Ctx, found: Broadcast) -> dict[str, Any]:
    """What the templates show about a broadcast."""
    chosen = broadcasts.audience_of(found)
    unit_names = [unit.name(ctx.locale) for unit in ctx.config.units if unit.code in chosen.units]
    wanted = {*chosen.clubs, *found.groups}
    names = {c.id: c.name for c in broadcasts.clubs_named(ctx.session, wanted)} if wanted else {}
    return {
        "id": found.id,
        "media": found.media,
        "buttons": [b["label"] for b in found.buttons],
        "ack": found.ack,
        "urgent": found.urgent,
        "category": found.category,
        "mandatory": found.mandatory,
        "units": unit_names,
        "roles": list(chosen.roles),
        "under_35": chosen.under_35,
        "clubs": [names[c] for c in chosen.clubs if c in names],
        "groups": [names[c] for c in found.groups if c in names],
        "pin": found.pin,
        "status": found.status,
        "send_at": to_local(found.send_at, ctx.config.timezone) if found.send_at else None,
        "repeat": found.repeat,
        "repeat_until": found.repeat_until,
    }


def _show_panel(ctx: Ctx, found: Broadcast, *, edit: bool) -> None:
    """The draft's panel: what it is, who it reaches, and the buttons to change it or go on to the preview."""
    assert found.id is not None
    bid = found.id
    reach = broadcasts.reach(ctx.session, ctx.actor, found, _unit_codes(ctx), ctx.today)
    rows = [
        [ctx.button("broadcast_audience", ChooseAudience(bid)), ctx.button("broadcast_buttons", AskButtons(bid))],
        [ctx.button("broadcast_ack_on" if found.ack else "broadcast_ack_off", ToggleAck(bid))],
    ]
    rows.append([ctx.button("broadcast_category", NextCategory(bid), name=ctx.label(f"category_{found.category}"))])
    rows.append([ctx.button("broadcast_groups", ChooseGroups(bid), count=len(found.groups))])
    if ctx.actor.is_bureau:
        rows[1].append(ctx.button("broadcast_urgent_on" if found.urgent else "broadcast_urgent_off", ToggleUrgent(bid)))
        mandatory = "broadcast_mandatory_on" if found.mandatory else "broadcast_mandatory_off"
        rows[-1].append(ctx.button(mandatory, ToggleMandatory(bid)))
    rows.append([ctx.button("broadcast_preview", Preview(bid))])
    rows.append([ctx.button("broadcast_discard", Discard(bid))])
    text = ctx.t("broadcasts/panel", b=_describe(ctx, found), reach=reach.members, blocked=reach.blocked)
    ctx.say(text, rows, edit=edit)


def _message_media(message: Message) -> str | None:
    """What kind of message this is, as models/broadcasts.MEDIA names it; None for what cannot be broadcast."""
    if message.text:
        return "text"
    return next((name for name in MEDIA_ATTRIBUTES if getattr(message, name)), None)


def _take_message(ctx: Ctx) -> None:
    """The cadre's message (text or media) becomes the draft."""
    message = ctx.update.effective_message
    media = _message_media(message)
    if media is None:
        raise BadInput("broadcast_unsupported")
    if media == "text" and not (message.text or "").strip():
        raise BadInput("broadcast_empty")
    found = broadcasts.start_draft(ctx.session, ctx.actor, message.chat_id, message.message_id, media, ctx.now)
    assert found.id is not None
    ctx.set_flow(FLOW, DRAFT, {"id": found.id})
    _show_panel(ctx, found, edit=False)


# --- composing --------------------------------------------------------------------------------------------


@handler(write=True, needs=Need.CADRE)
def start_compose(ctx: Ctx) -> None:
    """/broadcast: ask for the message itself."""
    ctx.set_flow(FLOW, COMPOSE, {})
    ctx.show("broadcasts/compose", [[ctx.button("cancel", CancelFlow())]])


def flow_text(ctx: Ctx, text: str) -> None:
    """Text typed in the broadcast flow: the message, the buttons, or the time to send at."""
    state = ctx.section_flow(FLOW)
    assert state is not None
    ctx.actor.require_cadre()
    if state.step == COMPOSE:
        _take_message(ctx)
        return
    broadcast_id = int(state.data.get("id", 0))
    if state.step == BUTTONS:
        found = broadcasts.set_buttons(ctx.session, ctx.actor, broadcast_id, "" if text.strip() == "-" else text)
        ctx.set_flow(FLOW, DRAFT, {"id": broadcast_id})
        _show_panel(ctx, found, edit=False)
        return
    if state.step == SCHEDULE:
        at = parse_local_datetime(text, ctx.config.timezone)
        if at <= ctx.now:
            raise BadInput("broadcast_time_past")
        ctx.set_flow(FLOW, REPEAT, {"id": broadcast_id, "at": at.isoformat()})
        rows = [
            [ctx.button(f"broadcast_repeat_{rule}", ChooseRepeat(broadcast_id, rule))]
            for rule in (ONCE, *broadcasts.REPEATS)
        ]
        ctx.reply("broadcasts/ask_repeat", rows, at=to_local(at, ctx.config.timezone))
        return
    if state.step == UNTIL:
        until = parse_local_datetime(f"{text.strip()} 23:59", ctx.config.timezone).date()
        _schedule(ctx, broadcast_id, datetime.fromisoformat(state.data["at"]), state.data["repeat"], until)
        return
    raise BadInput("use_buttons")


def _schedule(ctx: Ctx, broadcast_id: int, at: datetime, repeat: str, until: date | None) -> None:
    tz = ctx.config.timezone
    found = broadcasts.schedule(
        ctx.session, ctx.actor, broadcast_id, at, ctx.now, _unit_codes(ctx), repeat=repeat, until=until, tz=tz
    )
    ctx.clear_flow(FLOW)
    ctx.reply("broadcasts/scheduled_ok", [[ctx.button("broadcast_list", ListBroadcasts())]], b=_describe(ctx, found))


@handler(write=True, needs=Need.CADRE)
def choose_repeat(ctx: Ctx) -> None:
    """Button: send once at the typed time, or repeat on a rule (then the last day is asked)."""
    pressed = ctx.pressed(ChooseRepeat)
    state = ctx.section_flow(FLOW)
    if state is None or state.step != REPEAT or state.data.get("id") != pressed.broadcast_id:
        raise BadInput("form_step_passed")
    at = datetime.fromisoformat(state.data["at"])
    if pressed.rule == ONCE:
        _schedule(ctx, pressed.broadcast_id, at, "", None)
        return
    if pressed.rule not in broadcasts.REPEATS:
        raise BadInput("form_step_passed")
    ctx.set_flow(FLOW, UNTIL, {**state.data, "repeat": pressed.rule})
    ctx.show("broadcasts/ask_until", example=to_local(at, ctx.config.timezone), days=broadcasts.REPEAT_MAX_DAYS)


def compose_media(ctx: Ctx, message: Message) -> None:
    """A photo, video, document, sticker... sent while composing (handlers/menu.py on_media): the broadcast's
    message when one is asked for."""
    state = ctx.flow()
    if state.step != COMPOSE:
        raise BadInput("broadcast_unexpected_media")
    ctx.actor.require_cadre()
    _take_message(ctx)


@handler(needs=Need.CADRE)
def show_draft(ctx: Ctx) -> None:
    """Button: back to the draft's panel."""
    found = broadcasts.get(ctx.session, ctx.actor, _draft_id(ctx))
    if found.status != BroadcastStatus.DRAFT:
        raise BadInput("broadcast_not_draft")
    _show_panel(ctx, found, edit=True)


@handler(write=True, needs=Need.CADRE)
def ask_buttons(ctx: Ctx) -> None:
    """Button: type up to three link buttons, one per line."""
    found = broadcasts.get(ctx.session, ctx.actor, _draft_id(ctx))
    if found.status != BroadcastStatus.DRAFT:
        raise BadInput("broadcast_not_draft")
    ctx.set_flow(FLOW, BUTTONS, {"id": found.id})
    back = [[ctx.button("broadcast_back", ShowDraft(_draft_id(ctx)))]]
    ctx.show("broadcasts/ask_buttons", back, limit=broadcasts.MAX_BUTTONS, bot=ctx.context.bot.username)


@handler(write=True, needs=Need.CADRE)
def toggle_ack(ctx: Ctx) -> None:
    """Button: the "Got it" button on or off."""
    _show_panel(ctx, broadcasts.toggle_ack(ctx.session, ctx.actor, _draft_id(ctx)), edit=True)


@handler(write=True, needs=Need.CADRE)
def toggle_urgent(ctx: Ctx) -> None:
    """Button: urgent (ignores quiet hours) on or off; bureau cadres only."""
    _show_panel(ctx, broadcasts.toggle_urgent(ctx.session, ctx.actor, _draft_id(ctx)), edit=True)


@handler(write=True, needs=Need.CADRE)
def next_category(ctx: Ctx) -> None:
    """Button: the next category (union news, club news, welfare): members may mute categories in /me."""
    _show_panel(ctx, broadcasts.next_category(ctx.session, ctx.actor, _draft_id(ctx)), edit=True)


@handler(write=True, needs=Need.CADRE)
def toggle_mandatory(ctx: Ctx) -> None:
    """Button: mandatory (ignores members' mutes) on or off; bureau cadres only."""
    _show_panel(ctx, broadcasts.toggle_mandatory(ctx.session, ctx.actor, _draft_id(ctx)), edit=True)


def _show_mutes(ctx: Ctx) -> None:
    muted = broadcasts.muted(ctx.session, ctx.member.id or 0)
    rows = [
        [
            ctx.button(
                "mute_off" if category in muted else "mute_on",
                ToggleMute(category),
                name=ctx.label(f"category_{category}"),
            )
        ]
        for category in broadcasts.CATEGORIES
    ]
    rows.append([ctx.button("broadcast_back", MeHome())])
    ctx.show("broadcasts/mutes", rows, muted=sorted(muted))


@handler(needs=Need.VERIFIED)
def show_mutes(ctx: Ctx) -> None:
    """/me button: which kinds of broadcasts this member receives."""
    _show_mutes(ctx)


@handler(write=True, needs=Need.VERIFIED)
def toggle_mute(ctx: Ctx) -> None:
    """Button: mute or unmute a category (mandatory notices still arrive)."""
    broadcasts.toggle_mute(ctx.session, ctx.member.id or 0, ctx.pressed(ToggleMute).category)
    _show_mutes(ctx)


@handler(write=True, needs=Need.CADRE)
def discard(ctx: Ctx) -> None:
    """Button: throw the draft away."""
    broadcasts.discard(ctx.session, ctx.actor, _draft_id(ctx))
    ctx.clear_flow(FLOW)
    ctx.show("broadcasts/discarded")


# --- audience -----------------------------------------------------------------------------------------------


def _show_audience(ctx: Ctx, found: Broadcast) -> None:
    """The audience screen: units in the cadre's scope, roles, under 35, and how many it reaches."""
    assert found.id is not None
    bid = found.id
    chosen = broadcasts.audience_of(found)
    reach = broadcasts.reach(ctx.session, ctx.actor, found, _unit_codes(ctx), ctx.today)
    units = [u for u in ctx.config.units if ctx.actor.can_manage(u.code)]
    tick = ctx.label("broadcast_tick")
    rows: list[list[InlineKeyboardButton]] = [
        [ctx.button("broadcast_all_units", AllUnits(bid), mark=tick if not chosen.units else "")]
    ]
    unit_buttons = [
        ctx.button(
            "broadcast_unit",
            ToggleUnit(bid, u.code),
            name=u.name(ctx.locale),
            mark=tick if u.code in chosen.units else "",
        )
        for u in units
    ]
    rows += [unit_buttons[i : i + 2] for i in range(0, len(unit_buttons), 2)]
    rows.append(
        [
            ctx.button(f"broadcast_role_{role}", ToggleRole(bid, role), mark=tick if role in chosen.roles else "")
            for role in broadcasts.ROLES
        ]
    )
    rows.append([ctx.button("broadcast_young", ToggleYoung(bid), mark=tick if chosen.under_35 else "")])
    club_buttons = [
        ctx.button("broadcast_club", ToggleClub(bid, c.id), name=c.name, mark=tick if c.id in chosen.clubs else "")
        for c in broadcasts.clubs_in_scope(ctx.session, ctx.actor)[:CLUBS_SHOWN]
        if c.id is not None
    ]
    rows += [club_buttons[i : i + 2] for i in range(0, len(club_buttons), 2)]
    rows.append([ctx.button("broadcast_back", ShowDraft(bid))])
    ctx.show("broadcasts/audience", rows, b=_describe(ctx, found), reach=reach.members, blocked=reach.blocked)


def _change_audience(ctx: Ctx, change: Callable[[Audience], Audience]) -> None:
    broadcast_id = _draft_id(ctx)
    found = broadcasts.get(ctx.session, ctx.actor, broadcast_id)
    chosen = change(broadcasts.audience_of(found))
    found = broadcasts.set_audience(ctx.session, ctx.actor, broadcast_id, chosen, _unit_codes(ctx))
    _show_audience(ctx, found)


def _toggled(values: tuple[str, ...], value: str) -> tuple[str, ...]:
    return tuple(v for v in values if v != value) if value in values else tuple(sorted((*values, value)))


def _toggled_id(values: tuple[int, ...], value: int) -> tuple[int, ...]:
    return tuple(v for v in values if v != value) if value in values else tuple(sorted((*values, value)))


@handler(needs=Need.CADRE)
def choose_audience(ctx: Ctx) -> None:
    """Button: the audience screen."""
    found = broadcasts.get(ctx.session, ctx.actor, _draft_id(ctx))
    if found.status != BroadcastStatus.DRAFT:
        raise BadInput("broadcast_not_draft")
    _show_audience(ctx, found)


@handler(write=True, needs=Need.CADRE)
def toggle_unit(ctx: Ctx) -> None:
    """Button: add or remove a unit (a unit cadre can choose only their own)."""
    unit = ctx.pressed(ToggleUnit).unit
    _change_audience(ctx, lambda a: Audience(_toggled(a.units, unit), a.roles, a.under_35, a.clubs))


@handler(write=True, needs=Need.CADRE)
def all_units(ctx: Ctx) -> None:
    """Button: every unit in the cadre's scope."""
    _change_audience(ctx, lambda a: Audience((), a.roles, a.under_35, a.clubs))


@handler(write=True, needs=Need.CADRE)
def toggle_role(ctx: Ctx) -> None:
    """Button: only cadres / volunteers (or not)."""
    role = ctx.pressed(ToggleRole).role
    _change_audience(ctx, lambda a: Audience(a.units, _toggled(a.roles, role), a.under_35, a.clubs))


@handler(write=True, needs=Need.CADRE)
def toggle_young(ctx: Ctx) -> None:
    """Button: only members under 35 (or not)."""
    _change_audience(ctx, lambda a: Audience(a.units, a.roles, not a.under_35, a.clubs))


@handler(write=True, needs=Need.CADRE)
def toggle_club(ctx: Ctx) -> None:
    """Button: add or remove a club's members (a club in the cadre's scope; checked by the model)."""
    club = ctx.pressed(ToggleClub).club_id
    _change_audience(ctx, lambda a: Audience(a.units, a.roles, a.under_35, _toggled_id(a.clubs, club)))


def _show_groups(ctx: Ctx, found: Broadcast) -> None:
    """The club groups screen: linked groups of the clubs in scope, ticked when chosen, and the pin switch."""
    assert found.id is not None
    bid = found.id
    tick = ctx.label("broadcast_tick")
    linked = [c for c in broadcasts.clubs_in_scope(ctx.session, ctx.actor) if c.chat_id is not None]
    rows = [
        [ctx.button("broadcast_unit", ToggleGroup(bid, c.id), name=c.name, mark=tick if c.id in found.groups else "")]
        for c in linked[:CLUBS_SHOWN]
        if c.id is not None
    ]
    rows.append([ctx.button("broadcast_pin_on" if found.pin else "broadcast_pin_off", TogglePin(bid))])
    rows.append([ctx.button("broadcast_back", ShowDraft(bid))])
    ctx.show("broadcasts/groups", rows, b=_describe(ctx, found), available=len(linked))


@handler(needs=Need.CADRE)
def choose_groups(ctx: Ctx) -> None:
    """Button: which club groups also get the post."""
    found = broadcasts.get(ctx.session, ctx.actor, _draft_id(ctx))
    if found.status != BroadcastStatus.DRAFT:
        raise BadInput("broadcast_not_draft")
    _show_groups(ctx, found)


@handler(write=True, needs=Need.CADRE)
def toggle_group(ctx: Ctx) -> None:
    """Button: post in this club's group too, or not (a club in the cadre's scope, with a linked group)."""
    _show_groups(ctx, broadcasts.toggle_group(ctx.session, ctx.actor, _draft_id(ctx), ctx.pressed(ToggleGroup).club_id))


@handler(write=True, needs=Need.CADRE)
def toggle_pin(ctx: Ctx) -> None:
    """Button: pin the post in the club groups once delivered, or not."""
    _show_groups(ctx, broadcasts.toggle_pin(ctx.session, ctx.actor, _draft_id(ctx)))


# --- preview and confirmation -----------------------------------------------------------------------------------


@handler(write=True, needs=Need.CADRE)
def preview(ctx: Ctx) -> None:
    """Button: the cadre receives the broadcast exactly as members will, then Send now / Schedule / Edit / Discard."""
    found = broadcasts.get(ctx.session, ctx.actor, _draft_id(ctx))
    if found.status != BroadcastStatus.DRAFT:
        raise BadInput("broadcast_not_draft")
    assert found.id is not None
    bid = found.id
    reach = broadcasts.reach(ctx.session, ctx.actor, found, _unit_codes(ctx), ctx.today)
    quiet_until = None if found.urgent else quiet_hours(ctx.services).until(ctx.now)
    markup = broadcasts.keyboard(found, *ack_button(ctx.services)(bid, ctx.locale))
    rows = [
        [ctx.button("broadcast_send_now", SendNow(bid)), ctx.button("broadcast_schedule", AskSchedule(bid))],
        [ctx.button("broadcast_edit", ShowDraft(bid)), ctx.button("broadcast_discard", Discard(bid))],
    ]
    controls = ctx.t(
        "broadcasts/confirm",
        b=_describe(ctx, found),
        reach=reach.members,
        blocked=reach.blocked,
        quiet_until=to_local(quiet_until, ctx.config.timezone) if quiet_until else None,
    )
    chat_id, source = (found.source_chat_id, found.source_message_id)
    app = ctx.context.application
    target = ctx.chat_id

    async def copy_then_confirm() -> None:
        # The copy first, then the buttons under it: the cadre reads what members will read, then decides.
        try:
            await app.bot.copy_message(
                target, chat_id, source, reply_markup=InlineKeyboardMarkup.de_json(markup, app.bot) if markup else None
            )
        except TelegramError as exc:
            log.info("broadcast preview could not be copied: %s", type(exc).__name__)
        await app.bot.send_message(target, controls, reply_markup=InlineKeyboardMarkup(rows))

    ctx.after_commit.append(copy_then_confirm)


@handler(write=True, needs=Need.CADRE)
def send_now(ctx: Ctx) -> None:
    """Button: confirmed. The copies are queued; this message becomes the live progress with a Cancel button."""
    broadcast_id = _draft_id(ctx)
    query = ctx.update.callback_query
    message = query.message if query is not None and isinstance(query.message, Message) else None
    at = (message.chat_id, message.message_id) if message is not None else None
    found = broadcasts.send_now(
        ctx.session,
        ctx.actor,
        broadcast_id,
        now=ctx.now,
        today=ctx.today,
        all_units=_unit_codes(ctx),
        quiet=quiet_hours(ctx.services),
        ack=ack_button(ctx.services),
        progress_at=at,
    )
    ctx.clear_flow(FLOW)
    ctx.notices += 1  # wake the outbox sender after the commit
    _show_progress(ctx, found)
    if at is not None and ctx.context.application.bot_data.get("start_scheduler"):
        app = ctx.context.application

        async def follow() -> None:
            asyncio.get_running_loop().create_task(follow_progress(app, broadcast_id))

        ctx.after_commit.append(follow)


@handler(write=True, needs=Need.CADRE)
def ask_schedule(ctx: Ctx) -> None:
    """Button: type when to send (organisation time)."""
    found = broadcasts.get(ctx.session, ctx.actor, _draft_id(ctx))
    if found.status != BroadcastStatus.DRAFT:
        raise BadInput("broadcast_not_draft")
    ctx.set_flow(FLOW, SCHEDULE, {"id": found.id})
    example = to_local(ctx.now, ctx.config.timezone)
    ctx.show("broadcasts/ask_schedule", [[ctx.button("broadcast_back", ShowDraft(_draft_id(ctx)))]], example=example)


# --- progress, cancel, /scheduled ---------------------------------------------------------------------------------


def _bar(percent: int) -> str:
    filled = percent * BAR_WIDTH // 100
    return "▓" * filled + "░" * (BAR_WIDTH - filled)


def _progress_text(services: Services, found: Broadcast, progress: broadcasts.Progress, locale: str) -> str:
    rate = services.config.outbox.global_per_second
    eta = int(progress.pending / rate) + 1 if progress.pending else 0
    quiet_until = None
    if found.status == BroadcastStatus.SENDING and not found.urgent:
        until = quiet_hours(services).until(services.clock.now())
        quiet_until = to_local(until, services.config.timezone) if until else None
    return services.renderer.render(
        locale,
        "broadcasts/progress",
        p=progress,
        status=found.status,
        bar=_bar(progress.percent),
        percent=progress.percent,
        eta=eta,
        quiet_until=quiet_until,
    )


def _progress_rows(services: Services, found: Broadcast, locale: str) -> list[list[InlineKeyboardButton]]:
    assert found.id is not None
    label = services.renderer.label
    if found.status == BroadcastStatus.SENDING:
        return [
            [InlineKeyboardButton(label(locale, "broadcast_cancel"), callback_data=CancelBroadcast(found.id).pack())]
        ]
    return [[InlineKeyboardButton(label(locale, "broadcast_report"), callback_data=ShowBroadcast(found.id).pack())]]


def _show_progress(ctx: Ctx, found: Broadcast) -> None:
    progress = broadcasts.progress(ctx.session, found)
    ctx.say(
        _progress_text(ctx.services, found, progress, ctx.locale),
        _progress_rows(ctx.services, found, ctx.locale),
        edit=True,
    )


async def refresh_progress(app: Application, broadcast_id: int) -> bool:
    """Edit the cadre's confirmation message with the current progress; True once the broadcast is over."""
    services = services_of(app)

    def read(session: Any) -> tuple[Broadcast | None, broadcasts.Progress | None]:
        broadcasts.finish_sent(session, services.clock.now())
        found = session.get(Broadcast, broadcast_id)
        return found, broadcasts.progress(session, found) if found is not None else None

    found, progress = await services.db.write(read)
    if found is None or progress is None or found.progress_chat_id is None or found.progress_message_id is None:
        return True
    actor = await services.db.read(load_actor, found.author_telegram_id, services.config.admin_ids)
    locale = pick_locale(actor.member.language if actor.member else services.config.default_language)
    text = _progress_text(services, found, progress, locale)
    markup = InlineKeyboardMarkup(_progress_rows(services, found, locale))
    try:
        await app.bot.edit_message_text(
            text, chat_id=found.progress_chat_id, message_id=found.progress_message_id, reply_markup=markup
        )
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            log.info("broadcast progress could not be edited: %s", exc)
    except TelegramError as exc:
        log.info("broadcast progress could not be edited: %s", type(exc).__name__)
    return found.status != BroadcastStatus.SENDING


async def follow_progress(app: Application, broadcast_id: int) -> None:
    """Refresh the progress message every few seconds until the broadcast is over (this process only)."""
    every = services_of(app).config.broadcasts.progress_seconds
    while True:
        await asyncio.sleep(every)
        try:
            if await refresh_progress(app, broadcast_id):
                return
        except Exception:  # a database hiccup: the next round tries again
            log.exception("broadcast progress refresh failed")


@handler(write=True, needs=Need.CADRE)
def cancel_broadcast(ctx: Ctx) -> None:
    """Button: stop what has not been sent yet (only the author or a bureau cadre)."""
    broadcast_id = _draft_id(ctx)
    withdrawn = broadcasts.cancel(ctx.session, ctx.actor, broadcast_id, ctx.now)
    found = broadcasts.get(ctx.session, ctx.actor, broadcast_id)
    ctx.toast = ctx.label("broadcast_cancelled", withdrawn=withdrawn)
    _show_card(ctx, found)


@handler(write=True, needs=Need.CADRE)
def pause_broadcast(ctx: Ctx) -> None:
    """Button: hold a scheduled broadcast."""
    _show_card(ctx, broadcasts.pause(ctx.session, ctx.actor, _draft_id(ctx)))


@handler(write=True, needs=Need.CADRE)
def resume_broadcast(ctx: Ctx) -> None:
    """Button: schedule a held broadcast again."""
    _show_card(ctx, broadcasts.resume(ctx.session, ctx.actor, _draft_id(ctx), ctx.now))


@handler(needs=Need.CADRE)
def list_broadcasts(ctx: Ctx) -> None:
    """/scheduled: scheduled, paused, sending and recent broadcasts with their buttons."""
    found = broadcasts.listing(ctx.session, ctx.actor)
    rows = [
        [
            ctx.button(
                "broadcast_item", ShowBroadcast(b.id), number=b.id, status=ctx.label(f"broadcast_status_{b.status}")
            )
        ]
        for b in found
        if b.id is not None
    ]
    rows.append([ctx.button("broadcast_new", StartBroadcast())])
    ctx.show("broadcasts/list", rows, items=[_describe(ctx, b) for b in found])


def _show_card(ctx: Ctx, found: Broadcast) -> None:
    """One broadcast: its schedule and buttons, or its progress and per-unit report."""
    assert found.id is not None
    bid = found.id
    rows: list[list[InlineKeyboardButton]] = []
    if found.status == BroadcastStatus.SCHEDULED:
        rows.append(
            [ctx.button("broadcast_pause", PauseBroadcast(bid)), ctx.button("broadcast_cancel", CancelBroadcast(bid))]
        )
    elif found.status == BroadcastStatus.PAUSED:
        rows.append(
            [ctx.button("broadcast_resume", ResumeBroadcast(bid)), ctx.button("broadcast_cancel", CancelBroadcast(bid))]
        )
    elif found.status == BroadcastStatus.SENDING:
        rows.append([ctx.button("broadcast_cancel", CancelBroadcast(bid))])
    lines: list[broadcasts.UnitLine] = []
    progress = None
    if found.status in (BroadcastStatus.SENDING, BroadcastStatus.DONE, BroadcastStatus.CANCELLED) and found.queued_at:
        progress = broadcasts.progress(ctx.session, found)
        lines = broadcasts.report(ctx.session, ctx.actor, bid, ctx.today)
        rows.append([ctx.button("broadcast_csv", ReportCsv(bid))])
    rows.append([ctx.button("broadcast_list", ListBroadcasts())])
    names = {u.code: u.name(ctx.locale) for u in ctx.config.units}
    report = [{"unit": names.get(line.unit, line.unit), "line": line} for line in lines]
    ctx.show("broadcasts/card", rows, b=_describe(ctx, found), p=progress, report=report)


@handler(needs=Need.CADRE)
def show_broadcast(ctx: Ctx) -> None:
    """Button: one broadcast's card (report included once it was sent)."""
    _show_card(ctx, broadcasts.get(ctx.session, ctx.actor, _draft_id(ctx)))


@handler(needs=Need.CADRE)
def report_csv(ctx: Ctx) -> None:
    """Button: the per-unit report as a CSV file."""
    broadcast_id = _draft_id(ctx)
    lines = broadcasts.report(ctx.session, ctx.actor, broadcast_id, ctx.today)
    names = {u.code: u.name(ctx.locale) for u in ctx.config.units}
    ctx.send_document(
        broadcasts.report_csv(lines, names), f"broadcast-{broadcast_id}.csv", "broadcasts/csv_caption", id=broadcast_id
    )


# --- members -----------------------------------------------------------------------------------------------------


@handler(write=True, needs=Need.VERIFIED, private=False)
def got_it(ctx: Ctx) -> None:
    """Button under a broadcast: "收到 / Got it", recorded once per member."""
    broadcast_id = ctx.pressed(GotIt).broadcast_id
    first = broadcasts.acknowledge(ctx.session, ctx.member.id or 0, broadcast_id, ctx.now)
    ctx.toast = ctx.label("broadcast_acked" if first else "broadcast_acked_before")


SECTION = Section(
    "broadcasts",
    commands=(
        Command("broadcast", start_compose),
        Command("scheduled", list_broadcasts),
    ),
    buttons={
        StartBroadcast: start_compose,
        ShowDraft: show_draft,
        ChooseAudience: choose_audience,
        ToggleUnit: toggle_unit,
        AllUnits: all_units,
        ToggleRole: toggle_role,
        ToggleYoung: toggle_young,
        ToggleClub: toggle_club,
        ChooseGroups: choose_groups,
        ToggleGroup: toggle_group,
        TogglePin: toggle_pin,
        AskButtons: ask_buttons,
        ToggleAck: toggle_ack,
        ToggleUrgent: toggle_urgent,
        NextCategory: next_category,
        ToggleMandatory: toggle_mandatory,
        MuteMenu: show_mutes,
        ToggleMute: toggle_mute,
        Preview: preview,
        SendNow: send_now,
        AskSchedule: ask_schedule,
        ChooseRepeat: choose_repeat,
        Discard: discard,
        CancelBroadcast: cancel_broadcast,
        PauseBroadcast: pause_broadcast,
        ResumeBroadcast: resume_broadcast,
        ListBroadcasts: list_broadcasts,
        ShowBroadcast: show_broadcast,
        ReportCsv: report_csv,
        GotIt: got_it,
    },
    flows={FLOW: flow_text},
    media={FLOW: compose_media},
    admin_entries=(("broadcast_admin", StartBroadcast()), ("broadcast_list", ListBroadcasts())),
)
