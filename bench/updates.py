"""Offline throughput of the real bot: /points (a read), /grant (a write) and a bare PTB reply, in one run.

Run: `.venv/bin/python bench/updates.py [--n 2000] [--members 1000] [--db URL]`.

Every Application is started with AIORateLimiter as in production and fed through app.update_queue (PTB's own
update fetcher, concurrent_updates from config.toml). Replies leave the update's slot (handlers/sending.py's
ReplySender), so a rate is updates fully handled (process_update returned) per second; how long the
background replies then took to drain (the limiter holds them to ~30/s) is reported beside it. The bare
baseline is a PTB Application whose one handler sends a fixed reply through a ReplySender, as the bot does.

Checks (exit 1 if any fails): every /points got exactly one reply, the balance message with that member's
balance; every /grant the success message in the cadre's chat and nothing else; every ledger sum equals the
balance, the total is the seeded total plus the grants, and each /grant left one ledger row, one audit row and
one durable notice (outbox row) for the member. The last line is
`points_per_s=<n> points_ratio=<r> award_per_s=<n> award_ratio=<r> bare_reply_per_s=<n>`.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import Application, CommandHandler, ContextTypes  # noqa: E402

from bench._common import (  # noqa: E402
    ADMIN_ID,
    RunningBot,
    ThreadProfiler,
    TimedBotAPI,
    Timing,
    add_common_arguments,
    bare_application,
    command_update,
    count_members,
    fail,
    feed_at_once,
    ledger_mismatches,
    print_profile,
    run_benchmark,
    start_bare,
    start_bot,
    stop_bare,
    stop_bot,
    timed,
)
from config import Config  # noqa: E402
from handlers.base import Outgoing, deliver  # noqa: E402
from handlers.sending import ReplySender  # noqa: E402
from messages import Renderer  # noqa: E402
from models import members, points  # noqa: E402
from models.audit import AuditEntry  # noqa: E402
from models.clock import local_date  # noqa: E402
from models.db import Database  # noqa: E402
from models.members import Actor, Member, Role, RosterRow  # noqa: E402
from models.outbox import OutboxMessage  # noqa: E402
from models.points import LedgerEntry  # noqa: E402

MEMBER_BASE_ID = 10_000_000
CADRE_BASE_ID = 20_000_000
SEED_ROWS_PER_MEMBER = 3
SEED_RULE = "idea_adopted"
GRANT_AMOUNT = 5
GRANT_REASON = "bench award"
BARE_TEXT = "pong"
# Stands in for the balance when a grant reply is checked (the balance depends on the order of grants).
BALANCE_MARK = "\x00balance\x00"
# Targets from the issue.
TARGETS = {"points_ratio": 0.40, "award_ratio": 0.25}


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


@dataclass(frozen=True)
class Phase:
    """One measured phase: the handled rate, the drain of its replies and each thread's CPU."""

    name: str
    handled: Timing
    drain: Timing
    thread_cpu: str

    def report(self) -> None:
        """Two lines: handled rate and reply drain, each with CPU ms per update."""
        h, d = self.handled, self.drain
        print(
            f"{self.name:<6} {h.count} updates handled in {h.wall:.3f}s = {h.per_s:.0f}/s, "
            f"{h.cpu_ms:.3f} ms CPU per update ({self.thread_cpu})"
        )
        print(
            f"{self.name:<6} their replies drained {d.wall:.1f}s later = {d.per_s:.1f}/s (AIORateLimiter), "
            f"{d.cpu_ms:.3f} ms CPU per reply"
        )


# --- seeding, through the model functions ---------------------------------------------------------------------


def seed(session: Session, config: Config, count: int) -> Population:
    """Roster, registration (verified by the roster), seed ledger rows and one cadre per unit (one write unit)."""
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
    roster = [RosterRow(p.unit_code, p.employee_no, p.name, None) for p in everyone]
    members.import_roster(session, roster, ADMIN_ID)
    for p in everyone:
        member = members.register(session, p.telegram_id, p.unit_code, p.employee_no, p.name, p.language)
        if not member.verified:
            raise RuntimeError(f"seeding failed: {p.employee_no} was not verified by the roster")
        p.member_id = member.id
    for p in people:
        for k in range(SEED_ROWS_PER_MEMBER):
            amount = 1 + (p.member_id + k) % 20
            day = today - timedelta(days=k)
            p.balance += points.award(session, p.member_id, rule, f"seed:{p.member_id}:{k}", day, amount).amount
    for code, cadre in cadres.items():
        target = session.get(Member, cadre.member_id)
        members.set_role(session, admin, target, Role.CADRE, code, True)
    return Population(people, cadres)


