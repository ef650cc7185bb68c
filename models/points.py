"""Points (积分): an append-only ledger; the member's balance moves only by conditional UPDATE."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from config import Limits, PointsRule
from models import audit
from models.clock import utcnow
from models.errors import BadInput, InsufficientPoints, NotAllowed, NotFound
from models.members import Actor, Member, Status

GRANT_RULE = "cadre_grant"
DEDUCT_RULE = "cadre_deduct"
# The monthly ranking ranks points EARNED this month net of cadre deductions: every earning rule and cadre grants
# count, cadre deductions are subtracted. Spending on welfare and its refunds are not earning and do not count.
NOT_EARNINGS = {"refund", "spend"}
CAP_RETRIES = 8


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "points_ledger"
    __table_args__ = (CheckConstraint("delta <> 0", name="ck_ledger_delta_nonzero"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    delta: int
    rule: str = Field(max_length=40)
    reason: str | None = Field(default=None, max_length=200)
    idem_key: str = Field(max_length=120, unique=True)
    actor_telegram_id: int | None = Field(default=None, sa_type=BigInteger)
    day: date = Field(index=True)
    created_at: datetime = Field(default_factory=utcnow)


class DailyTotal(SQLModel, table=True):
    """Points a member has earned under one rule on one day: the counter behind daily caps."""

    __tablename__ = "points_daily"
    __table_args__ = (CheckConstraint("total >= 0", name="ck_daily_total_nonneg"),)

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    rule: str = Field(primary_key=True, max_length=40)
    day: date = Field(primary_key=True)
    total: int = 0


class DeductExceedsBalance(InsufficientPoints):
    """A cadre's deduction is more than the member has; params: name, balance, amount (told to the cadre)."""

    key = "deduct_exceeds_balance"


class Outcome(enum.StrEnum):
    AWARDED = "awarded"
    DUPLICATE = "duplicate"
    CAPPED = "capped"


@dataclass(frozen=True)
class AwardResult:
    outcome: Outcome
    amount: int


def _existing(session: Session, idem_key: str) -> LedgerEntry | None:
    return (session.exec(select(LedgerEntry).where(LedgerEntry.idem_key == idem_key))).first()


