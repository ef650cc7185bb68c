"""Durable schedule: rows survive a restart, missed runs follow the policy, backups are real copies."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from messages import Renderer
from models import schedule
from models.db import Database
from scheduled import runner
from scheduled.backup import backup_sqlite, next_backup_time
from services import Services
from tests.conftest import fresh_schema, make_member, seed_units

# 2026-11-28 12:00 in Shanghai.
NOON = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


async def _services(config) -> Services:
    db = Database(config.database_url)
    return Services(config, db, Renderer())


async def _task(services: Services) -> schedule.ScheduledTask:
    with services.db.reading() as s:
        return s.get(schedule.ScheduledTask, "nightly_backup")


def test_next_backup_time_is_local_and_in_the_future(config):
    # Backups at 03:30 Shanghai time = 19:30 UTC the day before.
    assert next_backup_time(config, NOON) == datetime(2026, 11, 28, 19, 30, tzinfo=UTC)
    assert next_backup_time(config, datetime(2026, 11, 28, 19, 30, tzinfo=UTC)) == datetime(
        2026, 11, 29, 19, 30, tzinfo=UTC
    )


async def test_restart_keeps_the_schedule_and_runs_a_missed_backup_once(config):
    specs = {"nightly_backup": runner.discover()["nightly_backup"]}
    assert {"nightly_backup", "welfare"} <= set(runner.discover())
    first = await _services(config)
    fresh_schema(first.db)
    seed_units(first.db, config)
    await make_member(first.db, 1, "i801")
    await runner.ensure_tasks(first, specs, now=NOON)
    due = (await _task(first)).next_run_at
    assert due == datetime(2026, 11, 28, 19, 30, tzinfo=UTC)
    await first.db.dispose()

    # "Restart" a day later: same database, new process state. The row keeps its time.
    later = NOON + timedelta(days=1)
    second = await _services(config)
    await runner.ensure_tasks(second, specs, now=later)
    assert (await _task(second)).next_run_at == due
    # The run missed at 19:30 is 8.5 hours old (< 12 h grace): made up once, and only once.
    assert await runner.tick(second, specs, now=later) == ["nightly_backup:ok"]
    assert await runner.tick(second, specs, now=later) == []
    task = await _task(second)
    assert task.next_run_at == datetime(2026, 11, 29, 19, 30, tzinfo=UTC)
    assert (task.runs, task.last_status) == (1, "ok")
    copies = list(config.backup_dir.glob("gongshe-*.db"))
    assert len(copies) == 1
    with sqlite3.connect(copies[0]) as conn:
        assert conn.execute("SELECT count(*) FROM member").fetchone() == (1,)
    await second.db.dispose()


async def test_a_run_missed_for_too_long_is_skipped(config):
    specs = {"nightly_backup": runner.discover()["nightly_backup"]}
    services = await _services(config)
    fresh_schema(services.db)
    await runner.ensure_tasks(services, specs, now=NOON)
    much_later = NOON + timedelta(days=3)
    assert await runner.tick(services, specs, now=much_later) == ["nightly_backup:skipped"]
    task = await _task(services)
    assert task.next_run_at > much_later
    assert not list(config.backup_dir.glob("gongshe-*.db"))
    await services.db.dispose()


async def test_two_dispatchers_never_run_the_same_due_time_twice(config):
    specs = {"nightly_backup": runner.discover()["nightly_backup"]}
    a, b = await _services(config), await _services(config)
    fresh_schema(a.db)
    await runner.ensure_tasks(a, specs, now=NOON)
    due = NOON + timedelta(hours=16)
    results = await runner.tick(a, specs, now=due) + await runner.tick(b, specs, now=due)
    assert results == ["nightly_backup:ok"]
    await a.db.dispose()
    await b.db.dispose()


def test_backup_keeps_the_newest_copies(tmp_path):
    source = tmp_path / "live.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
    target = tmp_path / "backups"
    for day in range(5):
        backup_sqlite(source, target, keep=3, now=NOON + timedelta(days=day))
    names = sorted(p.name for p in target.glob("*.db"))
    assert names == ["gongshe-20261130-040000.db", "gongshe-20261201-040000.db", "gongshe-20261202-040000.db"]
    assert not list(target.glob("*.part"))


async def test_backup_skips_postgresql(config):
    from scheduled.backup import run_backup
    from tests.conftest import PG_URL

    services = Services(config, Database(PG_URL), Renderer())
    assert await run_backup(services) == "skipped"
    await services.db.dispose()
