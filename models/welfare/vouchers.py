"""Vouchers: issuing codes, redeeming by cadres, and expiry after the redeem-by time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models import audit, vouchers
from models.errors import DomainError, NotAllowed, NotFound
from models.members import Actor, Member
from models.welfare.drafts import as_utc
from models.welfare.queries import _lock_item, _recipients, _reload_claim
from models.welfare.tables import (
    CODE_ATTEMPTS,
    AlreadyRedeemed,
    ClaimStatus,
    Recipient,
    RedeemResult,
    WelfareClaim,
    WelfareItem,
)


def _fresh_code(session: Session) -> str:
    """A voucher code no claim has yet."""
    for _ in range(CODE_ATTEMPTS):
        code = vouchers.new_code()
        taken = (session.exec(select(WelfareClaim.id).where(WelfareClaim.voucher_code == code))).first()
        if taken is None:
            return code
    raise RuntimeError("no free voucher code found")


def _issue_voucher(session: Session, claim_id: int, from_status: ClaimStatus) -> str | None:
    """Turn a held claim into an active voucher; None if the claim was not in `from_status` any more."""
    for _ in range(CODE_ATTEMPTS):
        code = _fresh_code(session)
        try:
            with session.begin_nested():
                result = session.exec(
                    update(WelfareClaim)
                    .where(col(WelfareClaim.id) == claim_id, col(WelfareClaim.status) == from_status)
                    .values(status=ClaimStatus.ACTIVE, voucher_code=code)
                    .returning(col(WelfareClaim.id))
                    .execution_options(synchronize_session=False)
                )
                done = result.first() is not None
        except IntegrityError:
            continue  # the same code was committed concurrently: take another
        return code if done else None
    raise RuntimeError("no free voucher code found")


def _name_of_telegram_user(session: Session, telegram_id: int | None) -> str:
    """A cadre's name for 'redeemed by' (their Telegram id when unknown)."""
    if telegram_id is None:
        return ""
    name = (session.exec(select(Member.name).where(Member.telegram_id == telegram_id))).first()
    return name or str(telegram_id)


def _voucher_for_cadre(session: Session, actor: Actor, code: str) -> tuple[WelfareClaim, Member, WelfareItem]:
    """The voucher with this code, if this cadre may redeem it (claimant's or item's unit, or the bureau)."""
    actor.require_cadre()
    canonical = vouchers.normalize_code(code)
    found = None
    if canonical is not None:
        found = (session.exec(select(WelfareClaim).where(WelfareClaim.voucher_code == canonical))).first()
    if found is None:
        raise NotFound("welfare_voucher_unknown", code=code.strip()[:20])
    claimant = session.get(Member, found.member_id)
    item = session.get(WelfareItem, found.item_id)
    assert claimant is not None and item is not None
    owner_cadre = item.owner_unit is not None and actor.can_manage(item.owner_unit)
    if not (actor.can_manage(claimant.unit_code) or owner_cadre):
        raise NotAllowed()
    return found, claimant, item


def voucher_for_redeem(session: Session, actor: Actor, code: str) -> RedeemResult:
    """Look a voucher up for the redeem screen (nothing changes; redeem() does the handing out)."""
    found, claimant, item = _voucher_for_cadre(session, actor, code)
    return RedeemResult(found, item, claimant.name or "")


def redeem(session: Session, actor: Actor, code: str, now: datetime) -> RedeemResult:
    """A cadre of the claimant's or the item's unit (or the bureau) hands out the item: active -> redeemed."""
    now = as_utc(now)
    found, claimant, item = _voucher_for_cadre(session, actor, code)
    if (actor.member is not None and actor.member.id == found.member_id) or claimant.telegram_id == actor.telegram_id:
        # Handing an item to oneself needs another cadre's eyes.
        raise NotAllowed("welfare_self_redeem")
    if found.status == ClaimStatus.ACTIVE and item.redeem_by is not None and now > item.redeem_by:
        raise DomainError("welfare_voucher_expired", redeem_by=item.redeem_by)
    done = session.exec(
        update(WelfareClaim)
        .where(col(WelfareClaim.id) == found.id, col(WelfareClaim.status) == ClaimStatus.ACTIVE)
        .values(status=ClaimStatus.REDEEMED, redeemed_at=now, redeemed_by_telegram_id=actor.telegram_id)
        .returning(col(WelfareClaim.id))
        .execution_options(synchronize_session=False)
    )
    latest = _reload_claim(session, found.id)
    assert latest is not None
    if done.first() is None:
        if latest.status == ClaimStatus.REDEEMED:
            by = _name_of_telegram_user(session, latest.redeemed_by_telegram_id)
            raise AlreadyRedeemed(at=latest.redeemed_at, by=by)
        if latest.status == ClaimStatus.EXPIRED:
            raise DomainError("welfare_voucher_expired", redeem_by=item.redeem_by or now)
        raise DomainError("welfare_voucher_cancelled")
    audit.record(session, actor.telegram_id, "welfare_redeem", f"welfare_claim:{found.id}")
    return RedeemResult(latest, item, claimant.name or "")


def expire_vouchers(session: Session, now: datetime) -> int:
    """Active vouchers past their item's redeem-by time become expired; returns how many."""
    now = as_utc(now)
    past = select(WelfareItem.id).where(col(WelfareItem.redeem_by).is_not(None), col(WelfareItem.redeem_by) < now)
    result = session.exec(
        update(WelfareClaim)
        .where(col(WelfareClaim.status) == ClaimStatus.ACTIVE, col(WelfareClaim.item_id).in_(past))
        .values(status=ClaimStatus.EXPIRED)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def due_expiries(session: Session, now: datetime) -> list[int]:
    """Items past their redeem-by time that still have active vouchers."""
    now = as_utc(now)
    rows = session.exec(
        select(WelfareItem.id)
        .where(
            col(WelfareItem.redeem_by).is_not(None),
            col(WelfareItem.redeem_by) < now,
            exists().where(
                col(WelfareClaim.item_id) == col(WelfareItem.id), col(WelfareClaim.status) == ClaimStatus.ACTIVE
            ),
        )
        .order_by(col(WelfareItem.id))
    )
    return list(rows)


def expire_item_vouchers(session: Session, item_id: int, now: datetime) -> list[Recipient]:
    """Like expire_vouchers for one item, returning the holders to tell (each expired claim once)."""
    now = as_utc(now)
    item = _lock_item(session, item_id)
    if item is None or item.redeem_by is None or item.redeem_by >= now:
        return []
    result = session.exec(
        update(WelfareClaim)
        .where(col(WelfareClaim.item_id) == item_id, col(WelfareClaim.status) == ClaimStatus.ACTIVE)
        .values(status=ClaimStatus.EXPIRED)
        .returning(col(WelfareClaim.id), col(WelfareClaim.member_id), col(WelfareClaim.voucher_code))
        .execution_options(synchronize_session=False)
    )
    expired = sorted((row[0], row[1], row[2]) for row in result)
    reachable = _recipients(session, (m for _, m, _ in expired))
    return [
        Recipient(member_id, *reachable[member_id], claim_id=claim_id, voucher_code=code)
        for claim_id, member_id, code in expired
        if member_id in reachable
    ]
