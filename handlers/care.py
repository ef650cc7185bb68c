"""Care (心理关爱 · 维权 · 困难帮扶): counselling bookings, counsellors' slots, rights and hardship requests.

Privacy by design: a booking is shown to its member and its counsellor only (the models check it on every read),
notes are encrypted with CARE_KEY, notices never carry a note, and cadres see counts only (/care_stats).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

from buttons.care import (
    Advance,
    AskCancelBooking,
    BlockSlot,
    Calendar,
    CancelBooking,
    CareHome,
    CareStats,
    CloseBooking,
    EditProfile,
    HandleRequest,
    HelpHome,
    ManageSlot,
    MoveTo,
    MyBookings,
    MyRequests,
    NewRequest,
    NewSlots,
    NoteBooking,
    PickArea,
    PickSlot,
    Queue,
    RemoveSlot,
    Reschedule,
    ShowBooking,
    ShowRequest,
    SlotsHome,
)
from buttons.menu import CancelFlow, Home
from buttons.workshops import NewWorkshop, WorkshopList
from handlers import forms
from handlers.base import Command, Ctx, Need, Outgoing, Section, handler
from handlers.forms import Field, Form
from models import care
from models.care import counselling, requests, stats
from models.care.sealing import NotesDisabled, Sealer, sealer
from models.care.tables import (
    AREAS,
    KINDS,
    STATUSES,
    AidReason,
    Area,
    BookingStatus,
    CareBooking,
    CareRequest,
    CareSlot,
    Channel,
    RequestKind,
    RequestStatus,
    RightsTopic,
)
from models.errors import BadInput, NotFound
from models.members import Member

FORM = "care"
REASON_FLOW = "care_reason"
NOTE_FLOW = "care_note"
DECIDE_FLOW = "care_decide"
PROFILE_FLOW = "care_profile"
# The form's messages: errors/care_text_empty, care_text_too_long, care_number_range.
ERRORS = "care"
DAYS_SHOWN = 14
PER_ROW = 4
SLOTS_SHOWN = 30
# Counsellors listed for one area (with their profiles, within one message).
COUNSELLORS_SHOWN = 10
LIST_SIZE = 20
QUEUE_SIZE = 20
# Rows of request counts the dashboard shows (units × two months).
STATS_ROWS = 24
PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,28}$")
DAY_MAX = 366


def _local(ctx: Ctx, at: datetime | None) -> datetime | None:
    return at.astimezone(ctx.config.timezone) if at is not None else None


def _sealer(ctx: Ctx) -> Sealer:
    return sealer(ctx.config.care_key)


def _window(ctx: Ctx) -> timedelta:
    return timedelta(hours=ctx.config.care.cancel_hours_before)


def _horizon(ctx: Ctx) -> datetime:
    return ctx.now + timedelta(days=ctx.config.care.horizon_days)


def _tell(ctx: Ctx, member_id: int, template: str, keyboard: list | None = None, **kw: Any) -> None:
    """A notice to another member in their language (outbox); never with a note in it."""
    member = ctx.session.get(Member, member_id)
    if member is None or member.telegram_id is None:
        return
    text = ctx.t(template, member.language, **kw)
    rows = None
    if keyboard:
        rows = [[ctx.button(key, action, locale=member.language) for key, action in keyboard]]
    ctx.notify(member.telegram_id, text, rows, kind="care")


def _slot_view(ctx: Ctx, slot: CareSlot) -> dict[str, Any]:
    return {
        "id": slot.id,
        "starts_at": _local(ctx, slot.starts_at),
        "ends_at": _local(ctx, slot.ends_at),
        "channel": slot.channel,
        "place": slot.place,
        "areas": slot.areas.split(","),
        "status": slot.status,
    }


def _booking_view(ctx: Ctx, booking: CareBooking) -> dict[str, Any]:
    return {
        "id": booking.id,
        "starts_at": _local(ctx, booking.starts_at),
        "ends_at": _local(ctx, booking.ends_at),
        "area": booking.area,
        "channel": booking.channel,
        "status": booking.status,
        "phone": booking.phone,
    }


# --- members: counselling ----------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_home(ctx: Ctx) -> None:
    """/counselling: the eight areas, my bookings, and the privacy promise."""
    areas = [ctx.button(f"care_area_{a.value}", PickArea(a.value)) for a in Area]
    keyboard = [areas[i : i + 2] for i in range(0, len(areas), 2)]
    keyboard.append([ctx.button("workshops_list", WorkshopList())])
    keyboard.append([ctx.button("care_my_bookings", MyBookings()), ctx.button("home", Home())])
    ctx.show("care/home", keyboard, notes_on=_sealer(ctx).enabled)


@handler(needs=Need.VERIFIED)
def pick_area(ctx: Ctx) -> None:
    """Button: the counsellors with free slots in an area."""
    area = ctx.pressed(PickArea).area
    if area not in AREAS:
        raise NotFound("care_slot_unknown")
    offers = counselling.counsellors_for(ctx.session, area, ctx.now, _horizon(ctx))[:COUNSELLORS_SHOWN]
    keyboard = [
        [ctx.button("care_counsellor", Calendar(o.member_id, area, 0), name=o.name or "—", count=o.free)]
        for o in offers
    ]
    keyboard.append([ctx.button("back", CareHome())])
    profiles = [{"name": o.name, "profile": o.profile} for o in offers]
    ctx.show("care/counsellors", keyboard, area=area, count=len(offers), counsellors=profiles)


def _calendar(ctx: Ctx, counsellor_id: int, area: str, day: int, replace: int | None) -> None:
    """A counsellor's free days as a row of buttons; with a day chosen, its times below."""
    if area not in AREAS:
        raise NotFound("care_slot_unknown")
    slots = counselling.free_slots(ctx.session, counsellor_id, area, ctx.now, _horizon(ctx))
    counsellor = ctx.session.get(Member, counsellor_id)
    by_day: dict[date, list[CareSlot]] = {}
    for slot in slots:
        by_day.setdefault(slot.starts_at.astimezone(ctx.config.timezone).date(), []).append(slot)
    days = sorted(by_day)[:DAYS_SHOWN]
    chosen = date.fromordinal(day) if day and day <= date.max.toordinal() else None
    day_buttons = [
        ctx.button(
            "care_day_chosen" if d == chosen else "care_day",
            Calendar(counsellor_id, area, d.toordinal(), replace),
            day=d.strftime("%m-%d"),
            weekday=d.isoweekday(),
        )
        for d in days
    ]
    keyboard = [day_buttons[i : i + PER_ROW] for i in range(0, len(day_buttons), PER_ROW)]
    times = by_day.get(chosen, []) if chosen else []
    time_buttons = [
        ctx.button("care_time", PickSlot(s.id, area, replace), at=_local(ctx, s.starts_at).strftime("%H:%M"))
        for s in times
    ]
    keyboard += [time_buttons[i : i + PER_ROW] for i in range(0, len(time_buttons), PER_ROW)]
    back = MyBookings() if replace else PickArea(area)
    keyboard.append([ctx.button("back", back)])
    ctx.show(
        "care/calendar",
        keyboard,
        name=counsellor.name if counsellor else None,
        area=area,
        day=chosen,
        days=len(days),
        times=[_slot_view(ctx, s) for s in times],
        moving=replace is not None,
    )


