"""Runs and club events (航天漫步): an event with a capacity, RSVPs, a waitlist, reminders and check-in.

The machinery is generic: an Event has a `kind` ("run", "club"; counselling workshops can add theirs), a
capacity and a waitlist. Every change of someone's answer runs under a lock on the event row (PostgreSQL:
SELECT ... FOR UPDATE; SQLite: the one writer), so the seats counter, the waitlist order and promotions are
decided one at a time per event; the seat counter itself moves only by conditional UPDATE and a CHECK keeps
it within [0, capacity] as the last guard. A freed seat goes to the first on the waitlist, whose row is
marked `promoted` until the notice about it is queued (once: a conditional UPDATE clears the mark).
"""

from __future__ import annotations

import enum
import io
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import qrcode
from qrcode.image.pil import PilImage
from sqlalchemy import BigInteger, CheckConstraint, Index, UniqueConstraint, delete, exists, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from config import PointsRule
from models import clubs, points
from models.clock import utcnow
from models.errors import BadInput, DomainError, NotAllowed
from models.members import Member, Status
from models.outbox import OutboxMessage

PLACE_MAX = 120
TITLE_MAX = 60
PACE_MAX = 20
MAX_CAPACITY = 1000
MAX_DISTANCE_M = 200_000
TOKEN_BYTES = 9
# Distance bands for /runs filters (metres): short < 5 km <= medium < 10 km <= long.
BANDS = {"short": (0, 5000), "medium": (5000, 10_000), "long": (10_000, MAX_DISTANCE_M + 1)}
# Reminders: (kind, how long before the start).
REMINDERS = (("day", timedelta(days=1)), ("hour", timedelta(hours=1)))
ATTENDANCE_RULE = "run_attendance"


class Kind(enum.StrEnum):
    RUN = "run"
    CLUB = "club"
    # Counselling workshops (models/workshops.py): private to their counsellor, never in /runs, shared or posted.
    WORKSHOP = "workshop"


class Visibility(enum.StrEnum):
    UNIT = "unit"
    CLUB = "club"
    BUREAU = "bureau"


class EventStatus(enum.StrEnum):
    OPEN = "open"
    CANCELLED = "cancelled"


class Answer(enum.StrEnum):
    GOING = "going"
    MAYBE = "maybe"
    WAITLIST = "waitlist"
    DECLINED = "declined"


# What a member may choose; WAITLIST is where GOING lands when the event is full.
CHOICES = (Answer.GOING, Answer.MAYBE, Answer.DECLINED)


