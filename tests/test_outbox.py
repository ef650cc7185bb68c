"""The durable outbox: enqueue/dedupe, row transitions, and the sender's pacing and error handling on fake time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from telegram import Bot

from bot import build_application, on_startup, on_stop
from config import ConfigError, OutboxSettings, parse_config
from models import outbox
from models.clock import utcnow
from models.db import Database
from models.members import Member
from models.outbox import OutboxMessage, Status
from scheduled.outbox import OutboxSender, bot_sender
from tests.conftest import PG_URL, TOKEN, fresh_schema, make_config
from tests.harness import FakeBotAPI, FakeClock, TelegramFailure

FAST = OutboxSettings(global_per_second=25, group_per_minute=20, private_per_second=1, batch_size=20, max_attempts=3)
KEYBOARD = {"inline_keyboard": [[{"text": "Open", "url": "https://t.me/gongshe_test_bot?start=welfare_42"}]]}


class PhotoAPI(FakeBotAPI):
    """The fake Bot API plus sendPhoto (the outbox sends photos with captions)."""

    KNOWN = FakeBotAPI.KNOWN | {"sendPhoto"}

    def _sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        params = {**params, "text": params.get("caption", "")}
        return self._sendMessage(params)


class Recorder:
    """Wraps the send function: records every send with the fake time it started, and every error after it."""

    def __init__(self, send: Callable[[OutboxMessage], Awaitable[int | None]], clock: FakeClock) -> None:
        self.send, self.clock = send, clock
        self.events: list[tuple[str, int, float]] = []

    async def __call__(self, row: OutboxMessage) -> int | None:
        """Record, then send."""
        self.events.append(("send", row.chat_id, self.clock.monotonic()))
        try:
            return await self.send(row)
        except Exception as exc:
            self.events.append((type(exc).__name__, row.chat_id, self.clock.monotonic()))
            raise

    def sends(self, chat_filter: Callable[[int], bool] = lambda _chat: True) -> list[float]:
        """Start times of the sends to the chats that pass the filter."""
        return [t for kind, chat, t in self.events if kind == "send" and chat_filter(chat)]


async def fake_bot(api: FakeBotAPI) -> Bot:
    """A plain PTB Bot on the fake API (no AIORateLimiter: the outbox does its own pacing)."""
    bot = Bot(TOKEN, request=api)
    await bot.initialize()
    return bot


async def make_sender(
    db: Database, api: FakeBotAPI | None = None, settings: OutboxSettings = FAST
) -> tuple[OutboxSender, FakeBotAPI, Recorder]:
    """A sender on fake time whose sends go through a real PTB Bot to the fake API."""
    api = api or PhotoAPI()
    clock = FakeClock()
    recorder = Recorder(bot_sender(await fake_bot(api)), clock)
    return OutboxSender(db, recorder, settings, clock=clock), api, recorder


async def fill(db: Database, chats: list[int], kind: str = "test", **kw: Any) -> None:
    """One message per entry of chats (a chat may appear more than once)."""
    with db.writing() as s:
        for i, chat in enumerate(chats):
            outbox.enqueue(s, chat, f"<b>notice</b> {i}", kind=kind, **kw)


async def rows(db: Database) -> list[OutboxMessage]:
    """Every outbox row, by id."""
    with db.reading() as s:
        return list(s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


async def add_member(db: Database, telegram_id: int) -> int:
    """A verified member with this Telegram id; returns the member id."""
    with db.writing() as s:
        member = Member(telegram_id=telegram_id, unit_code="hq", status="verified", name="M")
        s.add(member)
        s.flush()
        assert member.id is not None
        return member.id


def max_in_window(times: list[float], width: float) -> int:
    """The most start times inside any half-open window [t, t + width)."""
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + width) for i, t in enumerate(times)), default=0)


# --- the table and its operations (both databases) ---------------------------------------------


async def test_enqueue_dedupe_leaves_the_callers_transaction_usable(db):
    member_id = await add_member(db, 501)
    with db.writing() as s:
        first = outbox.enqueue(
            s, 501, "a", kind="welfare_open:42", dedupe_key="open:42:member:1", member_id=member_id, keyboard=KEYBOARD
        )
        again = outbox.enqueue(s, 501, "a", kind="welfare_open:42", dedupe_key="open:42:member:1")
        # On PostgreSQL a failed INSERT would abort the transaction; this write must still work and commit.
        after = outbox.enqueue(s, 502, "b", kind="welfare_open:42", dedupe_key="open:42:member:2")
        unkeyed = [outbox.enqueue(s, 503, "c", kind="broadcast:7") for _ in range(2)]
    with db.writing() as s:
        later = outbox.enqueue(s, 501, "a", kind="welfare_open:42", dedupe_key="open:42:member:1")
    assert (first, again, after, unkeyed, later) == (True, False, True, [True, True], False)
    stored = await rows(db)
    assert [(r.chat_id, r.dedupe_key, r.status) for r in stored] == [
        (501, "open:42:member:1", "pending"),
        (502, "open:42:member:2", "pending"),
        (503, None, "pending"),
        (503, None, "pending"),
    ]
    assert stored[0].reply_markup == KEYBOARD and stored[0].member_id == member_id
    assert stored[0].not_before.tzinfo is not None


async def test_enqueue_many_counts_only_new_rows(db):
    with db.writing() as s:
        first = outbox.enqueue_many(
            s, [outbox.Notice(chat, f"n{chat}", f"b:1:{chat}") for chat in range(1, 1201)], kind="broadcast:1"
        )
        # A re-run of the same broadcast (overlapping audience) adds only the new people.
        second = outbox.enqueue_many(
            s, [outbox.Notice(chat, f"n{chat}", f"b:1:{chat}") for chat in range(1190, 1211)], kind="broadcast:1"
        )
        assert outbox.enqueue_many(s, [], kind="broadcast:1") == 0
    assert (first, second) == (1200, 10)
    stored = await rows(db)
    assert len(stored) == 1210 and len({r.chat_id for r in stored}) == 1210
    assert stored[-1].text == "n1210" and stored[-1].kind == "broadcast:1"


async def test_claim_takes_due_pending_rows_oldest_first(db):
    with db.writing() as s:
        for chat in (1, 2, 3):
            outbox.enqueue(s, chat, "x", kind="k")
        outbox.enqueue(s, 4, "x", kind="k", not_before=utcnow() + timedelta(hours=1))
        outbox.enqueue(s, 5, "x", kind="k")
    now = utcnow()
    with db.writing() as s:
        first = outbox.claim_batch(s, 2, now)
    with db.writing() as s:
        second = outbox.claim_batch(s, 10, now)
    with db.writing() as s:
        none_left = outbox.claim_batch(s, 10, now)
        next_due = outbox.next_due(s)
    assert [r.chat_id for r in first] == [1, 2]
    assert [r.chat_id for r in second] == [3, 5]
    assert none_left == [] and now + timedelta(minutes=59) < next_due < now + timedelta(hours=1)
    assert all(r.status == Status.SENDING and r.claimed_at == now for r in first + second)
    with db.reading() as s:
        assert outbox.progress(s, "k") == {"pending": 1, "sending": 4, "sent": 0, "failed": 0, "blocked": 0}


async def test_transitions_and_stale_claims(db):
    await fill(db, [1, 2, 3, 4, 5], kind="broadcast:1")
    await fill(db, [6], kind="broadcast:2")
    now = utcnow()
    with db.writing() as s:
        claimed = outbox.claim_batch(s, 5, now)
    a, b, c, d, e = claimed
    with db.writing() as s:
        assert outbox.mark_sent(s, a.id, 77, now)
        assert outbox.mark_failed(s, b.id, "chat_not_found", b.claimed_at)
        assert outbox.mark_blocked(s, c.id, "forbidden", c.claimed_at)
        assert outbox.release(s, d.id, now + timedelta(seconds=30), code="retry_after", claimed_at=d.claimed_at)
        # A settled row cannot be settled again, and a claim token that is not current settles nothing.
        assert not outbox.mark_failed(s, a.id, "late", a.claimed_at)
        assert not outbox.release(s, e.id, now, claimed_at=now - timedelta(seconds=1))
    with db.writing() as s:
        # Nothing claimed long enough ago: nothing to recover yet; then e's sender is presumed dead.
        assert outbox.recover_in_flight(s, now - timedelta(seconds=60)) == 0
        assert outbox.recover_in_flight(s, now + timedelta(seconds=1)) == 1
    by_chat = {r.chat_id: r for r in await rows(db)}
    assert (by_chat[1].status, by_chat[1].telegram_message_id, by_chat[1].attempts) == ("sent", 77, 1)
    assert (by_chat[2].status, by_chat[2].last_error, by_chat[2].attempts) == ("failed", "chat_not_found", 1)
    assert (by_chat[3].status, by_chat[3].last_error) == ("blocked", "forbidden")
    assert (by_chat[4].status, by_chat[4].attempts, by_chat[4].claimed_at) == ("pending", 0, None)
    assert by_chat[4].not_before == now + timedelta(seconds=30)
    assert (by_chat[5].status, by_chat[5].last_error) == ("pending", outbox.RECOVERED)
    # Delivery confirmed after the row was recovered still counts: it is sent, not sent again.
    with db.writing() as s:
        assert outbox.mark_sent(s, e.id, 78, now)
        assert outbox.progress(s, "broadcast:1") == {
            "pending": 1,
            "sending": 0,
            "sent": 2,
            "failed": 1,
            "blocked": 1,
        }
        assert (outbox.progress(s))["pending"] == 2


async def test_status_is_checked_by_the_database(db):
    await fill(db, [1])
    with pytest.raises(IntegrityError, match=r"ck_outbox_status_known|CHECK constraint"), db.writing() as s:
        row = (s.exec(select(OutboxMessage))).one()
        row.status = "lost"
        s.flush()


# --- the sender on fake time ---------------------------------------------------------------------


async def test_sender_delivers_everything_once(db):
    sender, api, _ = await make_sender(db)
    chats = list(range(1001, 1031))
    await fill(db, chats)
    with db.writing() as s:
        outbox.enqueue(s, 2000, "with button", kind="test", keyboard=KEYBOARD)
        outbox.enqueue(s, 2001, "caption", kind="test", photo="AgACAgIAAxkBAAIB")
    await sender.run(until_empty=True)
    assert {chat: len(api.chats.get(chat, [])) for chat in [*chats, 2000, 2001]} == dict.fromkeys(
        [*chats, 2000, 2001], 1
    )
    assert api.chats[1001][0].text == "<b>notice</b> 0"
    assert api.calls_of("sendMessage")[0].params["parse_mode"] == "HTML"
    assert api.chats[2000][0].buttons == KEYBOARD["inline_keyboard"]
    photo_call = api.calls_of("sendPhoto")[0].params
    assert (photo_call["photo"], photo_call["caption"]) == ("AgACAgIAAxkBAAIB", "caption")
    stored = await rows(db)
    assert all(r.status == "sent" and r.telegram_message_id and r.sent_at for r in stored)
    assert sender.outcomes["sent"] == 32


async def test_blocked_chat_marks_row_and_member(db):
    member_id = await add_member(db, 3002)
    sender, api, _ = await make_sender(db)
    api.fail("sendMessage", TelegramFailure(403, "Forbidden: bot was blocked by the user"), chat_id=3002)
    api.fail("sendMessage", TelegramFailure(400, "Bad Request: chat not found"), chat_id=3003)
    api.fail("sendMessage", TelegramFailure(403, "Forbidden: bot was kicked from the group chat"), chat_id=-3004)
    await fill(db, [3001, 3002, 3003, -3004, 3005], member_id=None)
    await sender.run(until_empty=True)
    by_chat = {r.chat_id: r for r in await rows(db)}
    assert {chat: r.status for chat, r in by_chat.items()} == {
        3001: "sent",
        3002: "blocked",
        3003: "failed",
        -3004: "blocked",
        3005: "sent",
    }
    assert (by_chat[3003].last_error, by_chat[3002].last_error) == ("chat_not_found", "forbidden")
    with db.reading() as s:
        member = s.get(Member, member_id)
    assert member.blocked_bot is True
    # Each refused row was tried exactly once.
    assert len(api.calls_of("sendMessage")) == 5


async def test_retry_after_pauses_all_sending(db):
    sender, api, recorder = await make_sender(db)
    chats = list(range(4001, 4021))
    await fill(db, chats)
    api.fail("sendMessage", TelegramFailure(429, "Too Many Requests: retry after 7", 7), chat_id=4005)
    await sender.run(until_empty=True)
    errors = [(i, t) for i, (kind, _chat, t) in enumerate(recorder.events) if kind == "RetryAfter"]
    assert len(errors) == 1
    index, failed_at = errors[0]
    after = [t for kind, _chat, t in recorder.events[index + 1 :] if kind == "send"]
    # Sends that started after the 429 arrived: none inside the pause, to any chat; the work did go on.
    assert len(after) >= 2
    assert min(after) >= failed_at + 7
    assert {chat: len(api.chats.get(chat, [])) for chat in chats} == dict.fromkeys(chats, 1)
    assert sender.outcomes["retry_after"] == 1


async def test_transient_errors_are_retried_then_failed(db):
    sender, api, recorder = await make_sender(db)
    api.fail("sendMessage", TelegramFailure(502, "Bad Gateway"), chat_id=5001, times=2)
    api.fail("sendMessage", TelegramFailure(500, "Internal Server Error"), chat_id=5002, times=10)
    await fill(db, [5001, 5002, 5003])
    await sender.run(until_empty=True)
    by_chat = {r.chat_id: r for r in await rows(db)}
    assert (by_chat[5001].status, by_chat[5001].attempts) == ("sent", 3)
    assert (by_chat[5002].status, by_chat[5002].attempts, by_chat[5002].last_error) == ("failed", 3, "network")
    assert (by_chat[5003].status, by_chat[5003].attempts) == ("sent", 1)
    assert len(api.chats[5001]) == 1 and 5002 not in api.chats
    tries = recorder.sends(lambda chat: chat == 5002)
    # max_attempts tries, spaced by a growing backoff.
    assert len(tries) == FAST.max_attempts
    gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
    assert gaps[0] >= 2 - 1e-6 and gaps[1] >= 4 - 1e-6


async def test_pacing_global_group_and_private(db):
    sender, api, recorder = await make_sender(db)
    group = -1001234
    await fill(db, [group] * 45 + list(range(6001, 6101)) + [7000] * 4)
    await sender.run(until_empty=True)
    assert len(api.chats[group]) == 45 and len(api.chats[7000]) == 4
    assert all(len(api.chats[chat]) == 1 for chat in range(6001, 6101))
    group_sends = recorder.sends(lambda chat: chat == group)
    # ≤ 20 per minute in one group; and the 45 messages really did take more than two minutes.
    assert 15 <= max_in_window(group_sends, 60.0) <= 20
    assert group_sends[-1] - group_sends[0] >= 120
    # ≤ 25 per second overall (a hair under one second: slot times are floats), and it was busy enough to matter.
    assert 20 <= max_in_window(recorder.sends(), 1.0 - 1e-6) <= 25
    private = recorder.sends(lambda chat: chat == 7000)
    assert min(later - earlier for earlier, later in itertools.pairwise(private)) >= 1.0 - 1e-6


async def test_stop_puts_unsent_claimed_rows_back(db):
    sender, api, recorder = await make_sender(db, settings=OutboxSettings(batch_size=5, global_per_second=25))
    real_send = recorder.send

    async def send_then_stop(row: OutboxMessage) -> int | None:
        if row.chat_id == 8002:
            sender.request_stop()
        return await real_send(row)

    recorder.send = send_then_stop
    await fill(db, list(range(8001, 8011)))
    task = sender.start()
    await asyncio.wait_for(task, timeout=30)
    await sender.stop()
    by_chat = {r.chat_id: r for r in await rows(db)}
    # The two sends already started finish and are recorded; the rest of the batch is not left in flight.
    assert {chat for chat, r in by_chat.items() if r.status == "sent"} == {8001, 8002}
    assert {chat for chat, r in by_chat.items() if r.status == "pending"} == set(range(8003, 8011))
    assert all(r.claimed_at is None for r in by_chat.values() if r.status == "pending")
    assert set(api.chats) == {8001, 8002}


class StuckClock(FakeClock):
    """Real wall time, but sleeps that never end: only wake() can move the sender."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()

    def now(self) -> datetime:
        """The real time (rows enqueued now are due)."""
        return utcnow()

    async def sleep(self, seconds: float) -> None:
        """Never returns."""
        self.sleeping.set()
        await asyncio.Event().wait()