@handler(needs=Need.VERIFIED)
def show_calendar(ctx: Ctx) -> None:
    """Button: a counsellor's calendar (free days, then one day's times)."""
    press = ctx.pressed(Calendar)
    if press.replace is not None:
        booking = counselling.my_booking(ctx.session, ctx.member.id, press.replace)
        if booking.counsellor_id != press.counsellor_id:
            raise NotFound("care_booking_unknown")
    _calendar(ctx, press.counsellor_id, press.area, press.day, press.replace)


@handler(write=True, needs=Need.VERIFIED)
def pick_slot(ctx: Ctx) -> None:
    """Button: a time; a new booking asks how to reach the member, a move asks to confirm."""
    press = ctx.pressed(PickSlot)
    slot = counselling.bookable_slot(ctx.session, press.slot_id, press.area, ctx.now)
    counsellor = ctx.session.get(Member, slot.counsellor_id)
    view = _slot_view(ctx, slot)
    if press.replace is not None:
        booking = counselling.my_booking(ctx.session, ctx.member.id, press.replace)
        keyboard = [
            [ctx.button("care_move_yes", MoveTo(booking.id, slot.id))],
            [ctx.button("back", ShowBooking(booking.id))],
        ]
        ctx.show("care/move_confirm", keyboard, slot=view, old=_booking_view(ctx, booking), name=counsellor.name)
        return
    # The limits are told now, not after the questions (booking checks them again).
    counselling.check_member(ctx.session, ctx.member.id, slot, ctx.config.care.max_active_bookings)
    data = {
        "form": "book",
        "slot_id": slot.id,
        "area": press.area,
        "notes_on": _sealer(ctx).enabled,
        "when": view["starts_at"].strftime("%Y-%m-%d %H:%M"),
        "counsellor": counsellor.name if counsellor else "",
        "channel": slot.channel,
    }
    forms.start_form(ctx, FORM, data)


