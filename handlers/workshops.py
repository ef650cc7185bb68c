"""Counselling workshops (团体辅导): counsellors create them from /slots, members find them in /counselling.

Built on the runs machinery (models/runs.py through models/workshops.py): capacity, RSVP, the waitlist with
exactly-once promotion notices, reminders the day and the hour before (scheduled/runs.py). Who answered is shown
to the workshop's counsellor only; there is no sharing or group posting of a workshop.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from buttons import BadCallback
from buttons.care import CareHome, SlotsHome
from buttons.workshops import (
    AskCancelWorkshop,
    CancelWorkshop,
    NewWorkshop,
    ShowWorkshop,
    WorkshopCalendar,
    WorkshopList,
    WorkshopPeople,
    WorkshopRespond,
)
from handlers import forms
from handlers.base import Ctx, Need, Section, handler
from handlers.forms import Field, Form
from models import runs, workshops
from models.care.counselling import require_counsellor
from models.care.tables import Area
from models.runs import Answer, EventStatus, Visibility
from scheduled import runs as notices

FORM = "workshops"
# The form's messages reuse the runs ones: errors/runs_text_empty, runs_text_too_long, runs_number_range, ...
ERRORS = "runs"
LISTED = 20
PEOPLE_SHOWN = 50


def _view(ctx: Ctx, event: runs.Event, area: str | None = None) -> dict[str, Any]:
    return notices.run_view(event, ctx.config.timezone) | {"area": area}


@handler(needs=Need.VERIFIED)
def show_list(ctx: Ctx) -> None:
    """Button in /counselling: upcoming workshops of my unit and bureau-wide, nearest first."""
    found = workshops.upcoming(ctx.session, ctx.member, ctx.now, LISTED)
    tz = ctx.config.timezone
    keyboard = [
        [ctx.button("workshops_item", ShowWorkshop(e.id), at=e.starts_at.astimezone(tz), title=e.title)] for e in found
    ]
    keyboard.append([ctx.button("back", CareHome())])
    ctx.show("workshops/list", keyboard, workshops=[_view(ctx, e) for e in found])


def _show_card(ctx: Ctx, event_id: int, *, edit: bool = True) -> None:
    card = workshops.card(ctx.session, ctx.member, event_id)
    event, rows = card.event, []
    upcoming = event.status == EventStatus.OPEN and event.starts_at > ctx.now
    if upcoming:
        answers = [ctx.button(f"workshops_answer_{a}", WorkshopRespond(event.id, a.value)) for a in workshops.CHOICES]
        rows.append(answers)
    rows.append([ctx.button("workshops_calendar", WorkshopCalendar(event.id))])
    if card.is_counsellor:
        rows.append([ctx.button("workshops_people", WorkshopPeople(event.id))])
        if upcoming:
            rows.append([ctx.button("workshops_cancel", AskCancelWorkshop(event.id))])
    rows.append([ctx.button("workshops_back", WorkshopList())])
    ctx.say(
        ctx.t(
            "workshops/card",
            workshop=_view(ctx, event, card.area),
            description=card.description,
            counsellor=card.counsellor,
            waitlist=card.waitlist,
            mine=card.mine,
            position=card.position,
            is_counsellor=card.is_counsellor,
        ),
        rows,
        edit=edit,
    )


@handler(needs=Need.VERIFIED)
def show_workshop(ctx: Ctx) -> None:
    """Button: one workshop's card (also from a reminder or a promotion notice)."""
    _show_card(ctx, ctx.pressed(ShowWorkshop).event_id)


@handler(write=True, needs=Need.VERIFIED)
def respond(ctx: Ctx) -> None:
    """Button: Going / Can't go; a freed seat goes to the first on the waitlist, who is told once."""
    press = ctx.pressed(WorkshopRespond)
    try:
        answer = Answer(press.answer)
    except ValueError:
        raise BadCallback("unknown answer") from None
    change = workshops.respond(ctx.session, ctx.member, press.event_id, answer, ctx.now)
    ctx.notices += notices.tell_promotions(ctx.services, ctx.session, change.promoted, ctx.now)
    ctx.toast = ctx.label(f"workshops_toast_{change.answer}", position=change.position or 0)
    _show_card(ctx, press.event_id)


@handler(needs=Need.VERIFIED)
def send_calendar(ctx: Ctx) -> None:
    """Button: the workshop as an .ics file (time zone, place or link, a reminder an hour before)."""
    card = workshops.card(ctx.session, ctx.member, ctx.pressed(WorkshopCalendar).event_id)
    view = _view(ctx, card.event, card.area)
    content = runs.calendar_file(
        card.event,
        ctx.config.timezone,
        ctx.label("workshops_ics_summary", workshop=view),
        ctx.label("workshops_ics_description", workshop=view, counsellor=card.counsellor),
        ctx.label("workshops_ics_alarm", workshop=view),
    )
    ctx.send_document(content, f"workshop-{card.event.id}.ics", "workshops/calendar_caption", workshop=view)


