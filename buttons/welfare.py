"""Buttons of welfare (会员福利): the catalog, claims and vouchers, redeeming, and cadres' item management."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class Catalog(Button, prefix="wf:list"):
    """The catalog; a page number past the first (old buttons without one show the first page)."""

    page: int | None = None


@dataclass(frozen=True)
class ShowItem(Button, prefix="wf:item"):
    item_id: int


@dataclass(frozen=True)
class ClaimItem(Button, prefix="wf:claim"):
    """Claim, apply or join; the slot makes a double click (or a repeated update) claim once."""

    item_id: int
    slot: int


@dataclass(frozen=True)
class Withdraw(Button, prefix="wf:withdraw"):
    """Take back a lottery application or leave a group-buy."""

    item_id: int


@dataclass(frozen=True)
class Remind(Button, prefix="wf:remind"):
    item_id: int


@dataclass(frozen=True)
class MyWelfare(Button, prefix="wf:mine"):
    """My claims; a page number past the first."""

    page: int | None = None


@dataclass(frozen=True)
class ShowVoucher(Button, prefix="wf:voucher"):
    claim_id: int


@dataclass(frozen=True)
class AskCancel(Button, prefix="wf:cancel"):
    claim_id: int


@dataclass(frozen=True)
class CancelClaim(Button, prefix="wf:cancel_yes"):
    claim_id: int


@dataclass(frozen=True)
class Redeem(Button, prefix="wf:redeem"):
    code: str


@dataclass(frozen=True)
class AdminList(Button, prefix="wf:admin"):
    """The items a cadre manages; a page number past the first."""

    page: int | None = None


@dataclass(frozen=True)
class NewItem(Button, prefix="wf:new"):
    pass


@dataclass(frozen=True)
class ManageItem(Button, prefix="wf:manage"):
    item_id: int


@dataclass(frozen=True)
class ItemClaims(Button, prefix="wf:claims"):
    item_id: int
    page: int


@dataclass(frozen=True)
class PublishItem(Button, prefix="wf:publish"):
    item_id: int


@dataclass(frozen=True)
class CloseItem(Button, prefix="wf:close"):
    item_id: int


@dataclass(frozen=True)
class EditItem(Button, prefix="wf:edit"):
    """Edit an item before it opens: the field list, or one field."""

    item_id: int
    field: str | None = None
