"""Broadcasts' timed work, at every scheduler tick: release scheduled broadcasts whose time has come, and mark
finished the ones whose every copy is settled.

Missed-run policy: a scheduled broadcast whose time passed while the bot was down goes out at the first tick
after the restart (late rather than never; its copies still wait for the end of quiet hours unless urgent).
The copies are outbox rows written in the same transaction as the status change, so a crash leaves either
both or neither.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session

from buttons.broadcasts import GotIt
from config import Config
from models import broadcasts
from models.broadcasts import QuietHours
from models.clock import local_date
from scheduled.runner import TaskSpec
from services import Services

log = logging.getLogger(__name__)


async def run_broadcasts(services: Services, now: datetime | None = None) -> str:
    """The scheduled task: queue due broadcasts, then finish the delivered ones; returns 'ok'."""
    now = now or services.clock.now()
    config = services.config
    quiet = QuietHours(config.broadcasts.quiet_start, config.broadcasts.quiet_end, config.timezone)
    today = local_date(config.timezone, now)

    def ack(broadcast_id: int, locale: str) -> tuple[str, str]:
        return GotIt(broadcast_id).pack(), services.renderer.label(locale, "broadcast_got_it")

    def work(session: Session) -> tuple[list[int], list[int]]:
        released = broadcasts.release_due(session, now, today, quiet, ack)
        return released, broadcasts.finish_sent(session, now)

    released, finished = await services.db.write(work)
    if released or finished:
        log.info("broadcasts: %d released, %d finished", len(released), len(finished))
    return "ok"


def next_tick(config: Config, after: datetime) -> datetime:
    """Broadcasts are looked at every scheduler tick."""
    return after + timedelta(seconds=config.tick_seconds)


TASKS = (TaskSpec("broadcasts", run_broadcasts, next_tick),)
