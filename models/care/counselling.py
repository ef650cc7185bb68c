"""Counselling: counsellors' slots, members' bookings, and the reminders; every read is scoped to the two parties."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models import audit
from models.care.tables import (
    PATTERN_MAX_SLOTS,
    BookingStatus,
    CareBooking,
    CareCounsellor,
    CareSlot,
    SlotStatus,
)
from models.errors import BadInput, DomainError, NotAllowed, NotFound
from models.members import Actor, Member, Role, Status

ENDED = (BookingStatus.DONE, BookingStatus.NO_SHOW)


class SlotTaken(DomainError):
    """Someone booked this slot first (or it was blocked or removed)."""

    key = "care_slot_taken"


@dataclass(frozen=True)
class SlotPlan:
    """What a counsellor offers: times, channel, place and areas (single slots and weekly patterns alike)."""

    channel: str
    place: str
    areas: tuple[str, ...]
    minutes: int


@dataclass(frozen=True)
class SlotRow:
    """A slot as its counsellor sees it, with the active booking on it (if any)."""

    slot: CareSlot
    booking: CareBooking | None


@dataclass(frozen=True)
class BookingView:
    """A booking with the counsellor's and the member's names (shown to those two only)."""

    booking: CareBooking
    slot: CareSlot
    counsellor_name: str | None
    member_name: str | None
    member_telegram_id: int | None
    counsellor_telegram_id: int | None


def require_counsellor(actor: Actor) -> int:
    """The acting counsellor's member id; NotAllowed for anyone else (admins included)."""
    if Role.COUNSELLOR not in actor.roles or actor.member is None:
        raise NotAllowed()
    return actor.member.id


# --- slots ---------------------------------------------------------------------------------------------


def _add_slots(session: Session, counsellor_id: int, starts: Iterable[datetime], plan: SlotPlan) -> int:
    """Insert the slots that do not exist yet; returns how many were added."""
    added = 0
    for start in starts:
        slot = CareSlot(
            counsellor_id=counsellor_id,
            starts_at=start,
            ends_at=start + timedelta(minutes=plan.minutes),
            channel=plan.channel,
            place=plan.place,
            areas=",".join(plan.areas),
        )
        try:
            with session.begin_nested():
                session.add(slot)
                session.flush()
            added += 1
        except IntegrityError:
            # A live slot already starts then.
            continue
    return added


def add_slot(session: Session, actor: Actor, start: datetime, plan: SlotPlan, now: datetime) -> int:
    """Offer one slot (in the future); returns how many were added (0: one already starts then)."""
    counsellor_id = require_counsellor(actor)
    if start <= now:
        raise BadInput("care_time_past")
    return _add_slots(session, counsellor_id, [start], plan)


def pattern_starts(
    first: date, last: date, weekdays: Iterable[int], day_from: time, day_to: time, minutes: int, tz: ZoneInfo
) -> list[datetime]:
    """The slot starts of a weekly pattern: on the weekdays (1 = Monday) between the dates, back to back from
    `day_from` while a whole slot fits before `day_to` (local times, returned in UTC)."""
    days = set(weekdays)
    starts: list[datetime] = []
    day = first
    while day <= last:
        if day.isoweekday() in days:
            at = datetime.combine(day, day_from, tz)
            end = datetime.combine(day, day_to, tz)
            while at + timedelta(minutes=minutes) <= end:
                starts.append(at.astimezone(ZoneInfo("UTC")))
                at += timedelta(minutes=minutes)
        day += timedelta(days=1)
    return starts


def add_pattern(session: Session, actor: Actor, starts: list[datetime], plan: SlotPlan, now: datetime) -> int:
    """Offer the slots of a weekly pattern (those still in the future); returns how many were added."""
    counsellor_id = require_counsellor(actor)
    future = [s for s in starts if s > now]
    if not future:
        raise BadInput("care_pattern_empty")
    if len(future) > PATTERN_MAX_SLOTS:
        raise BadInput("care_pattern_too_many", max=PATTERN_MAX_SLOTS)
    return _add_slots(session, counsellor_id, future, plan)


