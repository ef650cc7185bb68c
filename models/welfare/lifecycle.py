"""Timed steps, each idempotent (a re-run after a crash changes nothing more): openings, reminders, settlements."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import exists, update
from sqlmodel import Session, col, select

from models.welfare.drafts import as_utc
from models.welfare.queries import _end_window, _ended_without, _held, _recipients, _release, _reload_item
from models.welfare.tables import (
    ClaimStatus,
    ItemStatus,
    Mode,
    Recipient,
    SettleResult,
    WelfareItem,
    WelfareReminder,
    log,
)
from models.welfare.vouchers import _issue_voucher


def due_openings(session: Session, now: datetime) -> list[int]:
    """Published items whose window has opened but whose opening was not handled yet."""
    now = as_utc(now)
    rows = session.exec(
        select(WelfareItem.id).where(
            WelfareItem.status == ItemStatus.PUBLISHED,
            col(WelfareItem.opens_at) <= now,
            col(WelfareItem.opened_at).is_(None),
        )
    )
    return list(rows)


def open_item(session: Session, item_id: int, now: datetime) -> list[Recipient]:
    """Mark the opening handled (once) and take the reminders due: the members to tell it is open."""
    now = as_utc(now)
    done = session.exec(
        update(WelfareItem)
        .where(
            col(WelfareItem.id) == item_id,
            col(WelfareItem.status) == ItemStatus.PUBLISHED,
            col(WelfareItem.opens_at) <= now,
            col(WelfareItem.opened_at).is_(None),
        )
        .values(opened_at=now)
        .returning(col(WelfareItem.id))
        .execution_options(synchronize_session=False)
    )
    if done.first() is None:
        return []
    return take_reminders(session, item_id, now)


def due_reminders(session: Session, now: datetime) -> list[int]:
    """Items that have opened and still have reminders not sent (e.g. asked for at the last second)."""
    now = as_utc(now)
    rows = session.exec(
        select(WelfareItem.id)
        .where(
            WelfareItem.status == ItemStatus.PUBLISHED,
            col(WelfareItem.opens_at) <= now,
            exists().where(col(WelfareReminder.item_id) == col(WelfareItem.id), col(WelfareReminder.sent_at).is_(None)),
        )
        .order_by(col(WelfareItem.id))
    )
    return list(rows)


def take_reminders(session: Session, item_id: int, now: datetime) -> list[Recipient]:
    """Mark the item's unsent reminders sent and return whom to tell (each reminder is taken once)."""
    now = as_utc(now)
    result = session.exec(
        update(WelfareReminder)
        .where(col(WelfareReminder.item_id) == item_id, col(WelfareReminder.sent_at).is_(None))
        .values(sent_at=now)
        .returning(col(WelfareReminder.member_id))
        .execution_options(synchronize_session=False)
    )
    member_ids = [row[0] for row in result]
    reachable = _recipients(session, member_ids)
    return [Recipient(m, *reachable[m]) for m in sorted(reachable)]


def due_settlements(session: Session, now: datetime) -> list[int]:
    """Group-buy items past their deadline (or closed early) and not settled yet."""
    return _ended_without(session, Mode.GROUP_BUY, "settled_at", now)


def settle_group_buy(session: Session, item_id: int, now: datetime, tz: ZoneInfo) -> SettleResult:
    """At the deadline: enough members joined -> everyone gets a voucher; otherwise all released and refunded."""
    now = as_utc(now)
    if not _end_window(session, item_id, Mode.GROUP_BUY, "settled_at", now):
        return SettleResult(item_id, False, False, 0, [])
    item = _reload_item(session, item_id)
    assert item is not None
    joined = _held(session, item_id, ClaimStatus.JOINED)
    reached = len(joined) >= (item.threshold or 1)
    item.outcome = "reached" if reached else "failed"
    session.flush()
    reachable = _recipients(session, (c.member_id for c in joined))
    recipients: list[Recipient] = []
    for held in joined:
        contact = reachable.get(held.member_id)
        if reached:
            code = _issue_voucher(session, held.id, ClaimStatus.JOINED)
            if code is not None and contact:
                recipients.append(Recipient(held.member_id, *contact, claim_id=held.id, voucher_code=code))
        else:
            refunded = _release(session, held, ClaimStatus.RELEASED, now, tz, item.title)
            if refunded is not None and contact:
                recipients.append(Recipient(held.member_id, *contact, claim_id=held.id, refunded=refunded))
    log.info("group-buy %s settled: %d joined, threshold %s", item_id, len(joined), item.threshold)
    return SettleResult(item_id, True, reached, len(joined), recipients)