def _finish_booking(ctx: Ctx, data: dict[str, Any]) -> None:
    """The confirmed booking: stored, the member told here, the counsellor through the outbox."""
    booking = counselling.book(
        ctx.session,
        ctx.member.id,
        data["slot_id"],
        data["area"],
        ctx.now,
        ctx.config.care.max_active_bookings,
        data.get("book_phone"),
        data.get("book_note"),
    )
    slot = ctx.session.get(CareSlot, booking.slot_id)
    keyboard = [[ctx.button("care_my_bookings", MyBookings())]]
    ctx.reply("care/booked", keyboard, booking=_booking_view(ctx, booking), slot=_slot_view(ctx, slot))
    _tell(
        ctx,
        booking.counsellor_id,
        "care/notice_booked",
        [("care_open_booking", ManageSlot(slot.id))],
        booking=_booking_view(ctx, booking),
    )


@handler(needs=Need.VERIFIED)
def show_mine(ctx: Ctx) -> None:
    """Button: my bookings (active ones can be opened)."""
    rows = counselling.my_bookings(ctx.session, ctx.member.id, LIST_SIZE)
    keyboard = [
        [ctx.button("care_booking", ShowBooking(b.id), at=_local(ctx, b.starts_at).strftime("%m-%d %H:%M"))]
        for b, _name in rows
        if b.status == BookingStatus.ACTIVE
    ]
    keyboard.append([ctx.button("back", CareHome())])
    bookings = [_booking_view(ctx, b) | {"name": name} for b, name in rows]
    ctx.show("care/mine", keyboard, bookings=bookings)


def _member_card(ctx: Ctx, booking: CareBooking) -> None:
    view = counselling.view_of(ctx.session, booking)
    keyboard = []
    if booking.status == BookingStatus.ACTIVE:
        keyboard.append([ctx.button("care_reschedule", Reschedule(booking.id))])
        keyboard.append([ctx.button("care_cancel", AskCancelBooking(booking.id))])
    keyboard.append([ctx.button("back", MyBookings())])
    ctx.show(
        "care/booking",
        keyboard,
        booking=_booking_view(ctx, booking),
        slot=_slot_view(ctx, view.slot),
        name=view.counsellor_name,
        note=_sealer(ctx).open(booking.member_note),
        reason=booking.removed_reason,
        hours=ctx.config.care.cancel_hours_before,
    )


@handler(needs=Need.VERIFIED)
def show_booking(ctx: Ctx) -> None:
    """Button: one of my bookings."""
    _member_card(ctx, counselling.my_booking(ctx.session, ctx.member.id, ctx.pressed(ShowBooking).booking_id))


@handler(needs=Need.VERIFIED)
def ask_cancel(ctx: Ctx) -> None:
    """Button: cancel this booking? (says whether it would count as late)."""
    booking = counselling.my_booking(ctx.session, ctx.member.id, ctx.pressed(AskCancelBooking).booking_id)
    if booking.status != BookingStatus.ACTIVE:
        raise BadInput("care_booking_not_active")
    late = ctx.now >= booking.starts_at - _window(ctx)
    keyboard = [
        [ctx.button("care_cancel_yes", CancelBooking(booking.id))],
        [ctx.button("back", ShowBooking(booking.id))],
    ]
    ctx.show(
        "care/cancel_confirm",
        keyboard,
        booking=_booking_view(ctx, booking),
        late=late,
        hours=ctx.config.care.cancel_hours_before,
    )


@handler(write=True, needs=Need.VERIFIED)
def cancel_booking(ctx: Ctx) -> None:
    """Button: cancel; the counsellor is told (a late cancellation is counted as a no-show)."""
    booking = counselling.cancel(
        ctx.session, ctx.member.id, ctx.pressed(CancelBooking).booking_id, ctx.now, _window(ctx)
    )
    view = _booking_view(ctx, booking)
    ctx.show("care/cancelled", [[ctx.button("care_my_bookings", MyBookings())]], booking=view)
    _tell(ctx, booking.counsellor_id, "care/notice_cancelled", booking=view)


@handler(needs=Need.VERIFIED)
def reschedule(ctx: Ctx) -> None:
    """Button: choose another time with the same counsellor (before the cancellation window)."""
    booking = counselling.my_booking(ctx.session, ctx.member.id, ctx.pressed(Reschedule).booking_id)
    if booking.status != BookingStatus.ACTIVE:
        raise BadInput("care_booking_not_active")
    if ctx.now >= booking.starts_at - _window(ctx):
        raise BadInput("care_too_late_to_move", hours=ctx.config.care.cancel_hours_before)
    _calendar(ctx, booking.counsellor_id, booking.area, 0, booking.id)


