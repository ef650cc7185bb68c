"""Clubs (星协俱乐部): the clubs and who belongs to them.

A membership row is either a request waiting for the leader (PENDING) or a member (MEMBER); leaving deletes
it. Audiences (models/audience.py) and club-only runs (models/runs.py) read the MEMBER rows.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import UniqueConstraint, delete, exists
from sqlmodel import Field, Session, SQLModel, col, select

from models.clock import utcnow

NAME_MAX = 40
DESCRIPTION_MAX = 500
CODE_MAX = 16


class MemberStatus(enum.StrEnum):
    PENDING = "pending"
    MEMBER = "member"


class Club(SQLModel, table=True):
    __tablename__ = "club"

    id: int | None = Field(default=None, primary_key=True)
    # Stable code for imports and /linkclub (idempotent by code).
    code: str = Field(max_length=CODE_MAX, unique=True)
    name: str = Field(max_length=NAME_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    leader_id: int | None = Field(default=None, foreign_key="member.id")
    open: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class ClubMember(SQLModel, table=True):
    __tablename__ = "club_member"
    __table_args__ = (UniqueConstraint("club_id", "member_id", name="uq_club_member"),)

    id: int | None = Field(default=None, primary_key=True)
    club_id: int = Field(foreign_key="club.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    status: str = Field(default=MemberStatus.MEMBER, max_length=12)
    joined_at: datetime = Field(default_factory=utcnow)


def is_member_of(member_id_column: object, club_ids: tuple[int, ...]) -> object:
    """SQL condition: the member (a column or an id) belongs to one of these clubs."""
    return exists().where(
        col(ClubMember.member_id) == member_id_column,
        col(ClubMember.club_id).in_(list(club_ids)),
        col(ClubMember.status) == MemberStatus.MEMBER,
    )


def clubs_of(session: Session, member_id: int) -> list[Club]:
    """The clubs this member belongs to, by name."""
    return list(
        session.exec(
            select(Club)
            .join(ClubMember, col(ClubMember.club_id) == col(Club.id))
            .where(col(ClubMember.member_id) == member_id, col(ClubMember.status) == MemberStatus.MEMBER)
            .order_by(col(Club.name))
        )
    )


def belongs(session: Session, member_id: int, club_id: int) -> bool:
    """Whether this member is a member (not just a requester) of the club."""
    found = session.exec(
        select(ClubMember.id).where(
            col(ClubMember.member_id) == member_id,
            col(ClubMember.club_id) == club_id,
            col(ClubMember.status) == MemberStatus.MEMBER,
        )
    ).first()
    return found is not None


def forget_member(session: Session, member_id: int) -> None:
    """A deleted account leaves every club (and withdraws every request)."""
    session.exec(delete(ClubMember).where(col(ClubMember.member_id) == member_id))
