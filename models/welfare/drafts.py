"""An item as a cadre describes it (ItemDraft), checked and normalised; the phase of an item at a moment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from models.errors import BadInput
from models.welfare.tables import (
    DESCRIPTION_MAX,
    MAX_COST,
    MAX_PER_MEMBER,
    MAX_STOCK,
    PHOTO_ID_MAX,
    PICKUP_MAX,
    TITLE_MAX,
    ItemStatus,
    Mode,
    Phase,
    WelfareItem,
)


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


# One shape: ItemDraft is the one definition of what a cadre (or a file) says about an item. Every field it shares
# with the item is stored under the same name (DESCRIBED, derived from ItemDraft, checked against the table by a
# test); the quantity (stock) sets both the item's stock and its total; the rest only steer how a draft is stored.
DRAFT_ONLY = frozenset({"stock", "units", "owner_unit", "keep_draft", "line"})
DESCRIBED = tuple(f.name for f in fields(ItemDraft) if f.name not in DRAFT_ONLY)


def item_values(draft: ItemDraft) -> dict[str, Any]:
    """The item columns a draft sets (store_item, update_item)."""
    values = {name: getattr(draft, name) for name in DESCRIBED}
    values["stock"] = values["total"] = draft.stock
    return values


def draft_of(item: WelfareItem, units: Iterable[str]) -> ItemDraft:
    """An item as a draft, for editing one field with dataclasses.replace and update_item."""
    described = {name: getattr(item, name) for name in DESCRIBED}
    return ItemDraft(**described, stock=item.total, units=tuple(sorted(units)), owner_unit=item.owner_unit)
