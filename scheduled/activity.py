"""Nightly: activity records older than the configured retention are deleted (models/activity.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

from config import Config
from models import activity
from scheduled.runner import TaskSpec
from services import Services

log = logging.getLogger(__name__)
# Local time of the nightly prune: after the backup (03:30 by default), before anyone is up.
PRUNE_AT = time(4, 10)


def next_prune_time(config: Config, after: datetime) -> datetime:
    """The next PRUNE_AT in the organisation's time zone after `after`, in UTC."""
    local = after.astimezone(config.timezone)
    candidate = local.replace(hour=PRUNE_AT.hour, minute=PRUNE_AT.minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(UTC)


async def prune_activity(services: Services) -> str:
    """Delete activity days that fell out of the retention."""
    today = services.clock.now().astimezone(services.config.timezone).date()
    before = today - timedelta(days=services.config.insight.retention_days)
    pruned = await services.db.write(activity.prune, before)
    log.info("activity: pruned %d records before %s", pruned, before)
    return "ok"


TASKS = (TaskSpec("activity_prune", prune_activity, next_prune_time),)