def _active_booking(session: Session, slot_id: int) -> CareBooking | None:
    return session.exec(
        select(CareBooking).where(CareBooking.slot_id == slot_id, CareBooking.status == BookingStatus.ACTIVE)
    ).first()


def own_slot(session: Session, actor: Actor, slot_id: int) -> SlotRow:
    """One of my slots with its booking; NotFound for anyone else's (a forged id shows nothing)."""
    counsellor_id = require_counsellor(actor)
    slot = session.get(CareSlot, slot_id)
    if slot is None or slot.counsellor_id != counsellor_id or slot.status == SlotStatus.REMOVED:
        raise NotFound("care_slot_unknown")
    return SlotRow(slot, _active_booking(session, slot_id))


def my_slots(session: Session, actor: Actor, now: datetime, limit: int) -> list[SlotRow]:
    """My slots from now on (and ones that started and still have an active booking to close), earliest first."""
    counsellor_id = require_counsellor(actor)
    rows = session.exec(
        select(CareSlot, CareBooking)
        .outerjoin(
            CareBooking,
            (col(CareBooking.slot_id) == col(CareSlot.id)) & (col(CareBooking.status) == BookingStatus.ACTIVE),
        )
        .where(
            CareSlot.counsellor_id == counsellor_id,
            CareSlot.status != SlotStatus.REMOVED,
            (col(CareSlot.ends_at) > now) | col(CareBooking.id).is_not(None),
        )
        .order_by(col(CareSlot.starts_at))
        .limit(limit)
    ).all()
    return [SlotRow(slot, booking) for slot, booking in rows]


def set_blocked(session: Session, actor: Actor, slot_id: int, blocked: bool) -> CareSlot:
    """Block a free slot (members no longer see it) or free it again; a booked slot stays as it is."""
    row = own_slot(session, actor, slot_id)
    if row.booking is not None:
        raise BadInput("care_slot_booked")
    wanted, current = (SlotStatus.BLOCKED, SlotStatus.FREE) if blocked else (SlotStatus.FREE, SlotStatus.BLOCKED)
    changed = session.exec(
        update(CareSlot)
        .where(col(CareSlot.id) == slot_id, col(CareSlot.status) == current)
        .values(status=wanted)
        .returning(col(CareSlot.id))
    ).first()
    if changed is None:
        raise NotFound("care_slot_unknown")
    session.refresh(row.slot)
    return row.slot


def remove_slot(session: Session, actor: Actor, slot_id: int, reason: str | None, now: datetime) -> CareBooking | None:
    """Remove a slot; a booked one needs a reason, and its booking ends as removed (the caller tells the member).

    Returns the booking that was removed with it, if any.
    """
    row = own_slot(session, actor, slot_id)
    booking = row.booking
    if booking is not None and not reason:
        raise BadInput("care_reason_needed")
    session.exec(update(CareSlot).where(col(CareSlot.id) == slot_id).values(status=SlotStatus.REMOVED))
    if booking is None:
        return None
    ended = session.exec(
        update(CareBooking)
        .where(col(CareBooking.id) == booking.id, col(CareBooking.status) == BookingStatus.ACTIVE)
        .values(status=BookingStatus.REMOVED, removed_reason=reason, ended_at=now)
        .returning(col(CareBooking.id))
    ).first()
    if ended is None:
        raise SlotTaken()
    session.refresh(booking)
    return booking


# --- members: finding and booking ---------------------------------------------------------------------


def _bookable(area: str, now: datetime, until: datetime) -> list:
    return [
        CareSlot.status == SlotStatus.FREE,
        col(CareSlot.starts_at) > now,
        col(CareSlot.starts_at) <= until,
        col(CareSlot.areas).contains(area),
        ~select(CareBooking.id)
        .where(col(CareBooking.slot_id) == col(CareSlot.id), col(CareBooking.status) == BookingStatus.ACTIVE)
        .exists(),
    ]


def _live_counsellor() -> list:
    return [Member.status == Status.VERIFIED]


@dataclass(frozen=True)
class CounsellorOffer:
    member_id: int
    name: str | None
    free: int
    profile: str | None


