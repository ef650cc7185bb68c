"""Runs' timed work and notices: reminders the day before and an hour before, and waitlist promotions not yet told.

Every notice is an outbox row (services.notify) written in the transaction that takes it: a reminder is taken by
a conditional UPDATE of the event's flag, a promotion by clearing the row's `promoted` mark, and each row has a
dedupe key, so a re-run or a second replica never queues one twice. handlers/runs.py uses the same notice
helpers for promotions and changes it causes itself (scheduled never imports handlers; this way round is fine).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from buttons.runs import ShowRun
from buttons.workshops import ShowWorkshop
from config import Config
from models import runs
from models.runs import Event, Person, Promotion
from scheduled.runner import TaskSpec
from services import Services, notify

log = logging.getLogger(__name__)

KIND_REMINDER = "runs_reminder"
KIND_PROMOTED = "runs_promoted"
KIND_CHANGED = "runs_changed"
KIND_CANCELLED = "runs_cancelled"


def run_view(event: Event, tz: ZoneInfo, club_name: str | None = None) -> dict[str, Any]:
    """What every runs template needs to show an event, times in local time."""
    return {
        "id": event.id,
        "kind": event.kind,
        "title": event.title,
        "starts_at": event.starts_at.astimezone(tz),
        "place": event.place,
        "distance_km": event.distance_m / 1000 if event.distance_m is not None else None,
        "pace": event.pace,
        "capacity": event.capacity,
        "going": event.going,
        "status": event.status,
        "visibility": event.visibility,
        "club": club_name,
    }


def _show_button(services: Services, locale: str, event_id: int, kind: str | None) -> dict[str, Any]:
    # A workshop opens its own card (handlers/workshops.py).
    workshop = kind == runs.Kind.WORKSHOP
    label = services.renderer.label(locale, "workshops_show" if workshop else "runs_show")
    show = ShowWorkshop(event_id) if workshop else ShowRun(event_id)
    return {"inline_keyboard": [[{"text": label, "callback_data": show.pack()}]]}


def tell(
    services: Services,
    session: Session,
    people: list[Person],
    template: str,
    kind: str,
    key: str,
    now: datetime,
    **context: Any,
) -> int:
    """Queue one notice per person in their language (dedupe key `key:<member id>`); returns how many were new."""
    queued = 0
    for person in people:
        text = services.renderer.render(person.language, template, **context)
        keyboard = _show_button(services, person.language, context["run"]["id"], context["run"].get("kind"))
        queued += notify(
            session,
            person.telegram_id,
            text,
            now=now,
            kind=kind,
            keyboard=keyboard,
            dedupe_key=f"{key}:{person.member_id}",
            member_id=person.member_id,
        )
    return queued


def tell_promotions(services: Services, session: Session, promoted: list[Promotion], now: datetime) -> int:
    """Tell each promoted member once: clearing the mark decides who queues the notice."""
    queued = 0
    for promotion in promoted:
        if not runs.promotion_noticed(session, promotion.rsvp_id) or promotion.person is None:
            continue
        event = runs.event_of_rsvp(session, promotion.rsvp_id)
        view = run_view(event, services.config.timezone)
        key = f"runs:promoted:{event.id}:{promotion.queue_no}"
        queued += tell(
            services, session, [promotion.person], "runs_notices/promoted", KIND_PROMOTED, key, now, run=view
        )
    return queued


def _remind(services: Services, session: Session, event_id: int, kind: str, now: datetime) -> int:
    taken = runs.take_reminder(session, event_id, kind, now)
    if taken is None:
        return 0
    event, people = taken
    view = run_view(event, services.config.timezone)
    key = f"runs:remind:{event.id}:{kind}:{int(event.starts_at.timestamp())}"
    return tell(services, session, people, "runs_notices/reminder", KIND_REMINDER, key, now, run=view, lead=kind)


async def run_runs(services: Services, now: datetime | None = None) -> str:
    """The scheduled task: due reminders (one transaction per event), then promotions not told yet."""
    now = now or services.clock.now()
    failures = queued = 0
    for kind, _lead in runs.REMINDERS:
        for event_id in await services.db.read(runs.due_reminders, now, kind):
            try:
                queued += await services.db.write(lambda s, e=event_id, k=kind: _remind(services, s, e, k, now))
            except Exception:  # one bad event must not block the others; it is retried at the next tick
                log.exception("runs: %s reminder of event %s failed", kind, event_id)
                failures += 1
    try:
        queued += await services.db.write(lambda s: tell_promotions(services, s, runs.pending_promotions(s), now))
    except Exception:
        log.exception("runs: promotion notices failed")
        failures += 1
    if queued:
        log.info("runs: %d notices queued", queued)
    return "partial" if failures else "ok"


def next_tick(config: Config, after: datetime) -> datetime:
    """Reminders are looked for at every scheduler tick."""
    return after + timedelta(seconds=config.tick_seconds)


TASKS = (TaskSpec("runs", run_runs, next_tick),)
