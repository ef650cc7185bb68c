"""The current time, in one place so tests can move it. Timestamps are timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (how every timestamp is stored)."""
    return datetime.now(UTC)


def local_date(tz: ZoneInfo, at: datetime | None = None) -> date:
    """The organisation's calendar day for a moment, default now."""
    return (at or utcnow()).astimezone(tz).date()


def to_local(at: datetime, tz: ZoneInfo) -> datetime:
    """A stored time in the organisation's time zone."""
    return at.astimezone(tz)
