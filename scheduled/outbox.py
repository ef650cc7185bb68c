"""The outbox sender: one long-running task that delivers the rows of models/outbox.py at Telegram's pace.

It claims rows in small batches (never more than batch_size claimed and unsettled at once), paces
every send itself (a global spacing plus one per chat: PTB's AIORateLimiter lets bursts through and has
no per-private-chat limit), and settles each row right after Telegram answers, so a crash re-sends at
most the rows in flight (one batch). RetryAfter pauses all sending, not only the chat that hit it.
Time comes from an injectable Clock and the send from an injectable function, so tests run on fake time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from sqlmodel import Session
from telegram import Bot, InlineKeyboardMarkup, InputFile
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application

from config import OutboxSettings
from models import members, outbox, vouchers
from models.clock import utcnow
from models.db import Database
from models.outbox import OutboxMessage

log = logging.getLogger(__name__)

# Without a wake() the sender looks for due rows this often (seconds).
POLL_SECONDS = 1.0
# Never spin: even when rows are due (but claimed by another replica) the loop waits this long (seconds).
MIN_IDLE_SECONDS = 0.05
# Transient errors back off exponentially from this, up to the cap (seconds).
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0
# A rejected token stops all sending this long before trying again (seconds).
INVALID_TOKEN_PAUSE_SECONDS = 60.0
# After an unexpected error in the loop itself (database down), wait this long (seconds).
LOOP_ERROR_PAUSE_SECONDS = 5.0
# On shutdown the current batch gets this long to finish before the task is cancelled (seconds).
STOP_TIMEOUT_SECONDS = 15.0
# The per-chat pacing table is pruned when it grows past this many chats.
CHAT_TABLE_PRUNE_SIZE = 10_000
# Telegram descriptions of a 400 that are worth their own code in last_error.
BAD_REQUEST_CODES = (
    ("not enough rights", "no_rights"),
    ("chat not found", "chat_not_found"),
    ("user not found", "chat_not_found"),
    ("can't parse", "bad_markup"),
    ("too long", "too_long"),
    ("wrong file identifier", "bad_photo"),
    ("failed to get http url content", "bad_photo"),
    ("wrong type of the web page content", "bad_photo"),
)

SendFn = Callable[[OutboxMessage], Awaitable[int | None]]


class Clock(Protocol):
    """Wall time for the database, monotonic time for pacing, and a way to wait."""

    def now(self) -> datetime:
        """Aware UTC now."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    async def sleep(self, seconds: float) -> None:
        """Wait this long."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Aware UTC now."""
        return utcnow()

    def monotonic(self) -> float:
        """time.monotonic()."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep."""
        await asyncio.sleep(seconds)


CHAT_GAP_MARGIN = 1.01


class Pacer:
    """When the next send may start: evenly spaced overall, and a minimum gap per chat (groups and private)."""

    def __init__(self, settings: OutboxSettings) -> None:
        self.rate = settings.global_per_second
        # Per-chat gaps carry a 1% margin: at exactly 60/20 s, float rounding can fit a 21st message into a minute.
        self.group_gap = CHAT_GAP_MARGIN * 60.0 / settings.group_per_minute
        self.private_gap = CHAT_GAP_MARGIN * 1.0 / settings.private_per_second
        # Global slots sit on a grid anchor + k / rate (no drift from repeated additions); the grid restarts
        # after an idle spell, so a late loop never catches up with a burst.
        self._anchor = -math.inf
        self._count = 0
        self._chat_next: dict[int, float] = {}

    def _next_slot(self) -> float:
        return self._anchor + self._count / self.rate

    def next_global(self, now: float) -> float:
        """The earliest moment the next send may start, as far as the global rate goes."""
        if now > self._next_slot():
            self._anchor, self._count = now, 0
        return self._next_slot()

    def chat_ready_at(self, chat_id: int) -> float:
        """The earliest moment this chat may get another message."""
        return self._chat_next.get(chat_id, -math.inf)

    def take(self, chat_id: int, at: float) -> None:
        """Record a send starting now: it uses one global slot and this chat's gap."""
        self._count += 1
        self._chat_next[chat_id] = at + (self.group_gap if chat_id < 0 else self.private_gap)
        if len(self._chat_next) > CHAT_TABLE_PRUNE_SIZE:
            self._chat_next = {chat: ready for chat, ready in self._chat_next.items() if ready > at}