def _reserve_cap(session: Session, member_id: int, rule: PointsRule, day: date, amount: int) -> int:
    """Take up to `amount` from today's cap by compare-and-set; returns what was granted (maybe 0)."""
    for _ in range(CAP_RETRIES):
        row = session.get(DailyTotal, (member_id, rule.name, day), populate_existing=True)
        old = row.total if row is not None else 0
        granted = min(amount, rule.daily_cap - old)
        if granted <= 0:
            return 0
        if row is None:
            try:
                with session.begin_nested():
                    session.add(DailyTotal(member_id=member_id, rule=rule.name, day=day, total=granted))
                    session.flush()
                return granted
            except IntegrityError:
                continue
        result = session.exec(
            update(DailyTotal)
            .where(
                col(DailyTotal.member_id) == member_id,
                col(DailyTotal.rule) == rule.name,
                col(DailyTotal.day) == day,
                col(DailyTotal.total) == old,
            )
            .values(total=old + granted)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            return granted
    return 0


def _move(
    session: Session,
    member_id: int,
    delta: int,
    rule: str,
    idem_key: str,
    day: date,
    reason: str | None,
    actor_telegram_id: int | None,
) -> int:
    """Write the ledger row and move the balance; returns the new balance. Raises InsufficientPoints."""
    session.add(
        LedgerEntry(
            member_id=member_id,
            delta=delta,
            rule=rule,
            reason=reason,
            idem_key=idem_key,
            actor_telegram_id=actor_telegram_id,
            day=day,
        )
    )
    session.flush()
    result = session.exec(
        update(Member)
        .where(col(Member.id) == member_id, col(Member.balance) + delta >= 0)
        .values(balance=col(Member.balance) + delta)
        .returning(col(Member.balance))
        .execution_options(synchronize_session=False)
    )
    balance = result.scalar_one_or_none()
    if balance is None:
        current = balance_of(session, member_id)
        raise InsufficientPoints(balance=current, cost=-delta)
    return balance


def award(
    session: Session,
    member_id: int,
    rule: PointsRule,
    idem_key: str,
    day: date,
    amount: int | None = None,
    reason: str | None = None,
    actor_telegram_id: int | None = None,
) -> AwardResult:
    """Pay points under a rule, once per idempotency key, within the rule's daily cap.

    A repeated key pays nothing (DUPLICATE); a reached cap pays nothing (CAPPED) or only what is
    left of it. Runs in a savepoint so a refused award never undoes the caller's other work.
    """
    wanted = rule.amount if amount is None else amount
    if wanted <= 0:
        raise ValueError("an award must be positive")
    if _existing(session, idem_key) is not None:
        return AwardResult(Outcome.DUPLICATE, 0)
    try:
        with session.begin_nested():
            granted = wanted
            if rule.daily_cap:
                granted = _reserve_cap(session, member_id, rule, day, wanted)
                if granted == 0:
                    return AwardResult(Outcome.CAPPED, 0)
            _move(session, member_id, granted, rule.name, idem_key, day, reason, actor_telegram_id)
    except IntegrityError:
        # The same key committed by a concurrent transaction: already paid.
        return AwardResult(Outcome.DUPLICATE, 0)
    return AwardResult(Outcome.AWARDED, granted)


def spend(
    session: Session,
    member_id: int,
    amount: int,
    idem_key: str,
    day: date,
    reason: str,
    rule: str = "spend",
    *,
    fresh_key: bool = False,
) -> int:
    """Take points for something bought; returns the new balance. Same key twice charges once.

    fresh_key: the key names a row made in this same transaction (a new claim's id), so no ledger row can have it
    yet and the lookup is skipped; the UNIQUE idem_key stays the last guard.
    """
    if amount <= 0:
        raise ValueError("a spend must be positive")
    if not fresh_key and _existing(session, idem_key) is not None:
        return balance_of(session, member_id)
    return _move(session, member_id, -amount, rule, idem_key, day, reason, None)


def refund(session: Session, member_id: int, amount: int, idem_key: str, day: date, reason: str) -> int:
    """Give back points taken by spend() (cancelled claim, lost lottery); same key twice refunds once."""
    if amount <= 0:
        raise ValueError("a refund must be positive")
    if _existing(session, idem_key) is not None:
        return balance_of(session, member_id)
    return _move(session, member_id, amount, "refund", idem_key, day, reason, None)


def adjust_by_cadre(
    session: Session,
    actor: Actor,
    target: Member,
    amount: int,
    reason: str,
    idem_key: str,
    day: date,
    limits: Limits,
) -> int:
    """A cadre grants (amount > 0) or deducts (amount < 0) points with a reason; audited, scoped to their units."""
    actor.require_cadre()
    if not target.verified:
        raise NotFound("member_unknown")
    actor.require_unit(target.unit_code)
    oneself = actor.telegram_id == target.telegram_id or (actor.member is not None and actor.member.id == target.id)
    if amount > 0 and oneself:
        # Points for oneself need another cadre's decision.
        raise NotAllowed("self_grant")
    reason = " ".join(reason.split())
    if not reason:
        raise BadInput("reason_missing")
    if len(reason) > limits.reason_max_length:
        raise BadInput("reason_too_long", max=limits.reason_max_length)
    if amount == 0 or abs(amount) > limits.grant_max_amount:
        raise BadInput("amount_out_of_range", max=limits.grant_max_amount)
    if _existing(session, idem_key) is not None:
        return balance_of(session, target.id)
    rule = GRANT_RULE if amount > 0 else DEDUCT_RULE
    try:
        balance = _move(session, target.id, amount, rule, idem_key, day, reason, actor.telegram_id)
    except InsufficientPoints as refused:
        # Said to the cadre, about the member (the generic message speaks to the member about their own balance).
        raise DeductExceedsBalance(name=target.name or "", balance=refused.params["balance"], amount=-amount) from None
    audit.record(session, actor.telegram_id, "grant" if amount > 0 else "deduct", f"member:{target.id}", amount=amount)
    return balance


def balance_of(session: Session, member_id: int) -> int:
    """The member's current balance."""
    result = session.exec(select(Member.balance).where(Member.id == member_id))
    return result.one()


def history(session: Session, member_id: int, page: int, page_size: int) -> tuple[list[LedgerEntry], int]:
    """One page of the member's ledger, newest first, and the number of pages."""
    total = (session.exec(select(func.count()).where(LedgerEntry.member_id == member_id))).one()
    pages = max(1, -(-total // page_size))
    page = min(max(page, 0), pages - 1)
    rows = session.exec(
        select(LedgerEntry)
        .where(LedgerEntry.member_id == member_id)
        .order_by(col(LedgerEntry.id).desc())
        .offset(page * page_size)
        .limit(page_size)
    )
    return list(rows), pages


@dataclass(frozen=True)
class RankRow:
    rank: int
    member_id: int
    name: str
    earned: int


def monthly_ranking(session: Session, unit_code: str, month_start: date, size: int) -> list[RankRow]:
    """This month's top earners in a unit: points earned net of cadre deductions (see NOT_EARNINGS), more than 0.

    Members who opted out are left out.
    """
    earned = func.sum(LedgerEntry.delta).label("earned")
    rows = session.exec(
        select(Member.id, Member.name, earned)
        .join(Member, col(Member.id) == col(LedgerEntry.member_id))
        .where(
            Member.unit_code == unit_code,
            Member.status == Status.VERIFIED,
            col(Member.ranking_opt_out).is_(False),
            col(LedgerEntry.day) >= month_start,
            col(LedgerEntry.rule).not_in(NOT_EARNINGS),
        )
        .group_by(Member.id, Member.name)
        .having(earned > 0)
        .order_by(earned.desc(), Member.id)
        .limit(size)
    )
    return [RankRow(i + 1, member_id, name or "", total) for i, (member_id, name, total) in enumerate(rows)]


def ledger_sum(session: Session, member_id: int) -> int:
    """Sum of the member's ledger (always equals the balance)."""
    result = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.delta), 0)).where(LedgerEntry.member_id == member_id)
    )
    return int(result.one())
