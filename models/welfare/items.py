"""The cadre side: creating, editing, publishing and closing items; the claims of an item."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import delete, exists, func
from sqlmodel import Session, col, select

from models import audit
from models.errors import DomainError, NotAllowed
from models.members import Actor, Member
from models.welfare.drafts import ItemDraft, as_utc, check_draft, invalid_item, item_values, normalize_draft, phase_of
from models.welfare.lottery import _new_seed
from models.welfare.queries import _lock_item, _managed_item, _stock_may_return, known_units
from models.welfare.tables import (
    CATALOG_SIZE,
    CatalogEntry,
    ClaimRow,
    ItemClaims,
    ItemStatus,
    Mode,
    Phase,
    WelfareClaim,
    WelfareItem,
    WelfareItemUnit,
    WelfareReminder,
)


def _owner_for(actor: Actor, draft: ItemDraft) -> str | None:
    """The owning unit of a new or edited item; a unit cadre may only offer items to units they serve."""
    actor.require_cadre()
    if actor.is_bureau:
        return draft.owner_unit
    if not draft.units or not all(actor.can_manage(u) for u in draft.units):
        raise NotAllowed()
    owner = draft.owner_unit or draft.units[0]
    if not actor.can_manage(owner):
        raise NotAllowed()
    return owner


def store_item(
    session: Session,
    draft: ItemDraft,
    owner_unit: str | None,
    created_by_telegram_id: int,
    now: datetime,
    status: ItemStatus,
) -> WelfareItem:
    """Insert a checked, normalised draft with its units (shared by create_item and the file import)."""
    item = WelfareItem(
        **item_values(draft),
        owner_unit=owner_unit,
        created_by_telegram_id=created_by_telegram_id,
        status=status,
        created_at=now,
        updated_at=now,
    )
    if status == ItemStatus.PUBLISHED and draft.mode == Mode.LOTTERY:
        item.seed, item.seed_hash = _new_seed()
    session.add(item)
    session.flush()
    for unit in draft.units:
        session.add(WelfareItemUnit(item_id=item.id, unit_code=unit))
    session.flush()
    return item


def create_item(session: Session, actor: Actor, draft: ItemDraft, now: datetime) -> WelfareItem:
    """A cadre creates an item as a draft (kept in the database until published)."""
    now = as_utc(now)
    draft = normalize_draft(draft)
    owner = _owner_for(actor, draft)
    problems = check_draft(replace(draft, owner_unit=owner), known_units(session))
    if problems:
        raise invalid_item(problems[0])
    item = store_item(session, draft, owner, actor.telegram_id, now, ItemStatus.DRAFT)
    audit.record(session, actor.telegram_id, "welfare_create", f"welfare:{item.id}", mode=item.mode)
    return item


def update_item(session: Session, actor: Actor, item_id: int, draft: ItemDraft, now: datetime) -> WelfareItem:
    """Edit an item the cadre manages: a draft any time, a published item only before it opens."""
    now = as_utc(now)
    _managed_item(session, actor, item_id)
    item = _lock_item(session, item_id)
    assert item is not None
    if item.status in (ItemStatus.CLOSED, ItemStatus.CANCELLED):
        raise DomainError("welfare_item_ended")
    if item.status == ItemStatus.PUBLISHED and now >= item.opens_at:
        raise DomainError("welfare_item_started", opens_at=item.opens_at)
    draft = normalize_draft(draft)
    owner = _owner_for(actor, draft)
    problems = check_draft(replace(draft, owner_unit=owner), known_units(session))
    if not problems and item.status == ItemStatus.PUBLISHED and draft.closes_at <= now:
        problems.append(("closes_at", "in_past", ""))
    if problems:
        raise invalid_item(problems[0])
    for name, value in item_values(draft).items():
        setattr(item, name, value)
    item.owner_unit = owner
    item.updated_at = now
    if item.status == ItemStatus.PUBLISHED and item.mode == Mode.LOTTERY and item.seed is None:
        item.seed, item.seed_hash = _new_seed()
    elif item.mode != Mode.LOTTERY:
        item.seed = item.seed_hash = None
    session.exec(delete(WelfareItemUnit).where(col(WelfareItemUnit.item_id) == item_id))
    for unit in draft.units:
        session.add(WelfareItemUnit(item_id=item_id, unit_code=unit))
    session.flush()
    audit.record(session, actor.telegram_id, "welfare_update", f"welfare:{item_id}")
    _stock_may_return(session, item_id)
    return item


def publish(session: Session, actor: Actor, item_id: int, now: datetime) -> WelfareItem:
    """Publish a draft; a lottery gets its secret seed now, and its hash goes on the card."""
    now = as_utc(now)
    _managed_item(session, actor, item_id)
    item = _lock_item(session, item_id)
    assert item is not None
    if item.status != ItemStatus.DRAFT:
        raise DomainError("welfare_not_draft")
    if item.closes_at <= now:
        raise invalid_item(("closes_at", "in_past", ""))
    item.status = ItemStatus.PUBLISHED
    item.updated_at = now
    if item.mode == Mode.LOTTERY:
        item.seed, item.seed_hash = _new_seed()
    session.flush()
    audit.record(session, actor.telegram_id, "welfare_publish", f"welfare:{item_id}")
    return item


def close_early(session: Session, actor: Actor, item_id: int, now: datetime) -> WelfareItem:
    """End an item now: a draft or not-yet-open item is cancelled, an open one closed (draw/settle follow)."""
    now = as_utc(now)
    _managed_item(session, actor, item_id)
    item = _lock_item(session, item_id)
    assert item is not None
    phase = phase_of(item, now)
    if phase in (Phase.DRAFT, Phase.UPCOMING):
        item.status = ItemStatus.CANCELLED
    elif phase == Phase.OPEN:
        item.status = ItemStatus.CLOSED
    else:
        raise DomainError("welfare_item_ended")
    item.updated_at = now
    session.flush()
    audit.record(session, actor.telegram_id, "welfare_close", f"welfare:{item_id}", status=item.status)
    return item


def managed_item(session: Session, actor: Actor, item_id: int) -> tuple[WelfareItem, tuple[str, ...]]:
    """An item and its units, for a cadre who manages it (NotAllowed otherwise)."""
    return _managed_item(session, actor, item_id)


def list_managed(
    session: Session,
    actor: Actor,
    now: datetime,
    include_ended: bool = False,
    limit: int = CATALOG_SIZE,
    offset: int = 0,
) -> list[CatalogEntry]:
    """Items this cadre manages (drafts included), newest first (one page: limit, offset)."""
    actor.require_cadre()
    now = as_utc(now)
    query = select(WelfareItem)
    if not actor.is_bureau:
        # _manages in SQL, so that pages are full: owned by one of my units and offered only to my units.
        mine = [u for u in actor.cadre_units if u]
        offered = col(WelfareItemUnit.item_id) == col(WelfareItem.id)
        query = query.where(
            col(WelfareItem.owner_unit).in_(mine),
            exists().where(offered),
            ~exists().where(offered, col(WelfareItemUnit.unit_code).not_in(mine)),
        )
    if not include_ended:
        query = query.where(
            col(WelfareItem.status).in_([ItemStatus.DRAFT, ItemStatus.PUBLISHED]), col(WelfareItem.closes_at) > now
        )
    rows = session.exec(query.order_by(col(WelfareItem.id).desc()).offset(offset).limit(limit))
    return [CatalogEntry(item, phase_of(item, now)) for item in rows]


def item_claims(session: Session, actor: Actor, item_id: int, limit: int = 50, offset: int = 0) -> ItemClaims:
    """For the managing cadre: counts per claim status, stock, reminders and a page of claims."""
    item, units = _managed_item(session, actor, item_id)
    counted = session.exec(
        select(WelfareClaim.status, func.count()).where(WelfareClaim.item_id == item_id).group_by(WelfareClaim.status)
    )
    counts = {str(status): int(n) for status, n in counted}
    reminders = (session.exec(select(func.count()).where(WelfareReminder.item_id == item_id))).one()
    rows = session.exec(
        select(WelfareClaim, Member.name, Member.unit_code)
        .join(Member, col(Member.id) == col(WelfareClaim.member_id))
        .where(WelfareClaim.item_id == item_id)
        .order_by(col(WelfareClaim.id))
        .offset(offset)
        .limit(limit)
    )
    claim_rows = [
        ClaimRow(c.id, c.member_id, name or "", unit, c.status, c.voucher_code, c.created_at, c.redeemed_at)
        for c, name, unit in rows
    ]
    return ItemClaims(item, units, counts, claim_rows, int(reminders))