# --- the updates ------------------------------------------------------------------------------------------------


def points_updates(app: Application, people: list[Person], n: int, offset: int) -> list[Update]:
    """N /points commands, round-robin over the members."""
    chosen = [people[(offset + i) % len(people)] for i in range(n)]
    return [command_update(app, p.telegram_id, "/points", p.language) for p in chosen]


def grant_updates(app: Application, pop: Population, n: int, offset: int) -> tuple[list[Update], list[Person]]:
    """N /grant commands, each by the cadre of the target's unit, to members round-robin."""
    updates, targets = [], []
    for i in range(n):
        target = pop.members[(offset + i) % len(pop.members)]
        cadre = pop.cadres[target.unit_code]
        text = f"/grant {target.unit_code} {target.employee_no} {GRANT_AMOUNT} {GRANT_REASON}"
        updates.append(command_update(app, cadre.telegram_id, text, cadre.language))
        targets.append(target)
    return updates, targets


async def measure(
    app: Application,
    replies: ReplySender,
    db: Database | None,
    warm: list[Update],
    run: list[Update],
    *,
    profile: bool,
    store: bool,
) -> tuple[Timing, Timing, str]:
    """Warm up (replies drained), then the timed updates until handled, then the drain of their replies."""
    await feed_at_once(app, warm, store=store)
    await replies.drain()
    gc.collect()
    profiler = ThreadProfiler(db, profile=profile)
    await profiler.start()
    handled = await feed_at_once(app, run, store=store)
    stats = await profiler.stop()
    if stats is not None:
        print_profile(stats, len(run), "timed phase")
    cpu = time.process_time()
    drain_wall = await timed(replies.drain())
    drain = Timing(len(run), drain_wall, time.process_time() - cpu)
    return handled, drain, profiler.thread_cpu()


# --- the bare baseline ------------------------------------------------------------------------------------------


async def bare_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The baseline handler: one fixed reply, handed to a ReplySender the way the bot's wrapper does."""
    chat_id = update.effective_chat.id
    sender: ReplySender = context.bot_data["replies"]
    sender.submit(context.application, chat_id, [Outgoing(chat_id, BARE_TEXT)])


async def bench_bare(config: Config, args: argparse.Namespace) -> Phase:
    """A bare Application (Defaults, concurrency, AIORateLimiter as the bot's) replying through a ReplySender."""
    api = TimedBotAPI()
    app = bare_application(config, api)
    app.add_handler(CommandHandler("ping", bare_reply))
    sender = ReplySender(deliver)
    app.bot_data["replies"] = sender
    await start_bare(app)
    try:
        warm = [command_update(app, MEMBER_BASE_ID + i % args.members, "/ping") for i in range(args.warmup)]
        run = [command_update(app, MEMBER_BASE_ID + i % args.members, "/ping") for i in range(args.n)]
        handled, drain, cpu = await measure(app, sender, None, warm, run, profile=args.profile == "bare", store=False)
    finally:
        await stop_bare(app)
    sent = [c for c in api.calls_of("sendMessage") if c.params.get("text") == BARE_TEXT]
    if len(sent) != args.n + args.warmup or api.unexpected:
        raise SystemExit(f"FAILED: bare baseline sent {len(sent)} replies for {args.n + args.warmup} updates")
    return Phase("bare", handled, drain, cpu)


# --- checks -----------------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class LedgerState:
    """Balances, ledger, audit and outbox after the run."""

    wrong: list[int]
    total_balance: int
    members: int
    grant_rows: int
    audit_rows: int
    notices: int


def ledger_state(session: Session) -> LedgerState:
    """Members whose ledger sum differs from their balance, the totals, and what each /grant left behind."""
    balances = session.exec(select(func.count(), func.sum(Member.balance))).one()
    grant_rows = session.exec(select(func.count()).where(LedgerEntry.rule == points.GRANT_RULE)).one()
    audit_rows = session.exec(select(func.count()).where(AuditEntry.action == "grant")).one()
    notices = session.exec(
        select(func.count()).where(col(OutboxMessage.kind) == "notice", col(OutboxMessage.chat_id) >= MEMBER_BASE_ID)
    ).one()
    return LedgerState(ledger_mismatches(session), balances[1] or 0, balances[0], grant_rows, audit_rows, notices)


