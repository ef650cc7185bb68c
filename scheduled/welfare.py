"""Welfare's timed work, at every scheduler tick: openings, reminders, draws, group-buy settlements, expiries.

Each item is handled in its own write transaction, and its notices are queued in the outbox in that same
transaction, so a state change and the messages about it are kept (or lost) together. Every notice has a
dedupe key, so a re-run never queues one twice. An item that fails is logged and left for the next tick;
the other items go on. The outbox sender polls for new rows about every second (scheduled/outbox.py,
POLL_SECONDS), so notices go out within a second of the commit without a reference to the sender here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from buttons.welfare import ShowItem, ShowVoucher
from config import Config
from models import welfare
from models.clock import to_local
from models.welfare import Recipient, WelfareItem
from scheduled.runner import TaskSpec
from services import Services, notify

log = logging.getLogger(__name__)

# Outbox kinds of the notices (for progress counts and the sender's logs).
KIND_OPENED = "welfare_opened"
KIND_WON = "welfare_won"
KIND_LOST = "welfare_lost"
KIND_GROUP_REACHED = "welfare_group_reached"
KIND_GROUP_FAILED = "welfare_group_failed"
KIND_EXPIRED = "welfare_expired"


@dataclass(frozen=True)
class Notice:
    """One message to one member, before it is queued."""

    recipient: Recipient
    template: str
    kind: str
    dedupe_key: str
    context: dict[str, Any]
    button: tuple[str, str] | None = None  # (label key, callback data)


def _local(at: datetime | None, config: Config) -> datetime | None:
    """A stored time in the organisation's time zone, for the templates."""
    return to_local(at, config.timezone) if at is not None else None


def _voucher(item: WelfareItem, recipient: Recipient, config: Config) -> dict[str, Any]:
    """What a notice with a voucher says about it: the code, where to pick up, until when."""
    return {"code": recipient.voucher_code, "pickup": item.pickup, "redeem_by": _local(item.redeem_by, config)}


def _queue(services: Services, session: Session, notices: list[Notice], now: datetime) -> int:
    """Render each notice in its recipient's language and queue it (services.notify); returns how many were new."""
    renderer = services.renderer
    queued = 0
    for notice in notices:
        who = notice.recipient
        keyboard = None
        if notice.button is not None:
            label_key, data = notice.button
            keyboard = {"inline_keyboard": [[{"text": renderer.label(who.language, label_key), "callback_data": data}]]}
        text = renderer.render(who.language, f"welfare_notices/{notice.template}", **notice.context)
        new = notify(
            session,
            who.telegram_id,
            text,
            now=now,
            kind=notice.kind,
            keyboard=keyboard,
            dedupe_key=notice.dedupe_key,
            member_id=who.member_id,
            # "It is open now" goes to many at once; results and vouchers are each member's own.
            personal=notice.kind != KIND_OPENED,
        )
        queued += int(new)
    return queued


def _item(session: Session, item_id: int) -> WelfareItem:
    """The item as committed now (after the state change of this transaction)."""
    item = session.get(WelfareItem, item_id, populate_existing=True)
    assert item is not None  # the due_* queries only list existing items
    return item


def _opened_notices(item: WelfareItem, recipients: list[Recipient], config: Config, now: datetime) -> list[Notice]:
    """'It is open now' for the members who asked to be reminded (nothing if the window is already over)."""
    if welfare.phase_of(item, now) != welfare.Phase.OPEN:
        return []
    context = {"title": item.title, "mode": item.mode, "cost": item.cost, "closes_at": _local(item.closes_at, config)}
    return [
        Notice(
            r,
            "opened",
            KIND_OPENED,
            f"welfare:opened:{item.id}:{r.member_id}",
            context,
            ("welfare_notice_open_item", ShowItem(item.id).pack()),
        )
        for r in recipients
    ]


def _open(services: Services, session: Session, item_id: int, now: datetime) -> int:
    """Mark an item's opening handled and tell those who asked to be reminded."""
    recipients = welfare.open_item(session, item_id, now)
    item = _item(session, item_id)
    return _queue(services, session, _opened_notices(item, recipients, services.config, now), now)


def _remind(services: Services, session: Session, item_id: int, now: datetime) -> int:
    """Reminders still unsent for an item that has opened (asked for at the last moment)."""
    recipients = welfare.take_reminders(session, item_id, now)
    item = _item(session, item_id)
    return _queue(services, session, _opened_notices(item, recipients, services.config, now), now)


