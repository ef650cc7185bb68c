"""Audit log: every admin or cadre action, append-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, Session, SQLModel, select

from models.clock import utcnow


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_telegram_id: int = Field(sa_type=BigInteger, index=True)
    action: str = Field(max_length=40)
    target: str = Field(default="", max_length=80)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def record(session: Session, actor_telegram_id: int, action: str, target: str = "", **detail: Any) -> None:
    """Append one audit entry in the caller's transaction."""
    session.add(AuditEntry(actor_telegram_id=actor_telegram_id, action=action, target=target, detail=detail))


def recent(session: Session, limit: int = 50) -> list[AuditEntry]:
    """The newest audit entries first."""
    rows = session.exec(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return list(rows)
