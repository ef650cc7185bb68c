"""Shared pieces of the offline benchmarks: database, configuration, the real bot over a timed fake Bot API,
feeding updates through PTB's update queue, timing, checks and profiling."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import logging
import math
import os
import pstats
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import psycopg
from psycopg import sql
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import Session, select
from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Defaults
from telegram.request import BaseRequest

from bot import build_application, on_shutdown, on_startup, on_stop, upgrade_database
from config import PROJECT_DIR, Config, parse_config, sync_url
from handlers.base import runtime_of
from handlers.inbox import store_updates
from handlers.sending import ReplySender
from models.activity import ActivityLog
from models.db import PG_WORKERS, SQLITE_READERS, Database
from models.members import Member
from models.points import LedgerEntry
from services import Services
from tests.harness import FakeBotAPI

TOKEN = "123456:BENCH-TOKEN"
ADMIN_ID = 1000
# PostgreSQL's maintenance database: where a benchmark database is created and dropped.
PG_MAINTENANCE_DB = "postgres"
PROFILE_LINES = 40
# getUpdates hands over at most this many updates per call (the bot's poller stores each batch in one write).
GET_UPDATES_LIMIT = 100

log = logging.getLogger(__name__)


# --- the database and the configuration -------------------------------------------------------------------


def bench_config(database_url: str, work_dir: Path, admin_ids: Iterable[int] = (ADMIN_ID,)) -> Config:
    """The shipped config.toml, pointed at the benchmark database, with the given bootstrap admins."""
    raw = tomllib.loads((PROJECT_DIR / "config.toml").read_text(encoding="utf-8"))
    raw["admins"] = {"telegram_ids": list(admin_ids)}
    raw["backup"]["directory"] = str(work_dir / "backups")
    return parse_config(raw, {"BOT_TOKEN": TOKEN, "DATABASE_URL": database_url})


def default_sqlite_url(work_dir: Path) -> str:
    """A fresh SQLite file in the benchmark's temporary directory."""
    return f"sqlite:///{work_dir / 'bench.db'}"


def _pg_admin(url: str) -> tuple[str, str]:
    """The libpq conninfo of the server's maintenance database, and the name of the database in the URL."""
    parsed = make_url(sync_url(url))
    if not parsed.database:
        raise SystemExit(f"--db {url}: name the database to use (it is created when it does not exist)")
    admin = parsed.set(drivername="postgresql", database=PG_MAINTENANCE_DB)
    return admin.render_as_string(hide_password=False), parsed.database


