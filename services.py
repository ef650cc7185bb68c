"""What handlers and scheduled work share: configuration, database, renderer, clock, and the one way to notify.

A neutral module: handlers/ and scheduled/ both import it, it imports neither (scheduled/ must not import
handlers/). One Services object lives per Application, in bot_data["services"].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from config import Config
from messages import Renderer
from models import outbox
from models.activity import ActivityLog
from models.clock import Clock
from models.db import Database
from models.stock_cache import SoldOutCache

# Users whose language is remembered for answers given from memory.
LOCALE_MEMORY = 100_000


@dataclass
class Services:
    """The organisation's config, the database, the renderer and the clock; plus small per-process memories."""

    config: Config
    db: Database
    renderer: Renderer
    clock: Clock = field(default_factory=Clock)
    # Items seen sold out lately (models/stock_cache.py), for presses answered before any database work.
    soldout: SoldOutCache = field(default_factory=SoldOutCache)
    # The language each recently seen user reads (for answers given before the member row is loaded).
    locales: dict[int, str] = field(default_factory=dict)
    # Activity noted by handlers and not yet written (models/activity.py; the inbox's done-marker writes it).
    activity: ActivityLog = field(default_factory=ActivityLog)

    def remember_locale(self, telegram_id: int, locale: str) -> None:
        """Keep a user's language for answers given from memory (bounded: forgotten wholesale when full)."""
        if len(self.locales) >= LOCALE_MEMORY and telegram_id not in self.locales:
            self.locales.clear()
        self.locales[telegram_id] = locale


def notify(
    session: Session,
    chat_id: int,
    text: str,
    *,
    now: datetime,
    kind: str = "notice",
    keyboard: dict[str, Any] | None = None,
    photo: str | None = None,
    dedupe_key: str | None = None,
    member_id: int | None = None,
    personal: bool = True,
) -> bool:
    """Tell someone something that must not be lost: an outbox row written in the caller's transaction.

    The row exists exactly when the change it reports does, and the outbox sender delivers it (after a crash
    too), personal notices before bulk messages. `text` is already rendered in the recipient's language;
    `keyboard` is an InlineKeyboardMarkup as a dict. False when a row with this dedupe key already exists.
    """
    return outbox.enqueue(
        session,
        chat_id,
        text,
        kind=kind,
        keyboard=keyboard,
        photo=photo,
        dedupe_key=dedupe_key,
        member_id=member_id,
        not_before=now,
        priority=outbox.PRIORITY_PERSONAL if personal else outbox.PRIORITY_BULK,
    )
