"""The durable inbox: every update Telegram hands over is stored before it is confirmed, and marked once handled.

Telegram forgets an update once the next getUpdates offset confirms it (or once the webhook answers 200), so
an update fetched but not yet handled when the process dies would be lost. The poller (handlers/inbox.py)
stores each fetched batch here first; only then does the next offset confirm it. A write handler marks its
update processed in the same savepoint as its effects, so after a crash it never runs twice; other updates
(reads, answers from memory) are marked in batches right after they are handled, so a crash may run a few of
them again, which only re-sends a view. On start, stored updates not marked yet are handled first. Processed
rows are pruned after a short time: they hold personal data (message texts, names).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Text, delete, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

# Rows deleted per statement when a user is forgotten (keeps the IN list well under any parameter limit).
FORGET_CHUNK = 500


class InboxUpdate(SQLModel, table=True):
    __tablename__ = "inbox"

    update_id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    # The update as Telegram sent it (JSON text).
    payload: str = Field(sa_type=Text)
    received_at: datetime
    processed_at: datetime | None = Field(default=None, index=True)


def store(session: Session, updates: Iterable[tuple[int, str]], now: datetime) -> int:
    """Keep fetched updates (update_id, JSON); one already stored is left as it is. Returns how many were new."""
    rows = [{"update_id": update_id, "payload": payload, "received_at": now} for update_id, payload in updates]
    if not rows:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = InboxUpdate.__table__
    statement = insert(table).on_conflict_do_nothing(index_elements=["update_id"]).returning(table.c.update_id)
    return len(session.exec(statement, params=rows).all())


def mark_processed(session: Session, update_ids: Iterable[int], now: datetime) -> int:
    """Mark updates handled (ids that are not stored, e.g. in tests, are ignored). Returns how many changed."""
    ids = list(update_ids)
    if not ids:
        return 0
    statement = (
        update(InboxUpdate)
        .where(col(InboxUpdate.update_id).in_(ids), col(InboxUpdate.processed_at).is_(None))
        .values(processed_at=now)
        .execution_options(synchronize_session=False)
    )
    return session.exec(statement).rowcount


def unprocessed(session: Session, after: int, limit: int) -> list[tuple[int, str]]:
    """Stored updates not handled yet with an id above `after`, oldest first: what a restart handles first."""
    statement = (
        select(InboxUpdate.update_id, InboxUpdate.payload)
        .where(col(InboxUpdate.processed_at).is_(None), col(InboxUpdate.update_id) > after)
        .order_by(col(InboxUpdate.update_id))
        .limit(limit)
    )
    return [(update_id, payload) for update_id, payload in session.exec(statement)]


def last_update_id(session: Session) -> int | None:
    """The newest update id ever stored (the next getUpdates offset is one more)."""
    return session.exec(select(func.max(InboxUpdate.update_id))).one()


def prune(session: Session, processed_before: datetime) -> int:
    """Forget updates handled before this moment, keeping the newest row so the offset survives. Returns how many."""
    newest = last_update_id(session)
    statement = delete(InboxUpdate).where(
        col(InboxUpdate.processed_at).is_not(None), col(InboxUpdate.processed_at) < processed_before
    )
    if newest is not None:
        statement = statement.where(col(InboxUpdate.update_id) != newest)
    return session.exec(statement).rowcount


def _sent_by(node: Any, telegram_id: int) -> bool:
    """Whether a stored update holds this user anywhere: as sender, chat, forwarded or replied-to author."""
    if isinstance(node, dict):
        if node.get("id") == telegram_id and ("first_name" in node or "type" in node):
            return True
        if telegram_id in (node.get("user_chat_id"), node.get("user_id")):
            return True
        return any(_sent_by(value, telegram_id) for value in node.values())
    if isinstance(node, list):
        return any(_sent_by(value, telegram_id) for value in node)
    return False


def forget_user(session: Session, telegram_id: int) -> int:
    """An account was deleted: stored updates that hold this user (their messages, presses, name) go.

    The table is small (handled rows are pruned within the hour), so the JSON is read here rather than in SQL.
    The newest row keeps its id, which the next getUpdates offset is counted from, but not its content.
    Returns how many rows held them.
    """
    newest = last_update_id(session)
    theirs = [
        update_id
        for update_id, payload in session.exec(select(InboxUpdate.update_id, InboxUpdate.payload))
        if _sent_by(json.loads(payload), telegram_id)
    ]
    gone = [update_id for update_id in theirs if update_id != newest]
    for start in range(0, len(gone), FORGET_CHUNK):
        session.exec(delete(InboxUpdate).where(col(InboxUpdate.update_id).in_(gone[start : start + FORGET_CHUNK])))
    if newest in theirs:
        session.exec(
            update(InboxUpdate)
            .where(col(InboxUpdate.update_id) == newest)
            .values(payload=json.dumps({"update_id": newest}))
            .execution_options(synchronize_session=False)
        )
    return len(theirs)
