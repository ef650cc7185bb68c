"""Offline throughput of the real bot: /points (read), /grant (write) and a bare PTB reply as the baseline.

Run: `.venv/bin/python bench/updates.py [--n 5000] [--members 1000] [--db URL]`. The last line is
`points_per_s=<n> award_per_s=<n> bare_reply_per_s=<n>`; the run fails (exit 1) if any reply was not the
success text or the ledger and the balances disagree afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func  # noqa: E402
from sqlmodel import select  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import CommandHandler, ContextTypes  # noqa: E402

from bench._common import (  # noqa: E402
    ADMIN_ID,
    RunningBot,
    Timing,
    bare_application,
    bench_config,
    command_update,
    default_sqlite_url,
    prepare_schema,
    process_all,
    start_bot,
    stop_bot,
)
from config import Config  # noqa: E402
from messages import Renderer  # noqa: E402
from models import members, points  # noqa: E402
from models.audit import AuditEntry  # noqa: E402
from models.clock import local_date  # noqa: E402
from models.members import Actor, Member, Role, RosterRow  # noqa: E402
from models.points import LedgerEntry  # noqa: E402
from tests.harness import FakeBotAPI  # noqa: E402

MEMBER_BASE_ID = 10_000_000
CADRE_BASE_ID = 20_000_000
SEED_ROWS_PER_MEMBER = 3
SEED_RULE = "idea_adopted"
GRANT_AMOUNT = 5
GRANT_REASON = "bench award"
BARE_TEXT = "pong"
# Stands in for the balance when a grant reply is checked (the balance depends on the order of grants).
BALANCE_MARK = "\x00balance\x00"


@dataclass
class Person:
    """A seeded member: who they are on Telegram and in the roster."""

    telegram_id: int
    unit_code: str
    employee_no: str
    name: str
    language: str
    member_id: int = 0
    balance: int = 0


@dataclass
class Population:
    """Everyone the benchmark talks as."""

    members: list[Person]
    cadres: dict[str, Person]


async def seed(bot: RunningBot, config: Config, count: int) -> Population:
    """Roster, registration, seed ledger rows and one cadre per unit, all through the model functions."""
    units = [u.code for u in config.units]
    people = [
        Person(MEMBER_BASE_ID + i, units[i % len(units)], f"E{i:06d}", f"成员{i}", "en" if i % 4 == 0 else "zh")
        for i in range(count)
    ]
    cadres = {code: Person(CADRE_BASE_ID + i, code, f"C{i:06d}", f"干部{i}", "zh") for i, code in enumerate(units)}
    everyone = people + list(cadres.values())
    today = local_date(config.timezone)
    rule = config.rules[SEED_RULE]
    admin = Actor(ADMIN_ID, None, True, frozenset(), frozenset())
    async with bot.db.write() as session:
        await members.import_roster(
            session, [RosterRow(p.unit_code, p.employee_no, p.name, None) for p in everyone], ADMIN_ID
        )
        for p in everyone:
            member = await members.register(session, p.telegram_id, p.unit_code, p.employee_no, p.name, p.language)
            if not member.verified:
                raise SystemExit(f"seeding failed: {p.employee_no} was not verified by the roster")
            p.member_id = member.id
        for p in people:
            for k in range(SEED_ROWS_PER_MEMBER):
                amount = 1 + (p.member_id + k) % 20
                day = today - timedelta(days=k)
                result = await points.award(session, p.member_id, rule, f"seed:{p.member_id}:{k}", day, amount)
                p.balance += result.amount
        for code, cadre in cadres.items():
            target = await session.get(Member, cadre.member_id)
            await members.set_role(session, admin, target, Role.CADRE, code, True)
    return Population(people, cadres)


def points_updates(bot: RunningBot, people: list[Person], n: int, offset: int) -> list[Update]:
    """N /points commands, spread round-robin over the members."""
    chosen = [people[(offset + i) % len(people)] for i in range(n)]
    return [command_update(bot.app, p.telegram_id, "/points", p.language) for p in chosen]


def grant_updates(bot: RunningBot, pop: Population, n: int, offset: int) -> tuple[list[Update], list[Person]]:
    """N /grant commands, each by the cadre of the target's unit, to members round-robin."""
    updates, targets = [], []
    for i in range(n):
        target = pop.members[(offset + i) % len(pop.members)]
        cadre = pop.cadres[target.unit_code]
        text = f"/grant {target.unit_code} {target.employee_no} {GRANT_AMOUNT} {GRANT_REASON}"
        updates.append(command_update(bot.app, cadre.telegram_id, text, cadre.language))
        targets.append(target)
    return updates, targets