@handler(needs=Need.VERIFIED)
def show_people(ctx: Ctx) -> None:
    """Button (the workshop's counsellor only): who is going and who waits."""
    event_id = ctx.pressed(WorkshopPeople).event_id
    event, people = workshops.participants(ctx.session, ctx.actor, event_id)
    rows = [{"name": p.name, "answer": p.answer} for p in people[:PEOPLE_SHOWN]]
    ctx.show(
        "workshops/people",
        [[ctx.button("workshops_back_card", ShowWorkshop(event_id))]],
        workshop=_view(ctx, event),
        people=rows,
        more=max(0, len(people) - PEOPLE_SHOWN),
    )


@handler(needs=Need.VERIFIED)
def ask_cancel(ctx: Ctx) -> None:
    """Button (the counsellor): are you sure? Everyone who answered will be told."""
    event_id = ctx.pressed(AskCancelWorkshop).event_id
    event, _people = workshops.participants(ctx.session, ctx.actor, event_id)
    sure = ctx.button("workshops_cancel_yes", CancelWorkshop(event_id))
    keyboard = [[sure, ctx.button("workshops_keep", ShowWorkshop(event_id))]]
    ctx.show("workshops/cancel_confirm", keyboard, workshop=_view(ctx, event))


@handler(write=True, needs=Need.VERIFIED)
def cancel(ctx: Ctx) -> None:
    """Button (the counsellor): cancel; everyone who answered is told through the outbox."""
    event, people = workshops.cancel(ctx.session, ctx.actor, ctx.pressed(CancelWorkshop).event_id, ctx.now)
    view = _view(ctx, event)
    ctx.require_write()
    ctx.notices += notices.tell(
        ctx.services,
        ctx.session,
        people,
        "workshops/notice_cancelled",
        notices.KIND_CANCELLED,
        f"workshops:cancelled:{event.id}",
        ctx.now,
        run=view,
    )
    ctx.show("workshops/cancelled", [[ctx.button("workshops_to_slots", SlotsHome())]], workshop=view, told=len(people))


# --- the counsellor's form ------------------------------------------------------------------------------------


@handler(write=True, needs=Need.VERIFIED)
def new_workshop(ctx: Ctx) -> None:
    """Button in /slots: a new workshop, step by step (counsellors only)."""
    require_counsellor(ctx.actor)
    forms.start_form(ctx, FORM)


def _areas(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.label(f"care_area_{a.value}"), a.value) for a in Area]


def _visibilities(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.label(f"workshops_visibility_{v}"), v.value) for v in workshops.VISIBILITIES]


def _stored_time(_ctx: Ctx, answer: str) -> datetime:
    return datetime.fromisoformat(answer)


def _create(ctx: Ctx, data: dict[str, Any]) -> None:
    draft = workshops.WorkshopDraft(
        title=data["title"],
        area=data["area"],
        starts_at=datetime.fromisoformat(data["starts_at"]),
        place=data["place"],
        capacity=data["capacity"],
        description=data.get("description") or "",
        visibility=Visibility(data["visibility"]),
    )
    event = workshops.create(ctx.session, ctx.actor, draft, ctx.now)
    ctx.reply("workshops/created", workshop=_view(ctx, event, draft.area))
    _show_card(ctx, event.id, edit=False)


_text = partial(forms.text_answer, ERRORS)

WORKSHOP_FORM = forms.register_form(
    Form(
        FORM,
        (
            Field("title", parse=_text(runs.TITLE_MAX)),
            Field("area", choices=_areas),
            Field("starts_at", parse=forms.time_answer(ERRORS, None, _stored_time)),
            Field("place", parse=_text(runs.PLACE_MAX)),
            Field("capacity", parse=forms.number_answer(ERRORS, 1, runs.MAX_CAPACITY)),
            Field("description", parse=_text(workshops.DESCRIPTION_MAX), optional=True),
            Field("visibility", choices=_visibilities),
        ),
        _create,
    )
)


SECTION = Section(
    "workshops",
    buttons={
        WorkshopList: show_list,
        NewWorkshop: new_workshop,
        ShowWorkshop: show_workshop,
        WorkshopRespond: respond,
        WorkshopPeople: show_people,
        WorkshopCalendar: send_calendar,
        AskCancelWorkshop: ask_cancel,
        CancelWorkshop: cancel,
    },
    flows={FORM: forms.answer_text},
)
