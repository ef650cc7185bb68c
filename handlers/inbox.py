"""Receiving updates durably: a polling loop and a webhook that store every update before Telegram forgets it.

PTB's own Updater confirms fetched updates with the next getUpdates offset (and its webhook answers 200) before
they are handled: a kill -9 loses everything fetched but not handled. Here, each fetched batch is stored in the
inbox table (models/inbox.py) in one write first; only then does the next offset confirm it, and only then does
the webhook answer 200. Updates go to PTB's update_queue as usual. On start, stored updates that were never
marked processed are handled first. Write handlers mark their update in the same savepoint as their effects
(handlers/base.py); every other update is marked in batches just after it is handled (DoneMarker).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import warnings
from collections.abc import Sequence
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

import tornado.web
from sqlmodel import Session
from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ContextTypes, TypeHandler
from telegram.warnings import PTBUserWarning
from tornado.httpserver import HTTPServer

from models import activity, inbox
from models.clock import Clock

log = logging.getLogger(__name__)

# Long-polling timeout of one getUpdates call (seconds).
POLL_TIMEOUT = 30
# getUpdates waits up to POLL_TIMEOUT on Telegram's side; the HTTP read may take this much longer (seconds).
READ_TIMEOUT_MARGIN = 10
# Pause after an empty answer (seconds).
EMPTY_POLL_PAUSE_SECONDS = 0.05
# After a network error the poller waits this long, doubling up to the cap (seconds).
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
# Stored updates handled again after a restart, per read.
REPLAY_CHUNK = 500
# Handled updates are marked in one write at most this often (seconds), or as soon as this many wait.
MARK_INTERVAL_SECONDS = 0.5
MARK_BATCH = 500
# Handled updates are kept this long before they are pruned (they hold message texts and names).
KEEP_PROCESSED = timedelta(hours=1)
PRUNE_EVERY_SECONDS = 600.0
# After every other handler: runs for every update, whatever handled it (or nothing did).
DONE_GROUP = 1_000


class DoneMarker:
    """Marks handled updates processed, in batches (a restart re-handles at most the last unflushed few)."""

    def __init__(self, app: Application, clock: Clock) -> None:
        self.app, self.clock = app, clock
        self.done: list[int] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_prune = -PRUNE_EVERY_SECONDS

    def install(self) -> None:
        """Register the catch-all handler that reports every handled update."""
        self.app.add_handler(TypeHandler(Update, self._handled), group=DONE_GROUP)

    async def _handled(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        self.done.append(update.update_id)
        if len(self.done) >= MARK_BATCH:
            self._wake.set()

    def start(self) -> None:
        """Flush in the background until stopped."""
        self._task = asyncio.create_task(self._run(), name="inbox-marker")

    async def stop(self) -> None:
        """Flush what is left and end the task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Mark every update reported so far, and write the activity noted since the last flush, in one write."""
        services = self.app.bot_data["services"]
        done, self.done = self.done, []
        notes = services.activity.take()
        if not done and not notes:
            return
        try:
            await services.db.write(_bookkeeping, done, notes, self.clock.now())
        except Exception:
            self.done[:0] = done
            services.activity.give_back(notes)
            raise

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), MARK_INTERVAL_SECONDS)
            self._wake.clear()
            try:
                await self.flush()
                if loop.time() - self._last_prune >= PRUNE_EVERY_SECONDS:
                    self._last_prune = loop.time()
                    db = self.app.bot_data["services"].db
                    pruned = await db.write(inbox.prune, self.clock.now() - KEEP_PROCESSED)
                    if pruned:
                        log.info("inbox: pruned %d handled updates", pruned)
            except Exception as exc:  # the database may be down for a moment; the ids are retried
                log.warning("inbox: could not mark handled updates (%s)", type(exc).__name__)


def _bookkeeping(session: Session, done: list[int], notes: list[activity.Note], now: datetime) -> None:
    """What every handled update leaves behind, batched: its inbox mark and its member's activity of the day."""
    if done:
        inbox.mark_processed(session, done, now)
    activity.record(session, notes)


async def replay_unprocessed(app: Application) -> int:
    """Put stored updates that were never handled (the process died) into the queue; returns how many."""
    db = app.bot_data["services"].db
    replayed, after = 0, -1
    while rows := await db.read(inbox.unprocessed, after, REPLAY_CHUNK):
        for update_id, payload in rows:
            await app.update_queue.put(Update.de_json(json.loads(payload), app.bot))
            replayed, after = replayed + 1, update_id
    if replayed:
        log.warning("inbox: handling %d updates received before the last stop but never handled", replayed)
    return replayed