def check_points_replies(bot: RunningBot, renderer: Renderer, people: list[Person], sent: Counter[int]) -> list[str]:
    """Every /points got exactly one reply, and it is the balance message with the right balance."""
    problems = []
    for p in people:
        expected = renderer.render(p.language, "points/balance", balance=p.balance)
        shown = [m.text for m in bot.api.chats.get(p.telegram_id, [])]
        good = sum(1 for text in shown if text == expected)
        if good != sent[p.telegram_id] or len(shown) != sent[p.telegram_id]:
            problems.append(f"member {p.telegram_id}: {good} good of {len(shown)} replies to {sent[p.telegram_id]}")
    return problems


def check_grant_replies(bot: RunningBot, renderer: Renderer, pop: Population, targets: list[Person]) -> list[str]:
    """Every /grant got the success text (with some balance) in the cadre's chat, and nothing else was said there."""
    problems = []
    per_cadre: Counter[int] = Counter(pop.cadres[t.unit_code].telegram_id for t in targets)
    for cadre in pop.cadres.values():
        expected = [
            renderer.render(
                cadre.language,
                "points/adjusted",
                name=t.name,
                amount=GRANT_AMOUNT,
                balance=BALANCE_MARK,
                reason=GRANT_REASON,
            ).partition(BALANCE_MARK)
            for t in pop.members
            if t.unit_code == cadre.unit_code
        ]
        shown = [m.text for m in bot.api.chats.get(cadre.telegram_id, [])]
        good = sum(1 for text in shown if any(_fills(text, head, tail) for head, _, tail in expected))
        if good != per_cadre[cadre.telegram_id] or len(shown) != per_cadre[cadre.telegram_id]:
            problems.append(
                f"cadre {cadre.telegram_id}: {good} good of {len(shown)} replies to {per_cadre[cadre.telegram_id]}"
            )
    return problems


def _fills(text: str, head: str, tail: str) -> bool:
    """The text is head + a number + tail."""
    return text.startswith(head) and text.endswith(tail) and text[len(head) : len(text) - len(tail)].isdigit()


async def check_ledger(bot: RunningBot, pop: Population, grants: int) -> list[str]:
    """Ledger sum equals every member's balance; one ledger row and one audit row per grant."""
    problems = []
    async with bot.db.read() as session:
        by_member = select(LedgerEntry.member_id, func.sum(LedgerEntry.delta)).group_by(LedgerEntry.member_id)
        sums = dict((await session.exec(by_member)).all())
        balances = dict((await session.exec(select(Member.id, Member.balance))).all())
        grant_rows = (await session.exec(select(func.count()).where(LedgerEntry.rule == points.GRANT_RULE))).one()
        audit_rows = (await session.exec(select(func.count()).where(AuditEntry.action == "grant"))).one()
    wrong = [mid for mid, balance in balances.items() if balance != sums.get(mid, 0)]
    if wrong:
        problems.append(f"{len(wrong)} members whose balance differs from their ledger sum (e.g. id {wrong[0]})")
    expected_total = sum(p.balance for p in pop.members) + grants * GRANT_AMOUNT
    if sum(balances.values()) != expected_total:
        problems.append(f"total balance {sum(balances.values())}, expected {expected_total}")
    if grant_rows != grants:
        problems.append(f"{grant_rows} grant ledger rows for {grants} grants")
    if audit_rows != grants:
        problems.append(f"{audit_rows} grant audit rows for {grants} grants")
    print(
        f"check: members={len(balances)} ledger_sum==balance for all={not wrong} "
        f"grant_ledger_rows={grant_rows} grants_sent={grants} audit_rows={audit_rows}"
    )
    return problems


