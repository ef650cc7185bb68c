"""Activity records for Insight: one per member per local day per section, written in batches, never text."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlmodel import col, select

from models import activity
from models.activity import Activity, ActivityLog
from models.members import Member, Status
from scheduled.activity import next_prune_time, prune_activity
from tests.conftest import NOW, make_member

DAY = date(2026, 11, 28)


def rows(db) -> list[tuple[int, date, str]]:
    with db.reading() as session:
        found = session.exec(select(Activity.member_id, Activity.day, Activity.section).order_by(col(Activity.day)))
        return [tuple(r) for r in found]


def test_a_note_is_taken_once_per_member_day_and_section():
    log = ActivityLog()
    for _ in range(3):
        log.note(1, DAY, "points")
    log.note(1, DAY, "welfare")
    assert log.take() == [(1, DAY, "points"), (1, DAY, "welfare")]
    log.note(1, DAY, "points")
    assert log.take() == []
    # The next day counts again, and yesterday's memory is dropped.
    log.note(1, DAY + timedelta(days=1), "points")
    assert log.take() == [(1, DAY + timedelta(days=1), "points")]


def test_a_failed_write_gives_the_notes_back():
    log = ActivityLog()
    log.note(2, DAY, "menu")
    taken = log.take()
    log.give_back(taken)
    log.note(2, DAY, "menu")
    assert log.take() == [(2, DAY, "menu")]


def test_an_older_day_is_still_written():
    log = ActivityLog()
    log.note(3, DAY, "menu")
    log.take()
    log.note(3, DAY - timedelta(days=1), "menu")
    assert log.take() == [(3, DAY - timedelta(days=1), "menu")]


async def test_record_prune_and_erase(db):
    a = await make_member(db, 7101)
    b = await make_member(db, 7102)
    with db.writing() as session:
        session.get(Member, b.id).status = Status.DELETED
    with db.writing() as session:
        notes = [(a.id, DAY, "points"), (a.id, DAY - timedelta(days=10), "welfare"), (b.id, DAY, "points")]
        assert activity.record(session, notes) == 2
        assert activity.record(session, notes) == 0
    assert rows(db) == [(a.id, DAY - timedelta(days=10), "welfare"), (a.id, DAY, "points")]
    with db.writing() as session:
        assert activity.prune(session, DAY - timedelta(days=5)) == 1
    with db.writing() as session:
        activity.erase_member(session, a.id)
    assert rows(db) == []


async def test_using_the_bot_leaves_one_row_per_section_and_day(bot):
    member = await make_member(bot.db, 7103)
    user = bot.user(7103)
    await user.send("/points")
    await user.send("/points")
    await user.send("/me")
    stranger = bot.user(7104)
    await stranger.send("/start")  # not a member: nothing is counted
    await bot.app.bot_data["inbox_marker"].flush()
    assert sorted(rows(bot.db)) == [(member.id, DAY, "me"), (member.id, DAY, "points")]
    bot.clock.advance(days=1)
    await user.send("/points")
    await bot.app.bot_data["inbox_marker"].flush()
    assert (member.id, DAY + timedelta(days=1), "points") in rows(bot.db)
    assert len(rows(bot.db)) == 3


async def test_export_lists_activity_and_deleting_the_account_removes_it(bot):
    await make_member(bot.db, 7105)
    user = bot.user(7105)
    await user.send("/points")
    await bot.app.bot_data["inbox_marker"].flush()
    await user.send("/me")
    await user.click("导出我的数据")
    data = json.loads(user.last.document[1])
    assert {"day": DAY.isoformat(), "section": "points"} in data["activity"]
    await user.click("注销账号")
    await user.click("确认注销")
    await bot.app.bot_data["inbox_marker"].flush()
    assert rows(bot.db) == []


async def test_the_nightly_prune_keeps_the_configured_days(bot):
    member = await make_member(bot.db, 7106)
    keep = bot.config.insight.retention_days
    with bot.db.writing() as session:
        activity.record(session, [(member.id, DAY - timedelta(days=keep + 1), "menu"), (member.id, DAY, "menu")])
    await prune_activity(bot.app.bot_data["services"])
    assert rows(bot.db) == [(member.id, DAY, "menu")]
    due = next_prune_time(bot.config, NOW)
    assert due > NOW and due - NOW <= timedelta(days=1)
    assert due.astimezone(bot.config.timezone).time().isoformat() == "04:10:00"