@handler(write=True, needs=Need.VERIFIED)
def move_to(ctx: Ctx) -> None:
    """Button: confirm the move; the counsellor is told."""
    press = ctx.pressed(MoveTo)
    old = counselling.my_booking(ctx.session, ctx.member.id, press.booking_id)
    old_view = _booking_view(ctx, old)
    new = counselling.reschedule(
        ctx.session,
        ctx.member.id,
        press.booking_id,
        press.slot_id,
        ctx.now,
        ctx.config.care.max_active_bookings,
        _window(ctx),
    )
    view = _booking_view(ctx, new)
    ctx.show("care/moved", [[ctx.button("care_my_bookings", MyBookings())]], booking=view, old=old_view)
    _tell(
        ctx,
        new.counsellor_id,
        "care/notice_moved",
        [("care_open_booking", ManageSlot(new.slot_id))],
        booking=view,
        old=old_view,
    )


# --- counsellors ------------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_slots(ctx: Ctx) -> None:
    """/slots: my coming slots (booked ones marked) and buttons to offer more."""
    _slot_list(ctx)


@handler(write=True, needs=Need.VERIFIED)
def new_slots(ctx: Ctx) -> None:
    """Button: offer a single slot or a weekly pattern (a short form)."""
    kind = ctx.pressed(NewSlots).kind
    counselling.require_counsellor(ctx.actor)
    if kind not in ("single", "week"):
        raise BadInput("form_step_passed")
    forms.start_form(ctx, FORM, {"form": kind})


def _counsellor_card(ctx: Ctx, slot_id: int) -> None:
    row = counselling.own_slot(ctx.session, ctx.actor, slot_id)
    slot, booking = row.slot, row.booking
    keyboard = []
    context: dict[str, Any] = {"slot": _slot_view(ctx, slot), "booking": None}
    if booking is not None:
        view = counselling.counsellor_booking(ctx.session, ctx.actor, booking.id)
        box = _sealer(ctx)
        context |= {
            "booking": _booking_view(ctx, booking),
            "name": view.member_name,
            "note": box.open(booking.member_note),
            "private_note": box.open(booking.counsellor_note),
            "notes_on": box.enabled,
        }
        if ctx.now >= booking.starts_at:
            keyboard.append(
                [
                    ctx.button("care_done", CloseBooking(booking.id, BookingStatus.DONE.value)),
                    ctx.button("care_no_show", CloseBooking(booking.id, BookingStatus.NO_SHOW.value)),
                ]
            )
        if box.enabled:
            keyboard.append([ctx.button("care_private_note", NoteBooking(booking.id))])
    elif slot.status == "free":
        keyboard.append([ctx.button("care_block", BlockSlot(slot.id, 1))])
    else:
        keyboard.append([ctx.button("care_unblock", BlockSlot(slot.id, 0))])
    if booking is None or ctx.now < booking.starts_at:
        keyboard.append([ctx.button("care_remove", RemoveSlot(slot.id))])
    keyboard.append([ctx.button("back", SlotsHome())])
    ctx.show("care/slot", keyboard, **context)


@handler(write=True, needs=Need.VERIFIED)
def manage_slot(ctx: Ctx) -> None:
    """Button: one of my slots, with its booking (the view is audited, not its content)."""
    _counsellor_card(ctx, ctx.pressed(ManageSlot).slot_id)


@handler(write=True, needs=Need.VERIFIED)
def block_slot(ctx: Ctx) -> None:
    """Button: block a free slot or free it again."""
    press = ctx.pressed(BlockSlot)
    counselling.set_blocked(ctx.session, ctx.actor, press.slot_id, bool(press.block))
    _counsellor_card(ctx, press.slot_id)


@handler(write=True, needs=Need.VERIFIED)
def remove_slot(ctx: Ctx) -> None:
    """Button: remove a free slot at once; a booked one first asks for the reason the member will read."""
    slot_id = ctx.pressed(RemoveSlot).slot_id
    row = counselling.own_slot(ctx.session, ctx.actor, slot_id)
    if row.booking is None:
        counselling.remove_slot(ctx.session, ctx.actor, slot_id, None, ctx.now)
        ctx.toast = ctx.label("care_removed")
        _slot_list(ctx)
        return
    ctx.set_flow(REASON_FLOW, "reason", {"slot_id": slot_id})
    ctx.reply("care/ask_reason", [[ctx.button("cancel", CancelFlow())]], max=care.REASON_MAX)


def _slot_list(ctx: Ctx) -> None:
    """The counsellor's coming slots, each a button to manage it."""
    rows = counselling.my_slots(ctx.session, ctx.actor, ctx.now, SLOTS_SHOWN)
    keyboard = [
        [
            ctx.button(
                "care_slot_booked" if r.booking else f"care_slot_{r.slot.status}",
                ManageSlot(r.slot.id),
                at=_local(ctx, r.slot.starts_at).strftime("%m-%d %H:%M"),
            )
        ]
        for r in rows
    ]
    keyboard.append([ctx.button("care_new_single", NewSlots("single")), ctx.button("care_new_week", NewSlots("week"))])
    keyboard.append([ctx.button("workshops_new", NewWorkshop())])
    keyboard.append([ctx.button("care_edit_profile", EditProfile())])
    slots = [_slot_view(ctx, r.slot) | {"booked": r.booking is not None} for r in rows]
    profile = counselling.profile_of(ctx.session, ctx.member.id)
    ctx.show("care/slots", keyboard, slots=slots, notes_on=_sealer(ctx).enabled, profile=profile)


