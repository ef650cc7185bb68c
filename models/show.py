"""Show (我型我秀): members' talent posts (text, photo, album of up to 4 photos, short video), likes, reports and
volunteers' moderation, and the weekly top posts for members who asked for them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, UniqueConstraint, delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from config import CommunitySettings, PointsRule
from models import likes, reading
from models.clock import utcnow
from models.errors import BadInput, NotAllowed, NotFound
from models.members import Actor, Member, Role, RoleGrant, Status

CATEGORIES = ("music", "art", "sport", "photography", "craft", "other")
TITLE_MAX = 40
TEXT_MAX = 500
ALBUM_MAX = 4
REASON_MAX = 200


class PostStatus(enum.StrEnum):
    DRAFT = "draft"
    PENDING = "pending"
    PUBLISHED = "published"
    HIDDEN = "hidden"
    REJECTED = "rejected"
    DELETED = "deleted"


class MediaKind(enum.StrEnum):
    PHOTO = "photo"
    VIDEO = "video"


class Order(enum.StrEnum):
    NEW = "new"
    TOP = "top"


class ShowPost(SQLModel, table=True):
    __tablename__ = "show_post"
    __table_args__ = (
        CheckConstraint("likes >= 0", name="ck_show_likes_nonneg"),
        CheckConstraint("reports >= 0", name="ck_show_reports_nonneg"),
    )

    id: int | None = Field(default=None, primary_key=True)
    author_id: int = Field(foreign_key="member.id", index=True)
    category: str = Field(max_length=16)
    title: str = Field(max_length=TITLE_MAX)
    text: str = Field(default="", max_length=TEXT_MAX)
    status: str = Field(default=PostStatus.DRAFT, max_length=12, index=True)
    reject_reason: str | None = Field(default=None, max_length=REASON_MAX)
    likes: int = 0
    reports: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = Field(default=None, index=True)


class ShowMedia(SQLModel, table=True):
    __tablename__ = "show_media"
    __table_args__ = (UniqueConstraint("post_id", "file_unique_id", name="uq_show_media_once"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="show_post.id", index=True)
    kind: str = Field(max_length=8)
    file_id: str = Field(max_length=200)
    file_unique_id: str = Field(max_length=80)


class ShowReport(SQLModel, table=True):
    __tablename__ = "show_report"

    post_id: int = Field(foreign_key="show_post.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)


class ShowDigest(SQLModel, table=True):
    """Members who receive the weekly top posts."""

    __tablename__ = "show_digest"

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    since: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True)
class Card:
    """One post as a viewer sees it: its media, whether they like it, its place in the list."""

    post: ShowPost
    author: str
    media: list[ShowMedia]
    liked: bool
    mine: bool
    index: int = 0
    total: int = 1

    @property
    def kind(self) -> str:
        """text, photo, album or video."""
        if not self.media:
            return "text"
        if self.media[0].kind == MediaKind.VIDEO:
            return "video"
        return "album" if len(self.media) > 1 else "photo"


def is_moderator(actor: Actor) -> bool:
    """Volunteers and cadres moderate the show."""
    return actor.is_cadre or Role.VOLUNTEER in actor.roles


def _post(session: Session, post_id: int) -> ShowPost:
    post = session.get(ShowPost, post_id, populate_existing=True)
    if post is None or post.status == PostStatus.DELETED:
        raise NotFound("show_post_unknown")
    return post


def _visible(session: Session, actor: Actor, post_id: int) -> ShowPost:
    """A post this actor may see: published ones, their own, and (for moderators) anything not deleted."""
    post = _post(session, post_id)
    mine = actor.member is not None and post.author_id == actor.member.id
    if post.status == PostStatus.DRAFT and not mine:
        raise NotFound("show_post_unknown")
    if post.status != PostStatus.PUBLISHED and not mine and not is_moderator(actor):
        raise NotFound("show_post_unknown")
    return post


def _media(session: Session, post_id: int) -> list[ShowMedia]:
    return list(session.exec(select(ShowMedia).where(ShowMedia.post_id == post_id).order_by(col(ShowMedia.id))))


def _card(session: Session, actor: Actor, post: ShowPost, index: int = 0, total: int = 1) -> Card:
    author = session.get(Member, post.author_id)
    me = actor.member.id if actor.member is not None else -1
    liked = likes.liked(session, likes.Kind.SHOW, post.id, me)
    name = (author.name if author is not None else None) or ""
    return Card(post, name, _media(session, post.id), liked, post.author_id == me, index, total)


# --- writing a post ------------------------------------------------------------------------------


def clean_text(raw: str, limit: int, error: str) -> str:
    """Typed text, stripped; BadInput when empty or longer than `limit`."""
    text = raw.strip()
    if not text:
        raise BadInput(f"{error}_empty")
    if len(text) > limit:
        raise BadInput(f"{error}_too_long", max=limit)
    return text


def start_draft(session: Session, member: Member, category: str, title: str, text: str, now: datetime) -> ShowPost:
    """A post being written: media can be attached until it is published."""
    if category not in CATEGORIES:
        raise BadInput("form_step_passed")
    post = ShowPost(
        author_id=member.id,
        category=category,
        title=clean_text(title, TITLE_MAX, "show_title"),
        text=text.strip()[:TEXT_MAX],
        created_at=now,
    )
    session.add(post)
    session.flush()
    return post


def _draft(session: Session, member: Member, post_id: int) -> ShowPost:
    post = session.get(ShowPost, post_id)
    if post is None or post.author_id != member.id or post.status != PostStatus.DRAFT:
        raise BadInput("form_step_passed")
    return post


def add_media(
    session: Session,
    member: Member,
    post_id: int,
    kind: MediaKind,
    file_id: str,
    file_unique_id: str,
    settings: CommunitySettings,
    duration: int = 0,
) -> int:
    """Attach a photo (up to ALBUM_MAX) or one short video to my draft; returns how many are attached."""
    _draft(session, member, post_id)
    attached = _media(session, post_id)
    if kind == MediaKind.VIDEO and duration > settings.show_video_max_seconds:
        raise BadInput("show_video_too_long", max=settings.show_video_max_seconds)
    if attached and (kind == MediaKind.VIDEO or attached[0].kind == MediaKind.VIDEO):
        raise BadInput("show_one_video")
    if len(attached) >= ALBUM_MAX:
        raise BadInput("show_album_full", max=ALBUM_MAX)
    try:
        with session.begin_nested():
            session.add(ShowMedia(post_id=post_id, kind=kind, file_id=file_id, file_unique_id=file_unique_id))
            session.flush()
    except IntegrityError:
        pass
    return len(_media(session, post_id))


def publish(session: Session, member: Member, post_id: int, now: datetime, settings: CommunitySettings) -> ShowPost:
    """Publish my draft, or send it to the volunteers' queue when the show is pre-moderated."""
    post = _draft(session, member, post_id)
    if not post.text and not _media(session, post_id):
        raise BadInput("show_post_empty")
    post.status = PostStatus.PENDING if settings.show_premoderation else PostStatus.PUBLISHED
    post.published_at = now
    session.flush()
    return post


