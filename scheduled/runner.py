"""The dispatcher: APScheduler (through PTB's JobQueue) ticks; due rows in scheduled_task run.

APScheduler only provides the heartbeat; what must happen and when lives in the database, so a
restart or a second replica neither forgets nor doubles a run. Each due row is claimed by a
compare-and-set on its next_run_at before it runs (at most once per due time). Missed runs follow
the policy in models/schedule.py.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session
from telegram.ext import Application, ContextTypes

import scheduled
from config import Config
from models import schedule
from services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSpec:
    """A kind of timed work: how to run it and when it is due next after a given moment."""

    name: str
    run: Callable[[Services], Awaitable[str]]
    next_after: Callable[[Config, datetime], datetime]


def discover() -> dict[str, TaskSpec]:
    """Every TaskSpec declared by a module in scheduled/."""
    specs: dict[str, TaskSpec] = {}
    for info in pkgutil.iter_modules(scheduled.__path__):
        module = importlib.import_module(f"scheduled.{info.name}")
        for spec in getattr(module, "TASKS", ()):
            specs[spec.name] = spec
    return specs


async def ensure_tasks(services: Services, specs: dict[str, TaskSpec], now: datetime | None = None) -> None:
    """Give every declared task a row; existing rows keep their schedule (that is what survives a restart)."""
    now = now or services.clock.now()

    def ensure_all(session: Session) -> None:
        for spec in specs.values():
            schedule.ensure_task(session, spec.name, spec.name, spec.next_after(services.config, now))

    await services.db.write(ensure_all)


async def tick(services: Services, specs: dict[str, TaskSpec], now: datetime | None = None) -> list[str]:
    """Run every due task once; returns 'name:status' for each task handled."""
    now = now or services.clock.now()
    grace = timedelta(hours=services.config.misfire_grace_hours)
    due = await services.db.read(schedule.due_tasks, now)
    handled = []
    for task in due:
        spec = specs.get(task.kind)
        if spec is None:
            log.warning("scheduled task %s has no handler; leaving it", task.name)
            continue
        claimed = await services.db.write(
            schedule.claim_run, task.name, task.next_run_at, spec.next_after(services.config, now)
        )
        if not claimed:
            continue
        if schedule.is_stale(task.next_run_at, now, grace):
            log.warning("skipping %s: due at %s, longer ago than the grace period", task.name, task.next_run_at)
            status, error = "skipped", ""
        else:
            try:
                status, error = await spec.run(services), ""
            except Exception as exc:  # a failing task must not stop the dispatcher
                log.exception("scheduled task %s failed", task.name)
                status, error = "failed", type(exc).__name__
        await services.db.write(schedule.finish_run, task.name, status, error)
        handled.append(f"{task.name}:{status}")
    return handled


def start(app: Application, services: Services, may_run: Callable[[], bool] = lambda: True) -> None:
    """Start the heartbeat on PTB's JobQueue (APScheduler) with deliberate job defaults.

    Every process has the heartbeat; only the leader (models/leader.py) runs due work at a tick.
    """
    specs = discover()
    interval = services.config.tick_seconds

    async def heartbeat(_context: ContextTypes.DEFAULT_TYPE) -> None:
        if not may_run():
            return
        if await tick(services, specs):
            # Tasks may have queued notifications: start sending now instead of at the sender's next poll.
            sender = app.bot_data.get("outbox")
            if sender is not None:
                sender.wake()

    app.job_queue.run_repeating(
        heartbeat,
        interval=interval,
        first=1,
        name="scheduled-heartbeat",
        # A late heartbeat still runs (up to one interval late); piled-up ones collapse into one.
        job_kwargs={"misfire_grace_time": interval, "coalesce": True, "max_instances": 1},
    )