async def test_wake_sends_at_once(db):
    api = PhotoAPI()
    clock = StuckClock()
    sender = OutboxSender(db, bot_sender(await fake_bot(api)), FAST, clock=clock)
    sender.start()
    # The sender found nothing and sleeps for good; only wake() can make it look again.
    await asyncio.wait_for(clock.sleeping.wait(), timeout=10)
    await fill(db, [9001])
    sender.wake()
    for _ in range(200):
        if 9001 in api.chats:
            break
        await asyncio.sleep(0.01)
    await sender.stop(grace=5)
    assert len(api.chats.get(9001, [])) == 1


async def test_bot_starts_and_stops_the_sender(tmp_path: Path):
    config = make_config(f"sqlite:///{tmp_path / 'bot.db'}", tmp_path)
    db = Database(config.database_url)
    fresh_schema(db)
    api = FakeBotAPI()
    app = build_application(config, request=api, db=db, scheduler=True)
    await app.initialize()
    await on_startup(app)
    sender = app.bot_data["outbox"]
    assert isinstance(sender, OutboxSender)
    await fill(db, [9101])
    sender.wake()
    for _ in range(300):
        if 9101 in api.chats:
            break
        await asyncio.sleep(0.01)
    await on_stop(app)
    assert not sender.running and "outbox" not in app.bot_data
    await app.shutdown()
    await db.dispose()
    assert len(api.chats.get(9101, [])) == 1


