"""Crashes of the real `python bot.py`: SIGKILL in a claim storm (SQLite), a leader killed mid-broadcast (PostgreSQL).

1. 300 members press "claim" on a first-come item with stock 200; the bot is killed with SIGKILL once 30% of the
   presses are answered, then started again. No press may be lost (each member ends with a claim or a sold-out
   answer), nothing is sold twice, every claim gets its voucher, and only vouchers in flight at the kill repeat.
2. Two bot processes share one PostgreSQL database; the leader is killed while it sends 1,000 notices. The other
   takes over and sends the rest; only rows in flight at the kill may arrive twice. Each process talks to a
   stand-in of its own, so every send is attributed to the process that made it.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from buttons.welfare import ClaimItem
from config import PROJECT_DIR, PointsRule
from handlers.base import TAGS
from messages import Renderer
from models import inbox, outbox, points, welfare
from models.clock import local_date, utcnow
from models.db import Database
from models.members import Member, Status
from models.outbox import OutboxMessage
from models.welfare import ItemDraft, ItemStatus, WelfareClaim, WelfareItem
from tests.botapi_server import BotAPIServer
from tests.conftest import ADMIN_ID, PG_SERVER, make_config, seed_units
from tests.test_e2e_process import START_TIMEOUT, TOKEN, BotProcess, bot_env, run_cli

UNIT = "i801"
MEMBERS = range(20_001, 20_301)
# Answers lag behind commits, so with this much stock claims are still being made after the restart.
STOCK = 200
COST = 10
BALANCE = 50
GIFT = PointsRule("idea_adopted", BALANCE, 0)
KILL_AFTER_ANSWERS = len(MEMBERS) * 3 // 10
CHATS = range(1, 1_001)
KILL_AFTER_SENDS = 400
# config.py's ceilings: 30 messages/s at most, and a claimed row is trusted for at least 30 s.
PER_SECOND = 30
BATCH_SIZE = 20
IN_FLIGHT_SECONDS = 30
# Bounds on waits, never asserted as timings: in-flight rows come back only after IN_FLIGHT_SECONDS or more.
FINISH_TIMEOUT = 180.0
TAKEOVER_TIMEOUT = 30.0
LEADER_LINE = "this process is now the leader"
RECOVERED = re.compile(r"outbox: (\d+) rows left in flight by a stopped sender")
REPLAYED = re.compile(r"inbox: handling (\d+) updates received before the last stop")


def outbox_config(tmp_path: Path) -> Path:
    """The shipped config.toml with the fastest outbox Telegram allows, the shortest in-flight timeout."""
    text = (PROJECT_DIR / "config.toml").read_text(encoding="utf-8")
    values = {
        "global_per_second": str(PER_SECOND),
        "batch_size": str(BATCH_SIZE),
        "in_flight_timeout_seconds": str(IN_FLIGHT_SECONDS),
        "directory": json.dumps(str(tmp_path / "backups")),
    }
    for key, value in values.items():
        text, count = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.MULTILINE)
        assert count == 1, key
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def wait_until(condition: Callable[[], bool], what: str, procs: list[BotProcess], timeout: float) -> None:
    """Poll condition until true; fail with the bots' output if one of them dies or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            if proc.proc.poll() is not None:
                pytest.fail(f"bot exited ({proc.proc.returncode}) while waiting for {what}:\n{proc.output()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.log_path.name} ---\n{p.output()[-4000:]}" for p in procs)
            pytest.fail(f"waiting for {what}\n{logs}")
        time.sleep(0.05)


def sigkill(proc: BotProcess) -> None:
    """SIGKILL the bot and check it was the kill that ended it."""
    proc.proc.send_signal(signal.SIGKILL)
    proc.proc.wait(timeout=10)
    assert proc.proc.returncode == -signal.SIGKILL, f"the bot ended before it was killed:\n{proc.output()}"


