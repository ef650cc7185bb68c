"""Points: idempotency, daily caps, spending, cadre grants in scope, and ledger == balance always."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from buttons.points import PointsHistory
from config import Limits, PointsRule
from models import members, points
from models.errors import BadInput, InsufficientPoints, NotAllowed
from models.members import Actor, Role
from models.points import Outcome
from tests.conftest import ADMIN_ID, make_member

DAY = date(2026, 11, 28)
LIKE = PointsRule("like_received", 1, 3)
RUN = PointsRule("run_attendance", 10, 20)
NO_CAP = PointsRule("idea_adopted", 50, 0)


def cadre_of(unit: str | None, member: members.Member | None = None) -> Actor:
    """A cadre acting for one unit (None: the bureau)."""
    return Actor(9999, member, False, frozenset({unit}), frozenset({Role.CADRE}))


async def test_award_once_per_key(db):
    m = await make_member(db, 1)
    with db.writing() as s:
        first = points.award(s, m.id, NO_CAP, "idea:1", DAY)
        again = points.award(s, m.id, NO_CAP, "idea:1", DAY)
    with db.writing() as s:
        third = points.award(s, m.id, NO_CAP, "idea:1", DAY)
        assert points.balance_of(s, m.id) == 50
    assert (first.outcome, again.outcome, third.outcome) == (Outcome.AWARDED, Outcome.DUPLICATE, Outcome.DUPLICATE)


async def test_daily_cap_pays_what_is_left_then_nothing(db):
    m = await make_member(db, 2)
    with db.writing() as s:
        results = [points.award(s, m.id, RUN, f"run:{i}", DAY, amount=8) for i in range(4)]
        other_day = points.award(s, m.id, RUN, "run:next", date(2026, 11, 29), amount=8)
        assert points.balance_of(s, m.id) == 28
    assert [(r.outcome, r.amount) for r in results] == [
        (Outcome.AWARDED, 8),
        (Outcome.AWARDED, 8),
        (Outcome.AWARDED, 4),
        (Outcome.CAPPED, 0),
    ]
    assert other_day.amount == 8


async def test_capped_award_does_not_undo_the_callers_work(db):
    m = await make_member(db, 3)
    with db.writing() as s:
        for i in range(3):
            points.award(s, m.id, LIKE, f"like:{i}", DAY)
        members.set_language(s, m.id, "en")
        capped = points.award(s, m.id, LIKE, "like:9", DAY)
    assert capped.outcome == Outcome.CAPPED
    with db.reading() as s:
        member = s.get(members.Member, m.id)
        assert member.language == "en" and member.balance == 3


async def test_spend_beyond_balance_is_refused_and_changes_nothing(db):
    m = await make_member(db, 4)
    with db.writing() as s:
        points.award(s, m.id, NO_CAP, "seed", DAY)
    with pytest.raises(InsufficientPoints) as err, db.writing() as s:
        points.spend(s, m.id, 80, "buy:1", DAY, "welfare")
    assert err.value.params == {"balance": 50, "cost": 80}
    with db.writing() as s:
        assert points.balance_of(s, m.id) == 50
        assert points.ledger_sum(s, m.id) == 50
        assert points.spend(s, m.id, 30, "buy:2", DAY, "welfare") == 20
        assert points.spend(s, m.id, 30, "buy:2", DAY, "welfare") == 20  # same key: charged once
        assert points.refund(s, m.id, 30, "refund:2", DAY, "cancelled") == 50
        assert points.refund(s, m.id, 30, "refund:2", DAY, "cancelled") == 50


async def test_cadre_grants_only_within_scope_with_a_reason(db):
    target = await make_member(db, 5, "i801")
    limits = Limits()
    with db.writing() as s:
        balance = points.adjust_by_cadre(s, cadre_of("i801"), target, 20, "读书节组织", "g:1", DAY, limits)
        assert balance == 20
        assert points.adjust_by_cadre(s, cadre_of(None), target, -5, "更正", "g:2", DAY, limits) == 15
    for actor, amount, reason, error in (
        (cadre_of("i802"), 10, "跨单位", NotAllowed),
        (Actor(1, None, False, frozenset(), frozenset()), 10, "not a cadre", NotAllowed),
        (cadre_of("i801"), 10, "   ", BadInput),
        (cadre_of("i801"), limits.grant_max_amount + 1, "too much", BadInput),
        (cadre_of("i801"), -16, "below zero", InsufficientPoints),
    ):
        with pytest.raises(error), db.writing() as s:
            points.adjust_by_cadre(s, actor, target, amount, reason, f"bad:{amount}:{reason}", DAY, limits)
    with db.reading() as s:
        assert points.balance_of(s, target.id) == 15
        entries, _pages = points.history(s, target.id, 0, 10)
        assert [(e.delta, e.reason) for e in entries] == [(-5, "更正"), (20, "读书节组织")]
        log = members.audit.recent(s)
        assert [e.action for e in log] == ["deduct", "grant"]


async def test_check_constraint_is_the_last_guard(db):
    m = await make_member(db, 6)
    with pytest.raises(IntegrityError), db.writing() as s:
        s.exec(text("UPDATE member SET balance = -1 WHERE id = :id").bindparams(id=m.id))


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["award", "capped", "spend", "refund", "grant", "deduct"]),
        st.integers(min_value=1, max_value=60),
        st.integers(min_value=0, max_value=5),  # key: repeats exercise idempotency
        st.integers(min_value=0, max_value=2),  # which member
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPERATIONS)
async def test_ledger_sum_always_equals_balance(db, ops):
    # One fresh set of members per example: ids from a counter that keeps growing across examples.
    base = 100 + test_ledger_sum_always_equals_balance.counter * 3
    test_ledger_sum_always_equals_balance.counter += 1
    people = [await make_member(db, base + i) for i in range(3)]
    for kind, amount, key, who in ops:
        member = people[who]
        try:
            with db.writing() as s:
                if kind == "award":
                    points.award(s, member.id, NO_CAP, f"{base}:a:{key}", DAY, amount=amount)
                elif kind == "capped":
                    points.award(s, member.id, RUN, f"{base}:c:{key}", DAY, amount=amount)
                elif kind == "spend":
                    points.spend(s, member.id, amount, f"{base}:s:{key}", DAY, "buy")
                elif kind == "refund":
                    points.refund(s, member.id, amount, f"{base}:r:{key}", DAY, "back")
                else:
                    sign = 1 if kind == "grant" else -1
                    points.adjust_by_cadre(
                        s, cadre_of(None), member, sign * amount, "x", f"{base}:g:{key}", DAY, Limits()
                    )
        except InsufficientPoints:
            pass
    with db.reading() as s:
        for member in people:
            balance = points.balance_of(s, member.id)
            assert balance >= 0
            assert balance == points.ledger_sum(s, member.id)


test_ledger_sum_always_equals_balance.counter = 0


# --- through the bot --------------------------------------------------------------------------------


async def test_points_screens(bot):
    me = await make_member(bot.db, 8101, "i801", name="甲")
    rival = await make_member(bot.db, 8102, "i801", name="乙")
    hidden = await make_member(bot.db, 8103, "i801", name="丙")
    with bot.db.writing() as s:
        for i in range(12):
            points.award(s, me.id, NO_CAP, f"me:{i}", DAY, amount=1 + i)
        points.award(s, rival.id, NO_CAP, "r", DAY, amount=500)
        points.award(s, hidden.id, NO_CAP, "h", DAY, amount=900)
        members.toggle_ranking_opt_out(s, hidden.id)
    user = bot.user(8101)
    await user.send("/points")
    assert "<b>78</b>" in user.last.text
    await user.click("明细")
    assert "第 1/2 页" in user.last.text and "+12" in user.last.text and "创客空间金点子被采纳" in user.last.text
    await user.click("下一页")
    assert "第 2/2 页" in user.last.text and "+1 " in user.last.text
    await user.click("返回")
    await user.click("如何赚分")
    assert "航天漫步约跑签到：每次 10 分，每天最多 20 分" in user.last.text
    await user.click("返回")
    await user.click("排行")
    ranking = user.last.text
    assert ranking.index("乙") < ranking.index("甲") and "丙" not in ranking and "⬅️ 我" in ranking
    # Paging past the end (an old button) shows the last page instead of failing.
    await user.press(PointsHistory(99).pack())
    assert "第 2/2 页" in user.last.text


async def test_grant_command_scoped_audited_and_not_repeated(bot):
    await make_member(bot.db, 8201, "i801", role=Role.CADRE)
    await make_member(bot.db, 8202, "i801", employee_no="P1", name="受奖者")
    await make_member(bot.db, 8203, "i802", employee_no="P2")
    cadre = bot.user(8201)
    await cadre.send("/grant i801 p1 30 读书节优秀组织者", message_id=777)
    assert "已为 受奖者 发放 30" in cadre.last.text
    assert "工会为您发放了 <b>30</b> 积分" in bot.user(8202).last.text
    # Telegram delivers the same message again (same message id): paid once.
    await cadre.send("/grant i801 p1 30 读书节优秀组织者", message_id=777)
    await cadre.send("/grant i802 P2 30 另一单位")
    assert "没有进行此操作的权限" in cadre.last.text
    await cadre.send("/grant i801 P1 abc 原因")
    assert "1 到 500" in cadre.last.text
    await cadre.send("/grant i801 P1")
    assert "用法" in cadre.last.text
    await cadre.send("/deduct i801 P1 31 超扣")
    # Said to the cadre about the member, not "your balance" (the member's own insufficient_points message).
    assert cadre.last.text == "扣减没有完成：受奖者 目前只有 <b>30</b> 分，不够扣减 <b>31</b> 分。"
    plain = bot.user(8202)
    await plain.send("/grant i801 P1 30 自己发")
    assert "没有进行此操作的权限" in plain.last.text
    with bot.db.reading() as s:
        target = members.find_member(s, "i801", "P1")
        assert target.balance == 30 and points.ledger_sum(s, target.id) == 30
        assert [e.action for e in members.audit.recent(s)] == ["grant"]


async def test_bootstrap_admin_grants_anywhere(bot):
    await make_member(bot.db, ADMIN_ID, "hq")
    await make_member(bot.db, 8301, "i812", employee_no="Q1")
    admin = bot.user(ADMIN_ID)
    await admin.send("/grant i812 Q1 5 志愿服务")
    assert "发放 5" in admin.last.text


async def test_a_cadre_cannot_grant_points_to_themselves(bot):
    me = await make_member(bot.db, 8221, "i801", employee_no="P21", name="干部自己", role=Role.CADRE)
    await make_member(bot.db, ADMIN_ID, "i801", employee_no="P22", name="管理员自己")
    admin_member = await make_member(bot.db, 8222, "i801", employee_no="P23", name="别人")
    cadre = bot.user(8221)
    for attempt in range(2):  # repeated, with new message ids: refused every time
        await cadre.send("/grant i801 P21 30 辛苦费")
        assert cadre.last.text == "不能给自己发放积分，请其他干部为您办理。", attempt
    # A configured admin is refused the same way; granting to someone else still works.
    admin = bot.user(ADMIN_ID)
    await admin.send("/grant i801 P22 30 辛苦费")
    assert admin.last.text == "不能给自己发放积分，请其他干部为您办理。"
    await cadre.send("/grant i801 P23 30 读书节")
    assert "已为 别人 发放 30" in cadre.last.text
    with bot.db.reading() as s:
        assert points.balance_of(s, me.id) == 0 and points.ledger_sum(s, me.id) == 0
        assert points.balance_of(s, admin_member.id) == 30
        assert [(e.action, e.target) for e in members.audit.recent(s)] == [("grant", f"member:{admin_member.id}")]


@pytest.mark.parametrize(
    "amount",
    [
        pytest.param("²", id="superscript-two"),
        pytest.param("３０", id="full-width"),
        pytest.param("٣", id="arabic-indic"),
        pytest.param("1²", id="digit-then-superscript"),
        pytest.param("9" * 5000, id="5000-digits"),
        pytest.param("-5", id="minus"),
        pytest.param("5.0", id="decimal"),
    ],
)
async def test_an_amount_is_ascii_digits_or_a_clear_answer(bot, amount):
    await make_member(bot.db, 8231, "i801", role=Role.CADRE)
    target = await make_member(bot.db, 8232, "i801", employee_no="P31")
    cadre = bot.user(8231)
    await cadre.send(f"/grant i801 P31 {amount} 原因")
    assert cadre.last.text == "积分数额须为 1 到 500 之间的整数。"
    with bot.db.reading() as s:
        assert points.balance_of(s, target.id) == 0


async def test_the_ranking_counts_earnings_net_of_deductions(bot):
    """Earned this month: earning rules + cadre grants - cadre deductions; welfare spending and refunds do not count."""
    me = await make_member(bot.db, 8241, "i801", name="甲")
    rival = await make_member(bot.db, 8242, "i801", name="乙")
    evened = await make_member(bot.db, 8243, "i801", name="丙")
    limits = Limits()
    with bot.db.writing() as s:
        points.award(s, me.id, NO_CAP, "rank:me", DAY, amount=30)
        points.adjust_by_cadre(s, cadre_of("i801"), me, 20, "组织活动", "rank:grant", DAY, limits)
        points.adjust_by_cadre(s, cadre_of("i801"), me, -15, "更正", "rank:deduct", DAY, limits)
        points.spend(s, me.id, 10, "rank:spend", DAY, "电影票")
        points.refund(s, me.id, 10, "rank:refund", DAY, "电影票")
        points.award(s, rival.id, NO_CAP, "rank:rival", DAY, amount=40)
        points.spend(s, rival.id, 30, "rank:rival-spend", DAY, "电影票")
        points.adjust_by_cadre(s, cadre_of("i801"), evened, 5, "x", "rank:even+", DAY, limits)
        points.adjust_by_cadre(s, cadre_of("i801"), evened, -5, "x", "rank:even-", DAY, limits)
    user = bot.user(8241)
    await user.send("/points")
    await user.click("排行")
    assert user.last.text.splitlines()[1:] == [
        "按本月获得的积分排名：干部发放的算在内，扣减的会减去，兑换福利和退还不计。",
        "1. 乙 — 40 分",
        "2. 甲 — 35 分 ⬅️ 我",
    ]