async def bare_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The baseline handler: one fixed reply, no database, no templates."""
    await context.bot.send_message(update.effective_chat.id, BARE_TEXT)


async def bench_bare(config: Config, n: int, warmup: int) -> Timing:
    """Updates per second of a bare Application (same fake request and Defaults) with one CommandHandler."""
    api = FakeBotAPI()
    app = bare_application(config, api)
    app.add_handler(CommandHandler("ping", bare_reply))
    await app.initialize()
    try:
        await process_all(app, [command_update(app, MEMBER_BASE_ID + i, "/ping") for i in range(warmup)])
        timing = await process_all(app, [command_update(app, MEMBER_BASE_ID + i, "/ping") for i in range(n)])
    finally:
        await app.shutdown()
    sent = [c for c in api.calls_of("sendMessage") if c.params.get("text") == BARE_TEXT]
    if len(sent) != n + warmup or api.unexpected:
        raise SystemExit(f"FAILED: bare baseline sent {len(sent)} replies for {n + warmup} updates")
    return timing


async def run(args: argparse.Namespace, config: Config) -> int:
    """Seed, warm up, time each phase, verify; prints the figures."""
    bot = await start_bot(config, keep_rate_limiter=args.keep_rate_limiter)
    renderer = Renderer()
    profiler = cProfile.Profile() if args.profile else None
    try:
        async with bot.db.read() as session:
            if (await session.exec(select(func.count()).select_from(Member))).one():
                print("FAILED: the database already has members; give an empty one", file=sys.stderr)
                return 2
        pop = await seed(bot, config, args.members)
        print(f"seeded {len(pop.members)} members, {len(pop.cadres)} cadres, db={bot.db.dialect}")

        sent: Counter[int] = Counter()
        warm = points_updates(bot, pop.members, args.warmup, 0)
        timed = points_updates(bot, pop.members, args.n, args.warmup)
        for u in warm + timed:
            sent[u.effective_user.id] += 1
        await process_all(bot.app, warm)
        if profiler and args.profile == "points":
            profiler.enable()
        points_timing = await process_all(bot.app, timed)
        if profiler:
            profiler.disable()
        problems = check_points_replies(bot, renderer, pop.members, sent)

        warm, warm_targets = grant_updates(bot, pop, args.warmup, 0)
        timed, targets = grant_updates(bot, pop, args.n, args.warmup)
        await process_all(bot.app, warm)
        if profiler and args.profile == "award":
            profiler.enable()
        award_timing = await process_all(bot.app, timed)
        if profiler:
            profiler.disable()
        problems += check_grant_replies(bot, renderer, pop, warm_targets + targets)
        # The ledger's verdict first: reply problems can be many lines.
        problems = await check_ledger(bot, pop, len(warm_targets) + len(targets)) + problems
        if bot.api.unexpected:
            problems.append(f"unexpected Bot API calls: {sorted(set(bot.api.unexpected))}")
    finally:
        await stop_bot(bot)

    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    bare = await bench_bare(config, args.n, args.warmup)
    for name, timing in (("points", points_timing), ("award", award_timing), ("bare", bare)):
        print(
            f"{name:<6}  {timing.count} updates in {timing.wall:.3f}s wall, "
            f"{timing.cpu_ms:.2f} ms CPU per update, {timing.per_s:.0f}/s"
        )
    if problems:
        for problem in problems[:20]:
            print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    print(
        f"points_per_s={points_timing.per_s:.0f} award_per_s={award_timing.per_s:.0f} bare_reply_per_s={bare.per_s:.0f}"
    )
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="timed updates per phase (default 5000)")
    parser.add_argument("--warmup", type=int, default=500, help="untimed updates before each phase (default 500)")
    parser.add_argument("--members", type=int, default=1000, help="verified members to seed (default 1000)")
    parser.add_argument("--concurrency", type=int, default=None, help="concurrent updates (default: the config's)")
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file in a temp dir)")
    parser.add_argument(
        "--keep-rate-limiter", action="store_true", help="keep AIORateLimiter (caps replies at ~30/s, like Telegram)"
    )
    parser.add_argument("--profile", choices=["points", "award"], help="cProfile one timed phase (to stderr)")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Set up a temporary directory, the config and the schema, then run the benchmark."""
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=args.log_level.upper())
    with tempfile.TemporaryDirectory(prefix="gongshe-bench-") as tmp:
        work = Path(tmp)
        config = bench_config(args.db or default_sqlite_url(work), work)
        if args.concurrency is not None:
            config = replace(config, concurrent_updates=args.concurrency)
        prepare_schema(config)
        return asyncio.run(run(args, config))


if __name__ == "__main__":
    sys.exit(main())
