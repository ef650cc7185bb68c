"""Multi-step flows (registration, later item drafts) keep their state here, not in memory,
so a restart or a second replica continues where the user was."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, delete
from sqlmodel import Field, Session, SQLModel

from models.clock import utcnow


class FlowState(SQLModel, table=True):
    __tablename__ = "flow_state"

    telegram_id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    flow: str = Field(max_length=40)
    step: str = Field(max_length=40)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True)
class Flow:
    name: str
    step: str
    data: dict[str, Any]


def get_flow(session: Session, telegram_id: int) -> Flow | None:
    """The flow this user is in, if any."""
    row = session.get(FlowState, telegram_id)
    return Flow(row.flow, row.step, dict(row.data)) if row else None


def set_flow(session: Session, telegram_id: int, name: str, step: str, data: dict[str, Any]) -> None:
    """Start or advance a flow (one per user: starting another replaces it)."""
    row = session.get(FlowState, telegram_id)
    if row is None:
        session.add(FlowState(telegram_id=telegram_id, flow=name, step=step, data=data))
    else:
        row.flow, row.step, row.data, row.updated_at = name, step, dict(data), utcnow()


def clear_flow(session: Session, telegram_id: int) -> bool:
    """Leave any flow; True if there was one."""
    result = session.exec(delete(FlowState).where(FlowState.telegram_id == telegram_id))
    return result.rowcount > 0