@contextmanager
def bench_database(url: str | None, work_dir: Path) -> Iterator[str]:
    """The benchmark's database URL: a fresh SQLite file by default; a PostgreSQL database is created when
    it does not exist and dropped afterwards (an existing one is used as it is and kept)."""
    if url is None:
        yield default_sqlite_url(work_dir)
        return
    if make_url(sync_url(url)).get_backend_name() != "postgresql":
        yield url
        return
    conninfo, name = _pg_admin(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url
    finally:
        if not exists:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def prepare_schema(config: Config) -> None:
    """Create the production schema with the alembic migrations (call before the event loop starts)."""
    upgrade_database(config)


def count_members(session: Session) -> int:
    """Members in the database (a benchmark refuses a database that already has some)."""
    return session.exec(select(func.count()).select_from(Member)).one()


def ledger_mismatches(session: Session) -> list[int]:
    """Ids of members whose balance differs from the sum of their ledger rows."""
    by_member = select(LedgerEntry.member_id, func.sum(LedgerEntry.delta)).group_by(LedgerEntry.member_id)
    sums = dict(session.exec(by_member).all())
    balances = dict(session.exec(select(Member.id, Member.balance)).all())
    return [member_id for member_id, balance in balances.items() if balance != sums.get(member_id, 0)]


# --- the fake Bot API and the bots ---------------------------------------------------------------------------


class TimedBotAPI(FakeBotAPI):
    """FakeBotAPI that also notes when each callback query was answered (perf_counter seconds) and how often."""

    def __init__(self) -> None:
        super().__init__()
        self.answered_at: dict[str, float] = {}
        self.answer_counts: dict[str, int] = {}
        self.answer_texts: dict[str, str | None] = {}

    def _answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        query_id = params["callback_query_id"]
        self.answered_at[query_id] = time.perf_counter()
        self.answer_counts[query_id] = self.answer_counts.get(query_id, 0) + 1
        self.answer_texts[query_id] = params.get("text")
        return super()._answerCallbackQuery(params)


@dataclass
class RunningBot:
    """The real Application, started, on the timed fake Bot API."""

    app: Application
    api: TimedBotAPI
    db: Database

    @property
    def services(self) -> Services:
        """The bot's Services (config, database, renderer, clock, sold-out cache)."""
        return self.app.bot_data["services"]

    @property
    def replies(self) -> ReplySender:
        """The bot's background reply sender (handlers/sending.py)."""
        return runtime_of(self.app).replies


class NoActivity(ActivityLog):
    """--no-activity: handlers note nothing (to measure what the Insight activity records cost)."""

    def note(self, member_id: int, day: date, section: str) -> None:
        return None


async def start_bot(config: Config, *, activity: bool = True) -> RunningBot:
    """The bot as bot.serve() starts it, minus the network and the leader's outbox and scheduled work:
    build_application over TimedBotAPI (AIORateLimiter kept), initialize, on_startup, start (PTB's update fetcher
    runs updates from app.update_queue at concurrent_updates) and the inbox marker."""
    db = Database(config.database_url, config.busy_timeout_ms)
    api = TimedBotAPI()
    app = build_application(config, request=api, db=db, scheduler=False)
    if not activity:
        app.bot_data["services"].activity = NoActivity()
    await app.initialize()
    await on_startup(app)
    await app.start()
    marker = app.bot_data.get("inbox_marker")
    if marker is not None:
        marker.start()
    return RunningBot(app, api, db)


async def stop_bot(bot: RunningBot) -> None:
    """What bot.serve() does on the way out: stop, the inbox marker, post_stop, shutdown, post_shutdown."""
    if bot.app.running:
        await bot.app.stop()
    marker = bot.app.bot_data.get("inbox_marker")
    if marker is not None:
        await marker.stop()
    await on_stop(bot.app)
    await bot.app.shutdown()
    await on_shutdown(bot.app)


def bare_application(config: Config, api: BaseRequest) -> Application:
    """A bare PTB Application built like the bot's (Defaults, concurrency, AIORateLimiter) on the same fake request."""
    return (
        ApplicationBuilder()
        .token(TOKEN)
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=config.timezone))
        .concurrent_updates(config.concurrent_updates)
        .rate_limiter(AIORateLimiter(max_retries=0))
        .request(api)
        .get_updates_request(api)
        .build()
    )


async def start_bare(app: Application) -> None:
    """Initialise and start a bare Application (its update fetcher runs from app.update_queue)."""
    await app.initialize()
    await app.start()


async def stop_bare(app: Application) -> None:
    """Stop and shut down a bare Application."""
    if app.running:
        await app.stop()
    await app.shutdown()


# --- updates ------------------------------------------------------------------------------------------------

_update_ids = itertools.count(1)
_message_ids = itertools.count(1)


# Each update as Telegram's answer carries it (a dict), by update id: the bot's poller stores exactly that, as JSON.
RAW_UPDATES: dict[int, dict[str, Any]] = {}


def _user(user_id: int, language_code: str) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": language_code}


def command_update(app: Application, user_id: int, text: str, language_code: str = "zh") -> Update:
    """A private-chat message carrying a slash command, as Telegram delivers it."""
    user = _user(user_id, language_code)
    data = {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_message_ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": user["first_name"]},
            "from": user,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }
    RAW_UPDATES[data["update_id"]] = data
    return Update.de_json(data, app.bot)


def callback_update(
    app: Application, query_id: str, user_id: int, data: str, message: dict[str, Any], language_code: str = "zh"
) -> Update:
    """A button press on `message` (a Message as JSON), as Telegram delivers it."""
    query = {"id": query_id, "from": _user(user_id, language_code), "chat_instance": "ci", "data": data}
    payload = {"update_id": next(_update_ids), "callback_query": query | {"message": message}}
    RAW_UPDATES[payload["update_id"]] = payload
    return Update.de_json(payload, app.bot)


