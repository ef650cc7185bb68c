"""Broadcast delivery against the Bot API stand-in over real HTTP: pacing, 429 pauses, SIGKILL, two processes.

1. Pacing: the stand-in enforces a global rate (scaled to 300/s), 1 message/s per private chat and 20/min per
   group; the outbox sender, on its own Bot without PTB's rate limiter, delivers a broadcast plus extra messages
   to one private chat and one group without a single 429.
2. A 429 pauses all sending for its full retry_after: the stand-in's global limit is set below the sender's rate.
3. SIGKILL mid-broadcast of 5,000 recipients, then a restart: everyone gets the copy; only rows in flight repeat.
4. Two bot processes on one PostgreSQL database, the leader killed mid-broadcast: the other finishes it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from sqlmodel import col, select
from telegram import Bot
from telegram.error import RetryAfter
from telegram.request import HTTPXRequest

from config import OutboxSettings
from models import outbox
from models.clock import utcnow
from models.db import Database
from models.outbox import OutboxMessage, Status
from scheduled.outbox import OutboxSender, own_bot
from tests.botapi_server import BotAPIServer
from tests.broadcast_seed import FIRST_CHAT, add_members, queue_broadcast
from tests.conftest import ADMIN_ID, PG_SERVER, TOKEN, fresh_schema, make_config, seed_units
from tests.test_crash_and_failover import (
    BATCH_SIZE,
    FINISH_TIMEOUT,
    RECOVERED,
    TAKEOVER_TIMEOUT,
    leader_of,
    outbox_config,
    sigkill,
    wait_until,
)
from tests.test_e2e_process import START_TIMEOUT, BotProcess, bot_env, run_cli
from tests.test_outbox_kill import _child

AUTHOR = ADMIN_ID
GROUP = -100_777
SCALED_GLOBAL = 300.0


def _units(tmp_path: Path, url: str) -> list[str]:
    return [unit.code for unit in make_config(url, tmp_path).units]


def _seed(url: str, tmp_path: Path, recipients: int, source_message_id: int, *, schema: bool = True) -> int:
    """Schema, units, `recipients` members and a broadcast to all of them, queued; returns its id."""
    db = Database(url)
    try:
        if schema:
            fresh_schema(db)
        seed_units(db, make_config(url, tmp_path))
        codes = _units(tmp_path, url)
        with db.writing() as session:
            add_members(session, recipients, codes, utcnow())
            return queue_broadcast(session, AUTHOR, source_message_id, codes)
    finally:
        asyncio.run(db.dispose())


def copies(api: BotAPIServer) -> list[dict[str, Any]]:
    """copyMessage calls the stand-in accepted."""
    return [c for c in api.calls_of("copyMessage") if c["status"] == 200]


def chat_of(call: dict[str, Any]) -> int:
    """The chat a recorded call was for (calls are recorded as the wire sent them)."""
    return int(call["params"].get("chat_id", 0))


def rows_of(url: str) -> list[OutboxMessage]:
    db = Database(url)
    try:
        with db.reading() as session:
            return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))
    finally:
        asyncio.run(db.dispose())


async def _send_all(
    url: str, api: BotAPIServer, settings: OutboxSettings, trace: list[tuple[str, float]] | None = None
) -> dict[str, int]:
    """The sender as bot.py runs it (own_bot: its own Bot on the application's request pool), until nothing is left.
    With `trace`, every send's start and every RetryAfter's arrival are noted on time.monotonic()."""
    db = Database(url)
    app_bot = Bot(TOKEN, base_url=api.base_url, request=HTTPXRequest(connection_pool_size=settings.batch_size + 4))
    await app_bot.initialize()
    send = own_bot(app_bot)

    async def traced(row: OutboxMessage) -> int | None:
        if trace is not None:
            trace.append(("start", time.monotonic()))
        try:
            return await send(row)
        except RetryAfter:
            if trace is not None:
                trace.append(("flood", time.monotonic()))
            raise

    try:
        sender = OutboxSender(db, traced, settings)
        await sender.run(until_empty=True)
        return dict(sender.outcomes)
    finally:
        await app_bot.shutdown()
        await db.dispose()


def test_pacing_holds_global_private_and_group_limits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pacing.db'}"
    api = BotAPIServer(TOKEN, global_per_second=SCALED_GLOBAL, private_per_second=1, group_per_minute=20)
    api.start()
    try:
        source = api.user_message(AUTHOR, "<b>大会</b>通知")
        _seed(url, tmp_path, 300, source)
        # Three more messages to one member's chat and four to a group, queued with the broadcast.
        db = Database(url)
        with db.writing() as session:
            for n in range(3):
                outbox.enqueue(session, FIRST_CHAT, f"notice {n}", kind="extra", dedupe_key=f"p{n}")
            for n in range(4):
                outbox.enqueue(session, GROUP, f"club {n}", kind="extra", dedupe_key=f"g{n}")
        asyncio.run(db.dispose())
        settings = OutboxSettings(global_per_second=SCALED_GLOBAL, batch_size=40, in_flight_timeout_seconds=30)
        started = time.monotonic()
        outcomes = asyncio.run(_send_all(url, api, settings))
        took = time.monotonic() - started
    finally:
        api.stop()
    print(f"\npacing: {took:.1f} s, {outcomes}")
    assert api.rate_limited == 0, outcomes
    received = Counter(chat_of(c) for c in copies(api))
    assert len(received) == 300 and set(received.values()) == {1}
    to_member = sorted(c["at"] for c in api.calls if chat_of(c) == FIRST_CHAT and c["status"] == 200)
    to_group = sorted(c["at"] for c in api.calls if chat_of(c) == GROUP and c["status"] == 200)
    assert len(to_member) == 4 and len(to_group) == 4
    # The sender spaces the starts of its sends; arrivals jitter by the HTTP round trip, so the spacing is checked
    # on average and loosely per pair (the stand-in's own limits, which refused nothing, are the strict check).
    assert (to_member[-1] - to_member[0]) / 3 >= 0.99 and (to_group[-1] - to_group[0]) / 3 >= 2.99
    assert min(b - a for a, b in itertools.pairwise(to_member)) >= 0.5
    assert min(b - a for a, b in itertools.pairwise(to_group)) >= 2.5


def test_retry_after_pauses_all_sending_for_its_full_length(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flood.db'}"
    # Telegram's limit below the sender's rate: 429s come, each with retry_after = 1.
    api = BotAPIServer(TOKEN, global_per_second=10)
    api.start()
    try:
        source = api.user_message(AUTHOR, "通知")
        _seed(url, tmp_path, 150, source)
        settings = OutboxSettings(global_per_second=200, batch_size=20, in_flight_timeout_seconds=30)
        trace: list[tuple[str, float]] = []
        asyncio.run(_send_all(url, api, settings, trace))
    finally:
        api.stop()
    floods = [at for what, at in trace if what == "flood"]
    starts = [at for what, at in trace if what == "start"]
    assert floods and api.rate_limited == len(floods), "the stand-in never refused: the test proves nothing"
    # From the moment a 429 reaches the sender, no send starts until its retry_after (1 s) has passed.
    during = [(start - flood) for flood in floods for start in starts if flood < start < flood + 1.0]
    assert during == [], f"sends started {during} s into a pause"
    received = Counter(chat_of(c) for c in copies(api))
    assert len(received) == 150 and set(received.values()) == {1}


def test_sigkill_mid_broadcast_of_5000_recipients(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    api = BotAPIServer(TOKEN)
    api.start()
    try:
        source = api.user_message(AUTHOR, "通知")
        _seed(url, tmp_path, 5000, source)
        kill_at = random.randint(1500, 3500)
        first = _child(url, api)
        deadline = time.monotonic() + 120
        while len(copies(api)) < kill_at and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL, "the first sender ended before it was killed"
        delivered_before = len(copies(api))
        left = {row.chat_id for row in rows_of(url) if row.status == Status.SENDING}
        assert kill_at <= delivered_before < 5000 and len(left) <= BATCH_SIZE
        second = _child(url, api)
        out, _ = second.communicate(timeout=180)
        assert second.returncode == 0
        outcomes = json.loads(out.strip().splitlines()[-1])
    finally:
        api.stop()
    received = Counter(chat_of(c) for c in copies(api))
    chats = range(FIRST_CHAT, FIRST_CHAT + 5000)
    assert [chat for chat in chats if received[chat] == 0] == []
    duplicated = {chat for chat in chats if received[chat] > 1}
    duplicates = sum(received[chat] - 1 for chat in duplicated)
    print(f"\nbroadcast SIGKILL after {delivered_before}: {len(left)} in flight, {duplicates} duplicates, {outcomes}")
    assert duplicated <= left and max(received.values()) <= 2 and duplicates <= len(left) <= BATCH_SIZE
    assert {row.status for row in rows_of(url)} == {Status.SENT}


def test_two_processes_on_postgres_leader_killed_mid_broadcast(tmp_path: Path) -> None:
    name = f"gongshe_bc_failover_{os.getpid()}"
    url = PG_SERVER.rsplit("/", 1)[0] + "/" + name
    env = bot_env(tmp_path, BOT_TOKEN=TOKEN, DATABASE_URL=url, GONGSHE_CONFIG=str(outbox_config(tmp_path)))
    apis = [BotAPIServer(TOKEN), BotAPIServer(TOKEN)]
    procs: list[BotProcess] = []
    recipients = 600
    db = Database(url)
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrated = run_cli(["migrate"], env)
        assert migrated.returncode == 0, migrated.stderr
        # The same original message (id 1 of the author's chat) in both stand-ins.
        assert {api.user_message(AUTHOR, "通知") for api in apis} == {1}
        for i, api in enumerate(apis):
            api.start()
            procs.append(BotProcess(api, {**env, "BOT_API_BASE_URL": api.base_url}, tmp_path / f"bot{i}.log"))
        for proc in procs:
            proc.until(lambda c: c["method"] == "getUpdates", "the first long poll", timeout=START_TIMEOUT)
        wait_until(lambda: len(leader_of(procs)) > 0, "a leader", procs, TAKEOVER_TIMEOUT)
        leaders = leader_of(procs)
        assert len(leaders) == 1, leaders
        leader, survivor = leaders[0], 1 - leaders[0]
        _seed(url, tmp_path, recipients, 1, schema=False)
        wait_until(lambda: len(copies(apis[leader])) >= recipients // 3, "copies", procs, FINISH_TIMEOUT)
        assert copies(apis[survivor]) == []
        sigkill(procs[leader])
        killed_at = utcnow()
        sent_before = len(copies(apis[leader]))
        took_over = procs[survivor]
        wait_until(lambda: "this process is now the leader" in took_over.output(), "takeover", [took_over], 30)
        left = {r.chat_id for r in rows_of(url) if r.status == Status.SENDING and r.claimed_at < killed_at}

        def all_sent() -> bool:
            with db.reading() as s:
                return outbox.progress(s)[Status.SENT] == recipients

        wait_until(all_sent, "every copy sent", [took_over], FINISH_TIMEOUT)
        recovered = sum(int(n) for n in RECOVERED.findall(took_over.output()))
        assert took_over.stop() == 0, took_over.output()
    finally:
        for proc in procs:
            proc.kill()
        for api in apis:
            api.stop()
        asyncio.run(db.dispose())
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    received = Counter(chat_of(c) for api in apis for c in copies(api))
    chats = range(FIRST_CHAT, FIRST_CHAT + recipients)
    assert [chat for chat in chats if received[chat] == 0] == []
    duplicated = {chat for chat in chats if received[chat] > 1}
    duplicates = sum(received[chat] - 1 for chat in duplicated)
    print(f"\nbroadcast failover: {sent_before} before the kill, {len(left)} in flight, {duplicates} duplicates")
    # One sender at a time: the survivor's first copy came after the dead leader's last.
    assert max(c["at"] for c in copies(apis[leader])) < min(c["at"] for c in copies(apis[survivor]))
    assert duplicated <= left and duplicates <= len(left) <= BATCH_SIZE and recovered == len(left)


def test_club_group_posts_are_paced_and_pinned_against_the_stand_in(tmp_path: Path) -> None:
    """A broadcast's posts into club groups (outbox rows with pin): 20/min per group holds, each delivered post is
    pinned, and a group where the bot may not pin still gets its post (the refusal is only logged)."""
    url = f"sqlite:///{tmp_path / 'groups.db'}"
    no_rights = GROUP - 1
    api = BotAPIServer(TOKEN, global_per_second=SCALED_GLOBAL, private_per_second=1, group_per_minute=20)
    api.no_pin_rights.add(no_rights)
    api.start()
    try:
        source = api.user_message(AUTHOR, "俱乐部通知")
        db = Database(url)
        fresh_schema(db)
        notices = [
            outbox.Notice(chat, "", f"bcg:{n}:{chat}", copy_from_chat_id=AUTHOR, copy_message_id=source, pin=True)
            for n in range(3)
            for chat in (GROUP, no_rights)
        ]
        with db.writing() as session:
            outbox.enqueue_many(session, notices, kind="broadcast_group:1")
        asyncio.run(db.dispose())
        settings = OutboxSettings(global_per_second=SCALED_GLOBAL, batch_size=10, in_flight_timeout_seconds=30)
        outcomes = asyncio.run(_send_all(url, api, settings))
    finally:
        api.stop()
    assert api.rate_limited == 0, outcomes
    assert [r.status for r in rows_of(url)] == ["sent"] * 6
    to_group = sorted(c["at"] for c in copies(api) if chat_of(c) == GROUP)
    assert len(to_group) == 3 and min(b - a for a, b in itertools.pairwise(to_group)) >= 2.5
    sent_ids = sorted(r.telegram_message_id for r in rows_of(url) if r.chat_id == GROUP)
    assert api.pinned(GROUP) == sent_ids and api.pinned(no_rights) == []
    assert len([c for c in api.calls_of("pinChatMessage") if chat_of(c) == no_rights]) == 3
