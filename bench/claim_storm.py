"""Offline claim storm: distinct members press "claim" on a first-come item (stock 500) through the real Application.

Run: `.venv/bin/python bench/claim_storm.py [--members 10000] [--stock 500] [--rate 1000] [--db URL]`.

The bot runs as in production: `app.start()` runs PTB's update fetcher, updates are put into
`app.update_queue` and run under the Application's own concurrent_updates limit (config.toml). Only the
network is replaced (FakeBotAPI, with callback answers timestamped). Three measured phases:

- throughput: every member presses at once on a fresh item -> processed presses per second;
- latency: as many presses on another fresh item, arriving evenly at --rate per second -> p50/p99 from the
  scheduled arrival to the answerCallbackQuery of that press;
- bare: the SQL statements the bot issued for one winning and one sold-out press (recorded in a trial press
  pair), replayed with exec_driver_sql on the same engines, no PTB and no ORM, for the same mix (stock winners,
  the rest sold-out reads), sequentially and with the same concurrency; the faster counts;
- ptb_floor (for reading the others): a bare Application on the same fake request that only answers the presses.

After each phase the item must have exactly `stock` live claims, no member two, every ledger sum must equal
the balance, every press one answer, and presses that came after the stock was gone no write transaction
(at most concurrent_updates presses that were already past the read check may lose in the write). Exit 1 if a
check fails. The last line is `claims_per_s=<n> p50_ms=<n> p99_ms=<n> oversold=<n> double=<n> ratio_vs_bare=<n>`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import html
import logging
import math
import pstats
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, insert  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402
from sqlmodel import col, select  # noqa: E402
from sqlmodel.ext.asyncio.session import AsyncSession  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import CallbackQueryHandler, ContextTypes  # noqa: E402

from bench._common import (  # noqa: E402
    ADMIN_ID,
    RunningBot,
    bare_application,
    bench_config,
    default_sqlite_url,
    prepare_schema,
    start_bot,
    stop_bot,
)
from config import Config  # noqa: E402
from handlers.base import TAGS  # noqa: E402
from handlers.callback_data import Cb, pack, pattern  # noqa: E402
from messages import Renderer  # noqa: E402
from models import vouchers, welfare  # noqa: E402
from models.clock import local_date, utcnow  # noqa: E402
from models.members import Member, Status  # noqa: E402
from models.points import GRANT_RULE, LedgerEntry  # noqa: E402
from models.welfare import ClaimStatus, ItemDraft, ItemStatus, WelfareClaim, WelfareItem  # noqa: E402
from tests.harness import FakeBotAPI, Shown  # noqa: E402

MEMBER_BASE_ID = 30_000_000
COST = 10
# Every member can afford several claims, so points never decide who wins.
START_BALANCE = 100
LOCALE = "zh"
SEED_REASON = "bench seed"
CARD_TEXT = "card"
FLOOR_TEXT = "sold out"
# Statements the engine's "begin" listener emits itself; the bare replay gets them from conn.begin().
BEGIN_STATEMENTS = {"BEGIN", "BEGIN IMMEDIATE"}
# Bound parameters that name who presses on which item (replaced by value); the rest is replayed as recorded.
ID_PARAMS = {"telegram_id_1", "member_id_1", "member_id", "item_id_1", "item_id", "id_1", "pk_1", "pk_2"}
INSERT_CHUNK = 2000


@dataclass(frozen=True)
class Person:
    """A seeded verified member."""

    telegram_id: int
    member_id: int


@dataclass
class Answers:
    """When each callback query was answered (perf_counter seconds) and with what text."""

    at: dict[str, float] = field(default_factory=dict)
    text: dict[str, str | None] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)


@dataclass
class Storm:
    """The presses of one phase: updates with their callback query ids and pressing members."""

    item_id: int
    updates: list[Update]
    query_ids: list[str]
    people: list[Person]


@dataclass
class Outcome:
    """What one measured phase produced and what its checks found."""

    name: str
    elapsed: float
    cpu: float
    latencies_ms: list[float]
    writes: int
    claims: int
    oversold: int
    double: int
    problems: list[str]


@dataclass(frozen=True)
class Recorded:
    """One statement as the bot sent it to the driver: SQL text, positional parameter names and values."""

    sql: str
    names: tuple[str, ...]
    params: tuple[Any, ...]


@dataclass
class Transaction:
    """The statements of one transaction and the engine it ran on ("read" or "write")."""

    engine: str
    statements: list[Recorded] = field(default_factory=list)


@dataclass
class Trial:
    """The transactions of one winning and one sold-out press, and which trial ids they contain."""

    winner: list[Transaction]
    loser: list[Transaction]
    ids: dict[int, str]


# --- set-up ---------------------------------------------------------------------------------------------


async def seed_members(bot: RunningBot, config: Config, count: int) -> list[Person]:
    """Bulk-insert verified members with START_BALANCE points each (one ledger row, so ledger sum == balance)."""
    units = [u.code for u in config.units]
    now = utcnow()
    day = local_date(config.timezone)
    rows = [
        {
            "telegram_id": MEMBER_BASE_ID + i,
            "unit_code": units[i % len(units)],
            "employee_no": f"B{i:06d}",
            "name": f"会员{i}",
            "status": Status.VERIFIED,
            "language": LOCALE,
            "balance": START_BALANCE,
            "created_at": now,
            "verified_at": now,
        }
        for i in range(count)
    ]
    async with bot.db.write() as session:
        for start in range(0, count, INSERT_CHUNK):
            await session.exec(insert(Member).values(rows[start : start + INSERT_CHUNK]))
        found = await session.exec(
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
            await session.exec(insert(LedgerEntry).values(ledger[start : start + INSERT_CHUNK]))
    return people


async def open_first_come(bot: RunningBot, title: str, stock: int) -> int:
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
    async with bot.db.write() as session:
        item = await welfare.store_item(session, draft, None, ADMIN_ID, now, ItemStatus.PUBLISHED)
        return item.id


def make_storm(bot: RunningBot, item_id: int, people: list[Person], tag: str) -> Storm:
    """One claim press per member on the item's card (the card is put in each chat so the bot can edit it)."""
    data = pack(Cb.WELFARE_CLAIM, item_id, 1)
    buttons = [[{"text": "claim", "callback_data": data}]]
    updates, query_ids = [], []
    for n, person in enumerate(people):
        card = Shown(item_id, person.telegram_id, CARD_TEXT, buttons)
        bot.api.chats.setdefault(person.telegram_id, []).append(card)
        query_id = f"{tag}{n}"
        payload = callback_payload(n + 1, query_id, person.telegram_id, data, bot.api._message_json(card))
        updates.append(Update.de_json(payload, bot.app.bot))
        query_ids.append(query_id)
    return Storm(item_id, updates, query_ids, people)