def _draw(services: Services, session: Session, item_id: int, now: datetime) -> int:
    """Draw a closed lottery; winners get their voucher, the others their points back, everyone the seed."""
    config = services.config
    result = welfare.draw_lottery(session, item_id, now, config.timezone)
    if not result.done:
        return 0
    item = _item(session, item_id)
    record = welfare.lottery_record(session, item_id)
    shared = {
        "title": item.title,
        "seed": result.seed,
        "seed_hash": item.seed_hash,
        "applicants": len(record.applicants),
        "winners": len(record.winners),
    }
    notices = [
        Notice(
            r,
            "won",
            KIND_WON,
            f"welfare:draw:{item_id}:{r.member_id}",
            {**shared, **_voucher(item, r, config)},
            ("welfare_notice_show_voucher", ShowVoucher(r.claim_id).pack()),
        )
        for r in result.winners
    ]
    notices += [
        Notice(
            r,
            "lost",
            KIND_LOST,
            f"welfare:draw:{item_id}:{r.member_id}",
            {**shared, "refunded": r.refunded},
            ("welfare_notice_draw_details", ShowItem(item_id).pack()),
        )
        for r in result.losers
    ]
    return _queue(services, session, notices, now)


def _settle(services: Services, session: Session, item_id: int, now: datetime) -> int:
    """Settle a group-buy at its deadline: everyone gets a voucher, or everyone is released and refunded."""
    config = services.config
    result = welfare.settle_group_buy(session, item_id, now, config.timezone)
    if not result.done:
        return 0
    item = _item(session, item_id)
    shared = {"title": item.title, "joined": result.joined, "threshold": item.threshold}
    notices = []
    for r in result.recipients:
        key = f"welfare:group:{item_id}:{r.member_id}"
        if result.reached:
            context = {**shared, **_voucher(item, r, config)}
            button = ("welfare_notice_show_voucher", ShowVoucher(r.claim_id).pack())
            notices.append(Notice(r, "group_reached", KIND_GROUP_REACHED, key, context, button))
        else:
            notices.append(Notice(r, "group_failed", KIND_GROUP_FAILED, key, {**shared, "refunded": r.refunded}))
    return _queue(services, session, notices, now)


def _expire(services: Services, session: Session, item_id: int, now: datetime) -> int:
    """An item's vouchers past redeem-by expire; each holder is told once."""
    recipients = welfare.expire_item_vouchers(session, item_id, now)
    if not recipients:
        return 0
    item = _item(session, item_id)
    context = {"title": item.title, "redeem_by": _local(item.redeem_by, services.config)}
    notices = [
        Notice(r, "expired", KIND_EXPIRED, f"welfare:expired:{r.claim_id}", {**context, "code": r.voucher_code})
        for r in recipients
    ]
    return _queue(services, session, notices, now)


Due = Callable[[Session, datetime], list[int]]
Handle = Callable[[Services, Session, int, datetime], int]
# (step name for the logs, which items are due, what to do with one of them), in this order.
STEPS: tuple[tuple[str, Due, Handle], ...] = (
    ("opening", welfare.due_openings, _open),
    ("reminder", welfare.due_reminders, _remind),
    ("draw", welfare.due_draws, _draw),
    ("settlement", welfare.due_settlements, _settle),
    ("expiry", welfare.due_expiries, _expire),
)


async def run_welfare(services: Services, now: datetime | None = None) -> str:
    """The scheduled task: every due step of every item, one transaction per item; 'ok', or 'partial' on failures."""
    now = now or services.clock.now()
    failures = queued = 0
    for step, due, handle in STEPS:
        try:
            item_ids = await services.db.read(due, now)
        except Exception:  # one step's query failing must not stop the other steps
            log.exception("welfare %s: could not list the due items", step)
            failures += 1
            continue
        for item_id in item_ids:
            try:
                queued += await services.db.write(lambda session, h=handle, i=item_id: h(services, session, i, now))
            except Exception:  # one bad item must not block the others; it is retried at the next tick
                log.exception("welfare %s of item %s failed; going on with the others", step, item_id)
                failures += 1
    if queued:
        log.info("welfare: %d notices queued", queued)
    return "partial" if failures else "ok"


def next_tick(config: Config, after: datetime) -> datetime:
    """Welfare work is looked for at every scheduler tick."""
    return after + timedelta(seconds=config.tick_seconds)


TASKS = (TaskSpec("welfare", run_welfare, next_tick),)
