"""What the /admin screens read: the audit log with names instead of ids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models.audit import AuditEntry
from models.members import Member
from models.welfare import WelfareClaim, WelfareItem

# Who acted when no person did (erasures, imports from the command line).
SYSTEM_ACTOR = 0


@dataclass(frozen=True)
class AuditRow:
    """One audit entry as people read it: who did what to whom."""

    at: datetime
    action: str
    # The actor's name; None when the bot itself acted (actor_id 0) or the Telegram id belongs to no member.
    actor: str | None
    actor_id: int
    # What the target is ("member", "welfare", "welfare_claim", or "" for none) and its id.
    target_kind: str
    target_id: int | None
    # The member's name or the item's title; None when erased, deleted or unknown.
    target: str | None
    # For a voucher: the item's title (target is then its holder's name).
    item: str | None
    amount: int | None
    role: str | None


def _split(target: str) -> tuple[str, int | None]:
    """'member:12' -> ('member', 12); anything else keeps its text as the kind and no id."""
    kind, _, number = target.partition(":")
    return (kind, int(number)) if number.isascii() and number.isdigit() else (target, None)


def audit_page(session: Session, page: int, size: int) -> tuple[list[AuditRow], bool]:
    """One page of the audit log, newest first, with names; and whether an older page exists."""
    entries = list(
        session.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc()).offset(page * size).limit(size + 1))
    )
    has_next = len(entries) > size
    entries = entries[:size]
    targets = [(e, *_split(e.target)) for e in entries]
    ids = {kind: {i for _, k, i in targets if k == kind and i is not None} for kind in ("member", "welfare")}
    claim_ids = {i for _, k, i in targets if k == "welfare_claim" and i is not None}
    claims = {
        claim_id: (member_id, item_id)
        for claim_id, member_id, item_id in session.exec(
            select(WelfareClaim.id, WelfareClaim.member_id, WelfareClaim.item_id).where(
                col(WelfareClaim.id).in_(claim_ids)
            )
        )
    }
    ids["member"] |= {member_id for member_id, _ in claims.values()}
    ids["welfare"] |= {item_id for _, item_id in claims.values()}
    actor_ids = {e.actor_telegram_id for e in entries if e.actor_telegram_id != SYSTEM_ACTOR}
    actors = dict(
        session.exec(select(Member.telegram_id, Member.name).where(col(Member.telegram_id).in_(actor_ids))).all()
    )
    people = dict(session.exec(select(Member.id, Member.name).where(col(Member.id).in_(ids["member"]))).all())
    titles = dict(
        session.exec(select(WelfareItem.id, WelfareItem.title).where(col(WelfareItem.id).in_(ids["welfare"]))).all()
    )
    rows = []
    for entry, kind, target_id in targets:
        item = None
        if kind == "member":
            target = people.get(target_id)
        elif kind == "welfare":
            target = titles.get(target_id)
        elif kind == "welfare_claim" and target_id in claims:
            member_id, item_id = claims[target_id]
            target, item = people.get(member_id), titles.get(item_id)
        else:
            target = None
        amount = entry.detail.get("amount")
        rows.append(
            AuditRow(
                at=entry.at,
                action=entry.action,
                actor=actors.get(entry.actor_telegram_id),
                actor_id=entry.actor_telegram_id,
                target_kind=kind,
                target_id=target_id,
                target=target,
                item=item,
                amount=amount if isinstance(amount, int) else None,
                role=entry.detail.get("role"),
            )
        )
    return rows, has_next