def callback_payload(update_id: int, query_id: str, telegram_id: int, data: str, message: dict[str, Any]) -> dict:
    """A button press as Telegram delivers it."""
    user = {"id": telegram_id, "is_bot": False, "first_name": "M", "language_code": LOCALE}
    return {
        "update_id": update_id,
        "callback_query": {"id": query_id, "from": user, "chat_instance": "ci", "data": data, "message": message},
    }


def time_answers(bot: RunningBot) -> Answers:
    """Wrap the fake Bot API's answerCallbackQuery so each answer is timestamped when the bot makes it."""
    answers = Answers()
    record = bot.api._answerCallbackQuery

    def timed(params: dict[str, Any]) -> bool:
        query_id = params["callback_query_id"]
        answers.at[query_id] = time.perf_counter()
        answers.text[query_id] = params.get("text")
        answers.count[query_id] = answers.count.get(query_id, 0) + 1
        return record(params)

    bot.api._answerCallbackQuery = timed  # type: ignore[method-assign]
    return answers


def count_writes(bot: RunningBot) -> Callable[[], int]:
    """Count write transactions the handlers open (the wrapper calls services.db.write()); returns a reader."""
    real_write = bot.db.write
    opened = 0

    def counting() -> AbstractAsyncContextManager[AsyncSession]:
        nonlocal opened
        opened += 1
        return real_write()

    bot.db.write = counting  # type: ignore[method-assign]
    return lambda: opened