def delete_post(session: Session, actor: Actor, post_id: int) -> ShowPost:
    """The author deletes their post (nobody sees it any more; its likes' points stay with them)."""
    post = _post(session, post_id)
    if actor.member is None or post.author_id != actor.member.id:
        raise NotAllowed()
    post.status = PostStatus.DELETED
    session.flush()
    return post


# --- browsing ------------------------------------------------------------------------------------


def _listed(order: Order) -> Any:
    query = select(ShowPost).where(ShowPost.status == PostStatus.PUBLISHED)
    if order == Order.TOP:
        return query.order_by(col(ShowPost.likes).desc(), col(ShowPost.published_at).desc(), col(ShowPost.id).desc())
    return query.order_by(col(ShowPost.published_at).desc(), col(ShowPost.id).desc())


def count_published(session: Session) -> int:
    """How many posts members can browse."""
    return session.exec(select(func.count()).where(ShowPost.status == PostStatus.PUBLISHED)).one()


def browse(session: Session, actor: Actor, order: Order, index: int) -> Card | None:
    """The index-th published post (newest or most liked first), clamped to the list; None when there are none."""
    total = count_published(session)
    if total == 0:
        return None
    index = min(max(index, 0), total - 1)
    post = session.exec(_listed(order).offset(index).limit(1)).one()
    return _card(session, actor, post, index, total)


def card(session: Session, actor: Actor, post_id: int) -> Card:
    """One post by id, if this actor may see it."""
    return _card(session, actor, _visible(session, actor, post_id))


def my_posts(session: Session, member: Member, limit: int) -> list[ShowPost]:
    """My posts that are not drafts or deleted, newest first."""
    query = (
        select(ShowPost)
        .where(ShowPost.author_id == member.id, col(ShowPost.status).not_in((PostStatus.DRAFT, PostStatus.DELETED)))
        .order_by(col(ShowPost.id).desc())
        .limit(limit)
    )
    return list(session.exec(query))


