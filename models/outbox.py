"""The durable outbox: every message to many people is a row here first, sent later by scheduled/outbox.py.

Rows carry already-rendered texts. The sender claims due rows (pending -> sending), sends them and marks
each one right after Telegram confirms it. A crash leaves the rows it was sending in `sending`;
recover_in_flight puts them back, which is where at-least-once duplicates come from (at most one batch).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, Text, delete, func, null, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from models.clock import utcnow


class Status(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"


# Short codes for last_error (never Telegram's description or the message text).
RECOVERED = "in_flight_lost"
# enqueue_many sends this many rows per INSERT statement.
INSERT_CHUNK = 500
# The sender serves higher lanes first: a voucher or a personal notice does not wait behind a broadcast.
PRIORITY_BULK = 0
PRIORITY_PERSONAL = 10


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'blocked')", name="ck_outbox_status_known"),
        CheckConstraint("attempts >= 0", name="ck_outbox_attempts_nonneg"),
        # The sender's query: due pending rows, highest lane first, then oldest first.
        Index("ix_outbox_due", "status", "priority", "not_before", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger)
    text: str = Field(sa_type=Text)
    reply_markup: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    photo: str | None = Field(default=None, max_length=500)
    kind: str = Field(max_length=60, index=True)
    dedupe_key: str | None = Field(default=None, max_length=120, unique=True)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    status: str = Field(default=Status.PENDING, max_length=10)
    priority: int = PRIORITY_BULK
    attempts: int = 0
    not_before: datetime = Field(default_factory=utcnow)
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    telegram_message_id: int | None = Field(default=None, sa_type=BigInteger)
    # A copy of a stored message (a broadcast): copyMessage from this chat and message instead of `text`.
    copy_from_chat_id: int | None = Field(default=None, sa_type=BigInteger)
    copy_message_id: int | None = Field(default=None, sa_type=BigInteger)
    # Pin the message once delivered (a broadcast's post in a club group); a refused pin does not undo the send.
    pin: bool = False
    last_error: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow)


def _dialect(session: Session) -> str:
    return (session.connection()).dialect.name


@dataclass(frozen=True)
class Notice:
    """One message for enqueue_many: already rendered in its recipient's language."""

    chat_id: int
    text: str
    dedupe_key: str | None = None
    member_id: int | None = None
    keyboard: dict[str, Any] | None = None
    photo: str | None = None
    copy_from_chat_id: int | None = None
    copy_message_id: int | None = None
    pin: bool = False


def enqueue(
    session: Session,
    chat_id: int,
    text: str,
    *,
    kind: str,
    keyboard: dict[str, Any] | None = None,
    photo: str | None = None,
    dedupe_key: str | None = None,
    member_id: int | None = None,
    not_before: datetime | None = None,
    priority: int = PRIORITY_BULK,
) -> bool:
    """Queue one message; False when a row with this dedupe key already exists (the caller's transaction lives on)."""
    notice = Notice(chat_id, text, dedupe_key, member_id, keyboard, photo)
    return enqueue_many(session, [notice], kind=kind, not_before=not_before, priority=priority) == 1


def enqueue_many(
    session: Session,
    notices: Iterable[Notice],
    *,
    kind: str,
    not_before: datetime | None = None,
    priority: int = PRIORITY_BULK,
) -> int:
    """Queue many messages of one kind (a broadcast's audience) in a few statements; returns how many were new."""
    now = utcnow()
    rows = [
        {
            "chat_id": notice.chat_id,
            "text": notice.text,
            "reply_markup": notice.keyboard,
            "photo": notice.photo,
            "copy_from_chat_id": notice.copy_from_chat_id,
            "copy_message_id": notice.copy_message_id,
            "pin": notice.pin,
            "kind": kind,
            "dedupe_key": notice.dedupe_key,
            "member_id": notice.member_id,
            "status": Status.PENDING.value,
            "priority": priority,
            "attempts": 0,
            "not_before": not_before or now,
            "created_at": now,
        }
        for notice in notices
    ]
    # INSERT .. ON CONFLICT DO NOTHING: a duplicate is not an error, so the caller's transaction is not aborted.
    dialect = _dialect(session)
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(OutboxMessage.__table__)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OutboxMessage.__table__.c.id)
    )
    added = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        result = session.exec(statement, params=rows[start : start + INSERT_CHUNK])
        added += len(result.all())
    return added