# --- feeding the Application -----------------------------------------------------------------------------


async def all_at_once(bot: RunningBot, storm: Storm) -> tuple[float, list[float]]:
    """Put every press into the update queue at once; seconds until the last is fully processed, and arrivals."""
    queue = bot.app.update_queue
    start = time.perf_counter()
    for update in storm.updates:
        queue.put_nowait(update)
    await queue.join()
    return time.perf_counter() - start, [start] * len(storm.updates)


async def evenly(bot: RunningBot, storm: Storm, rate: float) -> tuple[float, list[float]]:
    """Put press i into the update queue at start + i/rate (late ticks put every press that is due)."""
    queue = bot.app.update_queue
    start = time.perf_counter()
    arrivals = [start + i / rate for i in range(len(storm.updates))]
    i = 0
    while i < len(arrivals):
        now = time.perf_counter()
        while i < len(arrivals) and arrivals[i] <= now:
            queue.put_nowait(storm.updates[i])
            i += 1
        if i < len(arrivals):
            await asyncio.sleep(max(0.0, arrivals[i] - time.perf_counter()))
    await queue.join()
    return time.perf_counter() - start, arrivals


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of the values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# --- checks ----------------------------------------------------------------------------------------------


async def check_item(
    db_read: Callable[[], AbstractAsyncContextManager[AsyncSession]], item_id: int, stock: int
) -> tuple[int, int, int, list[str]]:
    """Live claims, oversold and double claims of the item, and the ledger check over every member."""
    live = col(WelfareClaim.status).in_(welfare.LIVE)
    async with db_read() as session:
        claims = (await session.exec(select(func.count()).where(WelfareClaim.item_id == item_id, live))).one()
        left = (await session.exec(select(WelfareItem.stock).where(WelfareItem.id == item_id))).one()
        per_member = (
            select(WelfareClaim.member_id)
            .where(WelfareClaim.item_id == item_id, live)
            .group_by(col(WelfareClaim.member_id))
            .having(func.count() > 1)
            .subquery()
        )
        double = (await session.exec(select(func.count()).select_from(per_member))).one()
        sums = dict(
            (
                await session.exec(
                    select(LedgerEntry.member_id, func.sum(LedgerEntry.delta)).group_by(LedgerEntry.member_id)
                )
            ).all()
        )
        balances = dict((await session.exec(select(Member.id, Member.balance))).all())
    oversold = max(0, claims - stock) + max(0, -(left or 0))
    problems = []
    if claims != stock:
        problems.append(f"item {item_id}: {claims} live claims for stock {stock}")
    if left != 0:
        problems.append(f"item {item_id}: stock left {left}, expected 0")
    if double:
        problems.append(f"item {item_id}: {double} members hold two live claims")
    wrong = [m for m, balance in balances.items() if balance != sums.get(m, 0)]
    if wrong:
        problems.append(f"{len(wrong)} members whose ledger sum differs from their balance (e.g. id {wrong[0]})")
    return claims, oversold, double, problems


