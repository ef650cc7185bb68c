"""Counselling workshops (团体辅导): group sessions built on the runs machinery (models/runs.py).

A workshop is an Event of kind "workshop" (capacity, RSVP, waitlist with exactly-once promotion, reminders,
check-in all come from models/runs) plus a CareWorkshop row with its care area and a short description.
Privacy: who answered a workshop is shown to its counsellor only (runs.participants checks the organiser);
workshops never appear in /runs, inline sharing or group posts (models/runs excludes the kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Field, Session, SQLModel, col, or_, select

from models import runs
from models.care.counselling import require_counsellor
from models.care.tables import AREAS
from models.errors import DomainError
from models.members import Actor, Member
from models.runs import Answer, Event, EventStatus, Visibility

DESCRIPTION_MAX = 300
# A member's choices on a workshop card (no "maybe": a seat is held or given up).
CHOICES = (Answer.GOING, Answer.DECLINED)
VISIBILITIES = (Visibility.UNIT, Visibility.BUREAU)


class CareWorkshop(SQLModel, table=True):
    __tablename__ = "care_workshop"

    event_id: int = Field(foreign_key="event.id", primary_key=True)
    area: str = Field(max_length=16)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


class WorkshopNotFound(DomainError):
    """No such workshop, or one this member may not see (also a forged id, or a run's id)."""

    key = "workshops_not_found"


@dataclass(frozen=True)
class WorkshopDraft:
    title: str
    area: str
    starts_at: datetime
    place: str
    capacity: int
    description: str
    visibility: str


@dataclass(frozen=True)
class Card:
    """A workshop as one member sees it: live counts, my answer and waitlist place."""

    event: Event
    area: str
    description: str
    counsellor: str
    waitlist: int
    mine: str | None
    position: int | None
    is_counsellor: bool


def create(session: Session, actor: Actor, draft: WorkshopDraft, now: datetime) -> Event:
    """A counsellor's new workshop (NotAllowed for anyone else, admins included)."""
    require_counsellor(actor)
    if draft.area not in AREAS:
        raise DomainError("button_expired")
    if draft.visibility not in VISIBILITIES:
        raise DomainError("button_expired")
    event = runs.create_event(
        session,
        actor.member,
        runs.Draft(
            kind=runs.Kind.WORKSHOP,
            title=draft.title,
            starts_at=draft.starts_at,
            place=draft.place,
            capacity=draft.capacity,
            visibility=draft.visibility,
        ),
        now,
    )
    session.add(CareWorkshop(event_id=event.id, area=draft.area, description=draft.description))
    session.flush()
    return event


def _workshop(session: Session, event_id: int) -> CareWorkshop:
    """The workshop row of an event; WorkshopNotFound for runs, club events and unknown ids."""
    found = session.get(CareWorkshop, event_id)
    if found is None:
        raise WorkshopNotFound()
    return found


def card(session: Session, member: Member, event_id: int) -> Card:
    """A workshop this member may see (their unit's or bureau-wide, or their own as its counsellor)."""
    extra = _workshop(session, event_id)
    try:
        seen = runs.card(session, member, event_id)
    except (runs.NotVisible, runs.RunNotFound):
        raise WorkshopNotFound() from None
    return Card(
        event=seen.event,
        area=extra.area,
        description=extra.description,
        counsellor=seen.organiser,
        waitlist=seen.waitlist,
        mine=seen.mine,
        position=seen.position,
        is_counsellor=seen.is_organiser,
    )


def respond(session: Session, member: Member, event_id: int, answer: Answer, now: datetime) -> runs.Change:
    """Going / Can't go on a workshop (the runs rules: a seat or a waitlist ticket; a freed seat promotes)."""
    if answer not in CHOICES:
        raise DomainError("button_expired")
    _workshop(session, event_id)
    try:
        return runs.respond(session, member, event_id, answer, now)
    except runs.NotVisible:
        raise WorkshopNotFound() from None


def upcoming(session: Session, member: Member, now: datetime, limit: int) -> list[Event]:
    """Open workshops visible to me that have not started, nearest first."""
    query = (
        select(Event)
        .join(CareWorkshop, col(CareWorkshop.event_id) == col(Event.id))
        .where(
            col(Event.kind) == runs.Kind.WORKSHOP,
            col(Event.status) == EventStatus.OPEN,
            col(Event.starts_at) > now,
            or_(
                col(Event.visibility) == Visibility.BUREAU,
                (col(Event.visibility) == Visibility.UNIT) & (col(Event.unit_code) == member.unit_code),
                col(Event.organiser_id) == member.id,
            ),
        )
        .order_by(col(Event.starts_at), col(Event.id))
        .limit(limit)
    )
    return list(session.exec(query))


def participants(session: Session, actor: Actor, event_id: int) -> tuple[Event, list[runs.Participant]]:
    """Who answered: to the workshop's own counsellor only (not cadres, admins or other counsellors)."""
    require_counsellor(actor)
    _workshop(session, event_id)
    return runs.participants(session, actor.member, event_id)


def cancel(session: Session, actor: Actor, event_id: int, now: datetime) -> tuple[Event, list[runs.Person]]:
    """The counsellor cancels; everyone who answered is to be told."""
    require_counsellor(actor)
    _workshop(session, event_id)
    return runs.cancel_event(session, actor.member, event_id, now)