def search(session: Session, words: str, limit: int) -> list[tuple[ShowPost, list[ShowMedia]]]:
    """Published posts whose title contains the words (all of them when empty), newest first: for inline sharing."""
    query = _listed(Order.NEW).limit(limit)
    if words.strip():
        query = query.where(col(ShowPost.title).contains(words.strip()))
    return [(post, _media(session, post.id)) for post in session.exec(query)]


# --- likes and reports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Toggled:
    liked: bool
    result: likes.LikeResult | None


def set_like(
    session: Session,
    actor: Actor,
    post_id: int,
    want: bool,
    now: datetime,
    day: date,
    settings: CommunitySettings,
    rule: PointsRule | None,
) -> Toggled:
    """Like a published post or take my like back (a double click does it once); the count moves by conditional
    UPDATE."""
    post = _post(session, post_id)
    if post.status != PostStatus.PUBLISHED:
        raise NotFound("show_post_unknown")
    member = actor.member
    if not want:
        if likes.unlike(session, likes.Kind.SHOW, post_id, member.id):
            _count(session, post_id, -1)
        return Toggled(False, None)
    result = likes.like(session, likes.Kind.SHOW, post_id, member, post.author_id, now, day, settings, rule)
    if result.created:
        _count(session, post_id, 1)
    return Toggled(True, result)


def _count(session: Session, post_id: int, delta: int) -> None:
    session.exec(
        update(ShowPost)
        .where(col(ShowPost.id) == post_id, col(ShowPost.likes) + delta >= 0)
        .values(likes=col(ShowPost.likes) + delta)
        .execution_options(synchronize_session=False)
    )


def report(session: Session, member: Member, post_id: int, now: datetime, settings: CommunitySettings) -> bool:
    """Report a published post once; True when this report hid it (it waits for a volunteer)."""
    post = _post(session, post_id)
    if post.status != PostStatus.PUBLISHED:
        raise NotFound("show_post_unknown")
    if post.author_id == member.id:
        raise BadInput("show_report_own")
    try:
        with session.begin_nested():
            session.add(ShowReport(post_id=post_id, member_id=member.id, created_at=now))
            session.flush()
    except IntegrityError:
        raise BadInput("show_already_reported") from None
    session.exec(
        update(ShowPost)
        .where(col(ShowPost.id) == post_id)
        .values(reports=col(ShowPost.reports) + 1)
        .execution_options(synchronize_session=False)
    )
    hidden = session.exec(
        update(ShowPost)
        .where(
            col(ShowPost.id) == post_id,
            col(ShowPost.status) == PostStatus.PUBLISHED,
            col(ShowPost.reports) >= settings.show_reports_to_hide,
        )
        .values(status=PostStatus.HIDDEN)
        .execution_options(synchronize_session=False)
    )
    return hidden.rowcount == 1


# --- moderation ----------------------------------------------------------------------------------


def queue(session: Session, actor: Actor, limit: int) -> list[ShowPost]:
    """Posts waiting for a volunteer: new ones (pre-moderation) and those hidden by reports, oldest first."""
    if not is_moderator(actor):
        raise NotAllowed()
    query = (
        select(ShowPost)
        .where(col(ShowPost.status).in_((PostStatus.PENDING, PostStatus.HIDDEN)))
        .order_by(col(ShowPost.id))
        .limit(limit)
    )
    return list(session.exec(query))


