"""The sold-out short-circuit: late presses answered from memory, forgotten when stock comes back."""

from __future__ import annotations

import asyncio

from bot import build_application, on_startup
from models.db import Database
from models.stock_cache import SoldOutCache
from models.welfare import WelfareItem
from tests.conftest import PG_URL, start_bot
from tests.harness import ChatClient, FakeBotAPI
from tests.test_welfare import open_item, rich_member

SOLD_OUT = "手慢了一步，这份福利已经被领完啦"


def test_the_cache_believes_sold_out_for_its_lifetime_only() -> None:
    now = [100.0]
    cache = SoldOutCache(ttl=2.0, monotonic=lambda: now[0])
    cache.mark(7)
    assert cache.sold_out(7) and not cache.sold_out(8)
    now[0] += 1.99
    assert cache.sold_out(7)
    now[0] += 0.02
    assert not cache.sold_out(7)
    cache.mark(7)
    cache.mark(9)
    cache.forget(7)
    assert not cache.sold_out(7) and cache.sold_out(9)
    cache.forget()
    assert not cache.sold_out(9)


class Counting:
    """Counts the database calls of one kind made through a Database."""

    def __init__(self, db: Database, kind: str) -> None:
        self.calls, self.real = 0, getattr(db, kind)

    async def __call__(self, *args, **kwargs):
        self.calls += 1
        return await self.real(*args, **kwargs)


async def test_a_press_on_an_item_seen_sold_out_does_no_database_work(bot, monkeypatch):
    await open_item(bot.db, stock=1)
    for telegram_id in (9101, 9102, 9103):
        await rich_member(bot.db, telegram_id)
    first, second, third = bot.user(9101), bot.user(9102), bot.user(9103)
    for user in (first, second, third):
        await user.send("/welfare")
        await user.click("电影票")
    await first.click("立即抢")
    await second.click("立即抢")  # read from the database: sold out, and now remembered
    assert SOLD_OUT in second.last_answer()
    reads, writes = Counting(bot.db, "read"), Counting(bot.db, "write")
    monkeypatch.delitem(bot.app.bot_data, "test_outbox")  # count the press's own database work only
    monkeypatch.setattr(bot.db, "read", reads)
    monkeypatch.setattr(bot.db, "write", writes)
    await third.click("立即抢")
    assert SOLD_OUT in third.last_answer()
    assert (reads.calls, writes.calls) == (0, 0)
    # The winner gives the voucher back: the stock returns and the next press is a real claim.
    monkeypatch.undo()
    await first.send("/welfare")
    await first.click("我的福利")
    await first.click("🎫 电影票")
    await first.click("放弃此福利")
    await first.click("确认放弃")
    await third.send("/welfare")
    await third.click("电影票")
    await third.click("立即抢")
    assert third.last_answer() == "抢到了！券码已发给您"


async def test_an_english_member_is_answered_from_memory_in_english(bot):
    await open_item(bot.db, stock=1)
    await rich_member(bot.db, 9111)
    await rich_member(bot.db, 9112)
    # Telegram says Chinese, the member chose English: the answer from memory follows the member's choice.
    winner, late = bot.user(9111), bot.user(9112, language_code="zh")
    await late.send("/lang en")
    for user in (winner, late):
        await user.send("/welfare")
        await user.click("电影票")
    await winner.click("立即抢")
    await late.click("Claim now")
    await late.click("Claim now")  # the second one is answered from memory
    assert bot.app.bot_data["services"].soldout.hits == 1
    assert late.last_answer().startswith("Just missed it — this item has all been claimed")


async def test_a_cancellation_in_another_process_ends_the_cached_sold_out_at_once(tmp_path):
    """PostgreSQL: LISTEN/NOTIFY tells every bot process when stock comes back (no waiting for the lifetime)."""
    from tests.conftest import make_config

    config = make_config(PG_URL, tmp_path)
    async for one in start_bot(config):
        item_id = await open_item(one.db, stock=1)
        await rich_member(one.db, 9121)
        await rich_member(one.db, 9122)
        other_db = Database(PG_URL)
        other = build_application(config, request=FakeBotAPI(), db=other_db, scheduler=False, clock=one.clock)
        await other.initialize()
        await on_startup(other)
        cache = other.bot_data["services"].soldout
        cache.ttl = 3600.0  # only the notification can end it within this test
        try:
            winner = ChatClient(one.app, one.api, 9121, "User9121", "zh")
            late = ChatClient(other, other_api(other), 9122, "User9122", "zh")
            for user in (winner, late):
                await user.send("/welfare")
                await user.click("电影票")
            await winner.click("立即抢")
            await late.click("立即抢")
            assert SOLD_OUT in late.last_answer() and cache.sold_out(item_id)
            await winner.send("/welfare")
            await winner.click("我的福利")
            await winner.click("🎫 电影票")
            await winner.click("放弃此福利")
            await winner.click("确认放弃")
            for _ in range(100):  # bounded wait for the notification thread, not a timing assertion
                if not cache.sold_out(item_id):
                    break
                await asyncio.sleep(0.1)
            assert not cache.sold_out(item_id)
            await late.send("/welfare")
            await late.click("电影票")
            await late.click("立即抢")
            assert late.last_answer() == "抢到了！券码已发给您"
            with one.db.reading() as s:
                assert s.get(WelfareItem, item_id).stock == 0
        finally:
            await other.shutdown()
            await other_db.dispose()


def other_api(app) -> FakeBotAPI:
    """The fake Bot API an Application was built with."""
    return app.bot._request[1]