@handler(write=True, needs=Need.VERIFIED)
def edit_profile(ctx: Ctx) -> None:
    """Button: write the short profile members see when they choose a counsellor."""
    counselling.require_counsellor(ctx.actor)
    ctx.set_flow(PROFILE_FLOW, "profile", {})
    ctx.reply("care/ask_profile", [[ctx.button("cancel", CancelFlow())]], max=care.PROFILE_MAX)


def profile_text(ctx: Ctx, text: str) -> None:
    """The new profile."""
    counselling.set_profile(ctx.session, ctx.actor, _typed(text.strip(), care.PROFILE_MAX), ctx.now)
    ctx.clear_flow(PROFILE_FLOW)
    ctx.reply("care/profile_saved", [[ctx.button("care_my_slots", SlotsHome())]])


def _typed(text: str, limit: int) -> str:
    if not text:
        raise BadInput("care_text_empty")
    if len(text) > limit:
        raise BadInput("care_text_too_long", max=limit)
    return text


def reason_text(ctx: Ctx, text: str) -> None:
    """The reason for removing a booked slot: the slot goes and the member is told why."""
    state = ctx.section_flow(REASON_FLOW)
    reason = _typed(text.strip(), care.REASON_MAX)
    booking = counselling.remove_slot(ctx.session, ctx.actor, state.data["slot_id"], reason, ctx.now)
    ctx.clear_flow(REASON_FLOW)
    ctx.reply("care/slot_removed", booked=booking is not None)
    if booking is not None:
        _tell(
            ctx,
            booking.member_id,
            "care/notice_removed",
            [("care_book_again", CareHome())],
            booking=_booking_view(ctx, booking),
            reason=reason,
        )


@handler(write=True, needs=Need.VERIFIED)
def close_booking(ctx: Ctx) -> None:
    """Button: after the session, done or no-show."""
    press = ctx.pressed(CloseBooking)
    booking = counselling.close_booking(ctx.session, ctx.actor, press.booking_id, press.outcome, ctx.now)
    ctx.toast = ctx.label(f"care_status_{booking.status}")
    _slot_list(ctx)


@handler(write=True, needs=Need.VERIFIED)
def note_booking(ctx: Ctx) -> None:
    """Button: keep a private note on a booking (encrypted; only I read it)."""
    booking_id = ctx.pressed(NoteBooking).booking_id
    counselling.own_booking(ctx.session, ctx.actor, booking_id)
    if not _sealer(ctx).enabled:
        raise NotesDisabled()
    ctx.set_flow(NOTE_FLOW, "note", {"booking_id": booking_id})
    ctx.reply("care/ask_private_note", [[ctx.button("cancel", CancelFlow())]], max=care.NOTE_MAX)


def note_text(ctx: Ctx, text: str) -> None:
    """The counsellor's private note, encrypted before it is stored."""
    state = ctx.section_flow(NOTE_FLOW)
    sealed = _sealer(ctx).seal(_typed(text.strip(), care.NOTE_MAX))
    booking = counselling.keep_note(ctx.session, ctx.actor, state.data["booking_id"], sealed)
    ctx.clear_flow(NOTE_FLOW)
    ctx.reply("care/note_kept", [[ctx.button("care_open_booking", ManageSlot(booking.slot_id))]])


# --- rights and aid ----------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_help(ctx: Ctx) -> None:
    """/help_me: rights consultation, hardship aid, my requests."""
    keyboard = [
        [ctx.button("care_new_rights", NewRequest(RequestKind.RIGHTS.value))],
        [ctx.button("care_new_aid", NewRequest(RequestKind.AID.value))],
        [ctx.button("care_my_requests", MyRequests()), ctx.button("home", Home())],
    ]
    ctx.show("care/help_home", keyboard)


@handler(write=True, needs=Need.VERIFIED)
def new_request(ctx: Ctx) -> None:
    """Button: the short form of a rights consultation or an aid application."""
    kind = ctx.pressed(NewRequest).kind
    if kind not in KINDS:
        raise BadInput("form_step_passed")
    forms.start_form(ctx, FORM, {"form": kind})


