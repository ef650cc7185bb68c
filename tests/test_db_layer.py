"""The data layer (models/db.py): group commit, whole-batch failure, read-only reads, a never-blocked event loop."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, select

from models import members
from models.db import Database
from models.errors import NotAllowed
from models.members import Member, Role, UnitRow
from tests.conftest import PG_URL, Bot, fresh_schema, make_member, sqlite_url

# How long a test thread waits for the other side before giving up: only reached when the code is wrong.
WAIT = 10
# Another process that takes SQLite's write lock and keeps it until it reads a line.
HOLD_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


async def _fresh(url: str) -> AsyncIterator[Database]:
    """A database with the current tables and nothing in them."""
    database = Database(url)
    fresh_schema(database)
    yield database
    await database.dispose()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """An empty SQLite file database (group commit is SQLite's writer thread)."""
    async for database in _fresh(sqlite_url(tmp_path)):
        yield database


@pytest.fixture
async def pg_db() -> AsyncIterator[Database]:
    """An empty PostgreSQL database (writes run on worker threads)."""
    async for database in _fresh(PG_URL):
        yield database


def add_unit(session: Session, code: str) -> str:
    """Insert one unit and flush it, so a rollback has a real row to undo."""
    session.add(UnitRow(code=code, name_zh=code, name_en=code))
    session.flush()
    return code


def add_unit_then_raise(code: str, error: Exception) -> Callable[[Session], None]:
    """A write that inserts a unit and then fails."""

    def write(session: Session) -> None:
        add_unit(session, code)
        raise error

    return write


def orphan_checked_at_commit(session: Session) -> None:
    """Insert a member of a unit that does not exist, with the foreign key check put off until COMMIT."""
    session.connection().exec_driver_sql("PRAGMA defer_foreign_keys=ON")
    session.add(Member(telegram_id=1, unit_code="nowhere"))
    session.flush()


def unit_codes(db: Database) -> set[str]:
    """Every stored unit code."""
    with db.reading() as session:
        return set(session.exec(select(UnitRow.code)).all())


async def in_one_batch(db: Database, writes: list[Callable[[Session], Any]]) -> tuple[list[Any], int]:
    """Run `writes` together: they queue while the writer thread is held inside an earlier write.

    Returns each write's result or exception, in order, and how many COMMITs the writer made for them.
    """
    inside, release = threading.Event(), threading.Event()

    def hold(_session: Session) -> None:
        inside.set()
        release.wait(WAIT)

    held = asyncio.create_task(db.write(hold))
    assert await asyncio.to_thread(inside.wait, WAIT)
    before = db.batches  # the held write's batch is still open
    tasks = [asyncio.create_task(db.write(fn)) for fn in writes]
    # One turn of the loop runs every task up to its await: all are queued behind the held write.
    await asyncio.sleep(0)
    release.set()
    await held
    results = await asyncio.gather(*tasks, return_exceptions=True)
    # db.batches counts committed batches; the held write's own COMMIT is not theirs.
    return results, db.batches - before - 1


async def test_group_commit_keeps_all_but_the_failed_writes(sqlite_db: Database) -> None:
    refused, bug = NotAllowed(), RuntimeError("a bug after an insert")
    results, commits = await in_one_batch(
        sqlite_db,
        [
            partial(add_unit, code="b1"),
            add_unit_then_raise("b2", refused),
            add_unit_then_raise("b3", bug),
            partial(add_unit, code="b4"),
        ],
    )
    # Exceptions compare by identity: each caller got exactly the exception its own write raised.
    assert results == ["b1", refused, bug, "b4"]
    assert commits == 1
    assert unit_codes(sqlite_db) == {"b1", "b4"}


async def test_a_failed_commit_fails_the_whole_batch_and_the_writer_recovers(sqlite_db: Database) -> None:
    results, commits = await in_one_batch(
        sqlite_db, [partial(add_unit, code="c1"), orphan_checked_at_commit, partial(add_unit, code="c2")]
    )
    failure = results[0]
    assert isinstance(failure, IntegrityError)
    assert "FOREIGN KEY constraint failed" in str(failure)
    # The same exception for all three callers: they were one batch, and it failed as a whole.
    assert results == [failure, failure, failure]
    assert commits == 0
    assert unit_codes(sqlite_db) == set()
    with sqlite_db.reading() as session:
        assert session.exec(select(Member)).all() == []
    assert await sqlite_db.write(add_unit, "c3") == "c3"
    assert unit_codes(sqlite_db) == {"c3"}


# What each database says when a read-only transaction tries to write.
READ_ONLY_REFUSAL = {
    "sqlite": "attempt to write a readonly database",
    "postgresql": "cannot execute INSERT in a read-only transaction",
}


async def test_a_read_can_never_write(db: Database) -> None:
    with pytest.raises(DBAPIError) as refused:
        await db.read(add_unit, "r1")
    assert READ_ONLY_REFUSAL[db.dialect] in str(refused.value.orig)
    assert "r1" not in unit_codes(db)


async def test_a_database_wait_never_blocks_the_event_loop(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    # Members first: make_member writes, and would itself wait for the lock.
    await make_member(bot.db, 7001, role=Role.CADRE)
    await make_member(bot.db, 7002, employee_no="P1", name="受奖者")
    events: list[str] = []
    queued = asyncio.Event()
    real_write = bot.db.write

    async def spy_write(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Note the moment an update hands its write to the database."""
        events.append("write queued")
        queued.set()
        return await real_write(fn, *args, **kwargs)

    async def grant() -> None:
        await bot.user(7001).send("/grant i801 P1 5 值班")
        events.append("grant answered")

    monkeypatch.setattr(bot.db, "write", spy_write)
    # The harness runs the durable outbox after every update; its writes would queue behind the lock and
    # hold up send() itself. The bot runs the outbox as its own task, so without it send() measures the update.
    monkeypatch.delitem(bot.app.bot_data, "test_outbox")
    locker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD_WRITE_LOCK,
        str(bot.db.sqlite_path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert await locker.stdout.readline() == b"locked\n"
        events.append("locked")
        granting = asyncio.create_task(grant())
        await queued.wait()
        help_shown = await bot.user(7003).send("/help")
        events.append("help answered")
        points_shown = await bot.user(7002).send("/points")
        events.append("points answered")
        # Released well within busy_timeout, so the waiting write gets the lock instead of failing.
        events.append("released")
        locker.stdin.write(b"commit\n")
        await locker.stdin.drain()
        await granting
        assert await locker.wait() == 0
    finally:
        if locker.returncode is None:
            locker.kill()
            await locker.wait()
    assert events == ["locked", "write queued", "help answered", "points answered", "released", "grant answered"]
    assert "可用的命令" in help_shown[0].text
    assert "当前余额：<b>0</b> 分" in points_shown[0].text
    assert "已为 受奖者 发放 5 分" in bot.user(7001).last.text


async def test_postgresql_writes_run_in_parallel(pg_db: Database) -> None:
    both_inside = threading.Barrier(2, timeout=WAIT)

    def add_unit_and_meet(session: Session, code: str) -> str:
        """Insert, then wait inside the open transaction until the other write is inside its own."""
        add_unit(session, code)
        both_inside.wait()
        return threading.current_thread().name

    threads = await asyncio.gather(pg_db.write(add_unit_and_meet, "p1"), pg_db.write(add_unit_and_meet, "p2"))
    assert len(set(threads)) == 2
    assert all(name.startswith("pg-worker") for name in threads)
    assert unit_codes(pg_db) == {"p1", "p2"}


@pytest.fixture(params=["bot", "pg_bot"])
def any_bot(request: pytest.FixtureRequest) -> Bot:
    """The bot on SQLite, then on PostgreSQL."""
    return request.getfixturevalue(request.param)


async def test_a_failing_statement_is_logged_without_its_parameters(
    any_bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A traceback logged at ERROR must not carry names or employee numbers (hide_parameters=True)."""
    bot = any_bot
    await make_member(bot.db, 7101, employee_no="E7101")

    def clash(session: Session, _member_id: int, _language: str) -> None:
        """A bug: registers the same Telegram user again, with personal data in the statement's parameters."""
        session.add(Member(telegram_id=7101, unit_code="i801", employee_no="SECRET-4711", name="秘密姓名"))
        session.flush()

    monkeypatch.setattr(members, "set_language", clash)
    with caplog.at_level(logging.ERROR):
        await bot.user(7101).send("/lang en")
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert [type(r.exc_info[1]).__name__ for r in failures] == ["IntegrityError"]
    logged = caplog.text
    assert "[SQL parameters hidden due to hide_parameters=True]" in logged
    assert "SECRET-4711" not in logged and "秘密姓名" not in logged and "7101, 'i801'" not in logged
