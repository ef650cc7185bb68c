"""Welfare through the bot: the catalog, claims and vouchers, redeeming, forged buttons, cadres' items."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from bot import build_application
from buttons.welfare import (
    AdminList,
    CancelClaim,
    Catalog,
    ClaimItem,
    CloseItem,
    PublishItem,
    Redeem,
    ShowItem,
    ShowVoucher,
)
from config import PointsRule
from models import points, welfare
from models.clock import local_date
from models.flows import FlowState
from models.members import Member, Role
from models.welfare import ClaimStatus, ItemDraft, ItemStatus, WelfareClaim, WelfareItem, WelfareItemUnit
from tests.conftest import ADMIN_ID, NOW, make_member
from tests.harness import ChatClient

GIFT = PointsRule("idea_adopted", 50, 0)
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def open_item(db, mode: str = "first_come", *, stock: int | None = 5, cost: int = 10, units=("i801",), **extra):
    """A published item whose window is open now (made as a bureau admin would)."""
    now = NOW
    draft = ItemDraft(
        title=extra.pop("title", "电影票"),
        mode=mode,
        opens_at=now + timedelta(minutes=1),
        closes_at=now + timedelta(days=1),
        cost=cost,
        stock=stock,
        units=tuple(units),
        pickup="工会办公室 301",
        **extra,
    )
    with db.writing() as s:
        item = welfare.store_item(s, draft, None, ADMIN_ID, now, ItemStatus.PUBLISHED)
        if mode == "lottery":
            item.seed, item.seed_hash = welfare._new_seed()
        s.exec(update(WelfareItem).where(col(WelfareItem.id) == item.id).values(opens_at=now - timedelta(minutes=1)))
    return item.id


async def rich_member(db, telegram_id: int, unit: str = "i801", balance: int = 50) -> Member:
    """A verified member with some points."""
    member = await make_member(db, telegram_id, unit)
    with db.writing() as s:
        points.award(s, member.id, GIFT, f"seed:{telegram_id}", local_date(SHANGHAI), amount=balance)
    return member


async def _claims(db, item_id: int) -> list[WelfareClaim]:
    with db.reading() as s:
        return list(s.exec(select(WelfareClaim).where(WelfareClaim.item_id == item_id)))


async def test_claim_voucher_double_click_cancel(bot):
    item_id = await open_item(bot.db)
    member = await rich_member(bot.db, 9001)
    user = bot.user(9001)
    await user.send("/welfare")
    assert "电影票" in user.last.text and "剩余 5/5" in user.last.text
    await user.click("电影票")
    card = user.last
    assert "⚡ 立即抢（10 积分）" in card.labels
    await user.click("立即抢")
    assert user.last_answer() == "抢到了！券码已发给您"
    voucher = user.last
    assert voucher.photo[:8] == b"\x89PNG\r\n\x1a\n" and "券码：<code>" in voucher.text
    assert "剩余：<b>4</b>/5" in card.text and "待领取" in card.text
    # A double click on the old card button (same slot) neither claims nor charges again.
    await user.press(ClaimItem(item_id, 1).pack(), card)
    claims = await _claims(bot.db, item_id)
    assert len(claims) == 1 and claims[0].status == ClaimStatus.ACTIVE
    with bot.db.reading() as s:
        assert points.balance_of(s, member.id) == 40
    # My welfare lists it; give it back: points and stock return.
    await user.send("/welfare")
    await user.click("我的福利")
    assert claims[0].voucher_code in user.last.text
    await user.click("🎫 电影票")
    await user.click("放弃此福利")
    assert "10 积分会立即退回" in user.last.text
    await user.click("确认放弃")
    assert "退回 10 积分" in user.last.text
    with bot.db.reading() as s:
        assert points.balance_of(s, member.id) == 50
        assert (s.get(WelfareItem, item_id)).stock == 5
        assert points.ledger_sum(s, member.id) == 50


async def test_late_presses_are_answered_from_a_read(bot, monkeypatch):
    item_id = await open_item(bot.db, stock=1)
    await rich_member(bot.db, 9002)
    await rich_member(bot.db, 9003)
    first, late = bot.user(9002), bot.user(9003)
    await first.send("/welfare")
    await first.click("电影票")
    await late.send("/welfare")
    await late.click("电影票")
    await first.click("立即抢")
    writes = 0
    real_write = bot.db.write

    def counting_write(*args, **kwargs):
        nonlocal writes
        writes += 1
        return real_write(*args, **kwargs)

    monkeypatch.setattr(bot.db, "write", counting_write)
    await late.click("立即抢")
    assert "手慢了一步，这份福利已经被领完啦" in late.last_answer()
    assert writes == 0
    assert len(await _claims(bot.db, item_id)) == 1


async def test_not_enough_points_shows_balance_and_cost(bot):
    await open_item(bot.db, cost=80)
    await rich_member(bot.db, 9004, balance=30)
    user = bot.user(9004)
    await user.send("/welfare")
    await user.click("电影票")
    await user.click("立即抢")
    assert "30" in user.last_answer() and "80" in user.last_answer()


async def test_other_units_items_are_invisible_and_forged_presses_refused(bot):
    item_id = await open_item(bot.db, units=("i802",))
    await rich_member(bot.db, 9005, unit="i801")
    user = bot.user(9005)
    await user.send("/welfare")
    assert "电影票" not in user.last.text
    await user.press(ClaimItem(item_id, 1).pack())
    assert user.last_answer()
    assert await _claims(bot.db, item_id) == []
    # Someone else's voucher, admin buttons, nonsense ids.
    other_item = await open_item(bot.db)
    await rich_member(bot.db, 9006)
    owner = bot.user(9006)
    await owner.send("/welfare")
    await owner.click("电影票")
    await owner.click("立即抢")
    claim = (await _claims(bot.db, other_item))[0]
    for data in (
        ShowVoucher(claim.id).pack(),
        CancelClaim(claim.id).pack(),
        PublishItem(other_item).pack(),
        CloseItem(other_item).pack(),
        Redeem(claim.voucher_code).pack(),
        ShowItem(99999).pack(),
    ):
        await user.press(data)
        assert user.last_answer(), data
    assert (await _claims(bot.db, other_item))[0].status == ClaimStatus.ACTIVE


async def test_redeem_by_command_and_deep_link(bot):
    await open_item(bot.db)
    await rich_member(bot.db, 9007)
    await make_member(bot.db, 9008, "i801", name="王干事", role=Role.CADRE)
    await make_member(bot.db, 9009, "i805", role=Role.CADRE)
    user = bot.user(9007)
    await user.send("/welfare")
    await user.click("电影票")
    await user.click("立即抢")
    code = (await _claims(bot.db, (await _item_ids(bot))[0]))[0].voucher_code
    stranger = bot.user(9009)
    await stranger.send(f"/redeem {code}")
    assert "没有进行此操作的权限" in stranger.last.text
    member = bot.user(9007)
    await member.send(f"/redeem {code}")
    assert "没有进行此操作的权限" in member.last.text
    cadre = bot.user(9008)
    await cadre.send(f"/start r_{code}")
    assert "核销" in cadre.last.text and "待领取" in cadre.last.text
    await cadre.click("确认核销")
    assert "已核销" in cadre.last.text
    await cadre.send(f"/redeem {code.lower()}")
    assert "已领取" in cadre.last.text and "确认核销" not in cadre.last.labels
    await cadre.press(Redeem(code).pack())
    assert "王干事" in cadre.last_answer()
    await cadre.send("/redeem NOPE0000")
    assert "NOPE0000" in cadre.last.text
    await cadre.send("/redeem")
    assert "用法" in cadre.last.text


async def _item_ids(bot) -> list[int]:
    with bot.db.reading() as s:
        return list(s.exec(select(WelfareItem.id).order_by(WelfareItem.id)))


async def test_lottery_apply_and_withdraw(bot):
    item_id = await open_item(bot.db, "lottery", stock=2, cost=5)
    member = await rich_member(bot.db, 9010)
    user = bot.user(9010)
    await user.send("/welfare")
    await user.click("电影票")
    assert "抽签种子哈希" in user.last.text
    await user.click("报名抽签")
    assert user.last_answer() == "报名成功，等待抽签"
    assert "已报名" in user.last.text and "撤回报名" in user.last.labels
    await user.click("撤回报名")
    assert "退回 5 积分" in user.last_answer()
    with bot.db.reading() as s:
        assert points.balance_of(s, member.id) == 50
    assert [c.status for c in await _claims(bot.db, item_id)] == [ClaimStatus.CANCELLED]


async def test_upcoming_item_remind_me(bot):
    item_id = await open_item(bot.db)
    with bot.db.writing() as s:
        s.exec(update(WelfareItem).where(col(WelfareItem.id) == item_id).values(opens_at=NOW + timedelta(hours=2)))
    await rich_member(bot.db, 9011)
    user = bot.user(9011)
    await user.send("/welfare")
    assert "开始" in user.last.text
    await user.click("电影票")
    assert "立即抢" not in " ".join(user.last.labels)
    await user.click("开始时提醒我")
    assert user.last_answer() == "好的，开始时提醒您"
    assert "开始时会提醒您" in user.last.text
    await user.press(ClaimItem(item_id, 1).pack())
    assert "开始" in user.last_answer()


async def test_cadre_creates_an_item_step_by_step_surviving_a_restart(bot):
    await make_member(bot.db, 9012, "i801", role=Role.CADRE)
    cadre = bot.user(9012)
    await cadre.send("/admin")
    await cadre.click("福利管理")
    await cadre.click("新建福利")
    assert cadre.last.text.startswith("第 1/")
    await cadre.send("抢福利")
    assert "请用下面的按钮" in cadre.last.text
    await cadre.click("抢福利")
    assert cadre.last.text.startswith("第 2/12 步")  # a first-come item asks 12 questions
    await cadre.send("电影票一张")
    # Back: the title question again, the earlier answer forgotten.
    await cadre.click("返回")
    assert cadre.last.text.startswith("第 2/12 步") and "福利名称" in cadre.last.text
    await cadre.send("电影票两张")
    await cadre.click("跳过")
    await cadre.send("工会办公室 301")
    await cadre.click("跳过")  # no photo
    await cadre.send("abc")
    assert "0 到" in cadre.last.text
    await cadre.send("10")
    # The bot restarts here: a new Application on the same database continues the same form.
    app2 = build_application(bot.config, request=bot.api, db=bot.db, scheduler=False, clock=bot.clock)
    await app2.initialize()
    cadre = ChatClient(app2, bot.api, 9012, "User9012", "zh")
    await cadre.send("20")
    await cadre.send("2")
    local = bot.clock.now().astimezone(bot.config.timezone)
    opens = (local + timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    closes_early = (local + timedelta(hours=20)).strftime("%Y-%m-%d %H:%M")
    closes = (local + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    await cadre.send("tomorrow noon")
    assert "时间格式不对" in cadre.last.text
    await cadre.send("2020-01-01 12:00")
    assert "已经过去" in cadre.last.text
    await cadre.send(opens)
    await cadre.send(closes_early)
    assert "晚于开始时间" in cadre.last.text
    await cadre.send(closes)
    await cadre.click("跳过")
    assert "哪些会员可以领取" in cadre.last.text
    assert "全部单位" not in cadre.last.labels  # a unit cadre offers items to their own unit only
    assert cadre.last.text.startswith("第 12/12 步")
    await cadre.click("八〇一所工会")
    assert "☑️ 八〇一所工会" in cadre.last.labels
    await cadre.click("选好了")
    assert "草稿「电影票两张」已保存" in " ".join(m.text for m in cadre.messages[-2:])
    await cadre.click("发布")
    assert cadre.last_answer() == "已发布"
    await app2.shutdown()
    with bot.db.reading() as s:
        item = (s.exec(select(WelfareItem))).one()
        assert (item.title, item.mode, item.cost, item.stock, item.per_member_limit, item.status) == (
            "电影票两张",
            "first_come",
            10,
            20,
            2,
            "published",
        )
        assert item.owner_unit == "i801"
    # Members of the unit see it as upcoming; others do not see it.
    await rich_member(bot.db, 9013, "i801")
    await rich_member(bot.db, 9014, "i802")
    insider, outsider = bot.user(9013), bot.user(9014)
    await insider.send("/welfare")
    await outsider.send("/welfare")
    assert "电影票两张" in insider.last.text and "电影票两张" not in outsider.last.text


async def test_cadre_edits_before_opening_and_closes_early(bot):
    await make_member(bot.db, ADMIN_ID, "hq")
    item_id = await open_item(bot.db)
    with bot.db.writing() as s:
        s.exec(update(WelfareItem).where(col(WelfareItem.id) == item_id).values(opens_at=NOW + timedelta(hours=2)))
    admin = bot.user(ADMIN_ID)
    await admin.send("/admin")
    await admin.click("福利管理")
    await admin.click("电影票")
    await admin.click("修改")
    await admin.click("名称")
    await admin.send("电影票（周末场）")
    assert "已保存" in admin.messages[-2].text
    await admin.click("提前结束")
    assert admin.last_answer() == "已结束"
    with bot.db.reading() as s:
        item = s.get(WelfareItem, item_id)
        assert (item.title, item.status) == ("电影票（周末场）", "cancelled")
    # A plain member cannot reach the admin list at all.
    await make_member(bot.db, 9015, "i801")
    plain = bot.user(9015)
    await plain.send("/help")
    await plain.press(AdminList().pack())
    assert "没有进行此操作的权限" in plain.last_answer()


async def test_claim_storm_through_the_application(bot):
    """2,000 presses from 1,500 members (some twice) on stock 100, limit 1: exactly 100 claims."""
    item_id = await open_item(bot.db, stock=100, cost=5)
    people = []
    with bot.db.writing() as s:
        for i in range(1500):
            member = Member(
                telegram_id=20000 + i, unit_code="i801", employee_no=f"S{i}", name=f"会员{i}", status="verified"
            )
            s.add(member)
            people.append(member)
        s.flush()
        day = local_date(bot.config.timezone)
        for member in people:
            points.award(s, member.id, GIFT, f"storm:{member.id}", day, amount=20)
    message = await _card_message(bot, 20000, item_id)
    presses = [20000 + i for i in range(1500)] + [20000 + random.Random(7).randrange(1500) for _ in range(500)]
    random.Random(8).shuffle(presses)
    semaphore = asyncio.Semaphore(bot.config.concurrent_updates)

    async def press(telegram_id: int) -> None:
        async with semaphore:
            await ChatClient(bot.app, bot.api, telegram_id).press(ClaimItem(item_id, 1).pack(), message)

    await asyncio.gather(*(press(t) for t in presses))
    claims = await _claims(bot.db, item_id)
    assert len(claims) == 100
    assert len({c.member_id for c in claims}) == 100
    with bot.db.reading() as s:
        assert (s.get(WelfareItem, item_id)).stock == 0
        balances = dict((s.exec(select(Member.id, Member.balance).where(Member.telegram_id >= 20000))).all())
        sums = dict(
            (
                s.exec(
                    select(points.LedgerEntry.member_id, func.sum(points.LedgerEntry.delta)).group_by(
                        points.LedgerEntry.member_id
                    )
                )
            ).all()
        )
    assert all(balances[m] == sums[m] for m in balances)
    assert sorted(balances.values()).count(15) == 100


async def _card_message(bot, telegram_id: int, item_id: int):
    user = bot.user(telegram_id)
    await user.send("/welfare")
    await user.click("电影票")
    return user.last


async def test_item_photo_on_the_card_and_as_a_form_answer(bot):
    item_id = await open_item(bot.db, photo_file_id="AgACphoto1")
    await rich_member(bot.db, 9020)
    user = bot.user(9020)
    await user.send("/welfare")
    await user.click("电影票")
    card = user.last
    assert card.photo == "AgACphoto1" and "电影票" in card.text
    await user.click("立即抢")
    # The photo card is updated in place (caption), and the voucher comes as its own photo.
    assert "剩余：<b>4</b>/5" in card.text and card.edits == 1
    assert user.last.photo[:4] == b"\x89PNG"
    # A photo sent outside a form gets the hint; inside the item form it is the photo answer.
    await user.send_photo("AgACstray")
    assert "发送 /menu 打开首页" in user.last.text
    await make_member(bot.db, 9021, "i801", role=Role.CADRE)
    cadre = bot.user(9021)
    await cadre.send("/admin")
    await cadre.click("福利管理")
    await cadre.click("新建福利")
    await cadre.click("普惠")
    await cadre.send("年货礼包")
    await cadre.click("跳过")
    await cadre.click("跳过")
    await cadre.send("没有图片")
    assert "请发送一张图片" in cadre.last.text
    await cadre.send_photo("AgACgift")
    assert "需要多少积分" in cadre.last.text
    with bot.db.reading() as s:
        flow = s.get(FlowState, (9021, "welfare"))
    assert flow.data["photo"] == "AgACgift" and item_id


async def test_an_item_made_in_chat_can_open_now_for_several_units(bot):
    await make_member(bot.db, ADMIN_ID, "hq")
    admin = bot.user(ADMIN_ID)
    await admin.send("/admin")
    await admin.click("福利管理")
    await admin.click("新建福利")
    await admin.click("普惠")
    await admin.send("新年挂历")
    for _ in range(3):  # description, pick-up, photo
        await admin.click("跳过")
    await admin.send("0")
    await admin.click("跳过")  # no cap
    await admin.click("发布后立即开始")
    closes = (NOW + timedelta(days=3)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    await admin.send(closes)
    await admin.click("跳过")  # no redeem-by
    await admin.click("八〇一所工会")
    await admin.click("八〇二所工会")
    await admin.click("八〇二所工会")  # untick
    await admin.click("八〇五所工会")
    await admin.click("选好了")
    await admin.click("发布")
    with bot.db.reading() as s:
        item = s.exec(select(WelfareItem)).one()
        units = set(s.exec(select(WelfareItemUnit.unit_code).where(WelfareItemUnit.item_id == item.id)))
    assert item.opens_at == NOW and units == {"i801", "i805"}
    for telegram_id, unit, sees in ((9031, "i801", True), (9032, "i805", True), (9033, "i802", False)):
        await rich_member(bot.db, telegram_id, unit)
        member = bot.user(telegram_id)
        await member.send("/welfare")
        assert ("新年挂历" in member.last.text) is sees


async def test_a_cadre_cannot_redeem_their_own_voucher(bot):
    item_id = await open_item(bot.db)
    cadre_member = await make_member(bot.db, 9101, "i801", role=Role.CADRE)
    with bot.db.writing() as s:
        points.award(s, cadre_member.id, GIFT, "seed:9101", local_date(SHANGHAI), amount=50)
        code = welfare.claim(s, cadre_member, item_id, NOW, SHANGHAI).claim.voucher_code
    cadre = bot.user(9101)
    for attempt in range(2):
        await cadre.send(f"/redeem {code}")
        await cadre.click("确认核销")
        assert cadre.last_answer() == "这是您自己的券，不能由您本人核销，请其他干部为您办理。", attempt
    # A forged press of the Redeem button is refused the same way.
    await cadre.press(Redeem(code).pack())
    assert cadre.last_answer() == "这是您自己的券，不能由您本人核销，请其他干部为您办理。"
    assert [c.status for c in await _claims(bot.db, item_id)] == [ClaimStatus.ACTIVE]
    await make_member(bot.db, 9102, "i801", role=Role.CADRE)
    colleague = bot.user(9102)
    await colleague.send(f"/redeem {code}")
    await colleague.click("确认核销")
    assert colleague.last.text == f"✅ 已核销：电影票 · 成员9101 · <code>{code}</code>"


async def _many_items(bot, count: int) -> list[int]:
    """`count` free open items, titled 福利01, 福利02, ... (newest last)."""
    return [await open_item(bot.db, cost=0, title=f"福利{n:02d}") for n in range(1, count + 1)]


async def test_the_catalog_my_welfare_and_the_cadres_list_are_paged(bot):
    page = welfare.CATALOG_SIZE
    item_ids = await _many_items(bot, page + 1)
    member = await make_member(bot.db, 9111, "i801")
    with bot.db.writing() as s:
        for item_id in item_ids:
            welfare.claim(s, member, item_id, NOW, SHANGHAI)
    newest_first = [f"福利{n:02d}" for n in range(page + 1, 0, -1)]
    user = bot.user(9111)
    await user.send("/welfare")
    assert user.last.labels == [*newest_first[:page], "下一页 ➡️", "📋 我的福利", "🏠 首页"]
    await user.click("下一页")
    assert user.last.labels == [newest_first[page], "⬅️ 上一页", "📋 我的福利", "🏠 首页"]
    assert "福利01" in user.last.text and "福利02" not in user.last.text
    await user.click("我的福利")
    assert user.last.labels == [*(f"🎫 {t}" for t in newest_first[:page]), "下一页 ➡️", "↩️ 返回"]
    assert user.last.text.count("待领取") == page
    await user.click("下一页")
    assert user.last.labels == ["🎫 福利01", "⬅️ 上一页", "↩️ 返回"]
    await make_member(bot.db, ADMIN_ID, "hq")
    admin = bot.user(ADMIN_ID)
    await admin.send("/admin")
    await admin.click("福利管理")
    assert admin.last.labels == [*newest_first[:page], "下一页 ➡️", "➕ 新建福利"]
    await admin.click("下一页")
    assert admin.last.labels == ["福利01", "⬅️ 上一页", "➕ 新建福利"]
    # An old catalog button made before pages existed ("wf:list") still opens the first page.
    await user.press(Catalog().pack())
    assert user.last.labels[0] == newest_first[0]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("²", id="superscript-two"),
        pytest.param("٣", id="arabic-indic-three"),
        pytest.param("３", id="full-width-three"),
        pytest.param("9" * 5000, id="5000-digits"),
    ],
)
async def test_a_number_in_the_item_form_is_ascii_digits(bot, answer):
    await make_member(bot.db, ADMIN_ID, "hq")
    admin = bot.user(ADMIN_ID)
    await admin.send("/admin")
    await admin.click("福利管理")
    await admin.click("新建福利")
    await admin.click("普惠")
    await admin.send("新年挂历")
    for _ in range(3):  # description, pick-up, photo
        await admin.click("跳过")
    await admin.send(answer)
    assert admin.last.text == "请输入 0 到 1000000 之间的整数。"
    await admin.send("0")
    assert "跳过" in admin.last.labels  # on to the next question


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("0001-01-01 00:00", id="year-1"),
        pytest.param("0001-01-01 07:59", id="year-1-before-utc"),
        pytest.param("9999-12-31 23:59", id="year-9999"),
        pytest.param("２０２７-01-01 12:00", id="full-width-digits"),
    ],
)
async def test_a_time_in_the_item_form_has_ascii_digits_and_a_sane_year(bot, typed):
    await make_member(bot.db, ADMIN_ID, "hq")
    admin = bot.user(ADMIN_ID)
    await admin.send("/admin")
    await admin.click("福利管理")
    await admin.click("新建福利")
    await admin.click("普惠")
    await admin.send("新年挂历")
    for _ in range(3):  # description, pick-up, photo
        await admin.click("跳过")
    await admin.send("0")
    await admin.click("跳过")  # no cap
    await admin.send(typed)
    assert admin.last.text == "时间格式不对，请按 <code>2026-12-01 12:00</code> 的格式输入。"
