"""The care dashboard: counts only, never who. Counselling cells under HIDE_BELOW are hidden."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models.care.tables import HIDE_BELOW, BookingStatus, CareBooking, CareRequest, RequestKind
from models.members import Actor


@dataclass(frozen=True)
class CountCell:
    month: str
    key: str
    count: int | None  # None: fewer than HIDE_BELOW, not shown


@dataclass(frozen=True)
class RequestCell:
    month: str
    unit_code: str
    rights: int
    aid: int
    # Not taken yet.
    open: int
    # Average hours from received to taken (None: none taken yet).
    wait_hours: float | None


def _month(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m")


def _hide(n: int) -> int | None:
    return n if n >= HIDE_BELOW else None


def booking_counts(
    session: Session, actor: Actor, tz: ZoneInfo, since: datetime
) -> tuple[list[CountCell], list[CountCell]]:
    """Bookings (not cancelled) since a moment per month and area, and per month and channel; small cells hidden."""
    actor.require_cadre()
    counted = (BookingStatus.ACTIVE, BookingStatus.DONE, BookingStatus.NO_SHOW, BookingStatus.LATE_CANCELLED)
    rows = session.exec(
        select(CareBooking.starts_at, CareBooking.area, CareBooking.channel).where(
            col(CareBooking.status).in_(list(counted)), col(CareBooking.starts_at) >= since
        )
    ).all()
    areas: dict[tuple[str, str], int] = defaultdict(int)
    channels: dict[tuple[str, str], int] = defaultdict(int)
    for at, area, channel in rows:
        month = _month(at, tz)
        areas[(month, area)] += 1
        channels[(month, channel)] += 1
    return (
        [CountCell(m, k, _hide(n)) for (m, k), n in sorted(areas.items())],
        [CountCell(m, k, _hide(n)) for (m, k), n in sorted(channels.items())],
    )


def request_counts(session: Session, actor: Actor, tz: ZoneInfo, since: datetime) -> list[RequestCell]:
    """Requests since a moment per month and unit in the cadre's scope: how many of each kind, how many not taken
    yet, the average wait to be taken; newest month first."""
    actor.require_cadre()
    query = select(CareRequest.created_at, CareRequest.taken_at, CareRequest.unit_code, CareRequest.kind).where(
        col(CareRequest.created_at) >= since
    )
    if not actor.is_bureau:
        query = query.where(col(CareRequest.unit_code).in_([u for u in actor.cadre_units if u]))
    cells: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0, 0, 0.0, 0])
    for created, taken, unit, kind in session.exec(query).all():
        cell = cells[(_month(created, tz), unit)]
        cell[0 if kind == RequestKind.RIGHTS else 1] += 1
        if taken is None:
            cell[2] += 1
        else:
            cell[3] += (taken - created).total_seconds() / 3600
            cell[4] += 1
    return [
        RequestCell(m, u, rights, aid, waiting, round(hours / taken, 1) if taken else None)
        for (m, u), (rights, aid, waiting, hours, taken) in sorted(
            cells.items(), key=lambda kv: (kv[0][0], kv[0][1]), reverse=True
        )
    ]
