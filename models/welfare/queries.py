"""Queries and checks the welfare operations share: loading and locking rows, who may see or manage an item."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from models import points
from models.clock import local_date
from models.db import notify
from models.errors import NotAllowed, NotFound, NotRegistered
from models.members import Actor, Member, Status, UnitRow
from models.stock_cache import STOCK_CHANNEL
from models.welfare.drafts import as_utc
from models.welfare.tables import (
    LIVE,
    ClaimStatus,
    ItemStatus,
    Mode,
    NotEligible,
    NotOpenYet,
    WelfareClaim,
    WelfareItem,
    WelfareItemUnit,
    WindowClosed,
)


def _units_of(session: Session, item_id: int) -> tuple[str, ...]:
    """The units an item is offered to (empty: every unit)."""
    rows = session.exec(select(WelfareItemUnit.unit_code).where(WelfareItemUnit.item_id == item_id))
    return tuple(sorted(rows))


def known_units(session: Session) -> set[str]:
    """Codes of every unit in the database."""
    return set(session.exec(select(UnitRow.code)))


def _lock_item(session: Session, item_id: int) -> WelfareItem | None:
    """The item row, locked until the end of the transaction (PostgreSQL; SQLite has one writer anyway)."""
    query = select(WelfareItem).where(WelfareItem.id == item_id).with_for_update()
    return (session.exec(query.execution_options(populate_existing=True))).first()


def _reload_item(session: Session, item_id: int) -> WelfareItem | None:
    """The item as committed now, not as first loaded in this session."""
    return session.get(WelfareItem, item_id, populate_existing=True)


def _reload_claim(session: Session, claim_id: int) -> WelfareClaim | None:
    """The claim as committed now, not as first loaded in this session."""
    return session.get(WelfareClaim, claim_id, populate_existing=True)


def _live_claims(session: Session, item_id: int, member_id: int) -> list[WelfareClaim]:
    """The member's claims on the item that hold a slot, by slot."""
    rows = session.exec(
        select(WelfareClaim)
        .where(
            WelfareClaim.item_id == item_id,
            WelfareClaim.member_id == member_id,
            col(WelfareClaim.status).in_(LIVE),
        )
        .order_by(col(WelfareClaim.seq))
        .execution_options(populate_existing=True)
    )
    return list(rows)


def _require_member(member: Member | None) -> Member:
    """The member, or NotRegistered unless verified."""
    if member is None or not member.verified:
        raise NotRegistered()
    return member


def _manages(actor: Actor, item: WelfareItem, units: Iterable[str]) -> bool:
    """A bureau cadre manages every item; a unit cadre the items owned by and offered only to their units."""
    if actor.is_bureau:
        return True
    units = tuple(units)
    return item.owner_unit is not None and bool(units) and all(actor.can_manage(u) for u in units)


def _managed_item(session: Session, actor: Actor, item_id: int) -> tuple[WelfareItem, tuple[str, ...]]:
    """An item and its units for a cadre who manages it; NotFound or NotAllowed otherwise."""
    actor.require_cadre()
    item = session.get(WelfareItem, item_id)
    if item is None:
        raise NotFound("welfare_item_unknown")
    units = _units_of(session, item_id)
    if not _manages(actor, item, units):
        raise NotAllowed()
    return item, units


def _visible_item(session: Session, member: Member, item_id: int) -> tuple[WelfareItem, tuple[str, ...]]:
    """A published item offered to the member's unit; NotFound or NotEligible otherwise."""
    # One query for the item and its units: every claim press (most of them sold out) starts here.
    rows = (
        session.exec(
            select(WelfareItem, WelfareItemUnit.unit_code)
            .outerjoin(WelfareItemUnit, col(WelfareItemUnit.item_id) == col(WelfareItem.id))
            .where(WelfareItem.id == item_id)
        )
    ).all()
    item = rows[0][0] if rows else None
    if item is None or item.status == ItemStatus.DRAFT:
        raise NotFound("welfare_item_unknown")
    units = tuple(sorted(unit for _, unit in rows if unit is not None))
    if units and member.unit_code not in units:
        raise NotEligible()
    return item, units


