"""Offline claim storm: distinct members press "claim" on a first-come item (stock 500) through the real bot.

Run: `.venv/bin/python bench/claim_storm.py [--members 10000] [--stock 500] [--rate 1000] [--db URL]`.

The bot is build_application over a fake Bot API, as in production: AIORateLimiter on, started, PTB's own
update fetcher running the presses from app.update_queue at concurrent_updates (config.toml). Phases:

- floor: PTB's own Application answering the same presses (answerCallbackQuery only), no database;
- warm-up (untimed): a small item, so connections, templates and caches are ready;
- throughput: every member presses at once on a fresh item -> presses fully handled (answered) per second;
- latency: the members press on another fresh item, arriving evenly at --rate per second -> p99 from each
  press's scheduled arrival to its answerCallbackQuery.

After each phase: exactly `stock` live claims and stock 0 (oversold otherwise), no member with two (double),
every ledger sum equal to the balance, every press answered exactly once (the success toast for exactly the
claim holders); then the outbox is run until drained and every claim holder must have received the voucher
photo with their code (lost_vouchers otherwise). Exit 1 if a check fails. The last line is
`claims_per_s=<n> ratio_vs_floor=<r> p99_ms=<n> cpu_ms_per_press=<n> oversold=<n> double=<n> lost_vouchers=<n>`.
"""

from __future__ import annotations

import argparse
import gc
import html
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import CallbackQueryHandler, ContextTypes  # noqa: E402

from bench._common import (  # noqa: E402
    ADMIN_ID,
    RunningBot,
    ThreadProfiler,
    TimedBotAPI,
    Timing,
    add_common_arguments,
    bare_application,
    callback_update,
    count_members,
    fail,
    feed_at_once,
    feed_evenly,
    ledger_mismatches,
    percentile,
    print_profile,
    run_benchmark,
    start_bare,
    start_bot,
    stop_bare,
    stop_bot,
    timed,
)
from buttons.welfare import ClaimItem  # noqa: E402
from config import Config  # noqa: E402
from models import outbox, welfare  # noqa: E402
from models.clock import local_date, utcnow  # noqa: E402
from models.db import Database  # noqa: E402
from models.members import Member, Status  # noqa: E402
from models.points import GRANT_RULE, LedgerEntry  # noqa: E402
from models.welfare import ItemDraft, ItemStatus, SoldOut, WelfareClaim, WelfareItem  # noqa: E402
from scheduled.outbox import OutboxSender, bot_sender  # noqa: E402
from tests.harness import Shown  # noqa: E402

MEMBER_BASE_ID = 30_000_000
# Cards the members press live in this message-id range, away from the ids FakeBotAPI gives sent messages.
CARD_MESSAGE_BASE = 1_000_000_000
COST = 10
# Every member can afford a claim in every phase, so points never decide who wins.
START_BALANCE = 100
LOCALE = "zh"
SEED_REASON = "bench seed"
CARD_TEXT = "card"
INSERT_CHUNK = 2000
# The write unit of the handler wrapper (handlers/base.py), as count_writes names it.
HANDLER_UNIT = "handlers.base.unit"
# An alert shows the message's text without its HTML tags.
TAGS = re.compile(r"<[^>]+>")
# Targets from the issue.
TARGETS = {"claims_per_s": 1500, "ratio_vs_floor": 0.30, "p99_ms": 100}


@dataclass(frozen=True)
class Person:
    """A seeded verified member."""

    telegram_id: int
    member_id: int


@dataclass
class Storm:
    """The presses of one phase on one item: the updates, their callback query ids and who presses."""

    item_id: int
    stock: int
    updates: list[Update]
    query_ids: list[str]
    people: list[Person]


@dataclass(frozen=True)
class ItemState:
    """What the database says about one item after a phase."""

    claims: int
    stock_left: int | None
    double: int
    # telegram id -> voucher code of every live claim on the item
    holders: dict[int, str]
    ledger_wrong: list[int]


