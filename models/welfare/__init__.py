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

The package by concern: tables, drafts, queries, vouchers, lottery, claims, items, lifecycle, importing.
Everything is re-exported here under the names it always had.
"""

from models.welfare.claims import (  # noqa: F401
    _cancel,
    _held_claim,
    _insert_claim,
    _raise_unavailable,
    _take,
    apply_lottery,
    cancel_claim,
    claim,
    claim_first_come,
    claim_precheck,
    claim_universal,
    item_card,
    join_group_buy,
    leave_group_buy,
    list_catalog,
    my_claims,
    my_voucher,
    release_member,
    remind_me,
    withdraw_application,
)
from models.welfare.drafts import (  # noqa: F401
    DESCRIBED,
    DRAFT_ONLY,
    ItemDraft,
    as_utc,
    check_draft,
    draft_of,
    invalid_item,
    item_values,
    normalize_draft,
    phase_of,
)
from models.welfare.items import (  # noqa: F401
    _owner_for,
    close_early,
    create_item,
    item_claims,
    list_managed,
    managed_item,
    publish,
    store_item,
    update_item,
)
from models.welfare.lifecycle import (  # noqa: F401
    due_openings,
    due_reminders,
    due_settlements,
    open_item,
    settle_group_buy,
    take_reminders,
)
from models.welfare.lottery import (  # noqa: F401
    _new_seed,
    draw_lottery,
    due_draws,
    lottery_record,
    lottery_score,
    seed_hash_of,
    verify_draw,
)
from models.welfare.queries import (  # noqa: F401
    _check_window,
    _end_window,
    _held,
    _live_claims,
    _lock_item,
    _managed_item,
    _manages,
    _recipients,
    _refund_claim,
    _release,
    _reload_claim,
    _reload_item,
    _require_member,
    _stock_may_return,
    _units_of,
    _visible_item,
    known_units,
)
from models.welfare.tables import (  # noqa: F401
    _LIVE_SQL,
    CATALOG_SIZE,
    CODE_ATTEMPTS,
    DESCRIPTION_MAX,
    FIRST_STATUS,
    LIVE,
    MAX_COST,
    MAX_PER_MEMBER,
    MAX_STOCK,
    PHOTO_ID_MAX,
    PICKUP_MAX,
    STOCK_MODES,
    TITLE_MAX,
    AlreadyRedeemed,
    CancelResult,
    CatalogEntry,
    ClaimResult,
    ClaimRow,
    ClaimStatus,
    DrawResult,
    ItemCard,
    ItemClaims,
    ItemStatus,
    LimitReached,
    LotteryRecord,
    Mode,
    MyClaim,
    NotEligible,
    NotOpenYet,
    Phase,
    Recipient,
    RedeemResult,
    SettleResult,
    SoldOut,
    WelfareClaim,
    WelfareItem,
    WelfareItemUnit,
    WelfareReminder,
    WindowClosed,
)
from models.welfare.vouchers import (  # noqa: F401
    _fresh_code,
    _issue_voucher,
    _name_of_telegram_user,
    _voucher_for_cadre,
    due_expiries,
    expire_item_vouchers,
    expire_vouchers,
    redeem,
    voucher_for_redeem,
)
