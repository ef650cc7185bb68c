"""The lottery (抽签): a seed committed at publish, the K smallest sha256(seed:member) win, re-runnable."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_
from sqlmodel import Session, col, select

from models.errors import DomainError, NotFound
from models.welfare.drafts import as_utc
from models.welfare.queries import _end_window, _ended_without, _held, _recipients, _release, _reload_item
from models.welfare.tables import (
    ClaimStatus,
    DrawResult,
    ItemStatus,
    LotteryRecord,
    Mode,
    Recipient,
    WelfareClaim,
    WelfareItem,
    log,
)
from models.welfare.vouchers import _issue_voucher


def lottery_score(seed: str, member_id: int) -> str:
    """One applicant's score in the draw: sha256 of "<seed>:<member id>" as hex."""
    return hashlib.sha256(f"{seed}:{member_id}".encode("ascii")).hexdigest()


def verify_draw(seed: str, member_ids: Iterable[int], k: int) -> list[int]:
    """The winners of a draw, best score first: the k applicants with the smallest lottery_score."""
    applicants = sorted(set(member_ids))
    return sorted(applicants, key=lambda m: (lottery_score(seed, m), m))[: max(k, 0)]


def seed_hash_of(seed: str) -> str:
    """The commitment shown before the draw: sha256 of the seed as hex."""
    return hashlib.sha256(seed.encode("ascii")).hexdigest()


def _new_seed() -> tuple[str, str]:
    """A fresh secret seed and its published hash."""
    seed = secrets.token_hex(32)
    return seed, seed_hash_of(seed)


def due_draws(session: Session, now: datetime) -> list[int]:
    """Lottery items whose window has ended (or that were closed early) and are not drawn yet."""
    return _ended_without(session, Mode.LOTTERY, "drawn_at", now)


def draw_lottery(session: Session, item_id: int, now: datetime, tz: ZoneInfo) -> DrawResult:
    """Draw a closed lottery (formula in the module docstring): winners get vouchers, the others a refund."""
    now = as_utc(now)
    if not _end_window(session, item_id, Mode.LOTTERY, "drawn_at", now):
        return DrawResult(item_id, False, [], [])
    item = _reload_item(session, item_id)
    assert item is not None and item.seed is not None
    applicants = _held(session, item_id, ClaimStatus.APPLIED)
    winners = set(verify_draw(item.seed, (c.member_id for c in applicants), item.stock or 0))
    reachable = _recipients(session, (c.member_id for c in applicants))
    won: list[Recipient] = []
    lost: list[Recipient] = []
    for applicant in applicants:
        contact = reachable.get(applicant.member_id)
        if applicant.member_id in winners:
            code = _issue_voucher(session, applicant.id, ClaimStatus.APPLIED)
            if code is not None and contact:
                won.append(Recipient(applicant.member_id, *contact, claim_id=applicant.id, voucher_code=code))
        else:
            refunded = _release(session, applicant, ClaimStatus.LOST, now, tz, item.title)
            if refunded is not None and contact:
                lost.append(Recipient(applicant.member_id, *contact, claim_id=applicant.id, refunded=refunded))
    log.info("lottery %s drawn: %d applicants, %d prizes", item_id, len(applicants), item.stock or 0)
    return DrawResult(item_id, True, won, lost, seed=item.seed)


def lottery_record(session: Session, item_id: int) -> LotteryRecord:
    """What verify-draw needs: seed hash, seed (after the draw), prizes, applicants and recorded winners."""
    item = session.get(WelfareItem, item_id)
    if item is None or item.mode != Mode.LOTTERY or item.status == ItemStatus.DRAFT:
        raise NotFound("welfare_item_unknown")
    if item.drawn_at is None:
        raise DomainError("welfare_not_drawn")
    rows = list(
        session.exec(
            select(WelfareClaim.member_id, WelfareClaim.voucher_code).where(
                WelfareClaim.item_id == item_id,
                or_(col(WelfareClaim.status) == ClaimStatus.LOST, col(WelfareClaim.voucher_code).is_not(None)),
            )
        )
    )
    applicants = sorted({m for m, _ in rows})
    winners = sorted({m for m, code in rows if code is not None})
    return LotteryRecord(
        item_id, item.title, item.seed_hash, item.seed, item.total or 0, item.drawn_at, applicants, winners
    )