def counsellors_for(session: Session, area: str, now: datetime, until: datetime) -> list[CounsellorOffer]:
    """Counsellors with free slots in this area before `until`, with how many."""
    rows = session.exec(
        select(Member.id, Member.name, func.count(col(CareSlot.id)), CareCounsellor.profile)
        .join(CareSlot, col(CareSlot.counsellor_id) == col(Member.id))
        .outerjoin(CareCounsellor, col(CareCounsellor.member_id) == col(Member.id))
        .where(*_bookable(area, now, until), *_live_counsellor())
        .group_by(col(Member.id), col(Member.name), col(CareCounsellor.profile))
        .order_by(col(Member.name))
    ).all()
    return [CounsellorOffer(mid, name, n, profile) for mid, name, n, profile in rows]


def set_profile(session: Session, actor: Actor, profile: str, now: datetime) -> None:
    """My short profile as members see it."""
    counsellor_id = require_counsellor(actor)
    stored = session.get(CareCounsellor, counsellor_id)
    if stored is None:
        session.add(CareCounsellor(member_id=counsellor_id, profile=profile, updated_at=now))
    else:
        stored.profile, stored.updated_at = profile, now
        session.add(stored)


def profile_of(session: Session, counsellor_id: int) -> str | None:
    """A counsellor's short profile, if they wrote one."""
    stored = session.get(CareCounsellor, counsellor_id)
    return stored.profile if stored else None


def free_slots(session: Session, counsellor_id: int, area: str, now: datetime, until: datetime) -> list[CareSlot]:
    """A counsellor's free slots in this area from now until `until`, earliest first."""
    return list(
        session.exec(
            select(CareSlot)
            .join(Member, col(Member.id) == col(CareSlot.counsellor_id))
            .where(CareSlot.counsellor_id == counsellor_id, *_bookable(area, now, until), *_live_counsellor())
            .order_by(col(CareSlot.starts_at))
        )
    )


def bookable_slot(session: Session, slot_id: int, area: str, now: datetime) -> CareSlot:
    """A slot a member may book now in this area, or the reason why not."""
    slot = session.get(CareSlot, slot_id)
    if slot is None or slot.status == SlotStatus.REMOVED or area not in slot.areas.split(","):
        raise NotFound("care_slot_unknown")
    if slot.starts_at <= now:
        raise BadInput("care_slot_past")
    if slot.status != SlotStatus.FREE or _active_booking(session, slot_id) is not None:
        raise SlotTaken()
    return slot


def check_member(session: Session, member_id: int, slot: CareSlot, limit: int) -> None:
    """Whether this member may book this slot (the active-booking limit, no overlap), before asking anything."""
    _check_member(session, member_id, slot, limit, None, lock=False)


def _check_member(
    session: Session, member_id: int, slot: CareSlot, limit: int, replacing: int | None, *, lock: bool = True
) -> None:
    """The member's limits: active bookings, and none at an overlapping time (the one being moved aside)."""
    if lock:
        # Locks the member's row (PostgreSQL): two bookings by one member at once are counted one after the other.
        session.exec(select(Member.id).where(Member.id == member_id).with_for_update()).first()
    active = list(
        session.exec(
            select(CareBooking).where(CareBooking.member_id == member_id, CareBooking.status == BookingStatus.ACTIVE)
        )
    )
    others = [b for b in active if b.id != replacing]
    if len(others) >= limit:
        raise DomainError("care_booking_limit", limit=limit)
    if any(b.starts_at < slot.ends_at and slot.starts_at < b.ends_at for b in others):
        raise DomainError("care_booking_overlap")
    if slot.counsellor_id == member_id:
        raise NotAllowed()


def _insert_booking(session: Session, booking: CareBooking) -> CareBooking:
    try:
        with session.begin_nested():
            session.add(booking)
            session.flush()
    except IntegrityError:
        raise SlotTaken() from None
    return booking


def book(
    session: Session,
    member_id: int,
    slot_id: int,
    area: str,
    now: datetime,
    limit: int,
    phone: str | None,
    sealed_note: str | None,
) -> CareBooking:
    """Book a free slot; the unique index refuses a second active booking of it (SlotTaken)."""
    slot = bookable_slot(session, slot_id, area, now)
    _check_member(session, member_id, slot, limit, None)
    booking = CareBooking(
        slot_id=slot.id,
        member_id=member_id,
        counsellor_id=slot.counsellor_id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        area=area,
        channel=slot.channel,
        phone=phone,
        member_note=sealed_note,
        created_at=now,
    )
    return _insert_booking(session, booking)


