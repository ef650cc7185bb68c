"""Durable schedule: what must run when lives in rows, so a restart loses nothing.

Policy for runs missed while the bot was down: a task whose due time passed less than the grace
period ago runs once at start-up (several missed runs collapse into that one); an older one is
skipped and logged, and the task waits for its next regular time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Field, Session, SQLModel, col, select

from models.clock import utcnow


class ScheduledTask(SQLModel, table=True):
    __tablename__ = "scheduled_task"

    name: str = Field(primary_key=True, max_length=60)
    kind: str = Field(max_length=40)
    next_run_at: datetime = Field(index=True)
    last_run_at: datetime | None = None
    last_status: str = Field(default="", max_length=20)
    last_error: str = Field(default="", max_length=400)
    runs: int = 0


def ensure_task(session: Session, name: str, kind: str, first_run_at: datetime) -> ScheduledTask:
    """Create the task row if it does not exist; an existing row keeps its schedule."""
    task = session.get(ScheduledTask, name)
    if task is None:
        task = ScheduledTask(name=name, kind=kind, next_run_at=first_run_at)
        session.add(task)
        session.flush()
    return task


def due_tasks(session: Session, now: datetime | None = None) -> list[ScheduledTask]:
    """Tasks whose time has come, earliest first."""
    now = now or utcnow()
    rows = session.exec(
        select(ScheduledTask).where(col(ScheduledTask.next_run_at) <= now).order_by(col(ScheduledTask.next_run_at))
    )
    return list(rows)


def claim_run(session: Session, name: str, seen_next_run_at: datetime, next_run_at: datetime) -> bool:
    """Move the task to its next time, only if nobody else did first (one runner per due time)."""
    result = session.exec(
        update(ScheduledTask)
        .where(col(ScheduledTask.name) == name, col(ScheduledTask.next_run_at) == seen_next_run_at)
        .values(next_run_at=next_run_at)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def finish_run(session: Session, name: str, status: str, error: str = "") -> None:
    """Record how a run ended."""
    task = session.get(ScheduledTask, name)
    if task is not None:
        task.last_run_at = utcnow()
        task.last_status = status
        task.last_error = error[:400]
        task.runs += 1


def is_stale(due_at: datetime, now: datetime, grace: timedelta) -> bool:
    """A missed run older than the grace period is skipped rather than made up."""
    return now - due_at > grace