# --- feeding and timing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """A batch of updates: how many, wall-clock seconds and CPU seconds of the whole process (every thread)."""

    count: int
    wall: float
    cpu: float

    @property
    def per_s(self) -> float:
        """Updates per wall-clock second."""
        return self.count / self.wall

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per update: the event loop plus the database threads."""
        return self.cpu / self.count * 1000


async def receive(app: Application, updates: list[Update], arrivals: list[float], *, store: bool) -> None:
    """Hand updates over as the bot's poller (handlers/inbox.py InboxPoller) does, on a network that answers at
    once: each round takes every update that has arrived (at most GET_UPDATES_LIMIT), stores them in the inbox
    in one write (store=True; the bare Applications have no database) and only then puts them in the update
    queue. Update i arrives at arrivals[i] (perf_counter seconds)."""
    i = 0
    while i < len(updates):
        now = time.perf_counter()
        if arrivals[i] > now:
            await asyncio.sleep(arrivals[i] - now)
            continue
        end = i
        while end < len(updates) and end - i < GET_UPDATES_LIMIT and arrivals[end] <= now:
            end += 1
        batch = updates[i:end]
        if store:
            raw = [RAW_UPDATES[u.update_id] for u in batch]
            await store_updates(app, [(data["update_id"], json.dumps(data, ensure_ascii=False)) for data in raw])
        for update in batch:
            app.update_queue.put_nowait(update)
        i = end


async def feed_at_once(app: Application, updates: list[Update], *, store: bool) -> Timing:
    """Every update arrives at once; returns when PTB has finished processing all of them (process_update
    returned for each)."""
    wall, cpu = time.perf_counter(), time.process_time()
    await receive(app, updates, [wall] * len(updates), store=store)
    await app.update_queue.join()
    return Timing(len(updates), time.perf_counter() - wall, time.process_time() - cpu)


async def feed_evenly(
    app: Application, updates: list[Update], rate: float, *, store: bool
) -> tuple[Timing, list[float]]:
    """Update i arrives at start + i / rate; returns the timing (until all are processed) and each update's
    scheduled arrival (perf_counter seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    arrivals = [wall + i / rate for i in range(len(updates))]
    await receive(app, updates, arrivals, store=store)
    await app.update_queue.join()
    return Timing(len(updates), time.perf_counter() - wall, time.process_time() - cpu), arrivals


async def timed(work: Awaitable[Any]) -> float:
    """Seconds `work` took."""
    start = time.perf_counter()
    await work
    return time.perf_counter() - start


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# --- profiling ---------------------------------------------------------------------------------------------------


@dataclass
class _Profiled:
    """One thread's profile and the thread's CPU time while it ran."""

    name: str
    profile: cProfile.Profile
    cpu_start: float
    cpu: float = 0.0


@dataclass
class ThreadProfiler:
    """cProfile in the event loop's thread and in every database thread (the SQLite writer and readers, or the
    PostgreSQL workers), where the handler bodies run; their stats are merged. cProfile profiles only the thread
    that enables it, so each database thread enables (and later disables) its own from inside a job it runs.
    The timer is the thread's CPU time: a thread waiting (for the GIL, a lock, the disk or work) costs nothing.
    With profile=False it only measures each thread's CPU time (no overhead)."""

    db: Database | None
    profile: bool = True
    threads: dict[int, _Profiled] = field(default_factory=dict)

    def _pool_size(self) -> int:
        assert self.db is not None
        return SQLITE_READERS if self.db.is_sqlite else PG_WORKERS

    async def _in_every_thread(self, job: Callable[..., None]) -> None:
        """Run `job` once in each database thread (a barrier makes each pool thread take exactly one)."""
        if self.db is None:
            return
        barrier = threading.Barrier(self._pool_size())
        await asyncio.gather(*(self.db.read(job, barrier) for _ in range(self._pool_size())))
        if self.db.is_sqlite:
            await self.db.write(job, None)

    def _enable_here(self, _session: Session | None = None, barrier: threading.Barrier | None = None) -> None:
        if barrier is not None:
            barrier.wait()
        profile = cProfile.Profile(time.thread_time)
        self.threads[threading.get_ident()] = _Profiled(threading.current_thread().name, profile, time.thread_time())
        if self.profile:
            profile.enable()

    def _disable_here(self, _session: Session | None = None, barrier: threading.Barrier | None = None) -> None:
        if barrier is not None:
            barrier.wait()
        profiled = self.threads[threading.get_ident()]
        if self.profile:
            profiled.profile.disable()
        profiled.cpu = time.thread_time() - profiled.cpu_start

    async def start(self) -> None:
        """Start profiling every thread that runs update work."""
        self.threads = {}
        await self._in_every_thread(self._enable_here)
        self._enable_here()

    async def stop(self) -> pstats.Stats | None:
        """Stop every profile and merge them (None without profiles)."""
        self._disable_here()
        await self._in_every_thread(self._disable_here)
        if not self.profile:
            return None
        first, *rest = (p.profile for p in self.threads.values())
        stats = pstats.Stats(first)
        for profile in rest:
            stats.add(profile)
        return stats

    def thread_cpu(self) -> str:
        """CPU seconds each thread used between start() and stop()."""
        return " ".join(f"{p.name}={p.cpu:.2f}s" for p in sorted(self.threads.values(), key=lambda p: p.name))


def print_profile(stats: pstats.Stats, updates: int, title: str, stream: TextIO = sys.stderr) -> None:
    """The top functions by cumulative time, in milliseconds per update, then pstats' own listing."""
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][3], reverse=True)  # type: ignore[attr-defined]
    print(f"\n=== profile: {title} ({updates} updates; cumulative/own ms per update, all threads) ===", file=stream)
    print(f"{'cum ms':>8} {'own ms':>8} {'calls':>8}  function", file=stream)
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in rows[:PROFILE_LINES]:
        where = f"{_short(filename)}:{line}({name})"
        print(
            f"{cumulative * 1000 / updates:8.3f} {own * 1000 / updates:8.3f} {calls / updates:8.2f}  {where}",
            file=stream,
        )
    print(file=stream)
    stats.stream = stream  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)