def volunteers(session: Session) -> list[Member]:
    """Verified volunteers who can be told that a post waits for them (not those who blocked the bot)."""
    query = (
        select(Member)
        .join(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
        .where(
            RoleGrant.role == Role.VOLUNTEER,
            Member.status == Status.VERIFIED,
            col(Member.blocked_bot).is_(False),
            col(Member.telegram_id).is_not(None),
        )
        .order_by(col(Member.id))
    )
    return list(session.exec(query))


def _waiting(session: Session, actor: Actor, post_id: int) -> ShowPost:
    if not is_moderator(actor):
        raise NotAllowed()
    post = _post(session, post_id)
    if post.status not in (PostStatus.PENDING, PostStatus.HIDDEN):
        raise BadInput("show_already_decided")
    return post


def approve(session: Session, actor: Actor, post_id: int) -> ShowPost:
    """A volunteer publishes a waiting post (a hidden one starts counting reports afresh)."""
    post = _waiting(session, actor, post_id)
    post.status = PostStatus.PUBLISHED
    post.reports = 0
    session.flush()
    return post


def reject(session: Session, actor: Actor, post_id: int, reason: str) -> ShowPost:
    """A volunteer rejects a waiting post with a reason its author is told."""
    post = _waiting(session, actor, post_id)
    post.status = PostStatus.REJECTED
    post.reject_reason = clean_text(reason, REASON_MAX, "show_reason")
    session.flush()
    return post


# --- the weekly top posts ------------------------------------------------------------------------


def toggle_digest(session: Session, member_id: int, now: datetime) -> bool:
    """Subscribe to or leave the weekly top posts; True when now subscribed."""
    gone = session.exec(delete(ShowDigest).where(col(ShowDigest.member_id) == member_id))
    if gone.rowcount:
        return False
    try:
        with session.begin_nested():
            session.add(ShowDigest(member_id=member_id, since=now))
            session.flush()
    except IntegrityError:
        pass
    return True


def subscribed(session: Session, member_id: int) -> bool:
    """Whether this member receives the weekly top posts."""
    return session.get(ShowDigest, member_id) is not None


@dataclass(frozen=True)
class Top:
    post_id: int
    title: str
    author: str
    likes: int


def week_top(session: Session, since: datetime, limit: int) -> list[Top]:
    """The published posts most liked since `since` (likes given in that week)."""
    count = func.count(likes.Like.id).label("n")
    rows = session.exec(
        select(ShowPost.id, ShowPost.title, Member.name, count)
        .join(likes.Like, (col(likes.Like.target_id) == col(ShowPost.id)) & (col(likes.Like.kind) == likes.Kind.SHOW))
        .join(Member, col(Member.id) == col(ShowPost.author_id))
        .where(ShowPost.status == PostStatus.PUBLISHED, col(likes.Like.created_at) >= since)
        .group_by(ShowPost.id, ShowPost.title, Member.name)
        .order_by(count.desc(), col(ShowPost.id).desc())
        .limit(limit)
    )
    return [Top(post_id, title, name or "", n) for post_id, title, name, n in rows]


def digest_readers(session: Session) -> list[Member]:
    """Verified members who asked for the weekly top posts and have not blocked the bot."""
    query = (
        select(Member)
        .join(ShowDigest, col(ShowDigest.member_id) == col(Member.id))
        .where(
            Member.status == Status.VERIFIED, col(Member.blocked_bot).is_(False), col(Member.telegram_id).is_not(None)
        )
        .order_by(col(Member.id))
    )
    return list(session.exec(query))


def forget_member(session: Session, member_id: int) -> None:
    """An erased member's community data goes: posts, reports, subscription, likes, and their reading data."""
    reading.forget_member(session, member_id)
    posts = list(session.exec(select(ShowPost.id).where(ShowPost.author_id == member_id)))
    if posts:
        session.exec(delete(ShowMedia).where(col(ShowMedia.post_id).in_(posts)))
        session.exec(delete(ShowReport).where(col(ShowReport.post_id).in_(posts)))
        session.exec(delete(likes.Like).where(likes.Like.kind == likes.Kind.SHOW, col(likes.Like.target_id).in_(posts)))
        session.exec(delete(ShowPost).where(col(ShowPost.id).in_(posts)))
    session.exec(delete(ShowReport).where(col(ShowReport.member_id) == member_id))
    session.exec(delete(ShowDigest).where(col(ShowDigest.member_id) == member_id))
    likes.forget_member(session, member_id)


def export_member(session: Session, member_id: int) -> dict[str, Any]:
    """The member's posts with their media, the likes they gave and got, their reports, their digest subscription."""
    posts = session.exec(select(ShowPost).where(col(ShowPost.author_id) == member_id).order_by(col(ShowPost.id))).all()
    media: dict[int, list[dict[str, Any]]] = {p.id: [] for p in posts if p.id is not None}
    if media:
        rows = session.exec(
            select(ShowMedia).where(col(ShowMedia.post_id).in_(list(media))).order_by(col(ShowMedia.id))
        )
        for m in rows:
            media[m.post_id].append(m.model_dump(include={"kind", "file_id"}))
    reported = session.exec(
        select(ShowReport).where(col(ShowReport.member_id) == member_id).order_by(col(ShowReport.post_id))
    )
    digest = session.get(ShowDigest, member_id)
    return {
        "posts": [{**p.model_dump(exclude={"author_id"}), "media": media[p.id]} for p in posts if p.id],
        "reports": [{"post": r.post_id, "at": r.created_at} for r in reported],
        "weekly_digest_since": digest.since if digest is not None else None,
        **likes.export_member(session, member_id, likes.Kind.SHOW),
    }