@dataclass
class PhaseResult:
    """What one phase measured and what its checks found."""

    name: str
    timing: Timing
    latencies_ms: list[float]
    writes: Counter[str]
    state: ItemState
    oversold: int = 0
    lost_vouchers: int = 0
    replies_drain_s: float = 0.0
    outbox_drain_s: float = 0.0
    outbox_counts: dict[str, int] = field(default_factory=dict)
    thread_cpu: str = ""
    # Seconds from the start of the phase to the answer of the last winning press (when the stock was gone).
    last_claim_s: float = 0.0
    problems: list[str] = field(default_factory=list)


# --- set-up (model-style functions: they run in the database's threads) ---------------------------------


def seed_members(session: Session, unit_codes: list[str], count: int, tz: ZoneInfo) -> list[Person]:
    """Bulk-insert verified members with START_BALANCE points each and one ledger row (ledger sum == balance)."""
    now = utcnow()
    day = local_date(tz, now)
    rows = [
        {
            "telegram_id": MEMBER_BASE_ID + i,
            "unit_code": unit_codes[i % len(unit_codes)],
            "employee_no": f"B{i:06d}",
            "name": f"会员{i}",
            "status": Status.VERIFIED.value,
            "language": LOCALE,
            "ranking_opt_out": False,
            "blocked_bot": False,
            "balance": START_BALANCE,
            "created_at": now,
            "verified_at": now,
        }
        for i in range(count)
    ]
    for start in range(0, count, INSERT_CHUNK):
        session.exec(insert(Member).values(rows[start : start + INSERT_CHUNK]))
    found = session.exec(
        select(Member.telegram_id, Member.id).where(col(Member.telegram_id) >= MEMBER_BASE_ID).order_by(Member.id)
    )
    people = [Person(telegram_id, member_id) for telegram_id, member_id in found]
    ledger = [
        {
            "member_id": p.member_id,
            "delta": START_BALANCE,
            "rule": GRANT_RULE,
            "reason": SEED_REASON,
            "idem_key": f"bench:seed:{p.member_id}",
            "day": day,
            "created_at": now,
        }
        for p in people
    ]
    for start in range(0, len(ledger), INSERT_CHUNK):
        session.exec(insert(LedgerEntry).values(ledger[start : start + INSERT_CHUNK]))
    return people


def open_first_come(session: Session, title: str, stock: int) -> int:
    """A published first-come item for every unit whose window is open now; returns its id."""
    now = utcnow()
    draft = ItemDraft(
        title=title,
        mode=welfare.Mode.FIRST_COME,
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(days=1),
        cost=COST,
        stock=stock,
        pickup="工会办公室",
    )
    return welfare.store_item(session, draft, None, ADMIN_ID, now, ItemStatus.PUBLISHED).id


def item_state(session: Session, item_id: int) -> ItemState:
    """Live claims, stock left, members holding two, the holders' voucher codes, and the ledger check."""
    live = col(WelfareClaim.status).in_(welfare.LIVE)
    claims = session.exec(select(func.count()).where(WelfareClaim.item_id == item_id, live)).one()
    left = session.exec(select(WelfareItem.stock).where(WelfareItem.id == item_id)).one()
    twice = (
        select(WelfareClaim.member_id)
        .where(WelfareClaim.item_id == item_id, live)
        .group_by(col(WelfareClaim.member_id))
        .having(func.count() > 1)
        .subquery()
    )
    double = session.exec(select(func.count()).select_from(twice)).one()
    holders = session.exec(
        select(Member.telegram_id, WelfareClaim.voucher_code)
        .join(WelfareClaim, col(WelfareClaim.member_id) == col(Member.id))
        .where(WelfareClaim.item_id == item_id, live)
    )
    return ItemState(claims, left, double, {t: code or "" for t, code in holders}, ledger_mismatches(session))


def voucher_progress(session: Session) -> dict[str, int]:
    """Outbox rows of kind "voucher" by status."""
    return outbox.progress(session, kind="voucher")


# --- the presses ---------------------------------------------------------------------------------------------


