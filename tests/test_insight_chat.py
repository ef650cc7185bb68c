"""/stats in chat: a cadre's own units only, every area and period, the unit picker, the CSV, forged buttons."""

from __future__ import annotations

import csv
import io
from io import BytesIO

from PIL import Image
from sqlmodel import select

from buttons.insight import StatsCsv, StatsUnits, StatsView
from handlers.insight import chart_bars
from models import activity, insight, members
from models.members import Member, Role, Status
from tests.conftest import make_member

DAY_NOTES = "points"


async def _members(bot, unit: str, first_id: int, count: int) -> list[int]:
    ids = [(await make_member(bot.db, first_id + n, unit)).id for n in range(count)]
    with bot.db.writing() as session:
        activity.record(session, [(i, bot.clock.now().date(), DAY_NOTES) for i in ids])
    return ids


async def test_a_unit_cadre_sees_their_unit_in_every_area(bot):
    await make_member(bot.db, 9100, "i801", role=Role.CADRE)
    await _members(bot, "i801", 9101, 6)
    await _members(bot, "i802", 9201, 7)
    cadre = bot.user(9100)
    await cadre.send("/stats")
    text = cadre.last.text
    assert "覆盖面" in text and "本月" in text and "八〇一所工会" in text
    assert "八〇二所工会" not in text
    assert "认证 7 / 名册 0" in text  # the cadre and six members; nobody is on the roster in this test
    await cadre.click("互动")
    assert "近 7 天活跃会员：<b>6</b> / 7" in cadre.last.text
    assert "积分 6" in cadre.last.text
    await cadre.click("本周")
    assert "本周" in cadre.last.text and "• 互动" in cadre.last.labels and "• 本周" in cadre.last.labels
    await cadre.click("黏性")
    assert "近 4 周来过的会员：6 人，其中至少 2 周都来过：<b>0</b>" in cadre.last.text
    await cadre.click("效率")
    assert "会员福利：本期开放 0 项" in cadre.last.text
    assert "🏢 选择单位" not in cadre.last.labels  # one unit: nothing to pick


async def test_small_groups_show_as_less_than_five(bot):
    await make_member(bot.db, 9300, "i803", role=Role.CADRE, language="en")
    await _members(bot, "i803", 9301, 2)
    cadre = bot.user(9300, language_code="en")
    await cadre.send("/stats")
    await cadre.click("Interaction")
    assert "Active in the last 7 days: <b>&lt;5</b> of &lt;5" in cadre.last.text
    await cadre.click("Export CSV")
    filename, content = cadre.last.document
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert filename.startswith("stats-month-") and filename.endswith(".csv")
    assert rows[0][:3] == ["Grassroots union", "On the roster", "Verified members"]
    assert len(rows) == 2 and rows[1][2] == "<5" and rows[1][7] == "<5"


async def test_a_bureau_cadre_picks_a_unit_and_exports_all(bot):
    await make_member(bot.db, 9400, "hq", role=Role.CADRE, role_unit=None)
    await _members(bot, "i801", 9401, 5)
    cadre = bot.user(9400)
    await cadre.send("/stats")
    assert f"{len(bot.config.units)} 个基层工会" in cadre.last.text
    await cadre.click("选择单位")
    assert "选择要查看的基层工会" in cadre.last.text
    await cadre.click("八〇一所工会")
    assert "范围：八〇一所工会" in cadre.last.text and "认证 5 / 名册 0" in cadre.last.text
    await cadre.click("全部单位")
    await cadre.click("导出 CSV")
    rows = list(csv.reader(io.StringIO(cadre.last.document[1].decode("utf-8-sig"))))
    assert len(rows) == 1 + len(bot.config.units)


async def test_forged_buttons_show_nothing_of_another_unit(bot):
    await make_member(bot.db, 9500, "i801", role=Role.CADRE)
    await _members(bot, "i802", 9501, 6)
    cadre = bot.user(9500)
    await cadre.send("/stats")
    for forged in (
        StatsView("reach", "month", "i802"),
        StatsCsv("month", "i802"),
        StatsView("reach", "month", "nowhere"),
    ):
        await cadre.press(forged.pack())
        assert "八〇二所工会" not in cadre.last.text
        assert cadre.last.document is None or "i802" not in cadre.last.document[0]
    await cadre.press(StatsView("reach", "month", "i802").pack())
    assert "没有进行此操作的权限" in (cadre.last_answer() or cadre.last.text)
    await cadre.press(StatsView("secrets", "month").pack())
    await cadre.press(StatsUnits("reach", "decade").pack())
    assert "八〇二所工会" not in cadre.last.text


async def test_members_cannot_open_stats(bot):
    await make_member(bot.db, 9600, "i801")
    member = bot.user(9600)
    await member.send("/stats")
    assert "没有进行此操作的权限" in member.last.text
    await member.press(StatsCsv("month").pack())
    assert member.last.document is None or not member.last.document[0].startswith("stats-")


async def test_each_area_has_a_chart_image_with_its_bars(bot):
    """A real PNG per area, in both languages; groups of 1-4 members are never a bar of their own size."""
    await make_member(bot.db, 9700, "i801", role=Role.CADRE, role_unit=None)
    await _members(bot, "i801", 9701, 6)
    await _members(bot, "i802", 9751, 2)
    cadre = bot.user(9700)
    await cadre.send("/stats")
    for area in ("覆盖", "互动", "黏性", "效率"):
        await cadre.click(area)
        await cadre.click("图表")
        image = Image.open(BytesIO(cadre.last.photo))
        assert image.format == "PNG" and image.width > 300
        assert "少于 5 人的组" in cadre.last.text
    english = bot.user(9700, language_code="en")
    with bot.db.writing() as s:
        members.set_language(s, (await _cadre_id(bot, 9700)), "en")
    await english.send("/stats")
    await english.click("Chart")
    assert Image.open(BytesIO(english.last.photo)).format == "PNG"
    assert "Reach" in english.last.text


async def _cadre_id(bot, telegram_id: int) -> int:
    with bot.db.reading() as s:
        return s.exec(select(Member.id).where(Member.telegram_id == telegram_id)).one()


def test_small_groups_are_never_drawn_at_their_size(bot):
    """chart_bars: shares of fewer than 5 are left out, counts of 1-4 drawn as 0 and labelled "<5"."""
    today = bot.clock.now().date()
    with bot.db.writing() as s:
        ids = []
        for n in range(3):
            m = Member(telegram_id=9800 + n, unit_code="i803", status=Status.VERIFIED)
            s.add(m)
            s.flush()
            ids.append(m.id)
        activity.record(s, [(i, today, "points") for i in ids])
    renderer = bot.app.bot_data["services"].renderer
    with bot.db.reading() as s:
        period = insight.period_of("week", today)
        labels, values, _ = chart_bars(s, bot.config, renderer, "zh", today, "interaction", ["i803"], period)
        reach_labels, _, _ = chart_bars(s, bot.config, renderer, "zh", today, "reach", ["i803"], period)
    assert values == [0] and labels[0].endswith("(<5)")
    assert reach_labels == []  # 3 members, nobody on the roster: no share to draw
