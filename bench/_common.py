"""Shared pieces for the offline benchmarks: configuration, the real bot over the fake Bot API, updates, timing."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import Application, ApplicationBuilder, Defaults
from telegram.request import BaseRequest

from bot import build_application, on_startup, upgrade_database
from config import PROJECT_DIR, Config, parse_config
from models.db import Database
from tests.harness import FakeBotAPI

TOKEN = "123456:BENCH-TOKEN"
ADMIN_ID = 1000


def bench_config(database_url: str, work_dir: Path, admin_ids: Iterable[int] = (ADMIN_ID,)) -> Config:
    """The shipped config.toml, pointed at the benchmark database, with the given bootstrap admins."""
    raw = tomllib.loads((PROJECT_DIR / "config.toml").read_text(encoding="utf-8"))
    raw["admins"] = {"telegram_ids": list(admin_ids)}
    raw["backup"]["directory"] = str(work_dir / "backups")
    return parse_config(raw, {"BOT_TOKEN": TOKEN, "DATABASE_URL": database_url})


def default_sqlite_url(work_dir: Path) -> str:
    """A fresh SQLite file in the benchmark's temporary directory."""
    return f"sqlite:///{work_dir / 'bench.db'}"


def prepare_schema(config: Config) -> None:
    """Create the production schema with the alembic migrations (call before the event loop starts)."""
    upgrade_database(config)


@dataclass
class RunningBot:
    """The real Application on the fake Bot API."""

    app: Application
    api: FakeBotAPI
    db: Database


def drop_rate_limiter(app: Application) -> None:
    """Take AIORateLimiter out of the bot.

    Its overall limit (Telegram's ~30 messages/s) would make every figure ~30/s; the benchmarks measure
    what the bot itself costs per update, so they run without it unless asked to keep it.
    """
    app.bot._rate_limiter = None


async def start_bot(config: Config, keep_rate_limiter: bool = False) -> RunningBot:
    """Build the bot with build_application over FakeBotAPI, initialise it and run its start-up hook."""
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    db = Database(config.database_url, config.busy_timeout_ms)
    api = FakeBotAPI()
    app = build_application(config, request=api, db=db, scheduler=False)
    if not keep_rate_limiter:
        drop_rate_limiter(app)
    await app.initialize()
    await on_startup(app)
    return RunningBot(app, api, db)


async def stop_bot(bot: RunningBot) -> None:
    """Shut the Application down and close the database pools."""
    await bot.app.shutdown()
    await bot.db.dispose()


_update_ids = itertools.count(1)
_message_ids = itertools.count(1)


def command_update(app: Application, user_id: int, text: str, language_code: str = "zh") -> Update:
    """A private-chat message update carrying a slash command, as Telegram would deliver it."""
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": language_code}
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
    return Update.de_json(data, app.bot)


@dataclass(frozen=True)
class Timing:
    """How long a batch of updates took: wall-clock seconds and CPU seconds of the whole process."""

    count: int
    wall: float
    cpu: float

    @property
    def per_s(self) -> float:
        """Updates per wall-clock second."""
        return self.count / self.wall

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per update (all threads: the event loop and the SQLite worker threads)."""
        return self.cpu / self.count * 1000


async def process_all(app: Application, updates: list[Update]) -> Timing:
    """Feed updates the way PTB's update fetcher does (one task each, through the update processor)."""
    processor = app.update_processor
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(processor.process_update(u, app.process_update(u)) for u in updates))
    return Timing(len(updates), time.perf_counter() - wall, time.process_time() - cpu)


def bare_application(config: Config, api: BaseRequest) -> Application:
    """A bare PTB Application with the bot's Defaults and concurrency, on the same fake request (the baseline)."""
    return (
        ApplicationBuilder()
        .token(TOKEN)
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=config.timezone))
        .concurrent_updates(config.concurrent_updates)
        .request(api)
        .get_updates_request(api)
        .build()
    )