def seed_storm(db: Database, tmp_path: Path) -> int:
    """Verified members with points and one first-come item open on the real clock; returns the item id."""
    config = make_config(str(db.url), tmp_path)
    seed_units(db, config)
    now = utcnow()
    draft = ItemDraft(
        title="电影票",
        mode="first_come",
        opens_at=now + timedelta(minutes=1),
        closes_at=now + timedelta(days=1),
        cost=COST,
        stock=STOCK,
        units=(UNIT,),
        pickup="工会办公室 301",
    )
    with db.writing() as s:
        members = [
            Member(telegram_id=t, unit_code=UNIT, employee_no=f"E{t}", name=f"成员{t}", status=Status.VERIFIED)
            for t in MEMBERS
        ]
        s.add_all(members)
        s.flush()
        for member in members:
            points.award(s, member.id, GIFT, f"seed:{member.telegram_id}", local_date(config.timezone, now))
        item = welfare.store_item(s, draft, None, ADMIN_ID, now, ItemStatus.PUBLISHED)
        s.exec(update(WelfareItem).where(col(WelfareItem.id) == item.id).values(opens_at=now - timedelta(minutes=1)))
        return item.id


def claims_by_member(db: Database) -> dict[int, list[WelfareClaim]]:
    """Every claim, by the claimant's Telegram id."""
    with db.reading() as s:
        rows = s.exec(select(Member.telegram_id, WelfareClaim).join(Member, Member.id == WelfareClaim.member_id))
        found: dict[int, list[WelfareClaim]] = {}
        for telegram_id, claim in rows:
            found.setdefault(telegram_id, []).append(claim)
        return found


