"""Care (心理关爱 · 维权 · 困难帮扶): counselling with privacy by design, rights consultation and hardship aid.

tables.py holds the tables and kinds; counselling.py the slots, bookings and reminders; requests.py the rights
and aid requests; stats.py the dashboard's counts (never names); sealing.py encrypts notes with CARE_KEY.
"""

from datetime import datetime

from sqlmodel import Session

from models.care import counselling, requests, stats  # noqa: F401
from models.care.tables import (  # noqa: F401
    CONTACT_MAX,
    DESCRIPTION_MAX,
    HIDE_BELOW,
    NOTE_MAX,
    PATTERN_MAX_SLOTS,
    PHONE_MAX,
    PLACE_MAX,
    PROFILE_MAX,
    REASON_MAX,
    SLOT_MINUTES_MAX,
    SLOT_MINUTES_MIN,
    AidReason,
    Area,
    BookingStatus,
    CareBooking,
    CareCounsellor,
    CareRequest,
    CareRequestStep,
    CareSlot,
    Channel,
    RequestKind,
    RequestStatus,
    RightsTopic,
    SlotStatus,
)


def erase_member(session: Session, member_id: int, now: datetime) -> None:
    """A deleted account: bookings and requests keep no personal data (models/me.py delete_account)."""
    counselling.erase_member(session, member_id, now)
    requests.erase_member(session, member_id)