def _finish_request(ctx: Ctx, data: dict[str, Any]) -> None:
    """Store the request and tell the unit's care handlers (the bureau's when the unit has none)."""
    kind = data["form"]
    topic = data.get("rights_topic") or data.get("aid_reason")
    request = requests.create(
        ctx.session, ctx.member, kind, topic, data["description"], data.get("contact"), data.get("photo"), ctx.now
    )
    handlers = requests.handlers_of(ctx.session, request.unit_code)
    if not handlers:
        requests.escalate_now(ctx.session, request.id, ctx.now)
        handlers = requests.handlers_of(ctx.session, None)
    for member in handlers:
        _tell(
            ctx,
            member.id,
            "care/notice_new_request",
            [("care_open_request", HandleRequest(request.id))],
            request=_request_view(ctx, request),
        )
    ctx.reply(
        "care/request_sent", [[ctx.button("care_my_requests", MyRequests())]], request=_request_view(ctx, request)
    )


def _request_view(ctx: Ctx, request: CareRequest) -> dict[str, Any]:
    unit = ctx.config.unit(request.unit_code)
    return {
        "id": request.id,
        "kind": request.kind,
        "topic": request.topic,
        "status": request.status,
        "amount": request.amount,
        "unit": unit.name(ctx.locale) if unit else request.unit_code,
        "created_at": _local(ctx, request.created_at),
        "waited_hours": int((ctx.now - request.created_at).total_seconds() // 3600),
        "escalated": request.escalated_at is not None,
    }


def _steps(ctx: Ctx, request_id: int) -> list[dict[str, Any]]:
    return [
        {"status": s.status, "note": s.note, "at": _local(ctx, s.at)}
        for s in requests.steps_of(ctx.session, request_id)
    ]


@handler(needs=Need.VERIFIED)
def show_requests(ctx: Ctx) -> None:
    """Button: my requests and their status."""
    mine = requests.my_requests(ctx.session, ctx.member.id, LIST_SIZE)
    keyboard = [[ctx.button("care_request", ShowRequest(r.id), id=r.id)] for r in mine]
    keyboard.append([ctx.button("back", HelpHome())])
    ctx.show("care/requests", keyboard, requests=[_request_view(ctx, r) for r in mine])


@handler(needs=Need.VERIFIED)
def show_request(ctx: Ctx) -> None:
    """Button: one of my requests with every step and its note."""
    request = requests.my_request(ctx.session, ctx.member.id, ctx.pressed(ShowRequest).request_id)
    ctx.show(
        "care/request",
        [[ctx.button("back", MyRequests())]],
        request=_request_view(ctx, request),
        description=request.description,
        steps=_steps(ctx, request.id),
    )


@handler(needs=Need.CADRE)
def show_queue(ctx: Ctx) -> None:
    """/care_queue: open requests I handle, the longest waiting first."""
    found = requests.queue(ctx.session, ctx.actor, QUEUE_SIZE)
    keyboard = [
        [ctx.button("care_queue_item", HandleRequest(r.id), id=r.id, hours=_request_view(ctx, r)["waited_hours"])]
        for r in found
    ]
    ctx.show("care/queue", keyboard, requests=[_request_view(ctx, r) for r in found])


def _handler_card(ctx: Ctx, request_id: int) -> None:
    request, member = requests.handled_request(ctx.session, ctx.actor, request_id)
    keyboard = [
        [ctx.button(f"care_to_{status}", Advance(request.id, status.value))]
        for status in requests.NEXT.get(RequestStatus(request.status), ())
        if requests.allowed(request, status)
    ]
    keyboard.append([ctx.button("back", Queue())])
    context = {
        "request": _request_view(ctx, request),
        "description": request.description,
        "contact": request.contact,
        "name": member.name if member else None,
        "steps": _steps(ctx, request.id),
    }
    ctx.show("care/handle", keyboard, **context)
    if request.photo_file_id:
        # Its own message: the description would not fit a photo's caption.
        caption = ctx.t("care/handle_photo", id=request.id)
        ctx.replies.append(Outgoing(ctx.chat_id, caption, photo=request.photo_file_id))


@handler(write=True, needs=Need.CADRE)
def handle_request(ctx: Ctx) -> None:
    """Button: a request in my queue (the view is audited)."""
    _handler_card(ctx, ctx.pressed(HandleRequest).request_id)


@handler(write=True, needs=Need.CADRE)
def advance(ctx: Ctx) -> None:
    """Button: take, answer, approve or decline a request: first the note the member receives (and the amount of
    approved aid)."""
    press = ctx.pressed(Advance)
    request, _member = requests.handled_request(ctx.session, ctx.actor, press.request_id)
    if press.status not in STATUSES or not requests.allowed(request, RequestStatus(press.status)):
        raise BadInput("care_request_moved", status=request.status)
    step = "amount" if press.status == RequestStatus.APPROVED else "note"
    ctx.set_flow(DECIDE_FLOW, step, {"request_id": request.id, "status": press.status})
    ctx.reply(f"care/ask_decide_{step}", [[ctx.button("cancel", CancelFlow())]], status=press.status, max=care.NOTE_MAX)


def decide_text(ctx: Ctx, text: str) -> None:
    """The amount (approved aid) or the note the member receives with the new status."""
    state = ctx.section_flow(DECIDE_FLOW)
    data = dict(state.data)
    if state.step == "amount":
        data["amount"] = forms.number_answer(ERRORS, 0, requests.MAX_AMOUNT)(ctx, text.strip(), data)
        ctx.set_flow(DECIDE_FLOW, "note", data)
        ctx.reply(
            "care/ask_decide_note", [[ctx.button("cancel", CancelFlow())]], status=data["status"], max=care.NOTE_MAX
        )
        return
    note = _typed(text.strip(), care.NOTE_MAX)
    request = requests.advance(
        ctx.session, ctx.actor, data["request_id"], data["status"], note, data.get("amount"), ctx.now
    )
    ctx.clear_flow(DECIDE_FLOW)
    _tell_member_step(ctx, request, note)
    ctx.reply("care/decided", [[ctx.button("back", Queue())]], request=_request_view(ctx, request))


def _tell_member_step(ctx: Ctx, request: CareRequest, note: str | None) -> None:
    _tell(
        ctx,
        request.member_id,
        "care/notice_step",
        [("care_open_my_request", ShowRequest(request.id))],
        request=_request_view(ctx, request),
        note=note,
    )


# --- the dashboard ------------------------------------------------------------------------------------


@handler(needs=Need.CADRE)
def show_stats(ctx: Ctx) -> None:
    """/care_stats: counts per area, channel and month (small cells hidden); requests per unit and month."""
    tz = ctx.config.timezone
    # This month and the one before.
    since = datetime.combine(ctx.today.replace(day=1) - timedelta(days=1), time(), tz).replace(day=1)
    areas, channels = stats.booking_counts(ctx.session, ctx.actor, tz, since)
    units = {u.code: u.name(ctx.locale) for u in ctx.config.units}
    cells = [
        {**vars(c), "unit": units.get(c.unit_code, c.unit_code)}
        for c in stats.request_counts(ctx.session, ctx.actor, tz, since)
    ]
    ctx.show(
        "care/stats",
        None,
        areas=areas,
        channels=channels,
        requests=cells[:STATS_ROWS],
        more=max(0, len(cells) - STATS_ROWS),
        hide_below=care.HIDE_BELOW,
    )


# --- the one form: bookings, slots, patterns, requests ------------------------------------------------

_number = partial(forms.number_answer, ERRORS)
_text = partial(forms.text_answer, ERRORS)


def _is(*forms_: str) -> Any:
    return lambda data: data.get("form") in forms_


def _phone(_ctx: Ctx, text: str, _data: dict[str, Any]) -> str:
    if not PHONE.match(text):
        raise BadInput("care_phone_invalid")
    return text


def _note(ctx: Ctx, text: str, _data: dict[str, Any]) -> str:
    """The member's note, encrypted at once (not even the form's saved answers hold it in plain text)."""
    return _sealer(ctx).seal(_typed(text, care.NOTE_MAX))


def _start(ctx: Ctx, text: str, _data: dict[str, Any]) -> str:
    from models.clock import parse_local_datetime

    moment = parse_local_datetime(text, ctx.config.timezone)
    if moment <= ctx.now:
        raise BadInput("care_time_past")
    return moment.isoformat()


def _day(ctx: Ctx, text: str, data: dict[str, Any]) -> str:
    try:
        day = date.fromisoformat(text) if text.isascii() else None
    except ValueError:
        day = None
    if day is None:
        raise BadInput("care_date_format")
    if day < ctx.today:
        raise BadInput("care_time_past")
    first = data.get("week_first")
    if first and not date.fromisoformat(first) <= day <= date.fromisoformat(first) + timedelta(days=DAY_MAX):
        raise BadInput("care_date_range", days=DAY_MAX)
    return day.isoformat()


def _clock(_ctx: Ctx, text: str, data: dict[str, Any]) -> str:
    cleaned = text.replace("：", ":")
    if not re.fullmatch(r"[0-9]{1,2}:[0-9]{2}", cleaned):
        raise BadInput("care_clock_format")
    hour, minute = (int(p) for p in cleaned.split(":"))
    if hour > 23 or minute > 59:
        raise BadInput("care_clock_format")
    value = time(hour, minute)
    start = data.get("week_from")
    if start and value <= time.fromisoformat(start):
        raise BadInput("care_clock_order")
    return value.isoformat(timespec="minutes")


def _photo_text(_ctx: Ctx, _text: str, _data: dict[str, Any]) -> str:
    raise BadInput("care_photo_expected")


def _choices(prefix: str, values: Any) -> Any:
    return lambda ctx, _data: [(ctx.label(f"{prefix}{v.value}"), v.value) for v in values]


def _contact_choices(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.label("care_contact_telegram"), "telegram"), (ctx.label("care_contact_phone"), "phone")]