def outbox_rows(db: Database) -> list[OutboxMessage]:
    """Every outbox row."""
    with db.reading() as s:
        return list(s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def vouchers_seen(api: BotAPIServer, telegram_id: int, code: str) -> int:
    """Voucher photos the member received whose caption shows this code."""
    return sum(1 for m in api.messages_to(telegram_id) if "photo" in m and code in m["text"])


def test_sigkill_in_a_claim_storm_loses_no_press(tmp_path: Path) -> None:
    """Killed mid-storm and restarted: every press ends in a claim or a sold-out answer, stock exactly used up."""
    config_path = str(outbox_config(tmp_path))
    api = BotAPIServer(TOKEN)
    api.start()
    env = bot_env(tmp_path, BOT_TOKEN=TOKEN, BOT_API_BASE_URL=api.base_url, GONGSHE_CONFIG=config_path)
    db = Database(env["DATABASE_URL"])
    first: BotProcess | None = None
    second: BotProcess | None = None
    try:
        migrated = run_cli(["migrate"], env)
        assert migrated.returncode == 0, migrated.stderr
        item_id = seed_storm(db, tmp_path)
        first = BotProcess(api, env, tmp_path / "first.log")
        first.until(lambda c: c["method"] == "getUpdates", "the first long poll", timeout=START_TIMEOUT)
        data = ClaimItem(item_id=item_id, slot=1).pack()
        keyboard = {"inline_keyboard": [[{"text": "⚡ 立即抢", "callback_data": data}]]}
        press = {t: api.push_callback(t, api.add_bot_message(t, "电影票", keyboard), data) for t in MEMBERS}

        wait_until(lambda: len(api.answered_callbacks()) >= KILL_AFTER_ANSWERS, "30% answers", [first], FINISH_TIMEOUT)
        sigkill(first)
        kill_mark = len(api.calls)
        answered_at_kill = set(api.answered_callbacks())
        claims_at_kill = set(claims_by_member(db))
        in_flight = {row.chat_id for row in outbox_rows(db) if row.status == outbox.Status.SENDING}
        with db.reading() as s:
            unhandled = len(inbox.unprocessed(s, -1, len(MEMBERS) + 1))
        handed = {u for c in api.calls[:kill_mark] if c["method"] == "getUpdates" for u in c.get("update_ids", ())}
        assert len(answered_at_kill) < len(MEMBERS), "the storm was over before the kill"
        assert len(in_flight) <= BATCH_SIZE

        second = BotProcess(api, env, tmp_path / "second.log")

        def settled() -> bool:
            """Every press answered (or its claim committed before the kill), every voucher out."""
            answers = api.answered_callbacks()
            if any(press[t] not in answers and t not in claims_at_kill for t in MEMBERS):
                return False
            rows = outbox_rows(db)
            return len(rows) == STOCK and all(row.status == outbox.Status.SENT for row in rows)

        wait_until(settled, "every press handled and every voucher sent", [second], FINISH_TIMEOUT)
        answers = api.answered_callbacks()
        claims = claims_by_member(db)
        with db.reading() as s:
            stock = s.get(WelfareItem, item_id).stock
            ids = {m.telegram_id: m.id for m in s.exec(select(Member))}
            ledger = {t: (points.ledger_sum(s, ids[t]), points.balance_of(s, ids[t])) for t in MEMBERS}
        refetched = {u for c in api.calls[kill_mark:] if c["method"] == "getUpdates" for u in c.get("update_ids", ())}
        replayed = sum(int(n) for n in REPLAYED.findall(second.output()))
        assert second.stop() == 0, second.output()
        assert "Traceback" not in first.output() + second.output()
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
        api.stop()
        asyncio.run(db.dispose())

    seen = {t: vouchers_seen(api, t, c[0].voucher_code) for t, c in claims.items()}
    duplicated = {t for t, n in seen.items() if n > 1}
    duplicates = sum(n - 1 for n in seen.values())
    print(
        f"\nclaim storm SIGKILL: {len(handed & set(press.values()))} presses handed over before the kill, "
        f"{len(answered_at_kill)} answered, {len(claims_at_kill)} claims committed, {unhandled} stored but unhandled "
        f"(replayed after the restart: {replayed}), {len(handed & refetched)} fetched again (never confirmed); "
        f"{len(in_flight)} vouchers in flight, {duplicates} duplicate voucher messages (bound {BATCH_SIZE})"
    )
    sold_out = html.unescape(TAGS.sub("", Renderer().render("zh", "errors/welfare_sold_out")))
    got = Renderer().label("zh", "welfare_done_first_come")
    # Exactly STOCK members hold one live claim each; every other member was told it is sold out.
    assert len(claims) == STOCK and stock == 0
    assert all(len(c) == 1 and c[0].status == welfare.ClaimStatus.ACTIVE for c in claims.values())
    for t in MEMBERS:
        answer = answers.get(press[t])
        shown = (answer.get("text"), answer.get("show_alert")) if answer is not None else None
        if t in claims:
            # A claim committed just before the kill may have lost its answer; every other claim was answered.
            assert shown == (got, False) or (shown is None and t in claims_at_kill), (t, answer)
        else:
            assert shown == (sold_out, True), (t, answer)
        assert ledger[t] == (BALANCE - COST * (t in claims),) * 2, (t, ledger[t])
    # Every claim's voucher arrived; only vouchers in flight at the kill arrived twice.
    assert sum(1 for t in MEMBERS for m in api.messages_to(t) if "photo" in m) == sum(seen.values())
    assert all(1 <= n <= 2 for n in seen.values())
    assert duplicated <= in_flight and duplicates <= len(in_flight) <= BATCH_SIZE
    assert replayed == unhandled


def leader_of(procs: list[BotProcess]) -> list[int]:
    """Indexes of the processes that logged that they became the leader."""
    return [i for i, p in enumerate(procs) if LEADER_LINE in p.output()]


def sends(api: BotAPIServer) -> list[dict[str, Any]]:
    """Messages the stand-in accepted."""
    return [c for c in api.calls_of("sendMessage") if c["status"] == 200]


def busiest_second(apis: list[BotAPIServer]) -> int:
    """The most sends the stand-ins accepted together within any one second."""
    times = sorted(c["at"] for api in apis for c in sends(api))
    start, most = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_leader_killed_mid_broadcast_the_other_process_finishes(tmp_path: Path) -> None:
    """Two processes on one PostgreSQL database: the leader dies mid-broadcast, the other sends the rest."""
    name = f"gongshe_failover_{os.getpid()}"
    url = PG_SERVER.rsplit("/", 1)[0] + "/" + name
    env = bot_env(tmp_path, BOT_TOKEN=TOKEN, DATABASE_URL=url, GONGSHE_CONFIG=str(outbox_config(tmp_path)))
    apis = [BotAPIServer(TOKEN), BotAPIServer(TOKEN)]
    procs: list[BotProcess] = []
    db = Database(url)
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrated = run_cli(["migrate"], env)
        assert migrated.returncode == 0, migrated.stderr
        seed_units(db, make_config(url, tmp_path))
        for i, api in enumerate(apis):
            api.start()
            procs.append(BotProcess(api, {**env, "BOT_API_BASE_URL": api.base_url}, tmp_path / f"bot{i}.log"))
        for proc in procs:
            proc.until(lambda c: c["method"] == "getUpdates", "the first long poll", timeout=START_TIMEOUT)
        wait_until(lambda: len(leader_of(procs)) > 0, "a leader", procs, TAKEOVER_TIMEOUT)
        # Enqueued once both run and the leader is elected: the survivor is ready, and every send is the leader's.
        leaders = leader_of(procs)
        assert len(leaders) == 1, leaders
        leader, survivor = leaders[0], 1 - leaders[0]
        notices = [outbox.Notice(chat, f"<b>Notice</b> {chat}", f"failover:{chat}") for chat in CHATS]
        with db.writing() as s:
            assert outbox.enqueue_many(s, notices, kind="failover") == len(CHATS)

        wait_until(lambda: len(sends(apis[leader])) >= KILL_AFTER_SENDS, "sends", procs, FINISH_TIMEOUT)
        assert sends(apis[survivor]) == [] and leader_of(procs) == [leader]
        sigkill(procs[leader])
        # Every row the dead leader claimed has an earlier claimed_at; the survivor claims only after taking over.
        killed_at = utcnow()
        sent_before = len(sends(apis[leader]))
        took_over = procs[survivor]
        wait_until(lambda: LEADER_LINE in took_over.output(), "the takeover", [took_over], TAKEOVER_TIMEOUT)
        left = {r.chat_id for r in outbox_rows(db) if r.status == outbox.Status.SENDING and r.claimed_at < killed_at}
        assert sent_before < len(CHATS) and len(left) <= BATCH_SIZE

        def all_sent() -> bool:
            """Every row settled as sent (counted in the database: loading rows here would slow the stand-ins)."""
            with db.reading() as s:
                return outbox.progress(s)[outbox.Status.SENT] == len(CHATS)

        wait_until(all_sent, "every notice sent", [procs[survivor]], FINISH_TIMEOUT)
        recovered = sum(int(n) for n in RECOVERED.findall(procs[survivor].output()))
        assert procs[survivor].stop() == 0, procs[survivor].output()
        assert "Traceback" not in procs[survivor].output()
    finally:
        for proc in procs:
            proc.kill()
        for api in apis:
            api.stop()
        asyncio.run(db.dispose())
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    received = Counter({chat: sum(len(api.messages_to(chat)) for api in apis) for chat in CHATS})
    assert [chat for chat in CHATS if received[chat] == 0] == []
    duplicated = {chat for chat in CHATS if received[chat] > 1}
    duplicates = sum(received[chat] - 1 for chat in duplicated)
    print(
        f"\nleader SIGKILL: process {leader} sent {sent_before} before the kill, process {survivor} took over and "
        f"sent {len(sends(apis[survivor]))}; {len(left)} rows in flight at the kill, {duplicates} duplicates "
        f"(bound {BATCH_SIZE}); busiest second: {busiest_second(apis)} sends (configured {PER_SECOND}/s)"
    )
    # Never two senders at once: the survivor's first send came after the dead leader's last.
    first_survivor = min(c["at"] for c in sends(apis[survivor]))
    assert max(c["at"] for c in sends(apis[leader])) < first_survivor
    assert duplicated <= left and max(received.values()) <= 2 and duplicates <= len(left) <= BATCH_SIZE
    assert recovered == len(left)
    assert len(sends(apis[leader])) + len(sends(apis[survivor])) == len(CHATS) + duplicates
