"""Care's timed work, at every scheduler tick: counselling reminders (a day and an hour before, once each) and the
escalation of rights and aid requests nobody has taken in time.

A reminder is marked sent by a conditional UPDATE in the same transaction as its outbox rows (which also carry a
dedupe key), so a re-run or a second replica never sends it twice. Reminders go to the member and the counsellor
only, and carry no note.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session

from buttons.care import HandleRequest, ManageSlot, ShowBooking
from config import Config
from models.care import counselling, requests
from models.care.tables import CareSlot
from models.members import Member
from scheduled.runner import TaskSpec
from services import Services, notify

log = logging.getLogger(__name__)

KIND = "care"
# (flag on the booking, how long before the start it is sent)
REMINDERS = (("reminded_day", timedelta(days=1)), ("reminded_hour", timedelta(hours=1)))


def _send(
    services: Services, session: Session, member_id: int, template: str, key: str, button: tuple, now: datetime, **kw
) -> int:
    """One notice to one member in their language; 0 if they cannot be reached or it was queued before."""
    member = session.get(Member, member_id)
    if member is None or member.telegram_id is None:
        return 0
    renderer = services.renderer
    label, data = button
    keyboard = {"inline_keyboard": [[{"text": renderer.label(member.language, label), "callback_data": data}]]}
    text = renderer.render(member.language, template, **kw)
    return int(notify(session, member.telegram_id, text, now=now, kind=KIND, keyboard=keyboard, dedupe_key=key))


def _remind(services: Services, session: Session, booking_id: int, flag: str, now: datetime) -> int:
    booking = counselling.mark_reminded(session, booking_id, flag)
    if booking is None:
        return 0
    if flag == "reminded_day" and booking.starts_at - now <= REMINDERS[1][1]:
        # Booked at short notice: the hour-before reminder is the one that goes.
        return 0
    tz = services.config.timezone
    slot = session.get(CareSlot, booking.slot_id)
    view = {
        "starts_at": booking.starts_at.astimezone(tz),
        "ends_at": booking.ends_at.astimezone(tz),
        "channel": booking.channel,
        "phone": booking.phone,
    }
    shared = {"booking": view, "place": slot.place if slot else "", "soon": flag == "reminded_hour"}
    sent = _send(
        services,
        session,
        booking.member_id,
        "care/notice_reminder",
        f"care:{flag}:{booking.id}:member",
        ("care_open_booking", ShowBooking(booking.id).pack()),
        now,
        counsellor=False,
        **shared,
    )
    sent += _send(
        services,
        session,
        booking.counsellor_id,
        "care/notice_reminder",
        f"care:{flag}:{booking.id}:counsellor",
        ("care_open_booking", ManageSlot(booking.slot_id).pack()),
        now,
        counsellor=True,
        **shared,
    )
    return sent


def _escalate(services: Services, session: Session, now: datetime) -> int:
    after = timedelta(hours=services.config.care.escalate_after_hours)
    sent = 0
    handlers = None
    for request in requests.escalate_due(session, now, after):
        handlers = handlers if handlers is not None else requests.handlers_of(session, None)
        unit = services.config.unit(request.unit_code)
        for member in handlers:
            view = {
                "id": request.id,
                "kind": request.kind,
                "unit": unit.name(member.language) if unit else request.unit_code,
                "waited_hours": int((now - request.created_at).total_seconds() // 3600),
            }
            sent += _send(
                services,
                session,
                member.id,
                "care/notice_escalated",
                f"care:escalated:{request.id}:{member.id}",
                ("care_open_request", HandleRequest(request.id).pack()),
                now,
                request=view,
            )
    return sent


async def run_care(services: Services, now: datetime | None = None) -> str:
    """The scheduled task: due reminders (one transaction each), then escalations; 'ok', or 'partial'."""
    now = now or services.clock.now()
    failures = queued = 0
    for flag, ahead in REMINDERS:
        for booking_id in await services.db.read(counselling.due_reminders, now, ahead, flag):
            try:
                queued += await services.db.write(lambda s, b=booking_id, f=flag: _remind(services, s, b, f, now))
            except Exception:  # one bad booking must not block the others; retried at the next tick
                log.exception("care reminder %s of booking %s failed", flag, booking_id)
                failures += 1
    try:
        queued += await services.db.write(lambda s: _escalate(services, s, now))
    except Exception:
        log.exception("care escalation failed")
        failures += 1
    if queued:
        log.info("care: %d notices queued", queued)
    return "partial" if failures else "ok"


def next_tick(config: Config, after: datetime) -> datetime:
    """Care work is looked for at every scheduler tick."""
    return after + timedelta(seconds=config.tick_seconds)


TASKS = (TaskSpec("care", run_care, next_tick),)
