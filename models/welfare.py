"""Welfare (会员福利): items, claims and vouchers, open to every eligible member on equal terms (机会均等).

Modes
    first_come (抢福利)  claim while the window is open and stock lasts; `stock` = items left.
    lottery (抽签)       apply during the window (points held); a verifiable draw at close; `stock` = prizes.
    universal (普惠)     every eligible member may claim one; `stock` = optional total cap.
    group_buy (团购)     join before the deadline (points held); the deal holds if at least `threshold`
                         members joined, otherwise everyone is released and refunded; `stock` = optional
                         maximum of participants.

Safety under load: every operation runs in the caller's one transaction. Stock and points move only by
conditional UPDATE (stock through `... WHERE stock > 0`, points through models.points with idempotency
keys "welfare:claim:<claim id>" and "welfare:refund:<claim id>"), and a partial UNIQUE index on
(item_id, member_id, seq) over the live statuses keeps the per-member limit even if the code were wrong.
Every path that changes claims of an item first locks the item row (a guarded UPDATE or SELECT ... FOR
UPDATE), so claims, cancellations, draws and settlements of one item are serialised, and locks are always
taken in the order item row -> claim rows -> member rows (no deadlocks). A domain error is raised before
the caller commits, and the caller's rollback undoes whatever was written.

Verifiable lottery
    When a lottery item is published the bot draws a secret seed (64 hex characters from `secrets`) and
    the item card shows seed_hash = sha256(seed). At close the draw is:

        applicants = the ids of the members who applied and did not withdraw, sorted ascending
        score(m)   = sha256(f"{seed}:{m}".encode("ascii")).hexdigest()
        winners    = the K applicants with the smallest score (K = number of prizes; ties are impossible
                     because the inputs differ; the smaller id would win one)

    and the seed is published. Anyone can check that sha256(seed) is the hash shown before the draw and
    recompute the winners with `verify_draw(seed, applicants, K)` (or `python bot.py verify-draw ITEM_ID`).
    After the draw, the applicants are exactly the item's claims that lost or received a voucher.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, CheckConstraint, Index, delete, exists, func, or_, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from models import audit, points, vouchers
from models.clock import local_date, utcnow
from models.db import notify
from models.errors import BadInput, DomainError, InsufficientPoints, NotAllowed, NotFound, NotRegistered
from models.members import Actor, Member, Status, UnitRow
from models.stock_cache import STOCK_CHANNEL

log = logging.getLogger(__name__)

TITLE_MAX = 60
DESCRIPTION_MAX = 1000
PICKUP_MAX = 300
PHOTO_ID_MAX = 200
MAX_COST = 1_000_000
MAX_STOCK = 1_000_000
MAX_PER_MEMBER = 20
CATALOG_SIZE = 30
# Fresh voucher codes tried before giving up (a collision among 8.5e11 codes is already rare).
CODE_ATTEMPTS = 8


class Mode(enum.StrEnum):
    FIRST_COME = "first_come"
    LOTTERY = "lottery"
    UNIVERSAL = "universal"
    GROUP_BUY = "group_buy"


class ItemStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class ClaimStatus(enum.StrEnum):
    APPLIED = "applied"
    JOINED = "joined"
    ACTIVE = "active"
    REDEEMED = "redeemed"
    CANCELLED = "cancelled"
    LOST = "lost"
    RELEASED = "released"
    EXPIRED = "expired"


class Phase(enum.StrEnum):
    """Where a published item stands in time (derived from status and times, never stored)."""

    DRAFT = "draft"
    UPCOMING = "upcoming"
    OPEN = "open"
    ENDED = "ended"
    CANCELLED = "cancelled"


# Claims that hold one of the member's slots on the item.
LIVE = (ClaimStatus.APPLIED, ClaimStatus.JOINED, ClaimStatus.ACTIVE, ClaimStatus.REDEEMED)
_LIVE_SQL = "status IN ('applied', 'joined', 'active', 'redeemed')"
# Modes whose `stock` counts claims left (lottery: stock is the number of prizes, not consumed by applying).
STOCK_MODES = (Mode.FIRST_COME, Mode.UNIVERSAL, Mode.GROUP_BUY)
# Status a fresh claim gets in each mode.
FIRST_STATUS = {
    Mode.FIRST_COME: ClaimStatus.ACTIVE,
    Mode.UNIVERSAL: ClaimStatus.ACTIVE,
    Mode.LOTTERY: ClaimStatus.APPLIED,
    Mode.GROUP_BUY: ClaimStatus.JOINED,
}


class SoldOut(DomainError):
    """No stock (or no places) left."""

    key = "welfare_sold_out"


class NotOpenYet(DomainError):
    """The window has not opened; params: opens_at."""

    key = "welfare_not_open_yet"


class WindowClosed(DomainError):
    """The window has closed, the item was closed early, drawn or settled; params: closes_at."""

    key = "welfare_window_closed"


class LimitReached(DomainError):
    """The member holds as many claims as the item allows; params: limit."""

    key = "welfare_limit_reached"


class NotEligible(DomainError):
    """The item is not offered to the member's unit."""

    key = "welfare_not_eligible"


