"""Who a message, survey or notice is for: one audience shape for every section that targets members.

An audience is kept on its row as JSON (``to_json`` / ``from_json``) and resolved when it is used, so a member
who joins a unit after a broadcast was scheduled still gets it. ``in_scope`` is the one permission rule: a unit
cadre reaches only their own units, a bureau cadre (and an admin) any unit.

Clubs: ``clubs`` holds club ids; ``_club_members`` below joins models/clubs.py's membership table (members
only, not pending requests).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlmodel import Session, col

from models import clubs
from models.errors import NotAllowed
from models.members import Actor, Member, RoleGrant, Status

# "Young members" as the seed counts them: under 35 this calendar year (from the roster's birth year).
YOUNG_AGE = 35


@dataclass(frozen=True)
class Audience:
    """Members to reach. Empty ``units`` means every unit the sender may reach; every other filter narrows."""

    units: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    under_35: bool = False
    clubs: tuple[int, ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps(
            {
                "units": list(self.units),
                "roles": list(self.roles),
                "under_35": self.under_35,
                "clubs": list(self.clubs),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str | None) -> Audience:
        data: dict[str, Any] = json.loads(raw) if raw else {}
        return cls(
            units=tuple(data.get("units", ())),
            roles=tuple(data.get("roles", ())),
            under_35=bool(data.get("under_35", False)),
            clubs=tuple(int(c) for c in data.get("clubs", ())),
        )


@dataclass(frozen=True)
class AudienceCount:
    members: int
    blocked: int  # of those, members who blocked the bot (they are skipped and counted apart)


def in_scope(actor: Actor, audience: Audience, all_units: Iterable[str]) -> Audience:
    """The audience as this actor may send it: a unit cadre's empty unit list becomes their units; another
    unit raises NotAllowed. Bureau cadres and admins keep what they chose."""
    actor.require_cadre()
    if actor.is_bureau:
        unknown = set(audience.units) - set(all_units)
        if unknown:
            raise NotAllowed()
        return audience
    own = tuple(sorted(u for u in actor.cadre_units if u is not None))
    if not audience.units:
        return Audience(own, audience.roles, audience.under_35, audience.clubs)
    if not set(audience.units) <= set(own):
        raise NotAllowed()
    return audience


def is_young(birth_year: int | None, today: date) -> bool:
    """Under 35 this calendar year."""
    return birth_year is not None and today.year - birth_year < YOUNG_AGE


def conditions(audience: Audience, today: date) -> list[ColumnElement[bool]]:
    """WHERE conditions on Member for this audience (verified members only)."""
    where: list[ColumnElement[bool]] = [col(Member.status) == Status.VERIFIED, col(Member.telegram_id).is_not(None)]
    if audience.units:
        where.append(col(Member.unit_code).in_(list(audience.units)))
    if audience.roles:
        where.append(
            exists().where(col(RoleGrant.member_id) == col(Member.id), col(RoleGrant.role).in_(list(audience.roles)))
        )
    if audience.under_35:
        where.append(col(Member.birth_year) > today.year - YOUNG_AGE)
    if audience.clubs:
        where.append(_club_members(audience.clubs))
    return where


def _club_members(club_ids: tuple[int, ...]) -> ColumnElement[bool]:
    """Members (not requesters) of any of these clubs."""
    return clubs.is_member_of(col(Member.id), club_ids)  # type: ignore[return-value]


def members(audience: Audience, today: date) -> Select[Any]:
    """SELECT id, telegram_id, unit_code, language, blocked_bot of the audience's members, by id."""
    return (
        select(Member.id, Member.telegram_id, Member.unit_code, Member.language, Member.blocked_bot)
        .where(*conditions(audience, today))
        .order_by(col(Member.id))
    )


def count(session: Session, audience: Audience, today: date) -> AudienceCount:
    """How many members the audience reaches, and how many of them blocked the bot."""
    query = select(func.count(), func.count().filter(col(Member.blocked_bot))).where(*conditions(audience, today))
    total, blocked = session.exec(query).one()  # type: ignore[call-overload]
    return AudienceCount(int(total), int(blocked))
