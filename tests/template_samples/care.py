"""Care's templates (handlers/care.py, scheduled/care.py) with worst-case samples."""

from __future__ import annotations

from typing import Any

from handlers.care import COUNSELLORS_SHOWN, DAYS_SHOWN, LIST_SIZE, QUEUE_SIZE, SLOTS_SHOWN, STATS_ROWS
from models.care import (
    CONTACT_MAX,
    DESCRIPTION_MAX,
    HIDE_BELOW,
    NOTE_MAX,
    PATTERN_MAX_SLOTS,
    PHONE_MAX,
    PLACE_MAX,
    PROFILE_MAX,
    REASON_MAX,
    AidReason,
    Area,
    BookingStatus,
    Channel,
    RequestKind,
    RequestStatus,
    RightsTopic,
)
from models.care.requests import MAX_AMOUNT
from models.care.stats import CountCell
from tests.template_samples._shared import AT, BIG, NAME, longest_unit, typed

LABEL_VARS = {"day": "12-31", "weekday": 7, "at": "12-31 23:59", "hours": BIG}
# A request's handler card sends the attached photo with this caption.
CAPTIONS = {"care/handle_photo"}

PHONE = "+" + "8" * (PHONE_MAX - 1)


def booking(**overrides: Any) -> dict[str, Any]:
    fields = {
        "id": BIG,
        "starts_at": AT,
        "ends_at": AT,
        "area": Area.FAMILY.value,
        "channel": Channel.IN_PERSON.value,
        "status": BookingStatus.LATE_CANCELLED.value,
        "phone": PHONE,
    }
    return {**fields, **overrides}


def slot(**overrides: Any) -> dict[str, Any]:
    fields = {
        "id": BIG,
        "starts_at": AT,
        "ends_at": AT,
        "channel": Channel.IN_PERSON.value,
        "place": typed(PLACE_MAX),
        "areas": [a.value for a in Area],
        "status": "free",
    }
    return {**fields, **overrides}


def request(locale: str, **overrides: Any) -> dict[str, Any]:
    fields = {
        "id": BIG,
        "kind": RequestKind.RIGHTS.value,
        "topic": RightsTopic.HOURS.value,
        "status": RequestStatus.IN_PROGRESS.value,
        "amount": MAX_AMOUNT,
        "unit": longest_unit(locale),
        "created_at": AT,
        "waited_hours": BIG,
        "escalated": True,
    }
    return {**fields, **overrides}