async def check_answers(bot: RunningBot, storm: Storm, answers: Answers, renderer: Renderer) -> list[str]:
    """One answer per press: the success toast for exactly the members holding a claim, sold-out for the rest."""
    won = renderer.label(LOCALE, f"welfare_done_{welfare.Mode.FIRST_COME}")
    sold_out = html.unescape(TAGS.sub("", renderer.render(LOCALE, "errors/welfare_sold_out")))
    async with bot.db.read() as session:
        holders = set(
            await session.exec(
                select(Member.telegram_id)
                .join(WelfareClaim, col(WelfareClaim.member_id) == col(Member.id))
                .where(WelfareClaim.item_id == storm.item_id, WelfareClaim.status == ClaimStatus.ACTIVE)
            )
        )
    problems = []
    unanswered = [q for q in storm.query_ids if answers.count.get(q, 0) != 1]
    if unanswered:
        problems.append(f"{len(unanswered)} presses not answered exactly once (e.g. {unanswered[0]})")
    winners = {p.telegram_id for p, q in zip(storm.people, storm.query_ids, strict=True) if answers.text.get(q) == won}
    others = [q for q in storm.query_ids if answers.text.get(q) not in (won, sold_out)]
    if winners != holders:
        problems.append(f"{len(winners ^ holders)} members whose answer disagrees with their claim")
    if others:
        problems.append(f"{len(others)} answers neither success nor sold out, e.g. {answers.text.get(others[0])!r}")
    photos = sum(1 for p in storm.people if any(s.photo is not None for s in bot.api.chats.get(p.telegram_id, [])))
    if photos != len(holders):
        problems.append(f"{photos} vouchers sent for {len(holders)} claims")
    return problems


async def measure(
    bot: RunningBot,
    storm: Storm,
    stock: int,
    answers: Answers,
    writes: Callable[[], int],
    feed: Callable[[], Awaitable[tuple[float, list[float]]]],
    name: str,
    profiler: cProfile.Profile | None,
) -> Outcome:
    """Run one fed storm, then check it."""
    before, cpu = writes(), time.process_time()
    if profiler:
        profiler.enable()
    elapsed, arrivals = await feed()
    if profiler:
        profiler.disable()
    opened, cpu = writes() - before, time.process_time() - cpu
    latencies = [(answers.at[q] - t) * 1000 for q, t in zip(storm.query_ids, arrivals, strict=True) if q in answers.at]
    claims, oversold, double, problems = await check_item(bot.db.read, storm.item_id, stock)
    problems += await check_answers(bot, storm, answers, Renderer())
    concurrency = bot.app.update_processor.max_concurrent_updates
    if opened - claims > concurrency:
        problems.append(f"{opened} write transactions for {claims} claims: sold-out presses are writing")
    return Outcome(name, elapsed, cpu, latencies, opened, claims, oversold, double, [f"{name}: {p}" for p in problems])


# --- the bare baseline -----------------------------------------------------------------------------------


@asynccontextmanager
async def record_transactions(bot: RunningBot) -> AsyncIterator[list[Transaction]]:
    """Every transaction either engine runs inside the block, with the statements it sends to the driver."""
    recorded: list[Transaction] = []
    engines = {"write": bot.db.write_engine, "read": bot.db.read_engine}
    listeners: list[tuple[AsyncEngine, str, Callable[..., None]]] = []
    for label, engine in engines.items():
        if label == "read" and engine is bot.db.write_engine:
            break  # PostgreSQL: one engine for both

        def on_begin(_conn: Any, label: str = label) -> None:
            """A transaction starts."""
            recorded.append(Transaction(label))

        def on_statement(_conn: Any, _cursor: Any, sql: str, params: Any, context: Any, _many: bool) -> None:
            """Keep the statement with its positional parameter names (not the BEGIN the engine itself sends)."""
            if sql.strip() in BEGIN_STATEMENTS:
                return
            compiled = getattr(context, "compiled", None)
            expanded = getattr(context, "_expanded_parameters", {})  # IN (...) lists: one name per value
            positions = (getattr(compiled, "positiontup", None) or ()) if compiled is not None else ()
            names = tuple(n for name in positions for n in expanded.get(name, [name]))
            recorded[-1].statements.append(Recorded(sql, names, tuple(params or ())))

        for name, listener in (("begin", on_begin), ("before_cursor_execute", on_statement)):
            event.listen(engine.sync_engine, name, listener)
            listeners.append((engine, name, listener))
    try:
        yield recorded
    finally:
        for engine, name, listener in listeners:
            event.remove(engine.sync_engine, name, listener)