# --- configuration ---------------------------------------------------------------------------------


def _raw_config(**outbox_values: Any) -> dict[str, Any]:
    import tomllib

    from config import DEFAULT_CONFIG

    raw = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["outbox"] = {**raw["outbox"], **outbox_values}
    return raw


def test_outbox_settings_come_from_config_toml():
    config = parse_config(_raw_config(global_per_second=12.5), {"DATABASE_URL": "sqlite:///x.db"})
    assert config.outbox.global_per_second == 12.5
    assert (config.outbox.group_per_minute, config.outbox.batch_size) == (20, 20)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("global_per_second", 31, "at most 30"),
        ("group_per_minute", 21, "at most 20"),
        ("private_per_second", 0, "positive"),
        ("batch_size", 0, "positive"),
        ("max_attempts", True, "must be"),
        ("in_flight_timeout_seconds", 5, "at least 30"),
        ("batch_size", "20", "must be int"),
    ],
)
def test_outbox_settings_are_validated(key: str, value: Any, problem: str):
    with pytest.raises(ConfigError, match=problem) as caught:
        parse_config(_raw_config(**{key: value}), {"DATABASE_URL": "sqlite:///x.db"})
    assert caught.value.key == f"outbox.{key}"


# --- two replicas on PostgreSQL --------------------------------------------------------------------


