"""Insight's weekly digest for cadres: their units' last 7 days against the 7 before, and who gets it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo

from sqlalchemy import delete, func
from sqlmodel import Field, Session, SQLModel, col, select

from models.activity import Activity
from models.insight.figures import ACTION_COUNTERS, SMALL_GROUP, active_members, midnight
from models.members import Member, RoleGrant, Status


class DigestOptOut(SQLModel, table=True):
    """Cadres who turned the weekly digest off in /me."""

    __tablename__ = "insight_digest_optout"

    member_id: int = Field(foreign_key="member.id", primary_key=True)


@dataclass(frozen=True)
class Change:
    """One figure of the week against the week before."""

    name: str
    this_week: int
    last_week: int

    @property
    def weight(self) -> float:
        """How big the change is, relative to where it started (a figure of fewer than 5 never stands out)."""
        if max(self.this_week, self.last_week) < SMALL_GROUP:
            return 0.0
        return abs(self.this_week - self.last_week) / max(self.last_week, 1)


@dataclass(frozen=True)
class Digest:
    members: int
    changes: list[Change]

    @property
    def biggest(self) -> Change | None:
        """The change to highlight: the largest relative one, if any figure moved."""
        moved = [c for c in self.changes if c.weight > 0]
        return max(moved, key=lambda c: c.weight) if moved else None


def digest(session: Session, units: Sequence[str], today: date, tz: tzinfo) -> Digest:
    """The 7 days before today against the 7 before them: new members, active members, member-days, welfare."""
    weeks = [(today - timedelta(days=7 * k), today - timedelta(days=7 * (k - 1))) for k in (1, 2)]

    def joined(start: date, end: date) -> int:
        return int(
            session.exec(
                select(func.count()).where(
                    col(Member.unit_code).in_(units),
                    col(Member.status) == Status.VERIFIED,
                    col(Member.verified_at) >= midnight(start, tz),
                    col(Member.verified_at) < midnight(end, tz),
                )
            ).one()
        )

    def member_days(start: date, end: date) -> int:
        query = (
            select(func.count())
            .select_from(Activity)
            .join(Member, col(Member.id) == col(Activity.member_id))
            .where(col(Member.unit_code).in_(units), col(Activity.day) >= start, col(Activity.day) < end)
        )
        return int(session.exec(query).one())

    figures: dict[str, Callable[[date, date], int]] = {
        "new_members": joined,
        "active_members": lambda start, end: active_members(session, units, start, end),
        "member_days": member_days,
    }
    for name, count in ACTION_COUNTERS.items():
        figures[name] = lambda start, end, count=count: count(session, units, midnight(start, tz), midnight(end, tz))
    changes = [Change(name, figure(*weeks[0]), figure(*weeks[1])) for name, figure in figures.items()]
    members = session.exec(
        select(func.count()).where(col(Member.unit_code).in_(units), col(Member.status) == Status.VERIFIED)
    ).one()
    return Digest(int(members), changes)


@dataclass(frozen=True)
class Reader:
    """A cadre who gets the digest: where to send it, in which language, for which units (None: every unit)."""

    member_id: int
    telegram_id: int
    language: str
    units: frozenset[str | None]


def digest_readers(session: Session, admin_ids: frozenset[int]) -> list[Reader]:
    """Verified cadres and admins (by role or by the config) who did not turn the digest off."""
    opted_out = select(DigestOptOut.member_id)
    rows = session.exec(
        select(Member.id, Member.telegram_id, Member.language, RoleGrant.role, RoleGrant.unit_code)
        .outerjoin(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
        .where(
            col(Member.status) == Status.VERIFIED,
            col(Member.telegram_id).is_not(None),
            col(Member.id).not_in(opted_out),
        )
        .where(col(RoleGrant.role).in_(("cadre", "admin")) | col(Member.telegram_id).in_(admin_ids))
        .order_by(col(Member.id))
    ).all()
    readers: dict[int, Reader] = {}
    for member_id, telegram_id, language, role, unit in rows:
        bureau = role == "admin" or telegram_id in admin_ids or (role == "cadre" and unit is None)
        scope = {None} if bureau else ({unit} if role == "cadre" else set())
        known = readers.get(member_id)
        units = frozenset(scope | (set(known.units) if known else set()))
        readers[member_id] = Reader(member_id, telegram_id, language, frozenset({None}) if None in units else units)
    return [r for r in readers.values() if r.units]


def toggle_digest(session: Session, member_id: int) -> bool:
    """Turn this cadre's weekly digest off, or on again. Returns whether it is on now."""
    removed = session.exec(delete(DigestOptOut).where(col(DigestOptOut.member_id) == member_id))  # type: ignore[call-overload]
    if removed.rowcount:
        return True
    session.add(DigestOptOut(member_id=member_id))
    session.flush()
    return False


def digest_on(session: Session, member_id: int) -> bool:
    return session.get(DigestOptOut, member_id) is None


def erase_member(session: Session, member_id: int) -> None:
    """A deleted account keeps no digest setting."""
    session.exec(delete(DigestOptOut).where(col(DigestOptOut.member_id) == member_id))  # type: ignore[call-overload]