def my_booking(session: Session, member_id: int, booking_id: int) -> CareBooking:
    """One of my bookings; NotFound for anyone else's."""
    booking = session.get(CareBooking, booking_id)
    if booking is None or booking.member_id != member_id:
        raise NotFound("care_booking_unknown")
    return booking


def _require_movable(booking: CareBooking, now: datetime, window: timedelta) -> None:
    if booking.status != BookingStatus.ACTIVE:
        raise BadInput("care_booking_not_active")
    if now >= booking.starts_at - window:
        raise BadInput("care_too_late_to_move", hours=int(window.total_seconds() // 3600))


def reschedule(
    session: Session, member_id: int, booking_id: int, slot_id: int, now: datetime, limit: int, window: timedelta
) -> CareBooking:
    """Move my booking to another free slot of the same counsellor (before the cancellation window)."""
    old = my_booking(session, member_id, booking_id)
    _require_movable(old, now, window)
    slot = bookable_slot(session, slot_id, old.area, now)
    if slot.counsellor_id != old.counsellor_id:
        raise NotFound("care_slot_unknown")
    _check_member(session, member_id, slot, limit, old.id)
    moved = session.exec(
        update(CareBooking)
        .where(col(CareBooking.id) == old.id, col(CareBooking.status) == BookingStatus.ACTIVE)
        .values(status=BookingStatus.CANCELLED, ended_at=now)
        .returning(col(CareBooking.id))
    ).first()
    if moved is None:
        raise BadInput("care_booking_not_active")
    new = CareBooking(
        slot_id=slot.id,
        member_id=member_id,
        counsellor_id=slot.counsellor_id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        area=old.area,
        channel=slot.channel,
        phone=old.phone,
        member_note=old.member_note,
        created_at=now,
    )
    # The old booking keeps no note once the new one carries it.
    session.exec(update(CareBooking).where(col(CareBooking.id) == old.id).values(member_note=None, phone=None))
    return _insert_booking(session, new)


def cancel(session: Session, member_id: int, booking_id: int, now: datetime, window: timedelta) -> CareBooking:
    """Cancel my booking; inside the window it counts as a late cancellation (a no-show)."""
    booking = my_booking(session, member_id, booking_id)
    if booking.status != BookingStatus.ACTIVE:
        raise BadInput("care_booking_not_active")
    if now >= booking.starts_at:
        raise BadInput("care_booking_started")
    late = now >= booking.starts_at - window
    status = BookingStatus.LATE_CANCELLED if late else BookingStatus.CANCELLED
    done = session.exec(
        update(CareBooking)
        .where(col(CareBooking.id) == booking_id, col(CareBooking.status) == BookingStatus.ACTIVE)
        .values(status=status, ended_at=now)
        .returning(col(CareBooking.id))
    ).first()
    if done is None:
        raise BadInput("care_booking_not_active")
    session.refresh(booking)
    return booking


def my_bookings(session: Session, member_id: int, limit: int) -> list[tuple[CareBooking, str | None]]:
    """My bookings, newest first, with the counsellor's name."""
    return list(
        session.exec(
            select(CareBooking, Member.name)
            .join(Member, col(Member.id) == col(CareBooking.counsellor_id))
            .where(CareBooking.member_id == member_id)
            .order_by(col(CareBooking.starts_at).desc())
            .limit(limit)
        ).all()
    )


def view_of(session: Session, booking: CareBooking) -> BookingView:
    """A booking with both parties' names and chats (for the two of them only)."""
    slot = session.get(CareSlot, booking.slot_id)
    counsellor = session.get(Member, booking.counsellor_id)
    member = session.get(Member, booking.member_id)
    return BookingView(
        booking,
        slot,
        counsellor.name if counsellor else None,
        member.name if member else None,
        member.telegram_id if member else None,
        counsellor.telegram_id if counsellor else None,
    )


# --- counsellors: their bookings ----------------------------------------------------------------------


def own_booking(session: Session, actor: Actor, booking_id: int) -> CareBooking:
    """One booking of mine as its counsellor; NotFound for others'."""
    counsellor_id = require_counsellor(actor)
    booking = session.get(CareBooking, booking_id)
    if booking is None or booking.counsellor_id != counsellor_id:
        raise NotFound("care_booking_unknown")
    return booking


def counsellor_booking(session: Session, actor: Actor, booking_id: int) -> BookingView:
    """One booking of mine as its counsellor (the view is audited, not its content); NotFound for others'."""
    booking = own_booking(session, actor, booking_id)
    audit.record(session, actor.telegram_id, "care_view_booking", f"care_booking:{booking_id}")
    return view_of(session, booking)


def close_booking(session: Session, actor: Actor, booking_id: int, outcome: str, now: datetime) -> CareBooking:
    """After the session: done or no-show."""
    booking = own_booking(session, actor, booking_id)
    if outcome not in ENDED:
        raise BadInput("care_booking_not_active")
    if now < booking.starts_at:
        raise BadInput("care_not_started")
    done = session.exec(
        update(CareBooking)
        .where(col(CareBooking.id) == booking_id, col(CareBooking.status) == BookingStatus.ACTIVE)
        .values(status=outcome, ended_at=now)
        .returning(col(CareBooking.id))
    ).first()
    if done is None:
        raise BadInput("care_booking_not_active")
    session.refresh(booking)
    return booking


def keep_note(session: Session, actor: Actor, booking_id: int, sealed: str) -> CareBooking:
    """The counsellor's private note on one of their bookings (already encrypted)."""
    booking = own_booking(session, actor, booking_id)
    session.exec(update(CareBooking).where(col(CareBooking.id) == booking_id).values(counsellor_note=sealed))
    session.refresh(booking)
    return booking


# --- reminders ----------------------------------------------------------------------------------------


def due_reminders(session: Session, now: datetime, ahead: timedelta, flag: str) -> list[int]:
    """Active bookings starting within `ahead` whose reminder `flag` was not sent yet."""
    column = getattr(CareBooking, flag)
    return list(
        session.exec(
            select(CareBooking.id).where(
                CareBooking.status == BookingStatus.ACTIVE,
                col(CareBooking.starts_at) > now,
                col(CareBooking.starts_at) <= now + ahead,
                col(column).is_(False),
            )
        )
    )


def mark_reminded(session: Session, booking_id: int, flag: str) -> CareBooking | None:
    """Mark one reminder sent (conditional: a second run finds it marked and sends nothing)."""
    column = getattr(CareBooking, flag)
    done = session.exec(
        update(CareBooking)
        .where(col(CareBooking.id) == booking_id, col(column).is_(False), col(CareBooking.status) == "active")
        .values({flag: True})
        .returning(col(CareBooking.id))
    ).first()
    return session.get(CareBooking, booking_id, populate_existing=True) if done is not None else None


# --- privacy -----------------------------------------------------------------------------------------


def erase_member(session: Session, member_id: int, now: datetime) -> None:
    """A deleted account: active bookings end, no booking keeps the member's phone or notes; a counsellor's profile
    goes and their free slots are withdrawn."""
    session.exec(delete(CareCounsellor).where(col(CareCounsellor.member_id) == member_id))
    session.exec(
        update(CareSlot)
        .where(col(CareSlot.counsellor_id) == member_id, col(CareSlot.status) != SlotStatus.REMOVED)
        .where(
            ~select(CareBooking.id)
            .where(col(CareBooking.slot_id) == col(CareSlot.id), col(CareBooking.status) == BookingStatus.ACTIVE)
            .exists()
        )
        .values(status=SlotStatus.REMOVED)
    )
    session.exec(
        update(CareBooking)
        .where(col(CareBooking.member_id) == member_id, col(CareBooking.status) == BookingStatus.ACTIVE)
        .values(status=BookingStatus.CANCELLED, ended_at=now)
    )
    session.exec(
        update(CareBooking)
        .where(col(CareBooking.member_id) == member_id)
        .values(phone=None, member_note=None, counsellor_note=None, removed_reason=None)
    )
