"""Replies leave the update's concurrency slot: sent in the background, in order per chat, newest edit wins.

PTB's AIORateLimiter holds every call that carries a chat_id (send, edit) to ~30/s overall, while
answerCallbackQuery is not throttled. So the wrapper answers a button press first, inside the update's
slot, and hands the rest to this sender: an update never waits for a throttled send, and a storm of presses
is answered at the speed of the database, not of Telegram's send limit. In a storm, card edits pile up
behind the limiter: an edit that a newer edit of the same message has replaced is skipped, and an edit that
waited longer than EDIT_STALE_SECONDS is dropped (the toast already told the user; the card is refreshed by
their next press). New messages are never dropped: a message a member must not lose goes through the
durable outbox, not through here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from telegram.ext import Application

if TYPE_CHECKING:
    from handlers.base import Outgoing

log = logging.getLogger(__name__)

# An edit of a card that waited longer than this behind the rate limiter is not worth sending any more.
EDIT_STALE_SECONDS = 10.0

Job = Callable[[], Awaitable[None]]
Deliver = Callable[[Application, "Outgoing"], Awaitable[object]]


class ReplySender:
    """Background delivery of the replies of handled updates (one instance per Application)."""

    def __init__(self, deliver: Deliver, edit_stale_seconds: float = EDIT_STALE_SECONDS) -> None:
        self.deliver = deliver
        self.edit_stale_seconds = edit_stale_seconds
        self._tails: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Outgoing.edit_key -> the sequence number of the newest edit submitted for that message.
        self._newest_edit: dict[tuple[int | str, ...], int] = {}
        self._seq = 0
        self.dropped_edits = 0

    def submit(self, app: Application, chat_id: int, items: Iterable[Outgoing], jobs: Iterable[Job] = ()) -> None:
        """Send these replies after those already queued for the same chats; then run the jobs (in chat_id's turn)."""
        by_chat: dict[int, list[tuple[Outgoing, int]]] = {chat_id: []}
        for item in items:
            self._seq += 1
            if item.edit_key is not None:
                self._newest_edit[item.edit_key] = self._seq
            by_chat.setdefault(item.chat_id, []).append((item, self._seq))
        now = time.monotonic()
        for chat, queued in by_chat.items():
            chat_jobs = list(jobs) if chat == chat_id else []
            if queued or chat_jobs:
                self._chain(chat, self._send_all(app, queued, chat_jobs, now))

    def _chain(self, chat_id: int, work: Awaitable[None]) -> None:
        previous = self._tails.get(chat_id)

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            await work

        task = asyncio.create_task(run())
        self._tails[chat_id] = task
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if self._tails.get(chat_id) is finished:
                del self._tails[chat_id]
            if not finished.cancelled() and finished.exception() is not None:
                log.error("a reply task failed: %s", type(finished.exception()).__name__)

        task.add_done_callback(done)

    async def _send_all(self, app: Application, queued: list[tuple[Outgoing, int]], jobs: list[Job], at: float) -> None:
        for item, seq in queued:
            if item.edit_key is not None and self._skip_edit(item, seq, at):
                continue
            await self.deliver(app, item)
        for job in jobs:
            await job()

    def _skip_edit(self, item: Outgoing, seq: int, submitted_at: float) -> bool:
        key = item.edit_key
        newest = self._newest_edit.get(key)
        if newest == seq:
            del self._newest_edit[key]
        elif newest is not None and newest > seq:
            self.dropped_edits += 1
            return True
        if time.monotonic() - submitted_at > self.edit_stale_seconds:
            self.dropped_edits += 1
            log.debug("dropping a card edit that waited too long behind the rate limiter")
            return True
        return False

    @property
    def pending(self) -> int:
        """Reply tasks not finished yet."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until every submitted reply is sent (tests, benchmarks and shutdown)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))