class AlreadyRedeemed(DomainError):
    """The voucher was redeemed before; params: at, by."""

    key = "welfare_already_redeemed"


# --- tables ---------------------------------------------------------------------------------------


class WelfareItem(SQLModel, table=True):
    __tablename__ = "welfare_item"
    __table_args__ = (
        CheckConstraint("cost >= 0", name="ck_welfare_item_cost_nonneg"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="ck_welfare_item_stock_nonneg"),
        CheckConstraint("per_member_limit >= 1", name="ck_welfare_item_limit_pos"),
        CheckConstraint("closes_at > opens_at", name="ck_welfare_item_window"),
        CheckConstraint("threshold IS NULL OR threshold >= 1", name="ck_welfare_item_threshold_pos"),
        CheckConstraint(
            "mode IN ('first_come', 'lottery', 'universal', 'group_buy')", name="ck_welfare_item_mode_known"
        ),
        CheckConstraint("status IN ('draft', 'published', 'closed', 'cancelled')", name="ck_welfare_item_status_known"),
        Index("ix_welfare_item_status_opens", "status", "opens_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=TITLE_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    pickup: str = Field(default="", max_length=PICKUP_MAX)
    photo_file_id: str | None = Field(default=None, max_length=PHOTO_ID_MAX)
    mode: str = Field(max_length=12)
    cost: int = 0
    # first_come: items left; lottery: prizes; universal: optional cap left; group_buy: optional places left.
    stock: int | None = None
    total: int | None = None
    per_member_limit: int = 1
    opens_at: datetime
    closes_at: datetime
    redeem_by: datetime | None = None
    # The unit whose cadres manage the item; None: a bureau item.
    owner_unit: str | None = Field(default=None, foreign_key="unit.code", max_length=16, index=True)
    created_by_telegram_id: int = Field(sa_type=BigInteger)
    status: str = Field(default=ItemStatus.DRAFT, max_length=12)
    opened_at: datetime | None = None
    seed: str | None = Field(default=None, max_length=64)
    seed_hash: str | None = Field(default=None, max_length=64)
    drawn_at: datetime | None = None
    threshold: int | None = None
    settled_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=12)
    # Imported items only: the item's key in its file (given, or derived from title and opening time), so that
    # importing the file again updates the item instead of adding a second one.
    key: str | None = Field(default=None, max_length=80, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WelfareItemUnit(SQLModel, table=True):
    """Units an item is offered to; an item without rows is offered to every unit."""

    __tablename__ = "welfare_item_unit"

    item_id: int = Field(foreign_key="welfare_item.id", primary_key=True)
    unit_code: str = Field(foreign_key="unit.code", primary_key=True, max_length=16)


class WelfareClaim(SQLModel, table=True):
    __tablename__ = "welfare_claim"
    __table_args__ = (
        CheckConstraint("seq >= 1", name="ck_welfare_claim_seq_pos"),
        CheckConstraint("points >= 0", name="ck_welfare_claim_points_nonneg"),
        # The per-member limit in the schema: one live claim per slot; a cancelled claim frees its slot.
        Index(
            "uq_welfare_claim_live_slot",
            "item_id",
            "member_id",
            "seq",
            unique=True,
            sqlite_where=text(_LIVE_SQL),
            postgresql_where=text(_LIVE_SQL),
        ),
        Index("ix_welfare_claim_item_status", "item_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="welfare_item.id")
    member_id: int = Field(foreign_key="member.id", index=True)
    seq: int = 1
    status: str = Field(max_length=12)
    points: int = 0
    voucher_code: str | None = Field(default=None, max_length=16, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    redeemed_at: datetime | None = None
    redeemed_by_telegram_id: int | None = Field(default=None, sa_type=BigInteger)
    cancelled_at: datetime | None = None


class WelfareReminder(SQLModel, table=True):
    """'Remind me': a member wants a message when the item opens."""

    __tablename__ = "welfare_reminder"

    item_id: int = Field(foreign_key="welfare_item.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


# --- plain results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemDraft:
    """What a cadre (or an import file) says about an item; times are aware datetimes."""

    title: str
    mode: str
    opens_at: datetime
    closes_at: datetime
    cost: int = 0
    stock: int | None = None
    per_member_limit: int = 1
    description: str = ""
    pickup: str = ""
    redeem_by: datetime | None = None
    units: tuple[str, ...] = ()
    threshold: int | None = None
    photo_file_id: str | None = None
    owner_unit: str | None = None
    # Import files only: keep the item as a draft instead of publishing it, and where it starts in the file.
    keep_draft: bool = False
    line: int = 0


@dataclass(frozen=True)
class CatalogEntry:
    item: WelfareItem
    phase: Phase


@dataclass(frozen=True)
class ItemCard:
    item: WelfareItem
    units: tuple[str, ...]
    phase: Phase
    my_claims: list[WelfareClaim]
    # Live claims of everyone: claimed (first-come, universal), applicants (lottery), joined (group-buy).
    taken: int
    # The slot a claim button would fill, None when the member's limit is reached.
    next_seq: int | None
    reminded: bool
    balance: int


@dataclass(frozen=True)
class ClaimResult:
    claim: WelfareClaim
    created: bool
    balance: int
    stock_left: int | None


@dataclass(frozen=True)
class CancelResult:
    claim: WelfareClaim
    refunded: int
    balance: int


@dataclass(frozen=True)
class MyClaim:
    claim: WelfareClaim
    item: WelfareItem


@dataclass(frozen=True)
class RedeemResult:
    claim: WelfareClaim
    item: WelfareItem
    member_name: str


@dataclass(frozen=True)
class ClaimRow:
    claim_id: int
    member_id: int
    name: str
    unit_code: str
    status: str
    voucher_code: str | None
    created_at: datetime
    redeemed_at: datetime | None


@dataclass(frozen=True)
class ItemClaims:
    item: WelfareItem
    units: tuple[str, ...]
    counts: dict[str, int]
    rows: list[ClaimRow]
    reminders: int


@dataclass(frozen=True)
class Recipient:
    """Someone to notify (after the commit), with what concerns them."""

    member_id: int
    telegram_id: int
    language: str
    claim_id: int | None = None
    voucher_code: str | None = None
    refunded: int = 0


@dataclass(frozen=True)
class DrawResult:
    item_id: int
    done: bool
    winners: list[Recipient]
    losers: list[Recipient]
    seed: str | None = None


@dataclass(frozen=True)
class SettleResult:
    item_id: int
    done: bool
    reached: bool
    joined: int
    recipients: list[Recipient]


@dataclass(frozen=True)
class LotteryRecord:
    item_id: int
    title: str
    seed_hash: str | None
    seed: str | None
    prizes: int
    drawn_at: datetime | None
    applicants: list[int]
    winners: list[int]


# --- pure helpers ---------------------------------------------------------------------------------


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


def phase_of(item: WelfareItem, now: datetime) -> Phase:
    """Where the item stands at `now`: draft, upcoming, open, ended or cancelled."""
    if item.status == ItemStatus.DRAFT:
        return Phase.DRAFT
    if item.status == ItemStatus.CANCELLED:
        return Phase.CANCELLED
    if item.status == ItemStatus.CLOSED or item.drawn_at or item.settled_at or now >= item.closes_at:
        return Phase.ENDED
    if now < item.opens_at:
        return Phase.UPCOMING
    return Phase.OPEN


def as_utc(at: datetime) -> datetime:
    """An aware datetime in UTC (naive times are a programming error here)."""
    if at.tzinfo is None:
        raise ValueError("welfare times must be timezone-aware")
    return at.astimezone(UTC)


def check_draft(draft: ItemDraft, unit_codes: Iterable[str]) -> list[tuple[str, str, str]]:
    """Everything wrong with a draft, as (field, problem, detail); empty when it can be stored."""
    known = set(unit_codes)
    problems: list[tuple[str, str, str]] = []

    def bad(field: str, problem: str, detail: object = "") -> None:
        """Record one problem."""
        problems.append((field, problem, str(detail)))

    title = " ".join(draft.title.split())
    if not title:
        bad("title", "missing")
    elif len(title) > TITLE_MAX:
        bad("title", "too_long", TITLE_MAX)
    if len(draft.description.strip()) > DESCRIPTION_MAX:
        bad("description", "too_long", DESCRIPTION_MAX)
    if len(draft.pickup.strip()) > PICKUP_MAX:
        bad("pickup", "too_long", PICKUP_MAX)
    if draft.photo_file_id is not None and len(draft.photo_file_id) > PHOTO_ID_MAX:
        bad("photo_file_id", "too_long", PHOTO_ID_MAX)
    mode = draft.mode
    if mode not in set(Mode):
        bad("mode", "bad_mode", mode)
    if not 0 <= draft.cost <= MAX_COST:
        bad("cost", "out_of_range", f"0-{MAX_COST}")
    if draft.stock is not None and not 1 <= draft.stock <= MAX_STOCK:
        bad("stock", "out_of_range", f"1-{MAX_STOCK}")
    elif draft.stock is None and mode in (Mode.FIRST_COME, Mode.LOTTERY):
        bad("stock", "missing")
    if not 1 <= draft.per_member_limit <= MAX_PER_MEMBER:
        bad("per_member_limit", "out_of_range", f"1-{MAX_PER_MEMBER}")
    elif draft.per_member_limit != 1 and mode != Mode.FIRST_COME:
        bad("per_member_limit", "first_come_only")
    if mode == Mode.GROUP_BUY:
        if draft.threshold is None:
            bad("threshold", "missing")
        elif not 1 <= draft.threshold <= MAX_STOCK:
            bad("threshold", "out_of_range", f"1-{MAX_STOCK}")
        elif draft.stock is not None and draft.threshold > draft.stock:
            bad("threshold", "above_stock", draft.stock)
    elif draft.threshold is not None:
        bad("threshold", "group_buy_only")
    times_ok = True
    for name in ("opens_at", "closes_at", "redeem_by"):
        value = getattr(draft, name)
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            bad(name, "bad_time", value)
            times_ok = False
    if times_ok:
        if draft.closes_at <= draft.opens_at:
            bad("closes_at", "before_open")
        elif draft.redeem_by is not None and draft.redeem_by <= draft.closes_at:
            bad("redeem_by", "before_close")
    for unit in draft.units:
        if unit not in known:
            bad("units", "unknown_unit", unit)
    if draft.owner_unit is not None:
        if draft.owner_unit not in known:
            bad("owner_unit", "unknown_unit", draft.owner_unit)
        elif draft.owner_unit not in draft.units:
            bad("owner_unit", "not_in_units", draft.owner_unit)
    return problems


def normalize_draft(draft: ItemDraft) -> ItemDraft:
    """Trimmed texts, sorted distinct units, UTC times (for drafts that passed the time checks)."""
    aware = all(t is None or (isinstance(t, datetime) and t.tzinfo) for t in (draft.opens_at, draft.closes_at))
    return replace(
        draft,
        title=" ".join(draft.title.split()),
        description=draft.description.strip(),
        pickup=draft.pickup.strip(),
        units=tuple(sorted(set(draft.units))),
        opens_at=as_utc(draft.opens_at) if aware else draft.opens_at,
        closes_at=as_utc(draft.closes_at) if aware else draft.closes_at,
        redeem_by=(
            as_utc(draft.redeem_by)
            if isinstance(draft.redeem_by, datetime) and draft.redeem_by.tzinfo
            else draft.redeem_by
        ),
    )


def invalid_item(problem: tuple[str, str, str]) -> BadInput:
    """The domain error for one draft problem (field, problem, detail)."""
    field, key, detail = problem
    return BadInput("welfare_invalid_item", field=field, problem=key, detail=detail)


def draft_of(item: WelfareItem, units: Iterable[str]) -> ItemDraft:
    """An item as a draft, for editing one field with dataclasses.replace and update_item."""
    return ItemDraft(
        title=item.title,
        mode=item.mode,
        opens_at=item.opens_at,
        closes_at=item.closes_at,
        cost=item.cost,
        stock=item.total,
        per_member_limit=item.per_member_limit,
        description=item.description,
        pickup=item.pickup,
        redeem_by=item.redeem_by,
        units=tuple(sorted(units)),
        threshold=item.threshold,
        photo_file_id=item.photo_file_id,
        owner_unit=item.owner_unit,
    )


def _new_seed() -> tuple[str, str]:
    """A fresh secret seed and its published hash."""
    seed = secrets.token_hex(32)
    return seed, seed_hash_of(seed)


# --- shared queries -------------------------------------------------------------------------------


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


def _stock_may_return(session: Session, item_id: int) -> None:
    """Other processes forget a cached "sold out" for this item when the transaction commits."""
    notify(session, STOCK_CHANNEL, str(item_id))


def _refund_claim(session: Session, claim: WelfareClaim, now: datetime, tz: ZoneInfo, title: str) -> int:
    """Give back what the claim paid (once per claim, whatever path asks); returns the amount."""
    if claim.points <= 0:
        return 0
    points.refund(session, claim.member_id, claim.points, f"welfare:refund:{claim.id}", local_date(tz, now), title)
    return claim.points


# --- member side ----------------------------------------------------------------------------------


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


# --- cadre side -----------------------------------------------------------------------------------


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
        title=draft.title,
        description=draft.description,
        pickup=draft.pickup,
        photo_file_id=draft.photo_file_id,
        mode=draft.mode,
        cost=draft.cost,
        stock=draft.stock,
        total=draft.stock,
        per_member_limit=draft.per_member_limit,
        opens_at=draft.opens_at,
        closes_at=draft.closes_at,
        redeem_by=draft.redeem_by,
        owner_unit=owner_unit,
        created_by_telegram_id=created_by_telegram_id,
        status=status,
        threshold=draft.threshold,
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
    for name in (
        "title",
        "description",
        "pickup",
        "photo_file_id",
        "mode",
        "cost",
        "per_member_limit",
        "opens_at",
        "closes_at",
        "redeem_by",
        "threshold",
    ):
        setattr(item, name, getattr(draft, name))
    item.stock = item.total = draft.stock
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


# --- scheduled side (idempotent: a re-run after a crash changes nothing more) ---------------------


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


def due_draws(session: Session, now: datetime) -> list[int]:
    """Lottery items whose window has ended (or that were closed early) and are not drawn yet."""
    now = as_utc(now)
    rows = session.exec(
        select(WelfareItem.id)
        .where(
            WelfareItem.mode == Mode.LOTTERY,
            col(WelfareItem.drawn_at).is_(None),
            or_(
                (col(WelfareItem.status) == ItemStatus.PUBLISHED) & (col(WelfareItem.closes_at) <= now),
                col(WelfareItem.status) == ItemStatus.CLOSED,
            ),
        )
        .order_by(col(WelfareItem.id))
    )
    return list(rows)


def due_settlements(session: Session, now: datetime) -> list[int]:
    """Group-buy items past their deadline (or closed early) and not settled yet."""
    now = as_utc(now)
    rows = session.exec(
        select(WelfareItem.id)
        .where(
            WelfareItem.mode == Mode.GROUP_BUY,
            col(WelfareItem.settled_at).is_(None),
            or_(
                (col(WelfareItem.status) == ItemStatus.PUBLISHED) & (col(WelfareItem.closes_at) <= now),
                col(WelfareItem.status) == ItemStatus.CLOSED,
            ),
        )
        .order_by(col(WelfareItem.id))
    )
    return list(rows)


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
