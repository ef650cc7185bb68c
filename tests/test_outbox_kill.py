"""At-least-once delivery across a SIGKILL: a sender process is killed mid-broadcast, a second one finishes.

1,000 notifications to 1,000 private chats sit in a SQLite file outbox. A child process (tests/outbox_child.py:
a real PTB Bot over HTTP to the local Bot API stand-in) is killed with SIGKILL once 300-600 of them have
arrived, then started again. Every chat must get its message, and the only duplicates allowed are rows that
were in flight (claimed, not yet marked sent) when the process died: at most one batch.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlmodel import col, select

from config import PROJECT_DIR
from models import outbox
from models.db import Database
from models.outbox import OutboxMessage, Status
from tests.botapi_server import BotAPIServer
from tests.conftest import TOKEN, fresh_schema, make_config, seed_units

CHATS = range(1, 1001)
BATCH_SIZE = 20
PER_SECOND = 200
IN_FLIGHT_SECONDS = 2
FINISH_TIMEOUT = 180


async def _prepare(url: str, tmp_path: Path) -> None:
    """Schema, units and one notification per chat."""
    db = Database(url)
    fresh_schema(db)
    seed_units(db, make_config(url, tmp_path))
    notices = [outbox.Notice(chat, f"<b>Notice</b> {chat}", f"kill:{chat}") for chat in CHATS]
    with db.writing() as session:
        assert outbox.enqueue_many(session, notices, kind="kill_test") == len(CHATS)
    await db.dispose()


async def _rows(url: str) -> list[OutboxMessage]:
    """Every outbox row."""
    db = Database(url)
    try:
        with db.reading() as session:
            return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))
    finally:
        await db.dispose()


def _child(url: str, server: BotAPIServer) -> subprocess.Popen[str]:
    """Start a sender process against the stand-in."""
    command = [
        sys.executable,
        "-m",
        "tests.outbox_child",
        url,
        server.base_url,
        TOKEN,
        f"--batch-size={BATCH_SIZE}",
        f"--per-second={PER_SECOND}",
        f"--in-flight={IN_FLIGHT_SECONDS}",
    ]
    return subprocess.Popen(command, cwd=PROJECT_DIR, env=dict(os.environ), stdout=subprocess.PIPE, text=True)


def _delivered(server: BotAPIServer) -> int:
    """Messages the stand-in has accepted so far."""
    return sum(1 for call in server.calls_of("sendMessage") if call["status"] == 200)


def test_sigkill_mid_broadcast_resends_at_most_the_rows_in_flight(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    asyncio.run(_prepare(url, tmp_path))
    server = BotAPIServer(TOKEN)
    server.start()
    try:
        kill_at = random.randint(300, 600)
        first = _child(url, server)
        deadline = time.monotonic() + FINISH_TIMEOUT
        while _delivered(server) < kill_at and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL, "the first sender ended before it was killed"
        delivered_before = _delivered(server)
        left = {row.chat_id for row in asyncio.run(_rows(url)) if row.status == Status.SENDING}
        assert kill_at <= delivered_before < len(CHATS)
        assert len(left) <= BATCH_SIZE

        second = _child(url, server)
        out, _ = second.communicate(timeout=FINISH_TIMEOUT)
        assert second.returncode == 0
        outcomes = json.loads(out.strip().splitlines()[-1])
    finally:
        server.stop()

    received = Counter({chat: len(server.messages_to(chat)) for chat in CHATS})
    assert [chat for chat in CHATS if received[chat] == 0] == []
    duplicated = {chat for chat in CHATS if received[chat] > 1}
    duplicates = sum(received[chat] - 1 for chat in duplicated)
    print(
        f"\noutbox SIGKILL: killed after {delivered_before} deliveries (target {kill_at}); "
        f"{len(left)} rows in flight; {duplicates} duplicates; bound {BATCH_SIZE}; second run {outcomes}"
    )
    # Only rows that were in flight at the kill can arrive twice, and each at most twice.
    assert duplicated <= left
    assert max(received.values()) <= 2
    assert duplicates <= len(left) <= BATCH_SIZE
    assert outcomes.get("recovered", 0) == len(left)
    rows = asyncio.run(_rows(url))
    assert {row.status for row in rows} == {Status.SENT} and len(rows) == len(CHATS)