def _check_window(item: WelfareItem, now: datetime) -> None:
    """Raise unless members may claim, apply or join right now."""
    if item.status == ItemStatus.DRAFT:
        raise NotFound("welfare_item_unknown")
    if item.status != ItemStatus.PUBLISHED or item.drawn_at or item.settled_at or now >= item.closes_at:
        raise WindowClosed(closes_at=item.closes_at)
    if now < item.opens_at:
        raise NotOpenYet(opens_at=item.opens_at)


def _recipients(session: Session, member_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
    """Telegram id and language of members who can still be messaged."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    rows = session.exec(
        select(Member.id, Member.telegram_id, Member.language).where(
            col(Member.id).in_(ids),
            col(Member.telegram_id).is_not(None),
            col(Member.blocked_bot).is_(False),
            Member.status == Status.VERIFIED,
        )
    )
    return {member_id: (telegram_id, language) for member_id, telegram_id, language in rows}


def _stock_may_return(session: Session, item_id: int) -> None:
    """Other processes forget a cached "sold out" for this item when the transaction commits."""
    notify(session, STOCK_CHANNEL, str(item_id))


def _refund_claim(session: Session, claim: WelfareClaim, now: datetime, tz: ZoneInfo, title: str) -> int:
    """Give back what the claim paid (once per claim, whatever path asks); returns the amount."""
    if claim.points <= 0:
        return 0
    points.refund(session, claim.member_id, claim.points, f"welfare:refund:{claim.id}", local_date(tz, now), title)
    return claim.points


def _end_window(session: Session, item_id: int, mode: Mode, marker: str, now: datetime) -> bool:
    """Lock the item and mark the draw or settlement done, once; False if not due or already done."""
    marker_col = col(getattr(WelfareItem, marker))
    done = session.exec(
        update(WelfareItem)
        .where(
            col(WelfareItem.id) == item_id,
            col(WelfareItem.mode) == mode,
            marker_col.is_(None),
            or_(
                (col(WelfareItem.status) == ItemStatus.PUBLISHED) & (col(WelfareItem.closes_at) <= now),
                col(WelfareItem.status) == ItemStatus.CLOSED,
            ),
        )
        .values({marker: now, "status": ItemStatus.CLOSED, "updated_at": now})
        .returning(col(WelfareItem.id))
        .execution_options(synchronize_session=False)
    )
    return done.first() is not None


def _held(session: Session, item_id: int, status: ClaimStatus) -> list[WelfareClaim]:
    """The item's claims in `status`, by member id."""
    rows = session.exec(
        select(WelfareClaim)
        .where(WelfareClaim.item_id == item_id, WelfareClaim.status == status)
        .order_by(col(WelfareClaim.member_id), col(WelfareClaim.id))
        .execution_options(populate_existing=True)
    )
    return list(rows)


def _release(
    session: Session, held: WelfareClaim, to: ClaimStatus, now: datetime, tz: ZoneInfo, title: str
) -> int | None:
    """A held claim that did not get a voucher: mark it and refund; None if it was not held any more."""
    result = session.exec(
        update(WelfareClaim)
        .where(col(WelfareClaim.id) == held.id, col(WelfareClaim.status) == held.status)
        .values(status=to)
        .returning(col(WelfareClaim.id))
        .execution_options(synchronize_session=False)
    )
    if result.first() is None:
        return None
    return _refund_claim(session, held, now, tz, title)


def _ended_without(session: Session, mode: Mode, marker: str, now: datetime) -> list[int]:
    """Items of one mode whose window has ended (or that were closed early) and whose end step (the timestamp
    column `marker`: drawn_at, settled_at) has not run yet."""
    now = as_utc(now)
    rows = session.exec(
        select(WelfareItem.id)
        .where(
            WelfareItem.mode == mode,
            col(getattr(WelfareItem, marker)).is_(None),
            or_(
                (col(WelfareItem.status) == ItemStatus.PUBLISHED) & (col(WelfareItem.closes_at) <= now),
                col(WelfareItem.status) == ItemStatus.CLOSED,
            ),
        )
        .order_by(col(WelfareItem.id))
    )
    return list(rows)
