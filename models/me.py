"""What the bot stores about one member: gathered for "export my data", released and erased for "delete account"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import null, update
from sqlmodel import Session, col, select

from models import (
    activity,
    broadcasts,
    care,
    clubs,
    feedback,
    ideas,
    insight,
    members,
    outbox,
    quizzes,
    reading,
    runs,
    show,
    surveys,
    welfare,
)
from models.activity import Activity
from models.audit import AuditEntry
from models.errors import NotFound
from models.flows import FlowState
from models.members import Member, RoleGrant
from models.outbox import OutboxMessage
from models.points import LedgerEntry
from models.quizzes import Quiz
from models.surveys import Survey
from models.welfare import WelfareClaim, WelfareItem, WelfareReminder


def export_member(session: Session, member_id: int, care_key: str = "") -> dict[str, Any]:
    """Everything stored about this member: profile, roles, ledger, open flow, audit entries about them, welfare
    claims with their voucher codes, reminders, the messages queued or sent to them, their days of activity, and one
    part per section (broadcasts, clubs, runs, feedback, quizzes, care, show, reading).

    Anonymity holds: feedback tells only the periods they rated in, never a rating (stored apart with no link);
    care opens only the member's own booking notes (with `care_key`, CARE_KEY), never a counsellor's note; nothing
    another member did (who liked, who answered their event, whose request a handler saw) is in it."""
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
        "insight_digest": insight.digest_on(session, member_id),
        "broadcasts": broadcasts.export_member(session, member_id),
        "clubs": clubs.export_rows(session, member_id),
        "runs": runs.export_member(session, member_id),
        "feedback": feedback.export_member(session, member_id),
        "quizzes": quizzes.export_member(session, member_id),
        "care": care.export_member(session, member_id, care_key),
        "show": show.export_member(session, member_id),
        "reading": reading.export_member(session, member_id),
        "surveys": surveys.export_member(session, member_id),
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
    identity = select(Member.telegram_id, Member.name, Member.employee_no).where(col(Member.id) == member_id)
    who = session.exec(identity).first()
    if who is not None:
        telegram_id, name, employee_no = who
        if telegram_id is not None:
            _forget_actor(session, telegram_id)
        _forget_mentions(session, [t for t in (name, employee_no) if t and len(t) >= MENTION_MIN])
    members.erase_member(session, member_id)
    return Deleted(restocked, club_groups)


# Shorter names or numbers are not searched for in others' messages (they would match too much).
MENTION_MIN = 2


def _forget_actor(session: Session, telegram_id: int) -> None:
    """What the member did as a cadre (audit log, points granted, vouchers redeemed, items, quizzes and broadcasts
    made) stays for the records, under actor 0 instead of their Telegram id, the way the erasure itself is logged;
    broadcast copies already sent no longer point at their chat (ones still to send need it)."""
    session.exec(update(AuditEntry).where(col(AuditEntry.actor_telegram_id) == telegram_id).values(actor_telegram_id=0))
    session.exec(
        update(LedgerEntry).where(col(LedgerEntry.actor_telegram_id) == telegram_id).values(actor_telegram_id=None)
    )
    session.exec(
        update(WelfareClaim)
        .where(col(WelfareClaim.redeemed_by_telegram_id) == telegram_id)
        .values(redeemed_by_telegram_id=0)
    )
    session.exec(
        update(WelfareItem)
        .where(col(WelfareItem.created_by_telegram_id) == telegram_id)
        .values(created_by_telegram_id=0)
    )
    session.exec(update(Quiz).where(col(Quiz.created_by) == telegram_id).values(created_by=0))
    session.exec(update(Survey).where(col(Survey.created_by) == telegram_id).values(created_by=0))
    session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.copy_from_chat_id) == telegram_id, col(OutboxMessage.status) == outbox.Status.SENT)
        .values(copy_from_chat_id=None, copy_message_id=None)
        .execution_options(synchronize_session=False)
    )
    broadcasts.forget_author(session, telegram_id)


def _forget_mentions(session: Session, words: list[str]) -> None:
    """Notices already sent to others that name the member (a join request, a request to a handler) keep no text;
    ones still to be sent are left to go out."""
    for word in words:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.status) == outbox.Status.SENT, col(OutboxMessage.text).like(pattern, escape="\\"))
            .values(text="", reply_markup=null())
            .execution_options(synchronize_session=False)
        )
