"""Broadcast delivery at Telegram's limits: 3,000 recipients through the outbox, against the Bot API stand-in.

    .venv/bin/python bench/broadcast.py                       # SQLite, then PostgreSQL on 127.0.0.1:5432
    .venv/bin/python bench/broadcast.py --recipients 1000 --no-pg

The stand-in (tests/botapi_server.py, over real HTTP on 127.0.0.1) enforces a global limit scaled up to
--rate messages/s (default 300, ten times Telegram's, to keep the run short), Telegram's 1 message/s per
private chat and 20/min per group, and answers 429 with retry_after beyond them. The outbox holds one
broadcast (copyMessage of a stored message, with a "Got it" button) to every recipient; the sender runs in
its own process (tests/outbox_child.py: a plain Bot without PTB's rate limiter, the OutboxSender configured
at --rate), so it and the stand-in do not share one interpreter's lock. Measured, per database:

- rate: copies accepted / (last accepted - first accepted), as a ratio of --rate;
- flood errors: 429 answers the stand-in gave;
- lost: recipients without a copy; duplicates: copies beyond one per recipient.

The last line is `broadcast_ratio=<r> flood_errors=<n> lost=<n> duplicates=<n> pg_ratio=<r>` (flood errors,
lost and duplicates summed over both databases; pg_ratio is 0 with --no-pg).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ADMIN_ID, TOKEN, bench_config, bench_database, prepare_schema
from config import PROJECT_DIR
from models import members
from models.clock import utcnow
from models.db import Database
from tests.botapi_server import BotAPIServer
from tests.broadcast_seed import FIRST_CHAT, add_members, queue_broadcast

PG_URL = "postgresql://postgres@127.0.0.1:5432/gongshe_bench_broadcast"
# Sends in flight at once: enough to keep --rate going over a few milliseconds of round trip.
BATCH_SIZE = 50
RUN_TIMEOUT = 600


@dataclass(frozen=True)
class Result:
    ratio: float
    rate: float
    floods: int
    lost: int
    duplicates: int
    seconds: float
    cpu_ms: float


def run_once(url: str, work_dir: Path, recipients: int, rate: float) -> Result:
    """Seed the recipients and the broadcast, send everything from a child process, count what arrived."""
    config = bench_config(url, work_dir)
    prepare_schema(config)
    api = BotAPIServer(TOKEN, global_per_second=rate, private_per_second=1, group_per_minute=20)
    api.start()
    try:
        source = api.user_message(ADMIN_ID, "工会大会通知")
        db = Database(url)
        codes = [unit.code for unit in config.units]
        with db.writing() as session:
            members.sync_units(session, ((u.code, u.name_zh, u.name_en) for u in config.units))
            add_members(session, recipients, codes, utcnow())
            queue_broadcast(session, ADMIN_ID, source, codes)
        asyncio.run(db.dispose())
        command = [
            sys.executable,
            "-m",
            "tests.outbox_child",
            url,
            api.base_url,
            TOKEN,
            f"--batch-size={BATCH_SIZE}",
            f"--per-second={rate}",
            "--in-flight=30",
        ]
        started = time.monotonic()
        cpu_before = os.times()
        child = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        seconds = time.monotonic() - started
        cpu = os.times()
        if child.returncode != 0:
            raise SystemExit(f"the sender failed:\n{child.stderr[-3000:]}")
        print(f"  sender outcomes: {json.loads(child.stdout.strip().splitlines()[-1])}", file=sys.stderr)
    finally:
        api.stop()
    accepted = [c for c in api.calls_of("copyMessage") if c["status"] == 200]
    times = sorted(c["at"] for c in accepted)
    achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    received = Counter(int(c["params"]["chat_id"]) for c in accepted)
    chats = range(FIRST_CHAT, FIRST_CHAT + recipients)
    lost = sum(1 for chat in chats if received[chat] == 0)
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    # CPU of this process (the stand-in) and of the child (the sender) together, per copy delivered.
    used = (cpu.user + cpu.system + cpu.children_user + cpu.children_system) - (
        cpu_before.user + cpu_before.system + cpu_before.children_user + cpu_before.children_system
    )
    return Result(
        achieved / rate, achieved, api.rate_limited, lost, duplicates, seconds, 1000 * used / max(1, len(accepted))
    )


def report(name: str, result: Result, rate: float) -> None:
    print(
        f"{name}: {result.rate:.1f} copies/s of {rate:.0f} configured (ratio {result.ratio:.3f}), "
        f"{result.floods} flood errors, {result.lost} lost, {result.duplicates} duplicates, "
        f"{result.seconds:.1f} s, {result.cpu_ms:.2f} CPU ms per copy (sender + stand-in)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/broadcast.py", description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=300.0, help="the stand-in's and the sender's global limit")
    parser.add_argument("--pg", default=PG_URL, help="PostgreSQL database (created and dropped when missing)")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gongshe-bench-") as tmp:
        work_dir = Path(tmp)
        with bench_database(None, work_dir) as url:
            sqlite = run_once(url, work_dir, args.recipients, args.rate)
        report("sqlite", sqlite, args.rate)
        pg = None
        if not args.no_pg:
            with bench_database(args.pg, work_dir) as url:
                pg = run_once(url, work_dir, args.recipients, args.rate)
            report("postgresql", pg, args.rate)
    runs = [r for r in (sqlite, pg) if r is not None]
    print(
        f"broadcast_ratio={sqlite.ratio:.3f} flood_errors={sum(r.floods for r in runs)} "
        f"lost={sum(r.lost for r in runs)} duplicates={sum(r.duplicates for r in runs)} "
        f"pg_ratio={pg.ratio if pg is not None else 0:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
