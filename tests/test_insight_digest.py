"""The cadres' weekly digest: once per cadre per week across restarts, their own units, off in /me."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from models import activity
from models.members import Role
from models.outbox import OutboxMessage
from scheduled import runner
from scheduled.insight import KIND, next_digest_time, send_digests
from tests.conftest import NOW, make_member


def digests(bot) -> list[OutboxMessage]:
    with bot.db.reading() as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.kind == KIND).order_by(col(OutboxMessage.id))))


def test_the_digest_is_due_on_the_configured_weekday_and_time(config):
    due = next_digest_time(config, NOW)  # NOW is Saturday 2026-11-28, noon in Beijing
    assert due == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Monday 09:00 Beijing
    assert next_digest_time(config, due) == due + timedelta(days=7)
    assert next_digest_time(config, due - timedelta(seconds=1)) == due


async def test_each_cadre_gets_their_units_once_per_week(bot):
    unit_cadre = await make_member(bot.db, 9700, "i801", role=Role.CADRE)
    bureau = await make_member(bot.db, 9701, "hq", role=Role.CADRE, role_unit=None, language="en")
    await make_member(bot.db, 9702, "i801")  # a member: no digest
    others = [(await make_member(bot.db, 9710 + n, "i802")).id for n in range(6)]
    with bot.db.writing() as s:
        activity.record(s, [(m, NOW.date() - timedelta(days=1), "points") for m in others])
    services = bot.app.bot_data["services"]
    await send_digests(services)
    await send_digests(services)  # the same week again (a second run, a restart): nothing new
    bot.clock.advance(days=2)
    await send_digests(services)  # Monday 11-30: the next ISO week, so a new digest each
    sent = digests(bot)
    assert sorted(m.chat_id for m in sent) == [9700, 9700, 9701, 9701]
    first_unit, first_bureau = sent[0], sent[1]
    assert "本周工会数据" in first_unit.text and "1 个基层工会" in first_unit.text
    assert "Your union's week" in first_bureau.text and f"{len(bot.config.units)} units" in first_bureau.text
    # The unit cadre's figures are their unit's: i802's six active members appear only for the bureau.
    assert "活跃会员：0" in first_unit.text
    assert "Active members: 6" in first_bureau.text
    assert unit_cadre.id and bureau.id


async def test_a_cadre_turns_the_digest_off_and_on_in_me(bot):
    await make_member(bot.db, 9800, "i801", role=Role.CADRE)
    cadre = bot.user(9800)
    await cadre.send("/me")
    await cadre.click("工会数据周报：开")
    assert "📭 工会数据周报：关" in cadre.last.labels
    await send_digests(bot.app.bot_data["services"])
    assert digests(bot) == []
    await cadre.click("工会数据周报：关")
    assert "📬 工会数据周报：开" in cadre.last.labels
    await send_digests(bot.app.bot_data["services"])
    assert [m.chat_id for m in digests(bot)] == [9800]
    member = bot.user(9801)
    await make_member(bot.db, 9801, "i801")
    await member.send("/me")
    assert not [label for label in member.last.labels if "周报" in label]


async def test_the_digest_task_is_scheduled(bot):
    assert "insight_digest" in runner.discover()