def make_storm(bot: RunningBot, item_id: int, stock: int, people: list[Person], tag: str) -> Storm:
    """One claim press per member on the item's card (the card is put in each chat, so the bot can edit it)."""
    data = ClaimItem(item_id=item_id, slot=1).pack()
    buttons = [[{"text": "claim", "callback_data": data}]]
    updates, query_ids = [], []
    for n, person in enumerate(people):
        card = Shown(CARD_MESSAGE_BASE + item_id, person.telegram_id, CARD_TEXT, buttons)
        bot.api.chats.setdefault(person.telegram_id, []).append(card)
        query_id = f"{tag}{n}"
        updates.append(callback_update(bot.app, query_id, person.telegram_id, data, bot.api._message_json(card)))
        query_ids.append(query_id)
    return Storm(item_id, stock, updates, query_ids, people)


def count_writes(db: Database) -> Counter[str]:
    """Count the write units run through db.write by the function they run: the handler wrapper's unit
    ("handlers.base.unit"), the inbox's store and mark_processed, ..."""
    real_write = db.write
    counts: Counter[str] = Counter()

    async def counting(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        counts[f"{fn.__module__}.{fn.__name__}"] += 1
        return await real_write(fn, *args, **kwargs)

    db.write = counting  # type: ignore[method-assign]
    return counts


# --- checks --------------------------------------------------------------------------------------------------


def check_answers(bot: RunningBot, storm: Storm, state: ItemState) -> list[str]:
    """One answer per press: the success toast for exactly the members holding a claim, sold out for the rest."""
    renderer = bot.services.renderer
    won = renderer.label(LOCALE, f"welfare_done_{welfare.Mode.FIRST_COME}")
    sold_out = html.unescape(TAGS.sub("", renderer.render(LOCALE, f"errors/{SoldOut.key}")))
    api = bot.api
    problems = []
    unanswered = [q for q in storm.query_ids if api.answer_counts.get(q, 0) != 1]
    if unanswered:
        problems.append(f"{len(unanswered)} presses not answered exactly once (e.g. {unanswered[0]})")
    pressed = zip(storm.people, storm.query_ids, strict=True)
    winners = {p.telegram_id for p, q in pressed if api.answer_texts.get(q) == won}
    if winners != set(state.holders):
        problems.append(f"{len(winners ^ set(state.holders))} members whose answer disagrees with their claim")
    others = [q for q in storm.query_ids if api.answer_texts.get(q) not in (won, sold_out)]
    if others:
        problems.append(f"{len(others)} answers neither success nor sold out, e.g. {api.answer_texts.get(others[0])!r}")
    return problems


def lost_vouchers(bot: RunningBot, state: ItemState) -> int:
    """Claim holders with no voucher photo whose caption carries their code (FakeBotAPI records sendPhoto)."""
    lost = 0
    for telegram_id, code in state.holders.items():
        shown = bot.api.chats.get(telegram_id, [])
        if not code or not any(m.photo is not None and code in m.text for m in shown):
            lost += 1
    return lost


# --- the phases ----------------------------------------------------------------------------------------------


async def run_phase(
    bot: RunningBot,
    config: Config,
    storm: Storm,
    name: str,
    writes: Counter[str],
    rate: float | None,
    profiler: ThreadProfiler,
    store: bool,
) -> PhaseResult:
    """Feed the presses (all at once, or evenly at `rate`), check the item, drain replies and outbox, count."""
    gc.collect()
    await profiler.start()
    before, start = writes.copy(), time.perf_counter()
    if rate is None:
        timing = await feed_at_once(bot.app, storm.updates, store=store)
        arrivals = [start] * len(storm.updates)
    else:
        timing, arrivals = await feed_evenly(bot.app, storm.updates, rate, store=store)
    opened = writes - before
    stats = await profiler.stop()
    if stats is not None:
        print_profile(stats, len(storm.updates), name)
    answered = bot.api.answered_at
    latencies = [(answered[q] - t) * 1000 for q, t in zip(storm.query_ids, arrivals, strict=True) if q in answered]

    state = await bot.db.read(item_state, storm.item_id)
    result = PhaseResult(name, timing, latencies, opened, state, thread_cpu=profiler.thread_cpu())
    won = [answered[q] for p, q in zip(storm.people, storm.query_ids, strict=True) if p.telegram_id in state.holders]
    result.last_claim_s = max(won, default=start) - start
    result.oversold = max(0, state.claims - storm.stock) + max(0, -(state.stock_left or 0))
    if state.claims != storm.stock:
        result.problems.append(f"{state.claims} live claims for stock {storm.stock}")
    if state.stock_left != 0:
        result.problems.append(f"stock left {state.stock_left}, expected 0")
    if state.double:
        result.problems.append(f"{state.double} members hold two live claims")
    if state.ledger_wrong:
        wrong = state.ledger_wrong
        result.problems.append(f"{len(wrong)} members whose ledger sum differs from their balance (e.g. id {wrong[0]})")
    result.problems += check_answers(bot, storm, state)
    concurrency = bot.app.update_processor.max_concurrent_updates
    handler_writes = opened[HANDLER_UNIT]
    if handler_writes - state.claims > concurrency:
        result.problems.append(f"{handler_writes} handler writes for {state.claims} claims: sold-out presses write")

    # Card edits wait behind AIORateLimiter (~30/s). The vouchers leave through the outbox as in production: the
    # config's pacing on the real clock (a fake clock runs ahead while sends wait in the real rate limiter, so rows
    # would look lost in flight and be sent twice), through the same rate-limited bot.
    result.replies_drain_s = await timed(bot.replies.drain())
    sender = OutboxSender(bot.db, bot_sender(bot.app.bot), config.outbox)
    result.outbox_drain_s = await timed(sender.run(until_empty=True))
    result.outbox_counts = await bot.db.read(voucher_progress)
    if result.outbox_counts[outbox.Status.FAILED] or result.outbox_counts[outbox.Status.BLOCKED]:
        result.problems.append(f"voucher rows not delivered: {result.outbox_counts}")
    result.lost_vouchers = lost_vouchers(bot, state)
    if result.lost_vouchers:
        result.problems.append(f"{result.lost_vouchers} claims whose member got no voucher with the code")
    result.problems = [f"{name}: {p}" for p in result.problems]
    return result


def report(result: PhaseResult) -> None:
    """One line per phase."""
    t, lat = result.timing, result.latencies_ms
    print(
        f"{result.name}: {t.count} presses in {t.wall:.3f}s = {t.per_s:.0f}/s, cpu {t.cpu_ms:.3f} ms/press; "
        f"answer p50={percentile(lat, 50):.1f}ms p99={percentile(lat, 99):.1f}ms max={max(lat):.1f}ms; "
        f"claims={result.state.claims} stock_left={result.state.stock_left} "
        f"(last claim answered after {result.last_claim_s:.2f}s) "
        f"writes: {' '.join(f'{k.rsplit(chr(46), 1)[-1]}={v}' for k, v in sorted(result.writes.items()))}; "
        f"card edits drained in {result.replies_drain_s:.1f}s, outbox in {result.outbox_drain_s:.1f}s "
        f"(vouchers sent so far {result.outbox_counts.get('sent', 0)}); lost_vouchers={result.lost_vouchers}"
    )
    print(f"{result.name}: CPU seconds by thread: {result.thread_cpu}")


async def answer_only(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """The floor's handler: answer the press with an alert, nothing else (what a sold-out press gets)."""
    await update.callback_query.answer("sold out", show_alert=True)


async def floor(config: Config, people: list[Person], warmup: int) -> Timing:
    """PTB's own Application answering the same presses, no database: same fake API, queue and concurrency."""
    api = TimedBotAPI()
    app = bare_application(config, api)
    app.add_handler(CallbackQueryHandler(answer_only))
    data = ClaimItem(item_id=1, slot=1).pack()

    def presses(chosen: list[Person], tag: str) -> list[Update]:
        cards = [Shown(CARD_MESSAGE_BASE, p.telegram_id, CARD_TEXT) for p in chosen]
        return [
            callback_update(app, f"{tag}{n}", p.telegram_id, data, api._message_json(card))
            for n, (p, card) in enumerate(zip(chosen, cards, strict=True))
        ]

    await start_bare(app)
    try:
        warm, timed_presses = presses(people[:warmup], "fw"), presses(people, "f")
        await feed_at_once(app, warm, store=False)
        gc.collect()
        timing = await feed_at_once(app, timed_presses, store=False)
    finally:
        await stop_bare(app)
    if len(api.answered_at) != len(warm) + len(timed_presses) or api.unexpected:
        raise SystemExit("FAILED: the PTB floor did not answer every press")
    return timing


async def run(args: argparse.Namespace, config: Config) -> int:
    """Seed, measure the floor, run the phases, check, print the figures."""
    bot = await start_bot(config, activity=args.activity)
    problems: list[str] = []
    try:
        if await bot.db.read(count_members):
            print("FAILED: the database already has members; give an empty one", file=sys.stderr)
            return 2
        units = [u.code for u in config.units]
        people = await bot.db.write(seed_members, units, args.members, config.timezone)
        concurrency = bot.app.update_processor.max_concurrent_updates
        print(
            f"setup: db={bot.db.dialect} members={len(people)} stock={args.stock} concurrent_updates={concurrency} "
            f"rate_limiter={type(bot.app.bot.rate_limiter).__name__} inbox={'on' if args.inbox else 'off'} "
            f"arrival_rate={args.rate:.0f}/s activity={'on' if args.activity else 'off'}"
        )
        bare = await floor(config, people, args.warmup)
        print(
            f"floor: PTB alone answering {bare.count} presses (no database): {bare.wall:.3f}s = {bare.per_s:.0f}/s, "
            f"cpu {bare.cpu_ms:.3f} ms/press"
        )
        writes = count_writes(bot.db)
        warm_stock = max(1, args.stock * args.warmup // args.members)
        phases = [
            ("warm-up", warm_stock, people[: args.warmup], None),
            ("throughput", args.stock, people, None),
            ("latency", args.stock, people, args.rate),
        ]
        results: dict[str, PhaseResult] = {}
        for name, stock, pressing, rate in phases:
            item_id = await bot.db.write(open_first_come, f"福利 {name}", stock)
            storm = make_storm(bot, item_id, stock, pressing, name[0])
            profiler = ThreadProfiler(bot.db, profile=args.profile == name)
            results[name] = result = await run_phase(bot, config, storm, name, writes, rate, profiler, args.inbox)
            report(result)
            problems += result.problems
        if bot.api.unexpected:
            problems.append(f"unexpected Bot API calls: {sorted(set(bot.api.unexpected))}")
    finally:
        await stop_bot(bot)

    burst, steady = results["throughput"], results["latency"]
    figures = {
        "claims_per_s": burst.timing.per_s,
        "ratio_vs_floor": burst.timing.per_s / bare.per_s,
        "p99_ms": percentile(steady.latencies_ms, 99),
        "cpu_ms_per_press": burst.timing.cpu_ms,
        "oversold": sum(r.oversold for r in results.values()),
        "double": sum(r.state.double for r in results.values()),
        "lost_vouchers": sum(r.lost_vouchers for r in results.values()),
    }
    for name, target in TARGETS.items():
        met = figures[name] <= target if name == "p99_ms" else figures[name] >= target
        print(f"target {name} {'<=' if name == 'p99_ms' else '>='} {target}: {'met' if met else 'MISSED'}")
    fail(problems)
    print(
        f"claims_per_s={figures['claims_per_s']:.0f} ratio_vs_floor={figures['ratio_vs_floor']:.2f} "
        f"p99_ms={figures['p99_ms']:.1f} cpu_ms_per_press={figures['cpu_ms_per_press']:.3f} "
        f"oversold={figures['oversold']} double={figures['double']} lost_vouchers={figures['lost_vouchers']}"
    )
    return 1 if problems else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, members=10_000)
    parser.add_argument("--stock", type=int, default=500, help="stock of each item (default 500)")
    parser.add_argument("--rate", type=float, default=1000.0, help="arrivals per second, latency phase (1000)")
    parser.add_argument("--warmup", type=int, default=1000, help="presses of the untimed warm-up (default 1000)")
    parser.add_argument("--profile", choices=["throughput", "latency"], help="cProfile one phase (to stderr)")
    args = parser.parse_args(argv)
    if not 0 < args.stock < args.members:
        parser.error("--stock must be positive and smaller than --members (most presses find the item sold out)")
    args.warmup = min(args.warmup, args.members)
    return args


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    return run_benchmark(parse_args(argv), "gongshe-claims-", run)


if __name__ == "__main__":
    sys.exit(main())