async def record_trial(bot: RunningBot, item_id: int, winner: Person, loser: Person) -> Trial:
    """Press once to win the trial item's only unit and once to find it sold out; keep both presses' SQL."""
    storm = make_storm(bot, item_id, [winner, loser], "trial")
    presses = []
    for update in storm.updates:
        async with record_transactions(bot) as recorded:
            await bot.app.process_update(update)
        presses.append(recorded)
    ids = {item_id: "item"}
    for person in (winner, loser):
        ids |= {person.telegram_id: "telegram", person.member_id: "member"}
    if len(ids) != 5:
        raise SystemExit("FAILED: the trial's ids collide, so the bare replay could not tell them apart")
    return Trial(presses[0], presses[1], ids)


def bind(statement: Recorded, trial: Trial, item_id: int, person: Person, code: str) -> tuple[Any, ...]:
    """The recorded parameters with the trial's member and item replaced, this press's voucher code and ledger key."""
    values = {"item": item_id, "member": person.member_id, "telegram": person.telegram_id}
    out = []
    for name, value in zip(statement.names, statement.params, strict=True):
        if name in ID_PARAMS and isinstance(value, int) and value in trial.ids:
            value = values[trial.ids[value]]
        elif name.startswith("voucher_code"):
            value = code
        elif name.startswith("idem_key"):
            value = f"bench:bare:{item_id}:{person.member_id}"
        out.append(value)
    return tuple(out)


async def bare_press(
    engines: dict[str, AsyncEngine], press: list[Transaction], trial: Trial, item_id: int, person: Person
) -> None:
    """One press without PTB or ORM: the same transactions on the same engines, fetching every result."""
    code = vouchers.new_code()
    for transaction in press:
        async with engines[transaction.engine].connect() as conn, conn.begin():
            for statement in transaction.statements:
                result = await conn.exec_driver_sql(statement.sql, bind(statement, trial, item_id, person, code))
                if result.returns_rows:
                    result.all()


async def bare_run(
    bot: RunningBot, trial: Trial, item_id: int, people: list[Person], stock: int, concurrency: int
) -> float:
    """The same mix (stock winners first, then sold-out reads) in a bare loop; presses per second."""
    engines = {"write": bot.db.write_engine, "read": bot.db.read_engine}
    plan = [(trial.winner, p) for p in people[:stock]] + [(trial.loser, p) for p in people[stock:]]
    gate = asyncio.Semaphore(concurrency)

    async def one(press: list[Transaction], person: Person) -> None:
        """One press under the concurrency limit."""
        async with gate:
            await bare_press(engines, press, trial, item_id, person)

    start = time.perf_counter()
    if concurrency == 1:
        for press, person in plan:
            await bare_press(engines, press, trial, item_id, person)
    else:
        await asyncio.gather(*(one(press, person) for press, person in plan))
    return len(plan) / (time.perf_counter() - start)


# --- the floor: PTB alone ----------------------------------------------------------------------------------