async def test_postgres_claims_skip_rows_locked_by_another_replica(pg_db):
    await fill(pg_db, list(range(1, 11)))
    now = utcnow()
    with pg_db.writing() as first:
        mine = outbox.claim_batch(first, 4, now)
        # The first transaction is still open (its rows locked): the second must skip them, not wait for them.
        with pg_db.writing() as second:
            second.exec(text("SET LOCAL lock_timeout = '10s'"))
            theirs = outbox.claim_batch(second, 4, now)
    assert [r.chat_id for r in mine] == [1, 2, 3, 4]
    assert [r.chat_id for r in theirs] == [5, 6, 7, 8]


async def test_postgres_two_senders_never_send_a_row_twice(pg_db):
    other_db = Database(PG_URL)
    api = PhotoAPI()
    settings = OutboxSettings(global_per_second=30, batch_size=5)
    one, _, rec_one = await make_sender(pg_db, api, settings)
    two, _, rec_two = await make_sender(other_db, api, settings)
    chats = list(range(10001, 10201))
    await fill(pg_db, chats)
    try:
        await asyncio.gather(one.run(until_empty=True), two.run(until_empty=True))
    finally:
        await other_db.dispose()
    assert {chat: len(api.chats.get(chat, [])) for chat in chats} == dict.fromkeys(chats, 1)
    assert len(api.calls_of("sendMessage")) == len(chats)
    # Both replicas did part of the work (the race was real).
    assert rec_one.sends() and rec_two.sends()
    sent_by_one = {chat for kind, chat, _ in rec_one.events if kind == "send"}
    sent_by_two = {chat for kind, chat, _ in rec_two.events if kind == "send"}
    assert not sent_by_one & sent_by_two