def _short(filename: str) -> str:
    for marker in ("site-packages/", str(PROJECT_DIR) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# --- the command line ------------------------------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser, members: int) -> None:
    """Options both benchmarks take."""
    parser.add_argument("--members", type=int, default=members, help=f"verified members to seed (default {members})")
    parser.add_argument("--concurrency", type=int, default=None, help="concurrent updates (default: the config's)")
    parser.add_argument(
        "--db",
        default=None,
        help="database URL (default: a fresh SQLite file in a temp dir); a PostgreSQL database is created if "
        "missing and then dropped, an existing one must be empty",
    )
    parser.add_argument(
        "--no-inbox",
        dest="inbox",
        action="store_false",
        help="put updates straight into app.update_queue instead of storing them in the inbox first, as the "
        "bot's poller does (to see what the durable inbox costs)",
    )
    parser.add_argument(
        "--no-activity",
        dest="activity",
        action="store_false",
        help="handlers record no Insight activity (models/activity.py), to see what recording it costs",
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")


Runner = Callable[[argparse.Namespace, Config], Awaitable[int]]


def run_benchmark(args: argparse.Namespace, prefix: str, run: Runner) -> int:
    """A temporary directory, the database, the config and the schema, then `run` on a fresh event loop."""
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=args.log_level.upper())
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, bench_database(args.db, Path(tmp)) as url:
        config = bench_config(url, Path(tmp))
        if args.concurrency is not None:
            config = replace(config, concurrent_updates=args.concurrency)
        prepare_schema(config)
        return asyncio.run(run(args, config))


def fail(problems: list[str], limit: int = 30) -> None:
    """Print what failed (stderr)."""
    for problem in problems[:limit]:
        print(f"FAILED: {problem}", file=sys.stderr)
    if len(problems) > limit:
        print(f"FAILED: ... and {len(problems) - limit} more", file=sys.stderr)