class Event(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = (
        CheckConstraint("going >= 0 AND going <= capacity", name="ck_event_seats"),
        CheckConstraint("capacity > 0", name="ck_event_capacity"),
        Index("ix_event_status_starts", "status", "starts_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default=Kind.RUN, max_length=12)
    organiser_id: int = Field(foreign_key="member.id", index=True)
    unit_code: str = Field(foreign_key="unit.code", max_length=16)
    visibility: str = Field(default=Visibility.UNIT, max_length=12)
    club_id: int | None = Field(default=None, foreign_key="club.id", index=True)
    title: str = Field(default="", max_length=TITLE_MAX)
    starts_at: datetime
    place: str = Field(max_length=PLACE_MAX)
    latitude: float | None = None
    longitude: float | None = None
    distance_m: int | None = None
    pace: str = Field(default="", max_length=PACE_MAX)
    capacity: int
    # Seats taken (GOING answers): moved only by conditional UPDATE.
    going: int = 0
    # Waitlist tickets handed out so far: the next one is queued + 1 (arrival order).
    queued: int = 0
    status: str = Field(default=EventStatus.OPEN, max_length=12)
    checkin_token: str = Field(max_length=24, unique=True)
    reminded_day: bool = False
    reminded_hour: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Rsvp(SQLModel, table=True):
    __tablename__ = "event_rsvp"
    __table_args__ = (
        UniqueConstraint("event_id", "member_id", name="uq_rsvp_member"),
        UniqueConstraint("event_id", "queue_no", name="uq_rsvp_queue"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    answer: str = Field(max_length=12)
    # The waitlist ticket (arrival order); kept after a promotion so the notice's dedupe key is unique.
    queue_no: int | None = None
    # Promoted from the waitlist, notice not queued yet.
    promoted: bool = False
    checked_in_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class EventCard(SQLModel, table=True):
    """A posted copy of an event's public card (an inline-mode message or a group message), edited as counts change."""

    __tablename__ = "event_card"
    __table_args__ = (
        UniqueConstraint("inline_message_id", name="uq_event_card_inline"),
        UniqueConstraint("chat_id", "message_id", name="uq_event_card_message"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    inline_message_id: str | None = Field(default=None, max_length=255)
    chat_id: int | None = Field(default=None, sa_type=BigInteger)
    message_id: int | None = Field(default=None, sa_type=BigInteger)


class RunNotFound(DomainError):
    key = "runs_not_found"


class NotVisible(DomainError):
    """A unit-only or club-only event of another unit or club (also a guessed id)."""

    key = "runs_not_visible"


class EventClosed(DomainError):
    key = "runs_closed"


class NotOrganiser(NotAllowed):
    key = "runs_not_organiser"


@dataclass(frozen=True)
class Draft:
    """What an organiser fills in (the /newrun form)."""

    starts_at: datetime
    place: str
    capacity: int
    distance_m: int | None = None
    pace: str = ""
    title: str = ""
    visibility: str = Visibility.UNIT
    club_id: int | None = None
    kind: str = Kind.RUN
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class Person:
    """Someone to tell: member id, Telegram chat and language."""

    member_id: int
    telegram_id: int
    language: str


@dataclass(frozen=True)
class Promotion:
    """A member moved from the waitlist to going (to be told once)."""

    rsvp_id: int
    queue_no: int
    person: Person | None


@dataclass(frozen=True)
class Change:
    """The result of an answer: what I am now, my place on the waitlist, who was promoted."""

    answer: Answer
    position: int | None
    promoted: list[Promotion]


@dataclass(frozen=True)
class Card:
    event: Event
    organiser: str
    maybe: int
    waitlist: int
    mine: str | None
    position: int | None
    checked_in: bool
    is_organiser: bool
    club_name: str | None


@dataclass(frozen=True)
class Participant:
    member_id: int
    name: str
    answer: str
    checked_in: bool


class CheckOutcome(enum.StrEnum):
    CHECKED_IN = "checked_in"
    ALREADY = "already"


@dataclass(frozen=True)
class CheckIn:
    event: Event
    outcome: CheckOutcome
    points: int


# --- creating and reading ---------------------------------------------------------------------------------


def create_event(session: Session, organiser: Member, draft: Draft, now: datetime) -> Event:
    """A new open event organised by this member (club events only by that club's members)."""
    if draft.starts_at <= now:
        raise BadInput("runs_time_past")
    if not 1 <= draft.capacity <= MAX_CAPACITY:
        raise BadInput("runs_number_range", low=1, high=MAX_CAPACITY)
    club_ok = draft.club_id is not None and clubs.belongs(session, organiser.id, draft.club_id)
    if draft.visibility == Visibility.CLUB and not club_ok:
        raise NotAllowed()
    event = Event(
        kind=draft.kind,
        organiser_id=organiser.id,
        unit_code=organiser.unit_code,
        visibility=draft.visibility,
        club_id=draft.club_id if draft.visibility == Visibility.CLUB else None,
        title=draft.title,
        starts_at=draft.starts_at,
        place=draft.place,
        latitude=draft.latitude,
        longitude=draft.longitude,
        distance_m=draft.distance_m,
        pace=draft.pace,
        capacity=draft.capacity,
        checkin_token=secrets.token_urlsafe(TOKEN_BYTES),
        created_at=now,
    )
    session.add(event)
    session.flush()
    return event


def _visible_to(member: Member) -> Any:
    """SQL condition: events this member may see and answer."""
    return or_(
        col(Event.visibility) == Visibility.BUREAU,
        (col(Event.visibility) == Visibility.UNIT) & (col(Event.unit_code) == member.unit_code),
        (col(Event.visibility) == Visibility.CLUB)
        & exists().where(
            col(clubs.ClubMember.member_id) == member.id,
            col(clubs.ClubMember.club_id) == col(Event.club_id),
            col(clubs.ClubMember.status) == clubs.MemberStatus.MEMBER,
        ),
        col(Event.organiser_id) == member.id,
    )


def _visible(session: Session, member: Member, event: Event) -> bool:
    if event.organiser_id == member.id or event.visibility == Visibility.BUREAU:
        return True
    if event.visibility == Visibility.UNIT:
        return event.unit_code == member.unit_code
    return event.club_id is not None and clubs.belongs(session, member.id, event.club_id)


def get_event(session: Session, member: Member, event_id: int, *, lock: bool = False) -> Event:
    """An event this member may see; NotVisible for another unit's or club's event, RunNotFound otherwise."""
    query = select(Event).where(col(Event.id) == event_id).execution_options(populate_existing=True)
    event = session.exec(query.with_for_update() if lock else query).first()
    if event is None:
        raise RunNotFound()
    if not _visible(session, member, event):
        raise NotVisible()
    return event


def _count(session: Session, event_id: int, answer: Answer) -> int:
    return session.exec(select(func.count()).where(col(Rsvp.event_id) == event_id, col(Rsvp.answer) == answer)).one()


def _position(session: Session, event_id: int, queue_no: int | None) -> int | None:
    """Place on the waitlist (1 = next to be promoted)."""
    if queue_no is None:
        return None
    ahead = session.exec(
        select(func.count()).where(
            col(Rsvp.event_id) == event_id, col(Rsvp.answer) == Answer.WAITLIST, col(Rsvp.queue_no) < queue_no
        )
    ).one()
    return ahead + 1


def _mine(session: Session, event_id: int, member_id: int) -> Rsvp | None:
    return session.exec(
        select(Rsvp)
        .where(col(Rsvp.event_id) == event_id, col(Rsvp.member_id) == member_id)
        .execution_options(populate_existing=True)
    ).first()


def card(session: Session, member: Member, event_id: int) -> Card:
    """An event as this member sees it: live counts, my answer and waitlist place."""
    event = get_event(session, member, event_id)
    return _card(session, event, member.id)


def public_card(session: Session, event_id: int) -> Card:
    """An event as a group or an inline-mode message shows it (no personal answer)."""
    event = session.get(Event, event_id, populate_existing=True)
    if event is None or event.kind == Kind.WORKSHOP:
        raise RunNotFound()
    return _card(session, event, None)


def _card(session: Session, event: Event, member_id: int | None) -> Card:
    mine = _mine(session, event.id, member_id) if member_id is not None else None
    organiser = session.get(Member, event.organiser_id)
    club = session.get(clubs.Club, event.club_id) if event.club_id is not None else None
    answer = mine.answer if mine is not None else None
    return Card(
        event=event,
        organiser=(organiser.name if organiser is not None else None) or "",
        maybe=_count(session, event.id, Answer.MAYBE),
        waitlist=_count(session, event.id, Answer.WAITLIST),
        mine=answer,
        position=_position(session, event.id, mine.queue_no) if answer == Answer.WAITLIST else None,
        checked_in=mine is not None and mine.checked_in_at is not None,
        is_organiser=member_id == event.organiser_id,
        club_name=club.name if club is not None else None,
    )


def upcoming(
    session: Session,
    member: Member,
    now: datetime,
    limit: int,
    offset: int = 0,
    *,
    club_only: bool = False,
    band: str | None = None,
) -> list[Event]:
    """Open events visible to me that have not started, nearest first."""
    query = select(Event).where(
        col(Event.status) == EventStatus.OPEN,
        col(Event.starts_at) > now,
        col(Event.kind) != Kind.WORKSHOP,
        _visible_to(member),
    )
    if club_only:
        query = query.where(col(Event.club_id).is_not(None))
    if band in BANDS:
        low, high = BANDS[band]
        query = query.where(col(Event.distance_m) >= low, col(Event.distance_m) < high)
    return list(session.exec(query.order_by(col(Event.starts_at), col(Event.id)).limit(limit).offset(offset)))


def mine(session: Session, member: Member, now: datetime, limit: int) -> list[Event]:
    """Upcoming events I organise or answered going / maybe / waitlisted, nearest first."""
    answered = select(Rsvp.event_id).where(
        col(Rsvp.member_id) == member.id, col(Rsvp.answer).in_([Answer.GOING, Answer.MAYBE, Answer.WAITLIST])
    )
    query = (
        select(Event)
        .where(
            col(Event.status) == EventStatus.OPEN,
            col(Event.starts_at) > now,
            col(Event.kind) != Kind.WORKSHOP,
            or_(col(Event.organiser_id) == member.id, col(Event.id).in_(answered)),
        )
        .order_by(col(Event.starts_at), col(Event.id))
        .limit(limit)
    )
    return list(session.exec(query))


# --- answering ---------------------------------------------------------------------------------------------


def respond(session: Session, member: Member, event_id: int, answer: Answer, now: datetime) -> Change:
    """Going / Maybe / Can't go. Going takes a seat or a waitlist ticket; leaving a seat promotes the next one."""
    if answer not in CHOICES:
        raise DomainError("button_expired")
    event = get_event(session, member, event_id, lock=True)
    if event.status != EventStatus.OPEN or event.starts_at <= now:
        raise EventClosed()
    row = _mine(session, event.id, member.id)
    old = Answer(row.answer) if row is not None else None
    if row is None:
        row = Rsvp(event_id=event.id, member_id=member.id, answer=Answer.DECLINED, updated_at=now)
        session.add(row)
        session.flush()
    if answer == old or (answer == Answer.GOING and old == Answer.WAITLIST):
        return Change(Answer(row.answer), _position(session, event.id, row.queue_no), [])
    promoted: list[Promotion] = []
    if old == Answer.GOING:
        promoted = _free_seat(session, event, now)
    new, queue_no = answer, row.queue_no
    if answer == Answer.GOING and not _take_seat(session, event.id):
        new, queue_no = Answer.WAITLIST, _ticket(session, event.id)
    session.exec(
        update(Rsvp)
        .where(col(Rsvp.id) == row.id)
        .values(answer=new, queue_no=queue_no, promoted=False, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    position = _position(session, event.id, queue_no) if new == Answer.WAITLIST else None
    return Change(new, position, promoted)


def _take_seat(session: Session, event_id: int) -> bool:
    """One seat, if one is left (conditional UPDATE)."""
    taken = session.exec(
        update(Event)
        .where(col(Event.id) == event_id, col(Event.going) < col(Event.capacity))
        .values(going=col(Event.going) + 1)
        .execution_options(synchronize_session=False)
    )
    return taken.rowcount == 1


def _ticket(session: Session, event_id: int) -> int:
    """The next waitlist ticket of this event (arrival order)."""
    return session.exec(
        update(Event)
        .where(col(Event.id) == event_id)
        .values(queued=col(Event.queued) + 1)
        .returning(col(Event.queued))
        .execution_options(synchronize_session=False)
    ).scalar_one()


def _free_seat(session: Session, event: Event, now: datetime) -> list[Promotion]:
    """A seat was given up: the first on the waitlist takes it (marked promoted), or the counter goes down."""
    first = session.exec(
        select(Rsvp)
        .where(col(Rsvp.event_id) == event.id, col(Rsvp.answer) == Answer.WAITLIST)
        .order_by(col(Rsvp.queue_no))
        .limit(1)
    ).first()
    if first is None:
        session.exec(
            update(Event)
            .where(col(Event.id) == event.id, col(Event.going) > 0)
            .values(going=col(Event.going) - 1)
            .execution_options(synchronize_session=False)
        )
        return []
    moved = session.exec(
        update(Rsvp)
        .where(col(Rsvp.id) == first.id, col(Rsvp.answer) == Answer.WAITLIST)
        .values(answer=Answer.GOING, promoted=True, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise RuntimeError("waitlist changed under the event lock")
    return [Promotion(first.id, first.queue_no or 0, _person(session, first.member_id))]


def _person(session: Session, member_id: int) -> Person | None:
    member = session.get(Member, member_id)
    if member is None or member.telegram_id is None or member.status != Status.VERIFIED:
        return None
    return Person(member.id, member.telegram_id, member.language)


def pending_promotions(session: Session) -> list[Promotion]:
    """Promotions whose notice is not queued yet (e.g. after an account deletion freed a seat)."""
    rows = session.exec(select(Rsvp).where(col(Rsvp.promoted)).order_by(col(Rsvp.id)).limit(500)).all()
    return [Promotion(r.id, r.queue_no or 0, _person(session, r.member_id)) for r in rows]


def promotion_noticed(session: Session, rsvp_id: int) -> bool:
    """Clear the promoted mark; True for the one caller that cleared it (it queues the notice)."""
    done = session.exec(
        update(Rsvp)
        .where(col(Rsvp.id) == rsvp_id, col(Rsvp.promoted))
        .values(promoted=False)
        .execution_options(synchronize_session=False)
    )
    return done.rowcount == 1


def event_of_rsvp(session: Session, rsvp_id: int) -> Event:
    """The event an RSVP belongs to."""
    row = session.get(Rsvp, rsvp_id)
    event = session.get(Event, row.event_id) if row is not None else None
    if event is None:
        raise RunNotFound()
    return event


def forget_member(session: Session, member_id: int, now: datetime) -> None:
    """A deleted account: seats it held are given to the waitlist (noticed by the scheduler), its rows go."""
    held = session.exec(
        select(Rsvp.event_id).where(col(Rsvp.member_id) == member_id, col(Rsvp.answer) == Answer.GOING)
    ).all()
    for event_id in sorted(held):
        event = session.exec(select(Event).where(col(Event.id) == event_id).with_for_update()).one()
        session.exec(delete(Rsvp).where(col(Rsvp.event_id) == event_id, col(Rsvp.member_id) == member_id))
        if event.status == EventStatus.OPEN and event.starts_at > now:
            _free_seat(session, event, now)
    session.exec(delete(Rsvp).where(col(Rsvp.member_id) == member_id))


# --- organising ----------------------------------------------------------------------------------------------


def _organised(session: Session, member: Member, event_id: int) -> Event:
    event = session.exec(
        select(Event).where(col(Event.id) == event_id).with_for_update().execution_options(populate_existing=True)
    ).first()
    if event is None:
        raise RunNotFound()
    if event.organiser_id != member.id:
        raise NotOrganiser()
    return event


def people(session: Session, event_id: int, answers: tuple[Answer, ...]) -> list[Person]:
    """Verified members with these answers (the ones to tell about a change)."""
    rows = session.exec(
        select(Member.id, Member.telegram_id, Member.language)
        .join(Rsvp, col(Rsvp.member_id) == col(Member.id))
        .where(
            col(Rsvp.event_id) == event_id,
            col(Rsvp.answer).in_(list(answers)),
            col(Member.status) == Status.VERIFIED,
            col(Member.telegram_id).is_not(None),
        )
        .order_by(col(Member.id))
    ).all()
    return [Person(m, t, lang) for m, t, lang in rows]


ANSWERED = (Answer.GOING, Answer.MAYBE, Answer.WAITLIST)


def change_event(
    session: Session, member: Member, event_id: int, now: datetime, *, starts_at: datetime | None, place: str | None
) -> tuple[Event, list[Person]]:
    """The organiser moves the time or the place; everyone who answered is to be told."""
    event = _organised(session, member, event_id)
    if event.status != EventStatus.OPEN or event.starts_at <= now:
        raise EventClosed()
    values: dict[str, Any] = {}
    if starts_at is not None:
        if starts_at <= now:
            raise BadInput("runs_time_past")
        # A new time means new reminders.
        values |= {"starts_at": starts_at, "reminded_day": False, "reminded_hour": False}
    if place is not None:
        values["place"] = place
    session.exec(update(Event).where(col(Event.id) == event.id).values(**values))
    session.refresh(event)
    return event, people(session, event.id, ANSWERED)


def cancel_event(session: Session, member: Member, event_id: int, now: datetime) -> tuple[Event, list[Person]]:
    """The organiser cancels; everyone who answered is to be told (a second cancel changes nothing)."""
    event = _organised(session, member, event_id)
    if event.status != EventStatus.OPEN:
        raise EventClosed()
    session.exec(update(Event).where(col(Event.id) == event.id).values(status=EventStatus.CANCELLED))
    session.refresh(event)
    return event, people(session, event.id, ANSWERED)


def participants(session: Session, member: Member, event_id: int) -> tuple[Event, list[Participant]]:
    """The organiser's list: going first, then maybe and the waitlist, with who checked in."""
    event = session.get(Event, event_id)
    if event is None:
        raise RunNotFound()
    if event.organiser_id != member.id:
        raise NotOrganiser()
    order = {Answer.GOING: 0, Answer.MAYBE: 1, Answer.WAITLIST: 2}
    rows = session.exec(
        select(Rsvp, Member.name)
        .join(Member, col(Member.id) == col(Rsvp.member_id))
        .where(col(Rsvp.event_id) == event_id, col(Rsvp.answer).in_(list(order)))
        .order_by(col(Rsvp.queue_no), col(Rsvp.id))
    ).all()
    found = [Participant(r.member_id, name or "", r.answer, r.checked_in_at is not None) for r, name in rows]
    return event, sorted(found, key=lambda p: order[Answer(p.answer)])


# --- check-in and points -----------------------------------------------------------------------------------------


def checkin_open(event: Event, now: datetime, before: timedelta, after: timedelta) -> bool:
    """Whether now is within the check-in window around the start."""
    return event.status == EventStatus.OPEN and event.starts_at - before <= now <= event.starts_at + after


def event_by_token(session: Session, token: str) -> Event:
    """The event a check-in QR code names."""
    event = session.exec(select(Event).where(col(Event.checkin_token) == token)).first()
    if event is None:
        raise RunNotFound()
    return event


def _attend(
    session: Session, event: Event, member_id: int, now: datetime, rule: PointsRule, day: date, by: int | None
) -> CheckIn:
    row = _mine(session, event.id, member_id)
    if row is None or row.answer not in (Answer.GOING, Answer.MAYBE):
        raise DomainError("runs_no_rsvp")
    marked = session.exec(
        update(Rsvp)
        .where(col(Rsvp.id) == row.id, col(Rsvp.checked_in_at).is_(None))
        .values(checked_in_at=now)
        .execution_options(synchronize_session=False)
    )
    # Paid once per member per event whatever happens (the ledger's idempotency key), within the daily cap.
    result = points.award(
        session,
        member_id,
        rule,
        f"{rule.name}:{event.id}:{member_id}",
        day,
        reason=f"event:{event.id}",
        actor_telegram_id=by,
    )
    outcome = CheckOutcome.CHECKED_IN if marked.rowcount == 1 else CheckOutcome.ALREADY
    return CheckIn(event, outcome, result.amount)


def check_in(
    session: Session,
    member: Member,
    token: str,
    now: datetime,
    window: tuple[timedelta, timedelta],
    rule: PointsRule,
    day: date,
) -> CheckIn:
    """A participant scanned the organiser's QR code: checked in (and paid) once, inside the window only."""
    event = event_by_token(session, token)
    if not _visible(session, member, event):
        raise NotVisible()
    before, after = window
    if not checkin_open(event, now, before, after):
        raise DomainError("runs_checkin_closed", opens=event.starts_at - before, closes=event.starts_at + after)
    return _attend(session, event, member.id, now, rule, day, None)


def mark_attendance(
    session: Session,
    organiser: Member,
    event_id: int,
    member_id: int,
    now: datetime,
    window: tuple[timedelta, timedelta],
    rule: PointsRule,
    day: date,
) -> CheckIn:
    """The organiser marks someone present from the list (inside the window too)."""
    event = session.get(Event, event_id)
    if event is None:
        raise RunNotFound()
    if event.organiser_id != organiser.id:
        raise NotOrganiser()
    before, after = window
    if not checkin_open(event, now, before, after):
        raise DomainError("runs_checkin_closed", opens=event.starts_at - before, closes=event.starts_at + after)
    return _attend(session, event, member_id, now, rule, day, organiser.telegram_id)


# --- reminders ---------------------------------------------------------------------------------------------------


def due_reminders(session: Session, now: datetime, kind: str) -> list[int]:
    """Open events whose `kind` reminder ("day", "hour") is due and not sent."""
    lead = dict(REMINDERS)[kind]
    flag = col(Event.reminded_day) if kind == "day" else col(Event.reminded_hour)
    return list(
        session.exec(
            select(Event.id).where(
                col(Event.status) == EventStatus.OPEN,
                col(Event.starts_at) > now,
                col(Event.starts_at) <= now + lead,
                flag.is_(False),
            )
        )
    )


def take_reminder(session: Session, event_id: int, kind: str, now: datetime) -> tuple[Event, list[Person]] | None:
    """Mark the reminder sent (conditional UPDATE: once) and return who to remind, or None if already done."""
    flag = "reminded_day" if kind == "day" else "reminded_hour"
    done = session.exec(
        update(Event)
        .where(col(Event.id) == event_id, getattr(Event, flag).is_(False), col(Event.starts_at) > now)
        .values({flag: True})
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        return None
    event = session.get(Event, event_id, populate_existing=True)
    return event, people(session, event_id, (Answer.GOING, Answer.MAYBE))


# --- posted copies of the card ---------------------------------------------------------------------------------

# Copies of one card edited at most (the newest copies first): enough for every group and chat it was shared in.
MAX_CARDS = 50


@dataclass(frozen=True)
class CardCopy:
    inline_message_id: str | None
    chat_id: int | None
    message_id: int | None


def remember_card(
    session: Session,
    event_id: int,
    *,
    inline_message_id: str | None = None,
    chat_id: int | None = None,
    message_id: int | None = None,
) -> None:
    """Keep a posted copy of the card (seen when someone presses its buttons) so later changes edit it too."""
    if inline_message_id is not None:
        known = select(EventCard.id).where(col(EventCard.inline_message_id) == inline_message_id)
    else:
        known = select(EventCard.id).where(col(EventCard.chat_id) == chat_id, col(EventCard.message_id) == message_id)
    if session.exec(known).first() is not None:
        return
    try:
        with session.begin_nested():
            session.add(
                EventCard(
                    event_id=event_id, inline_message_id=inline_message_id, chat_id=chat_id, message_id=message_id
                )
            )
    except IntegrityError:
        return


def card_copies(session: Session, event_id: int) -> list[CardCopy]:
    """The posted copies of an event's card, newest first."""
    rows = session.exec(
        select(EventCard).where(col(EventCard.event_id) == event_id).order_by(col(EventCard.id).desc()).limit(MAX_CARDS)
    ).all()
    copies = [CardCopy(r.inline_message_id, r.chat_id, r.message_id) for r in rows]
    # The copy posted in the club group through the outbox, once it is sent.
    posted = session.exec(
        select(OutboxMessage.chat_id, OutboxMessage.telegram_message_id).where(
            col(OutboxMessage.dedupe_key) == group_post_key(event_id),
            col(OutboxMessage.telegram_message_id).is_not(None),
        )
    ).first()
    if posted is not None and all((c.chat_id, c.message_id) != tuple(posted) for c in copies):
        copies.append(CardCopy(None, posted[0], posted[1]))
    return copies


def group_post_key(event_id: int) -> str:
    """The outbox dedupe key of the card posted in the club's group (posted once)."""
    return f"runs:group:{event_id}"


# --- sharing ------------------------------------------------------------------------------------------------------

CHECKIN_PREFIX = "c_"
CARD_PREFIX = "run_"
# The calendar entry's alarm: this long before the start.
CALENDAR_ALARM = timedelta(hours=1)
CALENDAR_LENGTH = timedelta(hours=1)


def checkin_link(token: str, bot_username: str) -> str:
    """The deep link a participant's camera opens to check in."""
    return f"https://t.me/{bot_username}?start={CHECKIN_PREFIX}{token}"


def checkin_qr_png(token: str, bot_username: str) -> bytes:
    """A PNG image of the check-in QR code."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4, mask_pattern=0)
    qr.add_data(checkin_link(token, bot_username))
    qr.make(fit=True)
    buffer = io.BytesIO()
    qr.make_image(image_factory=PilImage).save(buffer, format="PNG")
    return buffer.getvalue()


def calendar_file(event: Event, tz: ZoneInfo, summary: str, description: str, alarm_text: str) -> bytes:
    """An .ics file with the event in the organisation's time zone, its place and a reminder an hour before."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Gongshe//runs//")
    calendar.add("version", "2.0")
    entry = icalendar.Event()
    entry.add("uid", f"event-{event.id}-{event.checkin_token}@gongshe")
    entry.add("summary", summary)
    entry.add("description", description)
    entry.add("location", event.place)
    start = event.starts_at.astimezone(tz)
    entry.add("dtstart", start)
    entry.add("dtend", start + CALENDAR_LENGTH)
    entry.add("dtstamp", event.created_at)
    if event.latitude is not None and event.longitude is not None:
        entry.add("geo", (event.latitude, event.longitude))
    if event.status == EventStatus.CANCELLED:
        entry.add("status", "CANCELLED")
    alarm = icalendar.Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", alarm_text)
    alarm.add("trigger", -CALENDAR_ALARM)
    entry.add_component(alarm)
    calendar.add_component(entry)
    # The VTIMEZONE block lets calendar apps place the local start time exactly.
    calendar.add_component(icalendar.Timezone.from_tzinfo(tz))
    return calendar.to_ical()


def export_member(session: Session, member_id: int) -> dict[str, Any]:
    """Events the member organises and their own answers and check-ins (for "export my data"); others' names and
    answers are not theirs, only the counts on the event."""
    organised = session.exec(select(Event).where(col(Event.organiser_id) == member_id).order_by(col(Event.id)))
    answers = session.exec(
        select(Rsvp, Event.title, Event.starts_at)
        .join(Event, col(Event.id) == col(Rsvp.event_id))
        .where(col(Rsvp.member_id) == member_id)
        .order_by(col(Rsvp.id))
    )
    return {
        "organised": [e.model_dump(exclude={"organiser_id", "checkin_token"}) for e in organised],
        "answers": [
            {"event": r.event_id, "title": title, "starts_at": starts_at, **r.model_dump(exclude={"id", "member_id"})}
            for r, title, starts_at in answers
        ],
    }
