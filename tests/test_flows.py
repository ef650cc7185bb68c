"""Flows: one per section, text goes to the newest, expired ones stop answering, concurrent starts never collide."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from models import flows
from tests.conftest import ADMIN_ID, NOW, make_member

LIFETIME = timedelta(hours=48)


async def test_one_flow_per_section_and_the_newest_gets_the_text(db):
    with db.writing() as s:
        flows.set_flow(s, 42, "welfare", "welfare", "title", {"mode": "lottery"}, NOW)
        flows.set_flow(s, 42, "runs", "newrun", "when", {}, NOW + timedelta(minutes=5))
    with db.reading() as s:
        assert flows.get_flow(s, 42, NOW + timedelta(minutes=6), LIFETIME).name == "newrun"
        # Starting the run invitation did not throw the half-made welfare item away.
        kept = flows.section_flow(s, 42, "welfare", NOW, LIFETIME)
        assert (kept.step, kept.data) == ("title", {"mode": "lottery"})
    with db.writing() as s:
        assert flows.clear_flow(s, 42, "runs")
    with db.reading() as s:
        assert flows.get_flow(s, 42, NOW + timedelta(minutes=6), LIFETIME).name == "welfare"
        # Two days later both have expired.
        assert flows.get_flow(s, 42, NOW + LIFETIME + timedelta(minutes=6), LIFETIME) is None
    with db.writing() as s:
        assert flows.drop_expired(s, 42, NOW + LIFETIME + timedelta(minutes=6), LIFETIME) == 1


async def test_concurrent_starts_of_one_user_never_collide(db):
    """Three /start at once from one user (PostgreSQL ran them in parallel): no IntegrityError, one row."""

    def start(session, step: str) -> None:
        flows.set_flow(session, 77, "members", "register", step, {}, NOW)

    await asyncio.gather(*(db.write(start, step) for step in ("unit", "employee_no", "name")))
    with db.reading() as s:
        assert flows.section_flow(s, 77, "members", NOW, LIFETIME).step in {"unit", "employee_no", "name"}


async def test_a_stale_form_stops_answering_after_its_lifetime(bot):
    await make_member(bot.db, ADMIN_ID, "hq")
    admin = bot.user(ADMIN_ID)
    await admin.send("/admin")
    await admin.click("福利管理")
    await admin.click("新建福利")
    await admin.click("抢福利")
    bot.clock.advance(hours=49)
    await admin.send("电影票")
    assert "福利名称" not in admin.last.text and "/menu" in admin.last.text
    # The expired question's Cancel button says there is nothing to cancel any more.
    changed = await admin.click("取消")
    assert [m.text for m in changed] == ["当前没有进行中的操作。"]
