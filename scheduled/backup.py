"""Nightly online backup of the SQLite database, keeping the newest N copies."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from config import Config
from models.clock import utcnow
from scheduled.runner import TaskSpec
from services import Services

log = logging.getLogger(__name__)
PREFIX = "gongshe-"


def backup_sqlite(source: Path, directory: Path, keep: int, now: datetime | None = None, tz: tzinfo = UTC) -> Path:
    """Copy a live SQLite database with SQLite's online backup API; delete copies beyond `keep`.

    The copy is named after the moment in `tz` (the organisation's time zone), as the people restoring it think.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or utcnow()).astimezone(tz).strftime("%Y%m%d-%H%M%S")
    target = directory / f"{PREFIX}{stamp}.db"
    partial = target.with_suffix(".part")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    partial.replace(target)
    copies = sorted(directory.glob(f"{PREFIX}*.db"))
    for old in copies[:-keep]:
        old.unlink()
    return target


def next_backup_time(config: Config, after: datetime) -> datetime:
    """The next configured local backup time after `after`, in UTC."""
    tz = config.timezone
    local = after.astimezone(tz)
    candidate = local.replace(hour=config.backup_time.hour, minute=config.backup_time.minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(UTC)


async def run_backup(services: Services) -> str:
    """The scheduled task: back up SQLite off the event loop; PostgreSQL is backed up with pg_dump instead."""
    path = services.db.sqlite_path
    if path is None:
        log.info("backup skipped: not a SQLite file database (use pg_dump for PostgreSQL)")
        return "skipped"
    config = services.config
    target = await asyncio.to_thread(backup_sqlite, path, config.backup_dir, config.backup_keep, tz=config.timezone)
    log.info("backup written: %s", target.name)
    return "ok"


TASKS = (TaskSpec("nightly_backup", run_backup, next_backup_time),)