def _confirm(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.label("care_confirm_booking"), "yes")]


def _weekdays(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.label(f"care_weekday_{d}"), str(d)) for d in range(1, 8)]


def _finish(ctx: Ctx, data: dict[str, Any]) -> None:
    """The last answer is in: book, offer slots, or send the request."""
    kind = data["form"]
    if kind == "book":
        _finish_booking(ctx, data)
        return
    if kind in KINDS:
        _finish_request(ctx, data)
        return
    plan = counselling.SlotPlan(data["channel"], data.get("place") or "", tuple(data["areas"]), data["minutes"])
    if kind == "single":
        added = counselling.add_slot(ctx.session, ctx.actor, datetime.fromisoformat(data["slot_start"]), plan, ctx.now)
    else:
        starts = counselling.pattern_starts(
            date.fromisoformat(data["week_first"]),
            date.fromisoformat(data["week_last"]),
            [int(d) for d in data["week_days"]],
            time.fromisoformat(data["week_from"]),
            time.fromisoformat(data["week_to"]),
            data["minutes"],
            ctx.config.timezone,
        )
        added = counselling.add_pattern(ctx.session, ctx.actor, starts, plan, ctx.now)
    ctx.reply("care/slots_added", [[ctx.button("care_my_slots", SlotsHome())]], count=added)


