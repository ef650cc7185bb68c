"""Likes (点赞) on community posts (show posts, reading notes) and the rules that keep them from being farmed.

A like is once per member per thing (UNIQUE). Each new like may pay its author the `like_received` rule, within
its daily cap, unless one of the anti-farming rules says it earns nothing:

- a like of one's own post or note;
- a "ring": when two members like each other's things, only `ring_likes_per_week` likes each way within 7 days
  earn (the later ones are kept as likes, they just pay nothing);
- a like from a member registered (verified) fewer than `new_member_days` days ago.

Taking a like back does not claw the points back, and liking again never pays twice: the award's idempotency key
names the liker and the thing, so a like/unlike/like loop earns once at most.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import UniqueConstraint, delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from config import CommunitySettings, PointsRule
from models import points
from models.clock import utcnow
from models.members import Member

RULE = "like_received"
RING_WINDOW = timedelta(days=7)


class Kind(enum.StrEnum):
    SHOW = "show"
    NOTE = "note"


class Why(enum.StrEnum):
    """What a new like earned its author, and if nothing, why."""

    EARNED = "earned"
    SELF = "self"
    RING = "ring"
    NEW_MEMBER = "new_member"
    CAPPED = "capped"
    # Liked, taken back and liked again: the first like paid already.
    ALREADY_PAID = "already_paid"
    NO_RULE = "no_rule"


class Like(SQLModel, table=True):
    __tablename__ = "community_like"
    __table_args__ = (UniqueConstraint("kind", "target_id", "liker_id", name="uq_like_once"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=8)
    target_id: int
    liker_id: int = Field(foreign_key="member.id", index=True)
    author_id: int = Field(foreign_key="member.id", index=True)
    # Points this like paid its author (0 when a rule said no).
    earned: int = 0
    created_at: datetime = Field(default_factory=utcnow, index=True)


@dataclass(frozen=True)
class LikeResult:
    created: bool
    earned: int
    why: Why | None


def _registered_at(member: Member) -> datetime:
    return member.verified_at or member.created_at


def why_not_earning(
    session: Session, liker: Member, author_id: int, now: datetime, settings: CommunitySettings
) -> Why | None:
    """The anti-farming rule that stops this like from paying (None: it may pay, within the daily cap)."""
    if liker.id == author_id:
        return Why.SELF
    if now - _registered_at(liker) < timedelta(days=settings.new_member_days):
        return Why.NEW_MEMBER
    since = now - RING_WINDOW

    def count(src: int, dst: int) -> int:
        query = select(func.count()).where(
            col(Like.liker_id) == src, col(Like.author_id) == dst, col(Like.created_at) > since
        )
        return session.exec(query).one()

    if count(author_id, liker.id) > 0 and count(liker.id, author_id) > settings.ring_likes_per_week:
        return Why.RING
    return None


def like(
    session: Session,
    kind: Kind,
    target_id: int,
    liker: Member,
    author_id: int,
    now: datetime,
    day: date,
    settings: CommunitySettings,
    rule: PointsRule | None,
) -> LikeResult:
    """Like a thing once; pays its author unless an anti-farming rule says no. A repeated like changes nothing."""
    row = Like(kind=kind, target_id=target_id, liker_id=liker.id, author_id=author_id, created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return LikeResult(False, 0, None)
    # Counted with this like included: the ring rule compares "more than N this week".
    why = why_not_earning(session, liker, author_id, now, settings)
    if why is None and (rule is None or rule.amount <= 0):
        why = Why.NO_RULE
    if why is not None:
        return LikeResult(True, 0, why)
    key = f"like:{kind}:{target_id}:{liker.id}"
    paid = points.award(session, author_id, rule, key, day, reason=f"{kind}:{target_id}")
    if paid.outcome == points.Outcome.DUPLICATE:
        return LikeResult(True, 0, Why.ALREADY_PAID)
    if paid.amount == 0:
        return LikeResult(True, 0, Why.CAPPED)
    row.earned = paid.amount
    return LikeResult(True, paid.amount, Why.EARNED)


def unlike(session: Session, kind: Kind, target_id: int, liker_id: int) -> bool:
    """Take a like back (the points it paid stay); False if there was none."""
    result = session.exec(
        delete(Like).where(col(Like.kind) == kind, col(Like.target_id) == target_id, col(Like.liker_id) == liker_id)
    )
    return result.rowcount == 1


def liked(session: Session, kind: Kind, target_id: int, liker_id: int) -> bool:
    """Whether this member likes this thing now."""
    query = select(Like.id).where(Like.kind == kind, Like.target_id == target_id, Like.liker_id == liker_id)
    return session.exec(query).first() is not None


def forget_member(session: Session, member_id: int) -> None:
    """An erased member's likes go (the counts they made stay on the things: they are not personal)."""
    session.exec(delete(Like).where((col(Like.liker_id) == member_id) | (col(Like.author_id) == member_id)))


def export_member(session: Session, member_id: int, kind: Kind) -> dict[str, list[dict[str, object]]]:
    """The likes this member gave, and the ones their things received without who gave them (export my data)."""
    given = session.exec(
        select(Like.target_id, Like.created_at)
        .where(col(Like.liker_id) == member_id, col(Like.kind) == kind)
        .order_by(col(Like.id))
    )
    received = session.exec(
        select(Like.target_id, Like.earned, Like.created_at)
        .where(col(Like.author_id) == member_id, col(Like.kind) == kind)
        .order_by(col(Like.id))
    )
    return {
        "likes_given": [{"target": t, "at": at} for t, at in given],
        "likes_received": [{"target": t, "points": earned, "at": at} for t, earned, at in received],
    }
