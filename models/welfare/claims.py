"""The member side: the catalog, item cards, claims of every mode, cancellations, my welfare, reminders."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models import points
from models.clock import local_date
from models.errors import DomainError, InsufficientPoints, NotFound
from models.members import Member
from models.welfare.drafts import as_utc, phase_of
from models.welfare.queries import (
    _check_window,
    _live_claims,
    _lock_item,
    _refund_claim,
    _reload_claim,
    _reload_item,
    _require_member,
    _stock_may_return,
    _visible_item,
)
from models.welfare.tables import (
    CATALOG_SIZE,
    CODE_ATTEMPTS,
    FIRST_STATUS,
    LIVE,
    STOCK_MODES,
    CancelResult,
    CatalogEntry,
    ClaimResult,
    ClaimStatus,
    ItemCard,
    ItemStatus,
    LimitReached,
    Mode,
    MyClaim,
    Phase,
    SoldOut,
    WelfareClaim,
    WelfareItem,
    WelfareItemUnit,
    WelfareReminder,
    WindowClosed,
)
from models.welfare.vouchers import _fresh_code


def list_catalog(
    session: Session, member: Member, now: datetime, limit: int = CATALOG_SIZE, offset: int = 0
) -> list[CatalogEntry]:
    """Items open now or upcoming that the member's unit may claim, newest first (one page: limit, offset)."""
    member = _require_member(member)
    now = as_utc(now)
    offered_to_some = exists().where(col(WelfareItemUnit.item_id) == col(WelfareItem.id))
    offered_to_mine = exists().where(
        col(WelfareItemUnit.item_id) == col(WelfareItem.id), col(WelfareItemUnit.unit_code) == member.unit_code
    )
    rows = session.exec(
        select(WelfareItem)
        .where(
            WelfareItem.status == ItemStatus.PUBLISHED,
            col(WelfareItem.closes_at) > now,
            col(WelfareItem.drawn_at).is_(None),
            col(WelfareItem.settled_at).is_(None),
            or_(~offered_to_some, offered_to_mine),
        )
        .order_by(col(WelfareItem.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return [CatalogEntry(item, phase_of(item, now)) for item in rows]


def item_card(session: Session, member: Member, item_id: int, now: datetime) -> ItemCard:
    """One item as the member sees it: stock, phase, their own claims, whether they asked to be reminded."""
    member = _require_member(member)
    now = as_utc(now)
    item, units = _visible_item(session, member, item_id)
    mine = list(
        session.exec(
            select(WelfareClaim)
            .where(WelfareClaim.item_id == item_id, WelfareClaim.member_id == member.id)
            .order_by(col(WelfareClaim.id).desc())
        )
    )
    taken = (
        session.exec(select(func.count()).where(WelfareClaim.item_id == item_id, col(WelfareClaim.status).in_(LIVE)))
    ).one()
    used = {c.seq for c in mine if c.status in LIVE}
    free = [s for s in range(1, item.per_member_limit + 1) if s not in used]
    reminded = session.get(WelfareReminder, (item_id, member.id)) is not None
    balance = points.balance_of(session, member.id)
    return ItemCard(item, units, phase_of(item, now), mine, int(taken), free[0] if free else None, reminded, balance)


def claim_precheck(session: Session, member: Member, item_id: int, now: datetime) -> WelfareItem:
    """Cheap read-only check that a claim could succeed; raises the error the write path would raise."""
    member = _require_member(member)
    now = as_utc(now)
    item, _units = _visible_item(session, member, item_id)
    _check_window(item, now)
    if item.mode in STOCK_MODES and item.stock == 0:
        raise SoldOut()
    if len(_live_claims(session, item_id, member.id)) >= item.per_member_limit:
        raise LimitReached(limit=item.per_member_limit)
    balance = points.balance_of(session, member.id)
    if balance < item.cost:
        raise InsufficientPoints(balance=balance, cost=item.cost)
    return item


def _raise_unavailable(session: Session, item_id: int, now: datetime) -> None:
    """The guarded UPDATE matched nothing: say why."""
    item = _reload_item(session, item_id)
    if item is None:
        raise NotFound("welfare_item_unknown")
    _check_window(item, now)
    raise SoldOut()


def _insert_claim(
    session: Session, item: WelfareItem, member_id: int, seq: int, status: ClaimStatus, now: datetime
) -> WelfareClaim:
    """Insert the claim in a savepoint; the partial unique index refuses a second live claim on the slot."""
    for _ in range(CODE_ATTEMPTS):
        code = _fresh_code(session) if status == ClaimStatus.ACTIVE else None
        claim = WelfareClaim(
            item_id=item.id,
            member_id=member_id,
            seq=seq,
            status=status,
            points=item.cost,
            voucher_code=code,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(claim)
                session.flush()
        except IntegrityError:
            if any(c.seq == seq for c in _live_claims(session, item.id, member_id)):
                raise LimitReached(limit=item.per_member_limit) from None
            continue  # a voucher code taken concurrently: draw another
        return claim
    raise RuntimeError("no free voucher code found")


def _take(
    session: Session,
    member: Member,
    item_id: int,
    now: datetime,
    tz: ZoneInfo,
    seq: int | None,
    expected_mode: Mode | None,
) -> ClaimResult:
    """The one claim path of every mode: lock and check the item, take a slot, stock and points."""
    member = _require_member(member)
    now = as_utc(now)
    item, _units = _visible_item(session, member, item_id)
    if expected_mode is not None and item.mode != expected_mode:
        raise DomainError("welfare_wrong_mode")
    limit = item.per_member_limit
    if seq is not None:
        if not 1 <= seq <= limit:
            raise DomainError("button_expired")
        same = [c for c in _live_claims(session, item_id, member.id) if c.seq == seq]
        if same:
            # A double click, a repeated update or a second device: the slot is already ours.
            return ClaimResult(same[0], False, points.balance_of(session, member.id), item.stock)
    consumes = item.mode in STOCK_MODES
    # Lock the item row; the same statement checks the window and that stock is left.
    guard = update(WelfareItem).where(
        col(WelfareItem.id) == item_id,
        col(WelfareItem.status) == ItemStatus.PUBLISHED,
        col(WelfareItem.opens_at) <= now,
        col(WelfareItem.closes_at) > now,
        col(WelfareItem.drawn_at).is_(None),
        col(WelfareItem.settled_at).is_(None),
    )
    if consumes:
        guard = guard.where(or_(col(WelfareItem.stock).is_(None), col(WelfareItem.stock) > 0))
    locked = session.exec(
        guard.values(stock=col(WelfareItem.stock))
        .returning(col(WelfareItem.id))
        .execution_options(synchronize_session=False)
    )
    if locked.first() is None:
        _raise_unavailable(session, item_id, now)
    # What a cadre saved just before the lock was ours (cost, limit) counts, not what we read before it.
    item = _reload_item(session, item_id)
    assert item is not None
    limit = item.per_member_limit
    used = {c.seq: c for c in _live_claims(session, item_id, member.id)}
    if seq is None:
        free = [s for s in range(1, limit + 1) if s not in used]
        if not free:
            raise LimitReached(limit=limit)
        seq = free[0]
    elif seq in used:
        return ClaimResult(used[seq], False, points.balance_of(session, member.id), item.stock)
    new_claim = _insert_claim(session, item, member.id, seq, FIRST_STATUS[Mode(item.mode)], now)
    stock_left = item.stock
    if consumes:
        taken = session.exec(
            update(WelfareItem)
            .where(
                col(WelfareItem.id) == item_id,
                or_(col(WelfareItem.stock).is_(None), col(WelfareItem.stock) > 0),
            )
            .values(stock=col(WelfareItem.stock) - 1)
            .returning(col(WelfareItem.stock))
            .execution_options(synchronize_session=False)
        )
        row = taken.first()
        if row is None:
            raise SoldOut()
        stock_left = row[0]
    if item.cost > 0:
        key = f"welfare:claim:{new_claim.id}"
        balance = points.spend(session, member.id, item.cost, key, local_date(tz, now), item.title, fresh_key=True)
    else:
        balance = points.balance_of(session, member.id)
    return ClaimResult(new_claim, True, balance, stock_left)


def claim(
    session: Session, member: Member, item_id: int, now: datetime, tz: ZoneInfo, seq: int | None = None
) -> ClaimResult:
    """Claim, apply or join, whatever the item's mode; `seq` (from the button) makes repeats harmless."""
    return _take(session, member, item_id, now, tz, seq, None)


def claim_first_come(
    session: Session, member: Member, item_id: int, now: datetime, tz: ZoneInfo, seq: int | None = None
) -> ClaimResult:
    """Grab one of a first-come item's stock: voucher now, points spent, stock down by one, all at once."""
    return _take(session, member, item_id, now, tz, seq, Mode.FIRST_COME)


def apply_lottery(session: Session, member: Member, item_id: int, now: datetime, tz: ZoneInfo) -> ClaimResult:
    """Apply for a lottery: points are held until the draw (refunded if not drawn)."""
    return _take(session, member, item_id, now, tz, 1, Mode.LOTTERY)


def claim_universal(session: Session, member: Member, item_id: int, now: datetime, tz: ZoneInfo) -> ClaimResult:
    """Claim a universal item (one per member, within the optional total cap)."""
    return _take(session, member, item_id, now, tz, 1, Mode.UNIVERSAL)


def join_group_buy(session: Session, member: Member, item_id: int, now: datetime, tz: ZoneInfo) -> ClaimResult:
    """Join a group-buy deal: points are held until the deadline."""
    return _take(session, member, item_id, now, tz, 1, Mode.GROUP_BUY)


def _cancel(
    session: Session, member: Member, claim_id: int, now: datetime, tz: ZoneInfo, expected_mode: Mode | None
) -> CancelResult:
    """Cancel the member's claim (withdraw while held, or an unredeemed voucher) and refund it."""
    member = _require_member(member)
    now = as_utc(now)
    found = session.get(WelfareClaim, claim_id)
    if found is None or found.member_id != member.id:
        raise NotFound("welfare_claim_unknown")
    item = _lock_item(session, found.item_id)
    assert item is not None  # a claim always has its item
    if expected_mode is not None and item.mode != expected_mode:
        raise DomainError("welfare_wrong_mode")
    current = _reload_claim(session, claim_id)
    assert current is not None
    status = ClaimStatus(current.status)
    if status in (ClaimStatus.APPLIED, ClaimStatus.JOINED):
        # Withdrawing is possible only while the window is open: the draw or settlement works on a fixed set.
        _check_window(item, now)
        give_back_stock = item.mode == Mode.GROUP_BUY
    elif status == ClaimStatus.ACTIVE:
        if item.redeem_by is not None and now > item.redeem_by:
            raise DomainError("welfare_not_cancellable", status=ClaimStatus.EXPIRED.value)
        give_back_stock = item.mode in (Mode.FIRST_COME, Mode.UNIVERSAL)
    else:
        raise DomainError("welfare_not_cancellable", status=status.value)
    done = session.exec(
        update(WelfareClaim)
        .where(col(WelfareClaim.id) == claim_id, col(WelfareClaim.status) == status)
        .values(status=ClaimStatus.CANCELLED, cancelled_at=now)
        .returning(col(WelfareClaim.id))
        .execution_options(synchronize_session=False)
    )
    if done.first() is None:
        # Redeemed (or expired) by someone else in the meantime: exactly one of the two wins.
        latest = _reload_claim(session, claim_id)
        raise DomainError("welfare_not_cancellable", status=latest.status if latest else "cancelled")
    if give_back_stock:
        session.exec(
            update(WelfareItem)
            .where(col(WelfareItem.id) == item.id, col(WelfareItem.stock).is_not(None))
            .values(stock=col(WelfareItem.stock) + 1)
            .execution_options(synchronize_session=False)
        )
        _stock_may_return(session, item.id)
    refunded = _refund_claim(session, current, now, tz, item.title)
    balance = points.balance_of(session, member.id)
    return CancelResult(_reload_claim(session, claim_id), refunded, balance)


def cancel_claim(session: Session, member: Member, claim_id: int, now: datetime, tz: ZoneInfo) -> CancelResult:
    """Cancel one's own unredeemed claim (or open application): points and stock come back at once."""
    return _cancel(session, member, claim_id, now, tz, None)


def _held_claim(session: Session, member: Member, item_id: int, status: ClaimStatus) -> int:
    """The id of the member's claim on the item in `status`; NotFound if none."""
    member = _require_member(member)
    row = (
        session.exec(
            select(WelfareClaim.id).where(
                WelfareClaim.item_id == item_id, WelfareClaim.member_id == member.id, WelfareClaim.status == status
            )
        )
    ).first()
    if row is None:
        raise NotFound("welfare_claim_unknown")
    return row


def withdraw_application(session: Session, member: Member, item_id: int, now: datetime, tz: ZoneInfo) -> CancelResult:
    """Take back a lottery application before the window closes; the held points come back."""
    claim_id = _held_claim(session, member, item_id, ClaimStatus.APPLIED)
    return _cancel(session, member, claim_id, now, tz, Mode.LOTTERY)


def leave_group_buy(session: Session, member: Member, item_id: int, now: datetime, tz: ZoneInfo) -> CancelResult:
    """Leave a group-buy before the deadline; the held points and the place come back."""
    claim_id = _held_claim(session, member, item_id, ClaimStatus.JOINED)
    return _cancel(session, member, claim_id, now, tz, Mode.GROUP_BUY)


def release_member(session: Session, member_id: int, now: datetime, tz: ZoneInfo) -> list[int]:
    """An account is being deleted: every live claim of the member is released, in one go, whatever the window.

    Applications and group-buy places are withdrawn (a later draw or settlement cannot pick them), unredeemed
    vouchers are given back, and what each held is refunded (ledger rows like any cancellation, so the ledger
    still sums to the balance); a voucher already past its redeem-by time expires as it would have anyway.
    Stock comes back as on a cancellation; their reminders go. Returns the ids of items whose stock came back.
    """
    now = as_utc(now)
    held = (ClaimStatus.APPLIED, ClaimStatus.JOINED, ClaimStatus.ACTIVE)
    mine = [col(WelfareClaim.member_id) == member_id, col(WelfareClaim.status).in_(held)]
    item_ids = sorted(set(session.exec(select(WelfareClaim.item_id).where(*mine))))
    # Every item row first, in id order, then claims, then the member's row: the module's one lock order.
    items = {}
    for item_id in item_ids:
        item = _lock_item(session, item_id)
        assert item is not None  # a claim always has its item
        items[item_id] = item
    claims = session.exec(
        select(WelfareClaim).where(*mine).order_by(col(WelfareClaim.id)).execution_options(populate_existing=True)
    ).all()
    restocked: set[int] = set()
    for claim in claims:
        item = items[claim.item_id]
        status = ClaimStatus(claim.status)
        expired = status == ClaimStatus.ACTIVE and item.redeem_by is not None and now > item.redeem_by
        values = {"status": ClaimStatus.EXPIRED} if expired else {"status": ClaimStatus.CANCELLED, "cancelled_at": now}
        done = session.exec(
            update(WelfareClaim)
            .where(col(WelfareClaim.id) == claim.id, col(WelfareClaim.status) == status)
            .values(**values)
            .returning(col(WelfareClaim.id))
            .execution_options(synchronize_session=False)
        )
        if done.first() is None or expired:
            continue
        joined = status == ClaimStatus.JOINED and item.mode == Mode.GROUP_BUY
        voucher = status == ClaimStatus.ACTIVE and item.mode in (Mode.FIRST_COME, Mode.UNIVERSAL)
        if (joined or voucher) and item.stock is not None:
            session.exec(
                update(WelfareItem)
                .where(col(WelfareItem.id) == item.id, col(WelfareItem.stock).is_not(None))
                .values(stock=col(WelfareItem.stock) + 1)
                .execution_options(synchronize_session=False)
            )
            restocked.add(item.id)
        _refund_claim(session, claim, now, tz, item.title)
    for item_id in sorted(restocked):
        _stock_may_return(session, item_id)
    session.exec(delete(WelfareReminder).where(col(WelfareReminder.member_id) == member_id))
    return sorted(restocked)


def my_claims(session: Session, member_id: int, limit: int = CATALOG_SIZE, offset: int = 0) -> list[MyClaim]:
    """The member's claims with their items, newest first (one page: limit, offset)."""
    rows = session.exec(
        select(WelfareClaim, WelfareItem)
        .join(WelfareItem, col(WelfareItem.id) == col(WelfareClaim.item_id))
        .where(WelfareClaim.member_id == member_id)
        .order_by(col(WelfareClaim.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return [MyClaim(c, i) for c, i in rows]


def my_voucher(session: Session, member: Member, claim_id: int) -> MyClaim:
    """One of the member's own vouchers (to show its code and QR); NotFound for anyone else's."""
    member = _require_member(member)
    found = session.get(WelfareClaim, claim_id)
    if found is None or found.member_id != member.id or found.voucher_code is None:
        raise NotFound("welfare_claim_unknown")
    item = session.get(WelfareItem, found.item_id)
    assert item is not None
    return MyClaim(found, item)


def remind_me(session: Session, member: Member, item_id: int, now: datetime) -> bool:
    """Ask for a message when an upcoming item opens; True if newly asked, False if asked before."""
    member = _require_member(member)
    now = as_utc(now)
    item, _units = _visible_item(session, member, item_id)
    phase = phase_of(item, now)
    if phase == Phase.OPEN:
        raise DomainError("welfare_already_open")
    if phase != Phase.UPCOMING:
        raise WindowClosed(closes_at=item.closes_at)
    if session.get(WelfareReminder, (item_id, member.id)) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(WelfareReminder(item_id=item_id, member_id=member.id, created_at=now))
            session.flush()
    except IntegrityError:
        return False  # a second device asked at the same moment
    return True
