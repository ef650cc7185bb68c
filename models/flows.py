"""Multi-step flows (registration, item drafts, edits) keep their state here, not in memory, so a restart or a
second replica continues where the user was.

A user has at most one flow per section: starting a run invitation does not throw away a half-made welfare item.
Typed text goes to the flow the user touched last. A flow untouched for longer than its lifetime has expired:
it is no longer answered, and is deleted the next time the user starts or advances a flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.util import identity_key
from sqlmodel import Field, Session, SQLModel, col, select


class FlowState(SQLModel, table=True):
    __tablename__ = "flow_state"

    telegram_id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    section: str = Field(primary_key=True, max_length=40)
    flow: str = Field(max_length=40)
    step: str = Field(max_length=40)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime


@dataclass(frozen=True)
class Flow:
    section: str
    name: str
    step: str
    data: dict[str, Any]


def get_flow(session: Session, telegram_id: int, now: datetime, lifetime: timedelta) -> Flow | None:
    """The flow this user touched last, unless it has expired (expired ones are deleted by set_flow's caller)."""
    rows = session.exec(
        select(FlowState).where(col(FlowState.telegram_id) == telegram_id).order_by(col(FlowState.updated_at).desc())
    ).all()
    for row in rows:
        if row.updated_at >= now - lifetime:
            return Flow(row.section, row.flow, row.step, dict(row.data))
    return None


def section_flow(session: Session, telegram_id: int, section: str, now: datetime, lifetime: timedelta) -> Flow | None:
    """This user's flow in one section, unless it has expired."""
    row = session.get(FlowState, (telegram_id, section))
    if row is None or row.updated_at < now - lifetime:
        return None
    return Flow(row.section, row.flow, row.step, dict(row.data))


def set_flow(
    session: Session, telegram_id: int, section: str, name: str, step: str, data: dict[str, Any], now: datetime
) -> None:
    """Start or advance the user's flow in this section (one statement: concurrent updates never collide)."""
    values = {"telegram_id": telegram_id, "section": section, "flow": name, "step": step, "data": data}
    values["updated_at"] = now
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(FlowState.__table__).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["telegram_id", "section"],
        set_={"flow": name, "step": step, "data": statement.excluded.data, "updated_at": now},
    )
    session.exec(statement)
    # The ORM must not keep an older copy of the row, should it have loaded it in this transaction.
    cached = session.identity_map.get(identity_key(FlowState, (telegram_id, section)))
    if cached is not None:
        session.expire(cached)


def clear_flow(session: Session, telegram_id: int, section: str | None = None) -> bool:
    """Leave the flow of one section (None: every flow of this user); True if there was one."""
    statement = delete(FlowState).where(col(FlowState.telegram_id) == telegram_id)
    if section is not None:
        statement = statement.where(col(FlowState.section) == section)
    return session.exec(statement).rowcount > 0


def drop_expired(session: Session, telegram_id: int, now: datetime, lifetime: timedelta) -> int:
    """Delete this user's expired flows; returns how many."""
    statement = delete(FlowState).where(
        col(FlowState.telegram_id) == telegram_id, col(FlowState.updated_at) < now - lifetime
    )
    return session.exec(statement).rowcount
