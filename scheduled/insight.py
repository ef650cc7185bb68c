"""Every week (config [insight] digest_weekday and digest_time): each cadre's digest of their units' week.

One outbox message per cadre per week (its dedupe key names the week), so a restart or a second run of the same
due time never sends it twice. Cadres who turned it off in /me get nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from buttons.insight import StatsView
from config import Config
from models import insight
from models.insight import shown
from scheduled.runner import TaskSpec
from services import Services, notify

log = logging.getLogger(__name__)
KIND = "insight_digest"


def next_digest_time(config: Config, after: datetime) -> datetime:
    """The next configured weekday and local time after `after`, in UTC."""
    settings = config.insight
    local = after.astimezone(config.timezone)
    candidate = local.replace(
        hour=settings.digest_time.hour, minute=settings.digest_time.minute, second=0, microsecond=0
    ) + timedelta(days=(settings.digest_weekday - 1 - local.weekday()) % 7)
    if candidate <= local:
        candidate += timedelta(days=7)
    return candidate.astimezone(UTC)


def queue_digests(session: Session, services: Services, now: datetime) -> int:
    """Queue this week's digest for every cadre who wants it; returns how many were new."""
    config, renderer = services.config, services.renderer
    today = now.astimezone(config.timezone).date()
    year, week_number, _ = today.isocalendar()
    every_unit = [u.code for u in config.units]
    cache: dict[frozenset[str | None], insight.Digest] = {}
    queued = 0
    for reader in insight.digest_readers(session, config.admin_ids):
        units = every_unit if None in reader.units else sorted(u for u in reader.units if u)
        if reader.units not in cache:
            cache[reader.units] = insight.digest(session, units, today, config.timezone)
        week = cache[reader.units]
        biggest = week.biggest
        text = renderer.render(
            reader.language,
            "insight/digest",
            start=today - timedelta(days=7),
            until=today - timedelta(days=1),
            units=len(units),
            members=shown(week.members),
            changes=[(c.name, shown(c.this_week), shown(c.last_week)) for c in week.changes],
            biggest=None if biggest is None else (biggest.name, biggest.this_week > biggest.last_week),
        )
        button = {
            "text": renderer.label(reader.language, "insight_open"),
            "callback_data": StatsView("interaction", "week").pack(),
        }
        queued += notify(
            session,
            reader.telegram_id,
            text,
            now=now,
            kind=KIND,
            keyboard={"inline_keyboard": [[button]]},
            # One per cadre per ISO week, whenever in the week it runs (a run made up after a restart included).
            dedupe_key=f"insight:digest:{reader.member_id}:{year}-W{week_number:02d}",
            member_id=reader.member_id,
            personal=False,
        )
    return queued


async def send_digests(services: Services) -> str:
    """The scheduled task: queue the digests in one write."""
    now = services.clock.now()
    queued = await services.db.write(queue_digests, services, now)
    log.info("insight: %d weekly digests queued", queued)
    return "ok"


TASKS = (TaskSpec("insight_digest", send_digests, next_digest_time),)
