"""What the bot stores about one member: gathered for "export my data", released and erased for "delete account"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models import activity, broadcasts, care, clubs, feedback, ideas, insight, members, runs, show, surveys, welfare
from models.activity import Activity
from models.audit import AuditEntry
from models.errors import NotFound
from models.flows import FlowState
from models.members import Member, RoleGrant
from models.outbox import OutboxMessage
from models.points import LedgerEntry
from models.welfare import WelfareClaim, WelfareItem, WelfareReminder


def export_member(session: Session, member_id: int) -> dict[str, Any]:
    """Everything stored about this member: profile, roles, ledger, open flow, audit entries about them, welfare
    claims with their voucher codes, reminders, the messages queued or sent to them, and their days of activity."""
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound()
    roles = session.exec(select(RoleGrant).where(RoleGrant.member_id == member_id))
    ledger = session.exec(select(LedgerEntry).where(LedgerEntry.member_id == member_id).order_by(col(LedgerEntry.id)))
    telegram_id = member.telegram_id or -1
    open_flows = session.exec(select(FlowState).where(col(FlowState.telegram_id) == telegram_id)).all()
    audit = session.exec(
        select(AuditEntry).where(
            (col(AuditEntry.target) == f"member:{member_id}")
            | (col(AuditEntry.actor_telegram_id) == (member.telegram_id or -1))
        )
    )
    claims = session.exec(
        select(WelfareClaim, WelfareItem.title)
        .join(WelfareItem, col(WelfareItem.id) == col(WelfareClaim.item_id))
        .where(col(WelfareClaim.member_id) == member_id)
        .order_by(col(WelfareClaim.id))
    )
    reminders = session.exec(
        select(WelfareReminder, WelfareItem.title)
        .join(WelfareItem, col(WelfareItem.id) == col(WelfareReminder.item_id))
        .where(col(WelfareReminder.member_id) == member_id)
        .order_by(col(WelfareReminder.item_id))
    )
    messages = session.exec(
        select(OutboxMessage)
        .where((col(OutboxMessage.member_id) == member_id) | (col(OutboxMessage.chat_id) == telegram_id))
        .order_by(col(OutboxMessage.id))
    )
    days = session.exec(
        select(Activity.day, Activity.section)
        .where(col(Activity.member_id) == member_id)
        .order_by(col(Activity.day), col(Activity.section))
    )
    return {
        "member": member.model_dump(),
        "roles": [r.model_dump(exclude={"id", "member_id"}) for r in roles],
        "points_ledger": [e.model_dump(exclude={"member_id", "idem_key"}) for e in ledger],
        "open_flows": [f.model_dump(exclude={"telegram_id"}) for f in open_flows],
        "audit_entries": [a.model_dump() for a in audit],
        "welfare_claims": [
            {"item": title, **c.model_dump(exclude={"member_id", "redeemed_by_telegram_id"})} for c, title in claims
        ],
        "welfare_reminders": [{"item": title, **r.model_dump(exclude={"member_id"})} for r, title in reminders],
        **ideas.export_member(session, member_id),
        "messages": [
            m.model_dump(include={"id", "kind", "text", "photo", "status", "created_at", "sent_at"}) for m in messages
        ],
        "activity": [{"day": day, "section": section} for day, section in days],
    }


@dataclass(frozen=True)
class Deleted:
    """What an account deletion leaves to do after the commit."""

    restocked: list[int]  # welfare items whose stock came back (their cached "sold out" must be forgotten)
    club_groups: list[int]  # linked club groups the account must be removed from (ban + unban)


def delete_account(session: Session, member_id: int, now: datetime, tz: ZoneInfo) -> Deleted:
    """Delete an account: release and refund every live welfare claim, then erase the member everywhere."""
    restocked = welfare.release_member(session, member_id, now, tz)
    activity.erase_member(session, member_id)
    insight.erase_member(session, member_id)
    # Their idea comments go; their ideas and upvotes stay, without their name (models/ideas.py forget_member).
    ideas.forget_member(session, member_id)
    feedback.forget_member(session, member_id, now)
    runs.forget_member(session, member_id, now)
    club_groups = clubs.forget_member(session, member_id)
    show.forget_member(session, member_id)
    care.erase_member(session, member_id, now)
    broadcasts.forget_member(session, member_id)
    surveys.erase_member(session, member_id)
    members.erase_member(session, member_id)
    return Deleted(restocked, club_groups)
