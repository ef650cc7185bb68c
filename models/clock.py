"""The current time, in one place so tests can move it. Timestamps are timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (how every timestamp is stored)."""
    return datetime.now(UTC)


class Clock:
    """The one clock handlers and scheduled work read (`services.clock`, `ctx.now`); tests replace it."""

    def now(self) -> datetime:
        """Now, as an aware UTC datetime."""
        return utcnow()


class FrozenClock(Clock):
    """A clock that stands still until a test moves it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        """The frozen moment."""
        return self.at

    def advance(self, **delta: float) -> None:
        """Move the clock forward, e.g. advance(hours=2)."""
        self.at += timedelta(**delta)


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