def retry_after_seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is an int or a timedelta depending on PTB_TIMEDELTA."""
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def bad_request_code(exc: BadRequest) -> str:
    """A short code for a 400 (Telegram's description may quote the message, so it is never stored)."""
    description = str(exc).lower()
    return next((code for fragment, code in BAD_REQUEST_CODES if fragment in description), "bad_request")


async def pin_quietly(bot: Bot, chat_id: int, message_id: int) -> None:
    """Pin a delivered message; a refusal (no "pin messages" right, the bot removed) is logged, never raised: the
    message itself was delivered and must be settled as sent."""
    try:
        await bot.pin_chat_message(chat_id, message_id, disable_notification=True)
    except BadRequest as exc:
        log.warning("could not pin a delivered message (%s)", bad_request_code(exc))
    except TelegramError as exc:
        log.warning("could not pin a delivered message (%s)", type(exc).__name__)


def bot_sender(bot: Bot) -> SendFn:
    """The real send: text or photo (a voucher QR is drawn here), HTML, keyboard; returns the message id."""

    async def send(row: OutboxMessage) -> int | None:
        markup = InlineKeyboardMarkup.de_json(row.reply_markup, bot) if row.reply_markup else None
        if row.copy_message_id is not None and row.copy_from_chat_id is not None:
            # A broadcast: the cadre's own message, copied as written (no parse mode: its entities travel with it).
            copied = await bot.copy_message(
                row.chat_id, row.copy_from_chat_id, row.copy_message_id, reply_markup=markup
            )
            if row.pin:
                await pin_quietly(bot, row.chat_id, copied.message_id)
            return copied.message_id
        if row.photo:
            photo: str | InputFile = row.photo
            code = vouchers.code_of_qr_ref(row.photo)
            if code is not None:
                png = await asyncio.to_thread(vouchers.voucher_qr_png, code, bot.username)
                photo = InputFile(png, filename="voucher.png")
            message = await bot.send_photo(
                row.chat_id, photo, caption=row.text or None, reply_markup=markup, parse_mode=ParseMode.HTML
            )
        else:
            message = await bot.send_message(row.chat_id, row.text, reply_markup=markup, parse_mode=ParseMode.HTML)
        return message.message_id

    return send


class OutboxSender:
    """Claims due outbox rows in batches and delivers them at Telegram's limits until stopped."""

    def __init__(
        self,
        db: Database,
        send: SendFn,
        settings: OutboxSettings,
        *,
        clock: Clock | None = None,
        may_send: Callable[[], bool] | None = None,
    ) -> None:
        self.db = db
        # Only the leader among the bot's processes sends (models/leader.py); the others wait their turn.
        self.may_send = may_send or (lambda: True)
        self.send = send
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.pacer = Pacer(settings)
        self.outcomes: Counter[str] = Counter()
        self._paused_until = -math.inf
        self._next_recovery = -math.inf
        self._next_due: datetime | None = None
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    # --- control -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run the sender in the background (the bot's start-up calls this)."""
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="outbox-sender")
        return self._task

    def wake(self) -> None:
        """New rows were committed: look for them now instead of at the next poll."""
        self._wake.set()

    @property
    def running(self) -> bool:
        """True while the background task started by start() is alive."""
        return self._task is not None and not self._task.done()

    def request_stop(self) -> None:
        """Ask the loop to end after the sends already started; unsent claimed rows go back to pending."""
        self._stopping = True
        self._wake.set()

    async def stop(self, grace: float = STOP_TIMEOUT_SECONDS) -> None:
        """Finish the batch in flight, put unsent claimed rows back, and end the task."""
        self.request_stop()
        task, self._task = self._task, None
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            # Rows still claimed go back to pending through recover_in_flight after the in-flight timeout.
            log.warning("outbox sender did not stop in %ss; cancelling it", grace)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def paused(self) -> bool:
        """True while a flood-control pause is running."""
        return self.clock.monotonic() < self._paused_until

    def pause(self, seconds: float) -> None:
        """Stop every send for this long (Telegram's RetryAfter applies to the bot, not to one chat)."""
        self._paused_until = max(self._paused_until, self.clock.monotonic() + seconds)

    # --- the loop ------------------------------------------------------------------------------

    async def run(self, *, until_empty: bool = False) -> None:
        """Send until stopped (or, with until_empty, until no row is pending or in flight)."""
        try:
            while not self._stopping:
                try:
                    if await self.step():
                        continue
                    if until_empty and not self._in_flight and await self._empty():
                        return
                    await self._idle(self._idle_delay())
                except Exception:  # the sender must outlive a database hiccup
                    log.exception("outbox sender loop failed; retrying in %ss", LOOP_ERROR_PAUSE_SECONDS)
                    await self._idle(LOOP_ERROR_PAUSE_SECONDS)
        finally:
            # Sends already started are seen through, so their rows are settled, not left in flight.
            if self._in_flight:
                await asyncio.wait(set(self._in_flight))

    async def step(self) -> int:
        """Wait out any pause, recover lost rows, claim rows for the free places and start them; returns how many."""
        while self.paused and not self._stopping:
            await self._idle(self._paused_until - self.clock.monotonic())
        if self._stopping or not self.may_send():
            return 0
        # Claimed but unsettled rows never exceed batch_size: that is the crash's duplicate bound. New rows are
        # claimed once half the places are free, so the next rows start while the last answers are on their way.
        batch = self.settings.batch_size
        if len(self._in_flight) > batch - max(1, batch // 2):
            await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            return 0 if self._stopping else 1
        await self._recover_if_due()
        now = self.clock.now()
        self._next_due = await self.db.read(outbox.next_due)
        if self._next_due is None or self._next_due > now:
            return 0
        rows = await self.db.write(outbox.claim_batch, batch - len(self._in_flight), now)
        return await self._start_sends(rows) if rows else 0

    async def _start_sends(self, rows: list[OutboxMessage]) -> int:
        """Start each row's send at its paced moment; rows that must wait go back to pending with a time."""
        started = 0
        later: list[tuple[OutboxMessage, float]] = []
        for index, row in enumerate(rows):
            if self._stopping or self.paused:
                later.extend((rest, self._paused_until - self.clock.monotonic()) for rest in rows[index:])
                break
            now = self.clock.monotonic()
            ready = self.pacer.chat_ready_at(row.chat_id)
            if ready > now:
                later.append((row, ready - now))
                continue
            slot = self.pacer.next_global(now)
            if slot > now:
                await self.clock.sleep(slot - now)
            if self._stopping or self.paused:
                later.extend((rest, self._paused_until - self.clock.monotonic()) for rest in rows[index:])
                break
            self.pacer.take(row.chat_id, self.clock.monotonic())
            task = asyncio.create_task(self._deliver_logged(row))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            started += 1
        if later:
            await self._release_all(later)
            if not started:
                # Everything claimed must wait for its chat: idle until the first of them, do not spin.
                self._next_due = self._after(min(delay for _row, delay in later))
        return started

    async def _deliver_logged(self, row: OutboxMessage) -> None:
        """Deliver one row; a row that cannot be settled (database down) is logged and recovered later."""
        try:
            await self._deliver(row)
        except Exception as exc:
            log.error("could not settle outbox row %s: %s", row.id, type(exc).__name__)

    def _after(self, seconds: float) -> datetime:
        """Now plus a delay, rounded up to the microsecond the database keeps (never earlier than asked)."""
        return self.clock.now() + timedelta(microseconds=math.ceil(max(seconds, 0.0) * 1_000_000))

    async def _deliver(self, row: OutboxMessage) -> None:
        """Send one row and settle it according to Telegram's answer."""
        assert row.id is not None
        if self.paused:
            # Started just before a flood pause began: it waits with the others instead of going into the pause.
            await self._release(row, self._paused_until - self.clock.monotonic(), "paused")
            return
        try:
            message_id = await self.send(row)
        except RetryAfter as exc:
            wait = retry_after_seconds(exc)
            log.warning("flood control: pausing the outbox for %ss", wait)
            self.pause(wait)
            await self._release(row, wait, "retry_after")
        except ChatMigrated as exc:
            await self._release(row, 0, "chat_migrated", chat_id=exc.new_chat_id)
        except Forbidden:
            await self._blocked(row)
        except InvalidToken:
            log.error("Telegram rejected the bot token; pausing the outbox for %ss", INVALID_TOKEN_PAUSE_SECONDS)
            self.pause(INVALID_TOKEN_PAUSE_SECONDS)
            await self._release(row, INVALID_TOKEN_PAUSE_SECONDS, "invalid_token")
        except BadRequest as exc:  # before NetworkError: BadRequest is one of its subclasses
            code = bad_request_code(exc)
            log.warning("outbox row %s refused by Telegram (%s)", row.id, code)
            await self._settle("failed", outbox.mark_failed, row.id, code, row.claimed_at)
        except TimedOut:
            await self._transient(row, "timed_out")
        except TelegramError:
            await self._transient(row, "network")
        except Exception as exc:  # a bug in one row must not take the others down
            log.warning("outbox row %s: unexpected %s", row.id, type(exc).__name__)
            await self._transient(row, "error")
        else:
            await self.db.write(outbox.mark_sent, row.id, message_id, self.clock.now())
            self.outcomes["sent"] += 1

    async def _settle(self, outcome: str, operation: Callable[..., bool], *args: object) -> None:
        await self.db.write(operation, *args)
        self.outcomes[outcome] += 1

    async def _release(self, row: OutboxMessage, delay: float, code: str, chat_id: int | None = None) -> None:
        assert row.id is not None
        await self.db.write(
            outbox.release, row.id, self._after(delay), code=code, claimed_at=row.claimed_at, chat_id=chat_id
        )
        self.outcomes[code] += 1

    async def _release_all(self, rows: list[tuple[OutboxMessage, float]]) -> None:
        due = [(row.id, self._after(delay), row.claimed_at) for row, delay in rows]

        def release_all(session: Session) -> None:
            for row_id, not_before, claimed_at in due:
                outbox.release(session, row_id, not_before, claimed_at=claimed_at)

        await self.db.write(release_all)
        self.outcomes["postponed"] += len(rows)

    async def _blocked(self, row: OutboxMessage) -> None:
        assert row.id is not None

        def blocked(session: Session) -> None:
            outbox.mark_blocked(session, row.id, "forbidden", row.claimed_at)
            if row.chat_id > 0:  # a private chat's id is the user's id
                members.mark_blocked(session, row.chat_id)

        await self.db.write(blocked)
        self.outcomes["blocked"] += 1

    async def _transient(self, row: OutboxMessage, code: str) -> None:
        """Try again later with exponential backoff, or give up after max_attempts."""
        assert row.id is not None
        if row.attempts + 1 >= self.settings.max_attempts:
            log.warning("outbox row %s failed after %s attempts (%s)", row.id, row.attempts + 1, code)
            await self._settle("failed", outbox.mark_failed, row.id, code, row.claimed_at)
            return
        delay = min(BACKOFF_BASE_SECONDS * 2**row.attempts, BACKOFF_MAX_SECONDS)
        await self.db.write(
            outbox.release, row.id, self._after(delay), code=code, count_attempt=True, claimed_at=row.claimed_at
        )
        self.outcomes["retried"] += 1

    async def _recover_if_due(self) -> None:
        """Put rows that a dead sender left in `sending` back to pending (at start and every half timeout)."""
        mono = self.clock.monotonic()
        if mono < self._next_recovery:
            return
        timeout = self.settings.in_flight_timeout_seconds
        self._next_recovery = mono + timeout / 2
        recovered = await self.db.write(outbox.recover_in_flight, self.clock.now() - timedelta(seconds=timeout))
        if recovered:
            log.warning("outbox: %s rows left in flight by a stopped sender will be sent again", recovered)
            self.outcomes["recovered"] += recovered

    async def _empty(self) -> bool:
        counts = await self.db.read(outbox.progress)
        return counts[outbox.Status.PENDING] == 0 and counts[outbox.Status.SENDING] == 0

    def _idle_delay(self) -> float:
        if self._next_due is None or not self.may_send():
            return POLL_SECONDS
        until_due = (self._next_due - self.clock.now()).total_seconds()
        return min(POLL_SECONDS, max(until_due, MIN_IDLE_SECONDS))

    async def _idle(self, seconds: float) -> None:
        """Wait this long, or until wake() or stop()."""
        if self._wake.is_set():
            self._wake.clear()
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(max(seconds, 0.0)))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (sleeper, waker):
                future.cancel()
            self._wake.clear()


def own_bot(app_bot: Bot) -> SendFn:
    """The send of the outbox's own Bot: the application's token, server and HTTP connection pool, but none of its
    AIORateLimiter. That limiter ends a RetryAfter pause early and would add its own 30/s and 20/min throttles on
    top of the Pacer; the sender paces itself and pauses everything for the full retry_after."""
    own = Bot(
        app_bot.token,
        base_url=lambda _token: app_bot.base_url,
        base_file_url=lambda _token: app_bot.base_file_url,
        request=app_bot.request,
        get_updates_request=app_bot.request,
    )
    send = bot_sender(own)
    ready = asyncio.Lock()

    async def send_own(row: OutboxMessage) -> int | None:
        async with ready:
            # getMe once (the voucher QR needs the bot's username); the request pool is the application's.
            await own.initialize()
        return await send(row)

    return send_own


def start(
    app: Application, db: Database, settings: OutboxSettings, may_send: Callable[[], bool] | None = None
) -> OutboxSender:
    """Build the sender on its own Bot (own_bot) and start it (bot.py's start-up)."""
    sender = OutboxSender(db, own_bot(app.bot), settings, may_send=may_send)
    sender.start()
    return sender