async def answer_only(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """The floor's handler: answer the press with a fixed text, nothing else."""
    await update.callback_query.answer(FLOOR_TEXT, show_alert=True)


async def ptb_floor(config: Config, count: int, warmup: int) -> float:
    """Presses per second of a bare Application (same fake request, Defaults and concurrency) that only answers."""
    api = FakeBotAPI()
    app = bare_application(config, api)
    app.add_handler(CallbackQueryHandler(answer_only, pattern=pattern(Cb.WELFARE_CLAIM)))
    data = pack(Cb.WELFARE_CLAIM, 1, 1)
    message = {"message_id": 1, "date": 0, "chat": {"id": MEMBER_BASE_ID, "type": "private"}, "text": CARD_TEXT}
    payloads = [callback_payload(n + 1, f"f{n}", MEMBER_BASE_ID + n, data, message) for n in range(warmup + count)]
    updates = [Update.de_json(payload, app.bot) for payload in payloads]
    await app.initialize()
    await app.start()
    try:
        for update in updates[:warmup]:
            app.update_queue.put_nowait(update)
        await app.update_queue.join()
        start = time.perf_counter()
        for update in updates[warmup:]:
            app.update_queue.put_nowait(update)
        await app.update_queue.join()
        elapsed = time.perf_counter() - start
    finally:
        await app.stop()
        await app.shutdown()
    if len(api.calls_of("answerCallbackQuery")) != warmup + count or api.unexpected:
        raise SystemExit("FAILED: the PTB floor did not answer every press")
    return count / elapsed


# --- the run ---------------------------------------------------------------------------------------------


def report(outcome: Outcome, total: int) -> None:
    """One line per measured phase."""
    lat = outcome.latencies_ms
    print(
        f"{outcome.name}: {total} presses in {outcome.elapsed:.3f}s = {total / outcome.elapsed:.0f}/s, "
        f"cpu {outcome.cpu / total * 1000:.2f}ms/press; "
        f"answer latency p50={percentile(lat, 50):.1f}ms p90={percentile(lat, 90):.1f}ms "
        f"p99={percentile(lat, 99):.1f}ms max={max(lat):.1f}ms; claims={outcome.claims} "
        f"write_transactions={outcome.writes} (lost in the write: {outcome.writes - outcome.claims})"
    )


async def run(args: argparse.Namespace, config: Config) -> int:
    """Seed, record the trial, warm up, run both storms and the bare baseline, check, print the figures."""
    bot = await start_bot(config, keep_rate_limiter=args.keep_rate_limiter)
    profiler = cProfile.Profile() if args.profile else None
    problems: list[str] = []
    try:
        async with bot.db.read() as session:
            if (await session.exec(select(func.count()).select_from(Member))).one():
                print("FAILED: the database already has members; give an empty one", file=sys.stderr)
                return 2
        people = await seed_members(bot, config, args.warmup + 2 + 2 * args.members)
        warm, trial_pair = people[: args.warmup], people[args.warmup : args.warmup + 2]
        burst = people[args.warmup + 2 : args.warmup + 2 + args.members]
        steady = people[args.warmup + 2 + args.members :]
        warm_stock = max(1, args.stock * args.warmup // args.members)
        items = {
            "warm": await open_first_come(bot, "热身", warm_stock),
            "trial": await open_first_come(bot, "试按", 1),
            "throughput": await open_first_come(bot, "电影票", args.stock),
            "latency": await open_first_come(bot, "音乐会票", args.stock),
            "bare_sequential": await open_first_come(bot, "裸跑一", args.stock),
            "bare_concurrent": await open_first_come(bot, "裸跑二", args.stock),
        }
        concurrency = bot.app.update_processor.max_concurrent_updates
        print(
            f"seeded {len(people)} members, db={bot.db.dialect}, concurrent_updates={concurrency}, "
            f"rate_limiter={'on' if args.keep_rate_limiter else 'off'}, stock={args.stock}"
        )
        storms = {
            "warm": make_storm(bot, items["warm"], warm, "w"),
            "throughput": make_storm(bot, items["throughput"], burst, "t"),
            "latency": make_storm(bot, items["latency"], steady, "l"),
        }
        answers = time_answers(bot)
        writes = count_writes(bot)
        trial = await record_trial(bot, items["trial"], *trial_pair)
        print(
            f"trial: a winning press = {[len(t.statements) for t in trial.winner]} statements in "
            f"{[t.engine for t in trial.winner]} transactions, a sold-out press = "
            f"{[len(t.statements) for t in trial.loser]} in {[t.engine for t in trial.loser]}"
        )

        await bot.app.start()
        try:
            warm_outcome = await measure(
                bot,
                storms["warm"],
                warm_stock,
                answers,
                writes,
                lambda: all_at_once(bot, storms["warm"]),
                "warm-up",
                None,
            )
            problems += warm_outcome.problems
            burst_outcome = await measure(
                bot,
                storms["throughput"],
                args.stock,
                answers,
                writes,
                lambda: all_at_once(bot, storms["throughput"]),
                "throughput",
                profiler if args.profile == "throughput" else None,
            )
            steady_outcome = await measure(
                bot,
                storms["latency"],
                args.stock,
                answers,
                writes,
                lambda: evenly(bot, storms["latency"], args.rate),
                "latency",
                profiler if args.profile == "latency" else None,
            )
        finally:
            await bot.app.stop()
        problems += burst_outcome.problems + steady_outcome.problems
        report(burst_outcome, args.members)
        report(steady_outcome, args.members)

        bare_rates = {}
        for name, limit in (("bare_sequential", 1), ("bare_concurrent", concurrency)):
            bare_rates[name] = await bare_run(bot, trial, items[name], burst, args.stock, limit)
            _claims, _oversold, _double, found = await check_item(bot.db.read, items[name], args.stock)
            problems += [f"{name}: {p}" for p in found]
        print(
            f"bare: same statements, no PTB/ORM: sequential {bare_rates['bare_sequential']:.0f}/s, "
            f"{concurrency} at a time {bare_rates['bare_concurrent']:.0f}/s"
        )
        floor = await ptb_floor(config, args.members, args.warmup)
        print(f"ptb_floor: a bare Application that only answers the same presses: {floor:.0f}/s")
        if bot.api.unexpected:
            problems.append(f"unexpected Bot API calls: {sorted(set(bot.api.unexpected))}")
    finally:
        await stop_bot(bot)

    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
    claims_per_s = args.members / burst_outcome.elapsed
    p50 = percentile(steady_outcome.latencies_ms, 50)
    p99 = percentile(steady_outcome.latencies_ms, 99)
    oversold = burst_outcome.oversold + steady_outcome.oversold
    double = burst_outcome.double + steady_outcome.double
    ratio = claims_per_s / max(bare_rates.values())
    for target, met in (
        ("claims_per_s >= 1500", claims_per_s >= 1500),
        ("p99_ms <= 250", p99 <= 250),
        ("ratio_vs_bare >= 0.5", ratio >= 0.5),
    ):
        print(f"target {target}: {'met' if met else 'MISSED'}")
    for problem in problems[:30]:
        print(f"FAILED: {problem}", file=sys.stderr)
    print(
        f"claims_per_s={claims_per_s:.0f} p50_ms={p50:.1f} p99_ms={p99:.1f} "
        f"oversold={oversold} double={double} ratio_vs_bare={ratio:.2f}"
    )
    return 1 if problems else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000, help="distinct members pressing per storm (10000)")
    parser.add_argument("--stock", type=int, default=500, help="stock of each item (default 500)")
    parser.add_argument("--rate", type=float, default=1000.0, help="arrivals per second in the latency run (1000)")
    parser.add_argument("--warmup", type=int, default=1000, help="presses of the untimed warm-up storm (1000)")
    parser.add_argument("--concurrency", type=int, default=None, help="concurrent updates (default: the config's)")
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file in a temp dir)")
    parser.add_argument(
        "--keep-rate-limiter", action="store_true", help="keep AIORateLimiter (caps messages at ~30/s, like Telegram)"
    )
    parser.add_argument("--profile", choices=["throughput", "latency"], help="cProfile one timed phase (to stderr)")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Set up a temporary directory, the config and the schema, then run the benchmark."""
    args = parse_args(argv)
    if args.stock >= args.members:
        raise SystemExit("--stock must be smaller than --members (most presses should find the item sold out)")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=args.log_level.upper())
    with tempfile.TemporaryDirectory(prefix="gongshe-claims-") as tmp:
        work = Path(tmp)
        config = bench_config(args.db or default_sqlite_url(work), work)
        if args.concurrency is not None:
            config = replace(config, concurrent_updates=args.concurrency)
        prepare_schema(config)
        return asyncio.run(run(args, config))


if __name__ == "__main__":
    sys.exit(main())