def check_ledger(state: LedgerState, pop: Population, grants: int) -> list[str]:
    """Ledger sum equals every balance; the total moved by exactly the grants; one ledger, audit and outbox row each."""
    problems = []
    if state.wrong:
        problems.append(f"{len(state.wrong)} balances differ from the ledger (e.g. member {state.wrong[0]})")
    expected_total = sum(p.balance for p in pop.members) + grants * GRANT_AMOUNT
    if state.total_balance != expected_total:
        problems.append(f"total balance {state.total_balance}, expected {expected_total}")
    for what, found in (("ledger", state.grant_rows), ("audit", state.audit_rows), ("outbox notice", state.notices)):
        if found != grants:
            problems.append(f"{found} grant {what} rows for {grants} grants")
    print(
        f"check: members={state.members} ledger_sum==balance for all={not state.wrong} grants_sent={grants} "
        f"grant_ledger_rows={state.grant_rows} audit_rows={state.audit_rows} member_notices={state.notices}"
    )
    return problems


# --- the run ----------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, config: Config) -> int:
    """The bare baseline, then seed, /points and /grant, each warmed up, timed, drained and checked."""
    bare = await bench_bare(config, args)
    bot = await start_bot(config, activity=args.activity)
    renderer = bot.services.renderer
    try:
        if await bot.db.read(count_members):
            print("FAILED: the database already has members; give an empty one", file=sys.stderr)
            return 2
        # On the database's own writer (SQLite) or a worker: a long seeding transaction in another thread would
        # hold SQLite's write lock while the inbox marker's first prune waits for it.
        pop = await bot.db.write(seed, config, args.members)
        concurrency = bot.app.update_processor.max_concurrent_updates
        print(
            f"setup: db={bot.db.dialect} members={len(pop.members)} cadres={len(pop.cadres)} "
            f"concurrent_updates={concurrency} rate_limiter={type(bot.app.bot.rate_limiter).__name__} "
            f"inbox={'on' if args.inbox else 'off'}"
        )
        replies = bot.replies

        warm = points_updates(bot.app, pop.members, args.warmup, 0)
        timed_points = points_updates(bot.app, pop.members, args.n, args.warmup)
        sent = Counter(u.effective_user.id for u in warm + timed_points)
        profile, store = args.profile == "points", args.inbox
        handled, drain, cpu = await measure(bot.app, replies, bot.db, warm, timed_points, profile=profile, store=store)
        points_phase = Phase("points", handled, drain, cpu)
        problems = check_points_replies(bot, renderer, pop.members, sent)

        warm, warm_targets = grant_updates(bot.app, pop, args.warmup, 0)
        timed_grants, targets = grant_updates(bot.app, pop, args.n, args.warmup)
        profile = args.profile == "award"
        handled, drain, cpu = await measure(bot.app, replies, bot.db, warm, timed_grants, profile=profile, store=store)
        award_phase = Phase("award", handled, drain, cpu)
        problems += check_grant_replies(bot, renderer, pop, warm_targets + targets)
        state = await bot.db.read(ledger_state)
        # The ledger's verdict first: reply problems can be many lines.
        problems = check_ledger(state, pop, len(warm_targets) + len(targets)) + problems
        if bot.api.unexpected:
            problems.append(f"unexpected Bot API calls: {sorted(set(bot.api.unexpected))}")
    finally:
        await stop_bot(bot)

    for phase in (bare, points_phase, award_phase):
        phase.report()
    bare_rate = bare.handled.per_s
    figures = {
        "points_ratio": points_phase.handled.per_s / bare_rate,
        "award_ratio": award_phase.handled.per_s / bare_rate,
    }
    for name, target in TARGETS.items():
        print(f"target {name} >= {target}: {'met' if figures[name] >= target else 'MISSED'}")
    fail(problems)
    print(
        f"points_per_s={points_phase.handled.per_s:.0f} points_ratio={figures['points_ratio']:.2f} "
        f"award_per_s={award_phase.handled.per_s:.0f} award_ratio={figures['award_ratio']:.2f} "
        f"bare_reply_per_s={bare_rate:.0f}"
    )
    return 1 if problems else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, members=1000)
    parser.add_argument("--n", type=int, default=2000, help="timed updates per phase (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed updates before each phase (default 200)")
    parser.add_argument("--profile", choices=["bare", "points", "award"], help="cProfile one timed phase (stderr)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    return run_benchmark(parse_args(argv), "gongshe-bench-", run)


if __name__ == "__main__":
    sys.exit(main())
