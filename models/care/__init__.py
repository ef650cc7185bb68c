"""Care (心理关爱 · 维权 · 困难帮扶): counselling with privacy by design, rights consultation and hardship aid.

tables.py holds the tables and kinds; counselling.py the slots, bookings and reminders; requests.py the rights
and aid requests; stats.py the dashboard's counts (never names); sealing.py encrypts notes with CARE_KEY.
"""

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models.care import counselling, requests, sealing, stats  # noqa: F401
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


def export_member(session: Session, member_id: int, care_key: str = "") -> dict[str, Any]:
    """The member's bookings (their own note opened with CARE_KEY when it is configured; never the counsellor's
    private note), their requests with the steps they were told, and, for a counsellor, their profile and slots.
    Other members' bookings and requests a counsellor or handler saw are not theirs and are left out."""
    opener = sealing.sealer(care_key)
    bookings = session.exec(
        select(CareBooking).where(col(CareBooking.member_id) == member_id).order_by(col(CareBooking.id))
    )
    asked = session.exec(
        select(CareRequest).where(col(CareRequest.member_id) == member_id).order_by(col(CareRequest.id))
    ).all()
    steps: dict[int, list[dict[str, Any]]] = {r.id: [] for r in asked if r.id is not None}
    if steps:
        rows = session.exec(
            select(CareRequestStep)
            .where(col(CareRequestStep.request_id).in_(list(steps)))
            .order_by(col(CareRequestStep.id))
        )
        for step in rows:
            steps[step.request_id].append(step.model_dump(include={"status", "note", "at"}))
    profile = session.get(CareCounsellor, member_id)
    slots = session.exec(select(CareSlot).where(col(CareSlot.counsellor_id) == member_id).order_by(col(CareSlot.id)))
    private = {"member_id", "counsellor_id", "member_note", "counsellor_note"}
    return {
        "bookings": [{**b.model_dump(exclude=private), "my_note": opener.open(b.member_note)} for b in bookings],
        "requests": [
            {**r.model_dump(exclude={"member_id", "handler_id"}), "steps": steps[r.id]} for r in asked if r.id
        ],
        "counsellor_profile": profile.profile if profile is not None else None,
        "counsellor_slots": [s.model_dump(exclude={"counsellor_id"}) for s in slots],
    }