async def store_updates(app: Application, updates: list[tuple[int, str]]) -> None:
    """Keep fetched updates in the inbox (one group-committed write)."""
    services = app.bot_data["services"]
    await services.db.write(inbox.store, updates, services.clock.now())


class InboxPoller:
    """Long polling that confirms an update (by the next offset) only after it is stored."""

    def __init__(self, app: Application, allowed_updates: list[str] | None = None) -> None:
        self.app = app
        self.allowed_updates = allowed_updates if allowed_updates is not None else Update.ALL_TYPES
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Poll in the background."""
        # getUpdates is called through do_api_request on purpose (the raw JSON is what the inbox keeps).
        warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="inbox-poller")

    async def until(self, stopping: asyncio.Event) -> None:
        """Return when asked to stop, or raise what ended polling (a rejected token)."""
        waiter = asyncio.create_task(stopping.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done() and not self._task.cancelled() and self._task.exception() is not None:
            raise self._task.exception()

    async def stop(self) -> None:
        """End polling (a getUpdates in progress is abandoned; what it fetched was not confirmed)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        bot, db = self.app.bot, self.app.bot_data["services"].db
        await bot.delete_webhook()
        last = await db.read(inbox.last_update_id)
        offset = last + 1 if last is not None else None
        delay = RETRY_BASE_SECONDS
        while not self._stopping:
            try:
                # The raw answer (a list of dicts): its JSON is what the inbox keeps; re-serialising parsed Update
                # objects with to_json() cost more than a millisecond per update (bench/updates.py profile).
                raw = await bot.do_api_request(
                    "getUpdates",
                    api_kwargs={"offset": offset, "timeout": POLL_TIMEOUT, "allowed_updates": self.allowed_updates},
                    read_timeout=POLL_TIMEOUT + READ_TIMEOUT_MARGIN,
                )
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
                continue
            except InvalidToken:
                log.error("Telegram rejected the bot token; polling stops")
                raise
            except Conflict:
                log.error("another process polls with this token (or a webhook is set); retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            except (TimedOut, NetworkError) as exc:
                log.warning("getUpdates failed (%s); retrying in %.0fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            delay = RETRY_BASE_SECONDS
            updates = [Update.de_json(data, bot) for data in raw or []]
            if not updates:
                # Telegram answers an empty long poll after POLL_TIMEOUT; a server that answers at once must not
                # make this loop spin.
                await asyncio.sleep(EMPTY_POLL_PAUSE_SECONDS)
                continue
            await store_updates(self.app, [(data["update_id"], json.dumps(data, ensure_ascii=False)) for data in raw])
            offset = updates[-1].update_id + 1
            for update in updates:
                await self.app.update_queue.put(update)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class _WebhookHandler(tornado.web.RequestHandler):
    """POST from Telegram: check the secret, store the update, and only then answer 200."""

    def initialize(self, app: Application, secret: str | None) -> None:
        self.bot_app, self.secret = app, secret

    async def post(self) -> None:
        if self.secret and self.request.headers.get("X-Telegram-Bot-Api-Secret-Token") != self.secret:
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)
        try:
            body = self.request.body.decode()
            update = Update.de_json(json.loads(body), self.bot_app.bot)
        except (ValueError, TypeError, KeyError) as exc:
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST) from exc
        if update is None:
            return
        # A failed store answers 500: Telegram sends the update again later, so nothing is lost.
        await store_updates(self.bot_app, [(update.update_id, body)])
        await self.bot_app.update_queue.put(update)
        self.set_status(HTTPStatus.OK)

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, tornado.web.HTTPError):
            return
        log.error("webhook request failed: %s", typ.__name__ if typ else "error")


class InboxWebhook:
    """The webhook server (tornado, as PTB's), storing each update before answering 200."""

    def __init__(
        self, app: Application, listen: str, port: int, path: str, secret: str | None, extra: Sequence[Any] = ()
    ) -> None:
        # `extra`: more routes on the same server (the Insight Mini App, handlers/miniapp.py).
        routes = [(rf"/{path.strip('/')}/?", _WebhookHandler, {"app": app, "secret": secret}), *extra]
        self.server = HTTPServer(tornado.web.Application(routes))
        self.listen, self.port = listen, port

    def start(self) -> None:
        """Listen for Telegram's POSTs. SO_REUSEPORT: several bot processes may listen on the same port, and the
        kernel spreads Telegram's connections over them (scale-out on PostgreSQL, README "Running several")."""
        self.server.listen(self.port, address=self.listen, reuse_port=True)

    async def until(self, stopping: asyncio.Event) -> None:
        """Return when asked to stop."""
        await stopping.wait()

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        self.server.stop()
        await self.server.close_all_connections()