def claim_batch(session: Session, limit: int, now: datetime | None = None) -> list[OutboxMessage]:
    """Mark up to `limit` due pending rows as sending and return them, highest lane first, then oldest first.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so two replicas never claim the same row. SQLite: the single
    writer (BEGIN IMMEDIATE) already serialises claims.
    """
    now = now or utcnow()
    due = (
        select(OutboxMessage.id)
        .where(col(OutboxMessage.status) == Status.PENDING, col(OutboxMessage.not_before) <= now)
        .order_by(col(OutboxMessage.priority).desc(), col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(due.scalar_subquery()))
        .values(status=Status.SENDING, claimed_at=now)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    rows = list((session.exec(statement)).scalars().all())
    return sorted(rows, key=lambda row: (-row.priority, row.id or 0))


def _owned(row_id: int, claimed_at: datetime | None) -> list[Any]:
    """Only the claim that is still current may settle a row (a recovered and re-claimed row is someone else's)."""
    conditions = [col(OutboxMessage.id) == row_id, col(OutboxMessage.status) == Status.SENDING]
    if claimed_at is not None:
        conditions.append(col(OutboxMessage.claimed_at) == claimed_at)
    return conditions


def mark_sent(session: Session, row_id: int, message_id: int | None, now: datetime | None = None) -> bool:
    """Telegram confirmed delivery: the row is sent, whoever holds the claim (the truth beats the bookkeeping)."""
    result = session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == row_id, col(OutboxMessage.status) != Status.SENT)
        .values(
            status=Status.SENT,
            sent_at=now or utcnow(),
            telegram_message_id=message_id,
            attempts=OutboxMessage.attempts + 1,
            last_error=None,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _settle(session: Session, row_id: int, claimed_at: datetime | None, values: dict[str, Any]) -> bool:
    result = session.exec(
        update(OutboxMessage)
        .where(*_owned(row_id, claimed_at))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def mark_failed(session: Session, row_id: int, code: str, claimed_at: datetime | None = None) -> bool:
    """Telegram refused the message for good (bad chat, bad text, too many attempts)."""
    values = {"status": Status.FAILED, "last_error": code[:40], "attempts": OutboxMessage.attempts + 1}
    return _settle(session, row_id, claimed_at, values)


def mark_blocked(session: Session, row_id: int, code: str, claimed_at: datetime | None = None) -> bool:
    """The recipient blocked the bot, left or was deactivated: nobody will read this one."""
    values = {"status": Status.BLOCKED, "last_error": code[:40], "attempts": OutboxMessage.attempts + 1}
    return _settle(session, row_id, claimed_at, values)


def release(
    session: Session,
    row_id: int,
    not_before: datetime,
    *,
    code: str | None = None,
    count_attempt: bool = False,
    claimed_at: datetime | None = None,
    chat_id: int | None = None,
) -> bool:
    """Back to pending until not_before (flood pause, busy chat, transient error; a new chat id after a migration)."""
    values: dict[str, Any] = {"status": Status.PENDING, "not_before": not_before, "claimed_at": None}
    if code is not None:
        values["last_error"] = code[:40]
    if count_attempt:
        values["attempts"] = OutboxMessage.attempts + 1
    if chat_id is not None:
        values["chat_id"] = chat_id
    return _settle(session, row_id, claimed_at, values)


def recover_in_flight(session: Session, older_than: datetime) -> int:
    """Rows claimed before `older_than` and never settled (their sender died) go back to pending; returns how many."""
    result = session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.status) == Status.SENDING, col(OutboxMessage.claimed_at) < older_than)
        .values(status=Status.PENDING, claimed_at=None, last_error=RECOVERED)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def next_due(session: Session) -> datetime | None:
    """When the earliest pending row may be sent, or None when nothing is pending."""
    statement = select(func.min(OutboxMessage.not_before)).where(col(OutboxMessage.status) == Status.PENDING)
    return (session.exec(statement)).one()


def progress(session: Session, kind: str | None = None) -> dict[str, int]:
    """How many rows of one kind (or of every kind) are in each status; every status is present."""
    statement = select(OutboxMessage.status, func.count()).group_by(col(OutboxMessage.status))
    if kind is not None:
        statement = statement.where(col(OutboxMessage.kind) == kind)
    counts = {status.value: 0 for status in Status}
    for status, count in session.exec(statement):
        counts[status] = count
    return counts


def forget_recipient(session: Session, member_id: int, telegram_id: int | None) -> int:
    """An account was deleted: its messages not sent yet are deleted, sent ones keep no text, chat or photo.

    Rows are theirs by member_id or by chat_id (personal notices carry only the chat). Returns how many changed.
    """
    theirs = col(OutboxMessage.member_id) == member_id
    if telegram_id is not None:
        theirs = theirs | (col(OutboxMessage.chat_id) == telegram_id)
    deleted = session.exec(delete(OutboxMessage).where(theirs, col(OutboxMessage.status) != Status.SENT)).rowcount
    blanked = session.exec(
        update(OutboxMessage)
        .where(theirs, col(OutboxMessage.status) == Status.SENT)
        .values(text="", chat_id=0, reply_markup=null(), photo=None, copy_from_chat_id=None, copy_message_id=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    return deleted + blanked
