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
# Years a typed time may have: year 1 overflows when moved to UTC, and nothing here is planned centuries ahead.
FIRST_YEAR, LAST_YEAR = 2000, 2999


def parse_local_datetime(text: str, tz: ZoneInfo) -> datetime:
    """A moment typed as local 'YYYY-MM-DD HH:MM' (a few common variants), as aware UTC; BadInput otherwise.

    ASCII digits only (strptime would take other scripts' digits) and a year from FIRST_YEAR to LAST_YEAR.
    """
    from models.errors import BadInput

    cleaned = " ".join(text.replace("：", ":").split())
    if not cleaned.isascii():
        raise BadInput("datetime_format")
    for fmt in LOCAL_FORMATS:
        try:
            local = datetime.strptime(cleaned, fmt)
        except ValueError:
            continue
        if not FIRST_YEAR <= local.year <= LAST_YEAR:
            break
        return local.replace(tzinfo=tz).astimezone(UTC)
    raise BadInput("datetime_format")