def steps(n: int) -> list[dict[str, Any]]:
    # A request has at most three steps: received, taken, and how it ended.
    return [{"status": s.value, "note": typed(NOTE_MAX), "at": AT} for s in RequestStatus][:n]


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    unit = longest_unit(locale)
    short = request(locale, amount=None, escalated=False, status="received")
    cells = [CountCell("2026-12", a.value, BIG) for a in Area] * 2
    channels = [CountCell("2026-12", c.value, None) for c in Channel] * 2
    request_cells = [
        {"month": "2026-12", "unit": unit, "rights": BIG, "aid": BIG, "open": BIG, "wait_hours": 12345.6}
    ] * STATS_ROWS
    return {
        "care/home": [{"notes_on": False}, {"notes_on": True}],
        "care/counsellors": [
            {
                "area": Area.FAMILY.value,
                "count": COUNSELLORS_SHOWN,
                "counsellors": [{"name": NAME, "profile": typed(PROFILE_MAX)}] * COUNSELLORS_SHOWN,
            },
            {"area": Area.PLANNING.value, "count": 0, "counsellors": []},
            {"area": Area.LOVE.value, "count": 1, "counsellors": [{"name": None, "profile": None}]},
        ],
        "care/ask_profile": [{"max": PROFILE_MAX}],
        "care/profile_saved": [{}],
        "care/calendar": [
            {
                "name": NAME,
                "area": Area.RELATIONS.value,
                "day": AT.date(),
                "days": DAYS_SHOWN,
                "times": [slot()] * 12,
                "moving": True,
            },
            {"name": None, "area": "career", "day": None, "days": 0, "times": [], "moving": False},
            {"name": NAME, "area": "career", "day": None, "days": 3, "times": [], "moving": False},
            {"name": NAME, "area": "career", "day": AT.date(), "days": 3, "times": [], "moving": False},
        ],
        "care/move_confirm": [
            {"slot": slot(), "old": booking(), "name": NAME},
            {"slot": slot(place=""), "old": booking(), "name": None},
        ],
        "care/booked": [
            {"booking": booking(), "slot": slot()},
            {"booking": booking(phone=None), "slot": slot(place="")},
        ],
        "care/mine": [
            {"bookings": [booking(name=NAME)] * LIST_SIZE},
            {"bookings": []},
        ],
        "care/booking": [
            {
                "booking": booking(status="removed"),
                "slot": slot(),
                "name": NAME,
                "note": typed(NOTE_MAX),
                "reason": typed(REASON_MAX),
                "hours": BIG,
            },
            {
                "booking": booking(status="active", phone=None),
                "slot": slot(place=""),
                "name": None,
                "note": None,
                "reason": None,
                "hours": 24,
            },
        ],
        "care/cancel_confirm": [
            {"booking": booking(), "late": True, "hours": BIG},
            {"booking": booking(), "late": False, "hours": 1},
        ],
        "care/cancelled": [{"booking": booking()}, {"booking": booking(status="cancelled")}],
        "care/moved": [{"booking": booking(), "old": booking()}],
        "care/slots": [
            {"slots": [slot(booked=True)] * SLOTS_SHOWN, "notes_on": False, "profile": typed(PROFILE_MAX)},
            {"slots": [slot(booked=False, status="blocked"), slot(booked=False)], "notes_on": True, "profile": None},
            {"slots": [], "notes_on": True, "profile": "简介"},
        ],
        "care/slot": [
            {
                "slot": slot(),
                "booking": booking(),
                "name": NAME,
                "note": typed(NOTE_MAX),
                "private_note": typed(NOTE_MAX),
                "notes_on": True,
            },
            {
                "slot": slot(place=""),
                "booking": booking(phone=None),
                "name": None,
                "note": None,
                "private_note": None,
                "notes_on": False,
            },
            {"slot": slot(status="blocked"), "booking": None},
            {"slot": slot(), "booking": None},
        ],
        "care/ask_reason": [{"max": REASON_MAX}],
        "care/slot_removed": [{"booked": True}, {"booked": False}],
        "care/ask_private_note": [{"max": NOTE_MAX}],
        "care/note_kept": [{}],
        "care/slots_added": [{"count": PATTERN_MAX_SLOTS}, {"count": 1}, {"count": 0}],
        "care/help_home": [{}],
        "care/request_sent": [{"request": request(locale)}, {"request": request(locale, kind="aid")}],
        "care/requests": [
            {"requests": [request(locale)] * LIST_SIZE},
            {"requests": [short]},
            {"requests": []},
        ],
        "care/request": [
            {
                "request": request(locale, kind="aid", topic=AidReason.DISASTER.value),
                "description": typed(DESCRIPTION_MAX),
                "steps": steps(3),
            },
            {"request": short, "description": None, "steps": steps(1)},
        ],
        "care/queue": [{"requests": [request(locale)] * QUEUE_SIZE}, {"requests": []}],
        "care/handle": [
            {
                "request": request(locale),
                "description": typed(DESCRIPTION_MAX),
                "contact": typed(CONTACT_MAX),
                "name": NAME,
                "steps": steps(3),
            },
            {"request": short, "description": None, "contact": None, "name": None, "steps": []},
        ],
        "care/handle_photo": [{"id": BIG}],
        "care/ask_decide_amount": [{"status": "approved", "max": NOTE_MAX}],
        "care/ask_decide_note": [{"status": "declined", "max": NOTE_MAX}],
        "care/decided": [{"request": request(locale, status="approved")}],
        "care/stats": [
            {"areas": cells, "channels": channels, "requests": request_cells, "more": BIG, "hide_below": HIDE_BELOW},
            {"areas": [], "channels": [], "requests": [], "more": 0, "hide_below": HIDE_BELOW},
            {
                "areas": [CountCell("2026-12", "career", 5)],
                "channels": [CountCell("2026-12", "phone", 7)],
                "requests": [{"month": "2026-12", "unit": unit, "rights": 0, "aid": 1, "open": 1, "wait_hours": None}],
                "more": 1,
                "hide_below": HIDE_BELOW,
            },
        ],
        "care/notice_booked": [{"booking": booking()}],
        "care/notice_cancelled": [{"booking": booking()}, {"booking": booking(status="cancelled")}],
        "care/notice_moved": [{"booking": booking(), "old": booking()}],
        "care/notice_removed": [{"booking": booking(), "reason": typed(REASON_MAX)}],
        "care/notice_new_request": [{"request": request(locale)}, {"request": short}],
        "care/notice_step": [
            {"request": request(locale, status="approved"), "note": typed(NOTE_MAX)},
            {"request": short, "note": None},
        ],
        "care/notice_reminder": [
            {"booking": booking(), "place": typed(PLACE_MAX), "soon": True, "counsellor": True},
            {"booking": booking(phone=None), "place": "", "soon": False, "counsellor": False},
        ],
        "care/notice_escalated": [{"request": request(locale)}],
        "care/ask_book_contact": [{"data": {"counsellor": NAME, "when": "2026-12-31 23:59"}}],
        "care/ask_book_phone": [{"data": {}}],
        "care/ask_book_note": [{"data": {}}],
        "care/ask_book_confirm": [{"data": {"counsellor": NAME, "when": "2026-12-31 23:59", "channel": "online"}}],
        "care/ask_slot_start": [{"data": {}}],
        "care/ask_week_first": [{"data": {}}],
        "care/ask_week_last": [{"data": {}}],
        "care/ask_week_days": [{"data": {}}],
        "care/ask_week_from": [{"data": {}}],
        "care/ask_week_to": [{"data": {}}],
        "care/ask_minutes": [{"data": {}}],
        "care/ask_channel": [{"data": {}}],
        "care/ask_place": [{"data": {}}],
        "care/ask_areas": [{"data": {}}],
        "care/ask_rights_topic": [{"data": {}}],
        "care/ask_aid_reason": [{"data": {}}],
        "care/ask_description": [{"data": {}}],
        "care/ask_contact": [{"data": {}}],
        "care/ask_photo": [{"data": {}}],
        "errors/care_notes_disabled": [{}],
        "errors/care_slot_taken": [{}],
        "errors/care_time_past": [{}],
        "errors/care_pattern_empty": [{}],
        "errors/care_pattern_too_many": [{"max": PATTERN_MAX_SLOTS}],
        "errors/care_slot_unknown": [{}],
        "errors/care_slot_booked": [{}],
        "errors/care_reason_needed": [{}],
        "errors/care_slot_past": [{}],
        "errors/care_booking_limit": [{"limit": BIG}, {"limit": 1}],
        "errors/care_booking_overlap": [{}],
        "errors/care_booking_unknown": [{}],
        "errors/care_booking_not_active": [{}],
        "errors/care_too_late_to_move": [{"hours": BIG}],
        "errors/care_booking_started": [{}],
        "errors/care_not_started": [{}],
        "errors/care_request_kind": [{}],
        "errors/care_request_unknown": [{}],
        "errors/care_request_moved": [{"status": "answered"}],
        "errors/care_amount_range": [{"high": MAX_AMOUNT}],
        "errors/care_text_empty": [{}],
        "errors/care_text_too_long": [{"max": DESCRIPTION_MAX}],
        "errors/care_number_range": [{"low": 15, "high": 240}],
        "errors/care_phone_invalid": [{}],
        "errors/care_date_format": [{}],
        "errors/care_date_range": [{"days": 366}],
        "errors/care_clock_format": [{}],
        "errors/care_clock_order": [{}],
        "errors/care_photo_expected": [{}],
    }
