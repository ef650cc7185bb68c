"""What the bot stores about one member, gathered for "export my data"."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from models.audit import AuditEntry
from models.errors import NotFound
from models.flows import FlowState
from models.members import Member, RoleGrant
from models.points import LedgerEntry


def export_member(session: Session, member_id: int) -> dict[str, Any]:
    """Everything stored about this member: profile, roles, ledger, open flow, audit entries about them."""
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound()
    roles = session.exec(select(RoleGrant).where(RoleGrant.member_id == member_id))
    ledger = session.exec(select(LedgerEntry).where(LedgerEntry.member_id == member_id).order_by(col(LedgerEntry.id)))
    flow = session.get(FlowState, member.telegram_id) if member.telegram_id else None
    audit = session.exec(
        select(AuditEntry).where(
            (col(AuditEntry.target) == f"member:{member_id}")
            | (col(AuditEntry.actor_telegram_id) == (member.telegram_id or -1))
        )
    )
    return {
        "member": member.model_dump(),
        "roles": [r.model_dump(exclude={"id", "member_id"}) for r in roles],
        "points_ledger": [e.model_dump(exclude={"member_id", "idem_key"}) for e in ledger],
        "open_flow": flow.model_dump() if flow else None,
        "audit_entries": [a.model_dump() for a in audit],
    }
