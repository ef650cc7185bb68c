"""A bare outbox sender in its own process, for the SIGKILL test: sends until the outbox is empty, then exits.

    python -m tests.outbox_child DATABASE_URL BASE_URL TOKEN [--batch-size N] [--per-second R] [--in-flight S]

It builds what the bot builds (a real PTB Bot over HTTP, the OutboxSender) without the rest of the bot, and
prints its outcome counts as one JSON line when done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from telegram import Bot
from telegram.request import HTTPXRequest

from config import OutboxSettings
from models.db import Database
from scheduled.outbox import OutboxSender, bot_sender


async def run(database_url: str, base_url: str, token: str, settings: OutboxSettings) -> dict[str, int]:
    """Send everything due, then close the bot and the database; returns the outcome counts."""
    db = Database(database_url)
    # One connection per concurrent send (the Application's bot gets a large pool from ApplicationBuilder).
    request = HTTPXRequest(connection_pool_size=settings.batch_size + 2)
    bot = Bot(token, base_url=base_url, request=request)
    await bot.initialize()
    try:
        sender = OutboxSender(db, bot_sender(bot), settings)
        await sender.run(until_empty=True)
        return dict(sender.outcomes)
    finally:
        await bot.shutdown()
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the sender to the end."""
    parser = argparse.ArgumentParser(prog="python -m tests.outbox_child")
    parser.add_argument("database_url")
    parser.add_argument("base_url")
    parser.add_argument("token")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--per-second", type=float, default=200.0)
    parser.add_argument("--in-flight", type=float, default=2.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = OutboxSettings(
        global_per_second=args.per_second, batch_size=args.batch_size, in_flight_timeout_seconds=args.in_flight
    )
    outcomes = asyncio.run(run(args.database_url, args.base_url, args.token, settings))
    print(json.dumps(outcomes), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
