"""The durable inbox: stored before confirmed, handled exactly once across a restart, webhook 200 after the store."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

from sqlmodel import select

from bot import build_application, on_startup
from handlers.inbox import InboxPoller, InboxWebhook, replay_unprocessed
from models import inbox, points
from models.inbox import InboxUpdate
from tests.conftest import ADMIN_ID, NOW, fresh_schema, make_member
from tests.harness import FakeBotAPI, settle

_update_ids = itertools.count(5_000)


def message_update(user_id: int, text: str, update_id: int | None = None) -> dict[str, Any]:
    """A private message as Telegram sends it."""
    user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "language_code": "zh"}
    message = {
        "message_id": next(_update_ids),
        "date": int(NOW.timestamp()),
        "chat": {"id": user_id, "type": "private", "first_name": f"User{user_id}"},
        "from": user,
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id or next(_update_ids), "message": message}


async def test_store_mark_replay_and_prune(db):
    with db.writing() as s:
        assert inbox.store(s, [(1, "{}"), (2, "{}"), (3, "{}")], NOW) == 3
        assert inbox.store(s, [(3, '{"again": true}'), (4, "{}")], NOW) == 1
    with db.writing() as s:
        assert inbox.mark_processed(s, [2, 99], NOW) == 1
        assert inbox.mark_processed(s, [2], NOW) == 0
    with db.reading() as s:
        assert inbox.unprocessed(s, -1, 10) == [(1, "{}"), (3, "{}"), (4, "{}")]
        assert inbox.unprocessed(s, 1, 1) == [(3, "{}")]
        assert inbox.last_update_id(s) == 4
    with db.writing() as s:
        inbox.mark_processed(s, [1, 3, 4], NOW)
        # Handled long enough ago: gone, except the newest row, which keeps the polling offset.
        assert inbox.prune(s, NOW + timedelta(hours=2)) == 3
    with db.reading() as s:
        assert [row.update_id for row in s.exec(select(InboxUpdate))] == [4]


async def test_a_write_marks_its_update_in_its_own_transaction_and_a_restart_handles_the_rest(bot):
    """Updates stored but not handled when the process died are handled after the restart, writes only once."""
    await make_member(bot.db, ADMIN_ID, "i801")
    member = await make_member(bot.db, 8801, "i801", employee_no="A8801")
    grant = message_update(ADMIN_ID, "/grant i801 A8801 20 读书节")
    look = message_update(8801, "/points")
    with bot.db.writing() as s:
        inbox.store(s, [(u["update_id"], json.dumps(u)) for u in (grant, look)], NOW)

    # "Restart": the stored updates go through the queue of the new process first.
    assert await replay_unprocessed(bot.app) == 2
    while not bot.app.update_queue.empty():
        await bot.app.process_update(await bot.app.update_queue.get())
    await settle(bot.app)
    with bot.db.reading() as s:
        assert points.balance_of(s, member.id) == 20
        rows = {row.update_id: row.processed_at for row in s.exec(select(InboxUpdate))}
    # The grant was marked with its effects; the read waits for the batched marker.
    assert rows[grant["update_id"]] is not None and rows[look["update_id"]] is None
    await bot.app.bot_data["inbox_marker"].flush()
    with bot.db.reading() as s:
        assert all(row.processed_at is not None for row in s.exec(select(InboxUpdate)))
    # Another restart handles nothing again: the grant is not paid twice.
    assert await replay_unprocessed(bot.app) == 0


class ScriptedUpdates(FakeBotAPI):
    """getUpdates answers from a script and records each offset; every call is noted in `events`."""

    def __init__(self, batches: list[list[dict[str, Any]]], events: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.batches, self.events = batches, events

    def _getUpdates(self, params: dict[str, Any]) -> list[Any]:
        self.events.append(("getUpdates", params.get("offset")))
        return self.batches.pop(0) if self.batches else []


async def test_the_poller_confirms_an_update_only_after_storing_it(config, monkeypatch):
    events: list[tuple[str, Any]] = []
    first, second = message_update(8811, "/help"), message_update(8811, "/menu")
    api = ScriptedUpdates([[first, second]], events)
    app = build_application(config, request=api, scheduler=False)
    db = app.bot_data["services"].db
    fresh_schema(db)
    await app.initialize()
    await on_startup(app)
    real_store = inbox.store

    def recording_store(session, updates, now):
        stored = list(updates)
        events.append(("stored", [uid for uid, _ in stored]))
        return real_store(session, stored, now)

    monkeypatch.setattr(inbox, "store", recording_store)
    poller = InboxPoller(app)
    poller.start()
    try:
        for _ in range(200):  # bounded wait for the poller's second getUpdates
            if len([e for e in events if e[0] == "getUpdates"]) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await poller.stop()
    ids = [first["update_id"], second["update_id"]]
    assert events[:3] == [("getUpdates", None), ("stored", ids), ("getUpdates", ids[-1] + 1)]
    assert [(await app.update_queue.get()).update_id for _ in ids] == ids
    with db.reading() as s:
        assert sorted(row.update_id for row in s.exec(select(InboxUpdate))) == ids
    # After a restart the offset continues from what was stored.
    events.clear()
    poller = InboxPoller(app)
    poller.start()
    for _ in range(200):
        if events:
            break
        await asyncio.sleep(0.01)
    await poller.stop()
    assert events[0] == ("getUpdates", ids[-1] + 1)
    await app.shutdown()
    await db.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, body: bytes, secret: str | None) -> int:
    """POST as Telegram does; returns the HTTP status."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    if secret is not None:
        request.add_header("X-Telegram-Bot-Api-Secret-Token", secret)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_the_webhook_answers_200_only_after_storing_the_update(bot, monkeypatch):
    port = _free_port()
    webhook = InboxWebhook(bot.app, "127.0.0.1", port, "/hook/abc", "s3cret")
    webhook.start()
    real_store, failures = inbox.store, [RuntimeError("database unavailable")]

    def store_or_fail(session, updates, now):
        if failures:
            raise failures.pop()
        return real_store(session, updates, now)

    monkeypatch.setattr(inbox, "store", store_or_fail)
    url = f"http://127.0.0.1:{port}/hook/abc"
    update = message_update(8821, "/help")
    body = json.dumps(update).encode()
    try:
        # The store fails: no 200 (Telegram will send the update again) and nothing to handle.
        assert await asyncio.to_thread(_post, url, body, "s3cret") == 500
        assert bot.app.update_queue.empty()
        # Telegram's retry: stored by the time the 200 arrives, then handed to the bot.
        assert await asyncio.to_thread(_post, url, body, "s3cret") == 200
        with bot.db.reading() as s:
            assert s.get(InboxUpdate, update["update_id"]) is not None
        assert (await bot.app.update_queue.get()).update_id == update["update_id"]
        # A wrong secret, a missing one and a body that is not an update are refused and store nothing.
        other = message_update(8821, "/menu")
        assert await asyncio.to_thread(_post, url, json.dumps(other).encode(), "wrong") == 403
        assert await asyncio.to_thread(_post, url, json.dumps(other).encode(), None) == 403
        assert await asyncio.to_thread(_post, url, b"{not json", "s3cret") == 400
        with bot.db.reading() as s:
            assert s.get(InboxUpdate, other["update_id"]) is None
        assert bot.app.update_queue.empty()
    finally:
        await webhook.stop()
