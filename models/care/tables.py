"""Care tables (心理关爱 · 维权 · 困难帮扶): counselling slots and bookings, rights and hardship requests."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Text, text
from sqlmodel import Field, SQLModel

from models.clock import utcnow

# Lengths of what people type.
PLACE_MAX = 200
NOTE_MAX = 500
PHONE_MAX = 30
REASON_MAX = 300
DESCRIPTION_MAX = 2000
CONTACT_MAX = 100
PROFILE_MAX = 300
# Slots one weekly pattern may create at most (a year of a full working week of hourly slots is far less).
PATTERN_MAX_SLOTS = 400
SLOT_MINUTES_MIN, SLOT_MINUTES_MAX = 15, 240
# A count below this is not shown on the dashboard (a small cell could name the person behind it).
HIDE_BELOW = 5


class Area(enum.StrEnum):
    """The eight areas of life the social support system covers."""

    CAREER = "career"
    RELATIONS = "relations"
    HEALTH = "health"
    LOVE = "love"
    FAMILY = "family"
    PARTNER = "partner"
    INTERESTS = "interests"
    PLANNING = "planning"


class Channel(enum.StrEnum):
    PHONE = "phone"
    IN_PERSON = "in_person"
    ONLINE = "online"


class SlotStatus(enum.StrEnum):
    FREE = "free"
    BLOCKED = "blocked"
    REMOVED = "removed"


class BookingStatus(enum.StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    # Cancelled (by the member) inside the cancellation window: counted as a no-show.
    LATE_CANCELLED = "late_cancelled"
    # The counsellor removed the slot (with a reason the member was told).
    REMOVED = "removed"
    DONE = "done"
    NO_SHOW = "no_show"


class RequestKind(enum.StrEnum):
    RIGHTS = "rights"
    AID = "aid"


class RightsTopic(enum.StrEnum):
    CONTRACT = "contract"
    WAGES = "wages"
    HOURS = "hours"
    SAFETY = "safety"
    OTHER = "other"


class AidReason(enum.StrEnum):
    ILLNESS = "illness"
    FAMILY = "family"
    DISASTER = "disaster"
    OTHER = "other"


class RequestStatus(enum.StrEnum):
    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    APPROVED = "approved"
    DECLINED = "declined"


OPEN_REQUEST = (RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS)
# The values, for checking what a button or a form brought (`"x" in SomeEnum` raises on Python 3.11).
AREAS = frozenset(a.value for a in Area)
KINDS = frozenset(k.value for k in RequestKind)
STATUSES = frozenset(s.value for s in RequestStatus)


class CareCounsellor(SQLModel, table=True):
    """A counsellor's short profile, shown to members choosing a counsellor."""

    __tablename__ = "care_counsellor"

    member_id: int = Field(foreign_key="member.id", primary_key=True, sa_column_kwargs={"autoincrement": False})
    profile: str = Field(max_length=PROFILE_MAX)
    updated_at: datetime = Field(default_factory=utcnow)


class CareSlot(SQLModel, table=True):
    """A time a counsellor offers: free, blocked or removed; it is booked when an active booking points at it."""

    __tablename__ = "care_slot"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ck_care_slot_times"),
        # One live slot per counsellor and start: a weekly pattern laid over another adds nothing twice.
        Index(
            "uq_care_slot_live",
            "counsellor_id",
            "starts_at",
            unique=True,
            sqlite_where=text("status != 'removed'"),
            postgresql_where=text("status != 'removed'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    counsellor_id: int = Field(foreign_key="member.id", index=True)
    starts_at: datetime = Field(index=True)
    ends_at: datetime
    channel: str = Field(max_length=12)
    # Room (in person) or video link (online); empty for phone.
    place: str = Field(default="", max_length=PLACE_MAX)
    # Area codes, comma-separated.
    areas: str = Field(max_length=120)
    status: str = Field(default=SlotStatus.FREE, max_length=10)
    created_at: datetime = Field(default_factory=utcnow)


class CareBooking(SQLModel, table=True):
    """A member's booking of a slot: visible to that member and that counsellor only."""

    __tablename__ = "care_booking"
    __table_args__ = (
        # The last guard against double booking: one active booking per slot.
        Index(
            "uq_care_booking_slot_active",
            "slot_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        # A member never holds two active bookings starting at the same moment.
        Index(
            "uq_care_booking_member_time",
            "member_id",
            "starts_at",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    slot_id: int = Field(foreign_key="care_slot.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    counsellor_id: int = Field(foreign_key="member.id", index=True)
    starts_at: datetime
    ends_at: datetime
    area: str = Field(max_length=12)
    channel: str = Field(max_length=12)
    status: str = Field(default=BookingStatus.ACTIVE, max_length=16)
    # A phone number the member gave, or None: reach them on Telegram.
    phone: str | None = Field(default=None, max_length=PHONE_MAX)
    # Encrypted (Fernet, CARE_KEY): the member's note and the counsellor's private note.
    member_note: str | None = Field(default=None, sa_type=Text)
    counsellor_note: str | None = Field(default=None, sa_type=Text)
    # Why the counsellor removed the slot (told to the member).
    removed_reason: str | None = Field(default=None, max_length=REASON_MAX)
    created_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    reminded_day: bool = False
    reminded_hour: bool = False


class CareRequest(SQLModel, table=True):
    """A rights consultation or hardship aid request: seen by the care handlers of the member's unit (and the
    bureau's after an escalation)."""

    __tablename__ = "care_request"
    __table_args__ = (CheckConstraint("amount IS NULL OR amount >= 0", name="ck_care_request_amount"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    unit_code: str = Field(foreign_key="unit.code", index=True, max_length=16)
    kind: str = Field(max_length=8)
    topic: str = Field(max_length=12)
    description: str | None = Field(default=None, sa_type=Text)
    contact: str | None = Field(default=None, max_length=CONTACT_MAX)
    photo_file_id: str | None = Field(default=None, max_length=200)
    status: str = Field(default=RequestStatus.RECEIVED, max_length=12, index=True)
    # Approved aid (paid outside the bot), in yuan.
    amount: int | None = None
    handler_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = Field(default_factory=utcnow, index=True)
    taken_at: datetime | None = None
    closed_at: datetime | None = None
    escalated_at: datetime | None = None


class CareRequestStep(SQLModel, table=True):
    """One step of a request's status with the note the member received."""

    __tablename__ = "care_request_step"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="care_request.id", index=True)
    status: str = Field(max_length=12)
    note: str | None = Field(default=None, sa_type=Text)
    at: datetime = Field(default_factory=utcnow)
