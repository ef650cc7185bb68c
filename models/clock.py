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


LOCAL_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M", "%Y%m%d %H:%M")


def parse_local_datetime(text: str, tz: ZoneInfo) -> datetime:
    """A moment typed as local 'YYYY-MM-DD HH:MM' (a few common variants), as aware UTC; BadInput otherwise."""
    from models.errors import BadInput

    cleaned = " ".join(text.replace("：", ":").split())
    for fmt in LOCAL_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).replace(tzinfo=tz).astimezone(UTC)
        except ValueError:
            continue
    raise BadInput("datetime_format")