CARE_FORM = forms.register_form(
    Form(
        FORM,
        (
            Field("book_contact", choices=_contact_choices, when=_is("book")),
            Field(
                "book_phone",
                parse=_phone,
                when=lambda d: d.get("form") == "book" and d.get("book_contact") == "phone",
            ),
            Field("book_note", parse=_note, optional=True, when=lambda d: d.get("form") == "book" and d["notes_on"]),
            Field("book_confirm", choices=_confirm, when=_is("book")),
            Field("slot_start", parse=_start, when=_is("single")),
            Field("week_first", parse=_day, when=_is("week")),
            Field("week_last", parse=_day, when=_is("week")),
            Field("week_days", choices=_weekdays, multiple=True, when=_is("week")),
            Field("week_from", parse=_clock, when=_is("week")),
            Field("week_to", parse=_clock, when=_is("week")),
            Field("minutes", parse=_number(care.SLOT_MINUTES_MIN, care.SLOT_MINUTES_MAX), when=_is("single", "week")),
            Field("channel", choices=_choices("care_channel_", Channel), when=_is("single", "week")),
            Field("place", parse=_text(care.PLACE_MAX), optional=True, when=_is("single", "week")),
            Field("areas", choices=_choices("care_area_", Area), multiple=True, when=_is("single", "week")),
            Field("rights_topic", choices=_choices("care_topic_", RightsTopic), when=_is("rights")),
            Field("aid_reason", choices=_choices("care_reason_", AidReason), when=_is("aid")),
            Field("description", parse=_text(care.DESCRIPTION_MAX), when=_is("rights", "aid")),
            Field("contact", parse=_text(care.CONTACT_MAX), optional=True, when=_is("rights")),
            Field("photo", parse=_photo_text, optional=True, accepts_photo=True, when=_is("aid")),
        ),
        _finish,
    )
)


SECTION = Section(
    "care",
    commands=(
        Command("counselling", show_home, menu_order=60),
        Command("help_me", show_help, menu_order=65),
        Command("slots", show_slots),
        Command("care_queue", show_queue),
        Command("care_stats", show_stats),
    ),
    buttons={
        CareHome: show_home,
        PickArea: pick_area,
        Calendar: show_calendar,
        PickSlot: pick_slot,
        MoveTo: move_to,
        MyBookings: show_mine,
        ShowBooking: show_booking,
        AskCancelBooking: ask_cancel,
        CancelBooking: cancel_booking,
        Reschedule: reschedule,
        SlotsHome: show_slots,
        NewSlots: new_slots,
        ManageSlot: manage_slot,
        BlockSlot: block_slot,
        RemoveSlot: remove_slot,
        CloseBooking: close_booking,
        NoteBooking: note_booking,
        HelpHome: show_help,
        NewRequest: new_request,
        MyRequests: show_requests,
        ShowRequest: show_request,
        Queue: show_queue,
        HandleRequest: handle_request,
        Advance: advance,
        CareStats: show_stats,
        EditProfile: edit_profile,
    },
    flows={
        FORM: forms.answer_text,
        REASON_FLOW: reason_text,
        NOTE_FLOW: note_text,
        DECIDE_FLOW: decide_text,
        PROFILE_FLOW: profile_text,
    },
    admin_entries=(("care_stats", CareStats()), ("care_queue", Queue())),
)
