"""Welfare tables, kinds, errors and the plain results operations return."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from models.clock import utcnow
from models.errors import DomainError

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
