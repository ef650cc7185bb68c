"""Ideas (创客空间): members submit ideas, upvote and comment; cadres move them new → reviewing → adopted → done.

Visibility: an idea of a unit is seen by that unit's members and the cadres who manage the unit; a bureau-wide idea
(unit_code None) by everyone. Cadres decide on the ideas they manage: a unit's cadres on its ideas, bureau cadres
on every idea. An upvote is once per member per idea (the primary key), the counter moves by conditional UPDATE.
Adoption pays the author the `idea_adopted` rule once (idempotency key idea_adopted:<id>).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ColumnElement, Index, delete, false, func, or_, true, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from config import PointsRule
from models import points
from models.clock import utcnow
from models.errors import BadInput, NotAllowed, NotFound
from models.members import Actor, Member, Status

TITLE_MAX = 60
DESCRIPTION_MAX = 1000
COMMENT_MAX = 300
REASON_MAX = 200
PHOTO_ID_MAX = 200
# Ideas per page of a list, comments per page under an idea (their templates fit this many).
LIST_PAGE = 10
COMMENTS_PAGE = 8
RULE = "idea_adopted"


class IdeaStatus(enum.StrEnum):
    NEW = "new"
    REVIEWING = "reviewing"
    ADOPTED = "adopted"
    DONE = "done"
    DECLINED = "declined"


# The moves a cadre may make: forward one step, or decline before a decision was taken.
MOVES: dict[IdeaStatus, tuple[IdeaStatus, ...]] = {
    IdeaStatus.NEW: (IdeaStatus.REVIEWING, IdeaStatus.DECLINED),
    IdeaStatus.REVIEWING: (IdeaStatus.ADOPTED, IdeaStatus.DECLINED),
    IdeaStatus.ADOPTED: (IdeaStatus.DONE,),
    IdeaStatus.DONE: (),
    IdeaStatus.DECLINED: (),
}
# Upvotes are taken while an idea can still go somewhere.
UPVOTABLE = (IdeaStatus.NEW, IdeaStatus.REVIEWING, IdeaStatus.ADOPTED)
# What a cadre's queue shows: ideas waiting for a step.
OPEN = (IdeaStatus.NEW, IdeaStatus.REVIEWING, IdeaStatus.ADOPTED)


class IdeaList(enum.StrEnum):
    """The lists a member can browse: every live idea newest first, most upvoted, mine, or one status."""

    LATEST = "latest"
    TOP = "top"
    MINE = "mine"
    NEW = "new"
    REVIEWING = "reviewing"
    ADOPTED = "adopted"
    DONE = "done"
    DECLINED = "declined"
    # A cadre's ideas waiting for a step (only the ideas they manage).
    QUEUE = "queue"


class Idea(SQLModel, table=True):
    __tablename__ = "idea"
    __table_args__ = (
        CheckConstraint("upvotes >= 0", name="ck_idea_upvotes_nonneg"),
        Index("ix_idea_status_created", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    author_id: int = Field(foreign_key="member.id", index=True)
    # The unit the idea is for; None: bureau-wide.
    unit_code: str | None = Field(default=None, foreign_key="unit.code", max_length=16, index=True)
    title: str = Field(max_length=TITLE_MAX)
    description: str = Field(max_length=DESCRIPTION_MAX)
    photo_file_id: str | None = Field(default=None, max_length=PHOTO_ID_MAX)
    status: str = Field(default=IdeaStatus.NEW, max_length=12)
    decline_reason: str | None = Field(default=None, max_length=REASON_MAX)
    upvotes: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    status_at: datetime = Field(default_factory=utcnow)


class IdeaUpvote(SQLModel, table=True):
    """One member's upvote of one idea: the primary key makes it once only."""

    __tablename__ = "idea_upvote"

    idea_id: int = Field(foreign_key="idea.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class IdeaComment(SQLModel, table=True):
    __tablename__ = "idea_comment"

    id: int | None = Field(default=None, primary_key=True)
    idea_id: int = Field(foreign_key="idea.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    text: str = Field(max_length=COMMENT_MAX)
    # Hidden by a cadre (abusive): its text is shown to nobody but cadres who manage the idea.
    hidden: bool = False
    created_at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True)
class IdeaDraft:
    """What a member submits; unit_code None means bureau-wide."""

    title: str
    description: str
    unit_code: str | None
    photo_file_id: str | None = None


@dataclass(frozen=True)
class IdeaRow:
    """One idea in a list."""

    idea: Idea
    author: str | None
    comments: int


@dataclass(frozen=True)
class IdeaCard:
    """One idea as the actor sees it."""

    idea: Idea
    author: str | None
    comments: int
    upvoted: bool
    mine: bool
    can_move: bool
    moves: tuple[IdeaStatus, ...]


@dataclass(frozen=True)
class CommentRow:
    comment: IdeaComment
    author: str | None
    mine: bool


@dataclass(frozen=True)
class Recipient:
    """Someone to tell about a step: the member, their chat and language."""

    member_id: int
    telegram_id: int
    language: str
    is_author: bool


@dataclass(frozen=True)
class Moved:
    idea: Idea
    recipients: list[Recipient]
    awarded: int


# --- checks ------------------------------------------------------------------------------------------


def clean_text(text: str, limit: int, errors: str) -> str:
    """Typed text trimmed; BadInput errors/<errors>_empty or _too_long."""
    text = text.strip()
    if not text:
        raise BadInput(f"{errors}_empty")
    if len(text) > limit:
        raise BadInput(f"{errors}_too_long", max=limit)
    return text


def manages(actor: Actor, idea: Idea) -> bool:
    """A cadre who decides on this idea: its unit's cadres, bureau cadres for every idea."""
    return actor.is_bureau if idea.unit_code is None else actor.can_manage(idea.unit_code)


def _sees(actor: Actor, idea: Idea) -> bool:
    if idea.unit_code is None or manages(actor, idea):
        return True
    return actor.member is not None and actor.member.unit_code == idea.unit_code


def _visible(actor: Actor) -> ColumnElement[bool]:
    """SQL for the ideas this actor may see."""
    if actor.is_bureau:
        return true()
    units = {u for u in actor.cadre_units if u is not None}
    if actor.member is not None:
        units.add(actor.member.unit_code)
    return or_(col(Idea.unit_code).is_(None), col(Idea.unit_code).in_(sorted(units)))


def _managed(actor: Actor) -> ColumnElement[bool]:
    """SQL for the ideas this actor decides on."""
    if actor.is_bureau:
        return true()
    units = sorted(u for u in actor.cadre_units if u is not None)
    return col(Idea.unit_code).in_(units) if units else false()


def visible_idea(session: Session, actor: Actor, idea_id: int) -> Idea:
    """The idea if this actor may see it; NotFound (idea_unknown) otherwise, without saying it exists."""
    idea = session.get(Idea, idea_id)
    if idea is None or not _sees(actor, idea):
        raise NotFound("idea_unknown")
    return idea


# --- members ------------------------------------------------------------------------------------------


def submit(session: Session, member: Member, draft: IdeaDraft, now: datetime) -> Idea:
    """Store a member's idea as new; for their own unit or bureau-wide."""
    if draft.unit_code is not None and draft.unit_code != member.unit_code:
        raise NotAllowed()
    idea = Idea(
        author_id=member.id,
        unit_code=draft.unit_code,
        title=clean_text(draft.title, TITLE_MAX, "idea_title"),
        description=clean_text(draft.description, DESCRIPTION_MAX, "idea_description"),
        photo_file_id=draft.photo_file_id,
        created_at=now,
        status_at=now,
    )
    session.add(idea)
    session.flush()
    return idea


def _comment_count(idea_id: ColumnElement[int] | int) -> ColumnElement[int]:
    """Visible comments of an idea (a correlated count)."""
    return (
        select(func.count())
        .where(col(IdeaComment.idea_id) == idea_id, col(IdeaComment.hidden).is_(False))
        .scalar_subquery()
    )


def _where(actor: Actor, kind: IdeaList) -> tuple[list[ColumnElement[bool]], list[ColumnElement[object]]]:
    """The conditions and the order of a list of ideas the actor may see."""
    where = [_visible(actor)]
    order: list[ColumnElement[object]] = [col(Idea.created_at).desc(), col(Idea.id).desc()]
    if kind == IdeaList.LATEST:
        where.append(col(Idea.status) != IdeaStatus.DECLINED)
    elif kind == IdeaList.TOP:
        where.append(col(Idea.status) != IdeaStatus.DECLINED)
        order = [col(Idea.upvotes).desc(), *order]
    elif kind == IdeaList.MINE:
        where.append(col(Idea.author_id) == (actor.member.id if actor.member else -1))
    elif kind == IdeaList.QUEUE:
        where += [_managed(actor), col(Idea.status).in_(list(OPEN))]
        # Waiting longest first.
        order = [col(Idea.status_at), col(Idea.id)]
    else:
        where.append(col(Idea.status) == IdeaStatus(kind.value))
        if kind in (IdeaList.DONE, IdeaList.DECLINED, IdeaList.ADOPTED):
            order = [col(Idea.status_at).desc(), col(Idea.id).desc()]
    return where, order


def list_ideas(session: Session, actor: Actor, kind: IdeaList, limit: int, offset: int) -> list[IdeaRow]:
    """One page of a list of ideas the actor may see."""
    where, order = _where(actor, kind)
    rows = session.exec(
        select(Idea, Member.name, _comment_count(col(Idea.id)))
        .join(Member, col(Member.id) == col(Idea.author_id))
        .where(*where)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    return [IdeaRow(idea, name, int(comments)) for idea, name, comments in rows]


def idea_at(session: Session, actor: Actor, kind: IdeaList, position: int) -> Idea | None:
    """The idea at this position of a list (for browsing one card at a time), or None past the end."""
    found = list_ideas(session, actor, kind, 1, position)
    return found[0].idea if found else None


def count_list(session: Session, actor: Actor, kind: IdeaList) -> int:
    """How many ideas a list has (for "card 3 of 12")."""
    where, _order = _where(actor, kind)
    return int(session.exec(select(func.count()).select_from(Idea).where(*where)).one())


def card(session: Session, actor: Actor, idea_id: int) -> IdeaCard:
    """One idea with what this actor may do with it."""
    idea = visible_idea(session, actor, idea_id)
    author = session.get(Member, idea.author_id)
    me = actor.member.id if actor.member is not None else -1
    upvoted = session.get(IdeaUpvote, (idea.id, me)) is not None
    comments = session.exec(select(_comment_count(idea.id))).one()
    mine = idea.author_id == me
    can_move = manages(actor, idea) and not mine
    moves = MOVES[IdeaStatus(idea.status)] if can_move else ()
    return IdeaCard(idea, author.name if author else None, int(comments), upvoted, mine, can_move, moves)


def upvote(session: Session, member: Member, actor: Actor, idea_id: int, now: datetime) -> bool:
    """Upvote an idea once; True if this press added the upvote (a repeat changes nothing)."""
    idea = visible_idea(session, actor, idea_id)
    if idea.author_id == member.id:
        raise BadInput("idea_own_upvote")
    if idea.status not in UPVOTABLE:
        raise BadInput("idea_closed")
    try:
        with session.begin_nested():
            session.add(IdeaUpvote(idea_id=idea_id, member_id=member.id, created_at=now))
            session.flush()
    except IntegrityError:
        # Already upvoted (perhaps by a concurrent press of the same member).
        return False
    session.exec(update(Idea).where(col(Idea.id) == idea_id).values(upvotes=col(Idea.upvotes) + 1))
    return True


def take_back(session: Session, member: Member, actor: Actor, idea_id: int) -> bool:
    """Take an upvote back; True if there was one."""
    visible_idea(session, actor, idea_id)
    gone = session.exec(
        delete(IdeaUpvote).where(col(IdeaUpvote.idea_id) == idea_id, col(IdeaUpvote.member_id) == member.id)
    )
    if gone.rowcount != 1:
        return False
    session.exec(
        update(Idea).where(col(Idea.id) == idea_id, col(Idea.upvotes) > 0).values(upvotes=col(Idea.upvotes) - 1)
    )
    return True


def withdraw(session: Session, member: Member, idea_id: int) -> Idea:
    """The author takes back an idea no cadre has acted on yet; its upvotes and comments go with it."""
    idea = session.get(Idea, idea_id)
    if idea is None or idea.author_id != member.id:
        raise NotFound("idea_unknown")
    if idea.status != IdeaStatus.NEW:
        raise BadInput("idea_not_withdrawable", status=idea.status)
    session.exec(delete(IdeaUpvote).where(col(IdeaUpvote.idea_id) == idea_id))
    session.exec(delete(IdeaComment).where(col(IdeaComment.idea_id) == idea_id))
    # From "new" only: a cadre's step committed meanwhile wins, and this whole withdrawal rolls back.
    gone = session.exec(delete(Idea).where(col(Idea.id) == idea_id, col(Idea.status) == IdeaStatus.NEW))
    if gone.rowcount != 1:
        raise BadInput("idea_not_withdrawable", status=IdeaStatus.REVIEWING.value)
    return idea


# --- comments --------------------------------------------------------------------------------------


def add_comment(session: Session, member: Member, actor: Actor, idea_id: int, text: str, now: datetime) -> IdeaComment:
    """A short comment under an idea the member may see."""
    visible_idea(session, actor, idea_id)
    comment = IdeaComment(
        idea_id=idea_id, member_id=member.id, text=clean_text(text, COMMENT_MAX, "idea_comment"), created_at=now
    )
    session.add(comment)
    session.flush()
    return comment


def count_comments(session: Session, actor: Actor, idea_id: int) -> int:
    """How many comments of an idea this actor sees."""
    idea = visible_idea(session, actor, idea_id)
    where = [col(IdeaComment.idea_id) == idea_id]
    if not manages(actor, idea):
        where.append(col(IdeaComment.hidden).is_(False))
    return int(session.exec(select(func.count()).select_from(IdeaComment).where(*where)).one())


def comments(session: Session, actor: Actor, idea_id: int, limit: int, offset: int) -> list[CommentRow]:
    """A page of an idea's comments, oldest first; hidden ones only for the cadres who manage the idea."""
    idea = visible_idea(session, actor, idea_id)
    query = (
        select(IdeaComment, Member.name)
        .join(Member, col(Member.id) == col(IdeaComment.member_id))
        .where(col(IdeaComment.idea_id) == idea_id)
    )
    if not manages(actor, idea):
        query = query.where(col(IdeaComment.hidden).is_(False))
    rows = session.exec(query.order_by(col(IdeaComment.id)).limit(limit).offset(offset))
    me = actor.member.id if actor.member is not None else -1
    return [CommentRow(c, name, c.member_id == me) for c, name in rows]


def delete_comment(session: Session, member: Member, comment_id: int) -> int:
    """A member deletes their own comment; returns its idea's id. Another's comment: NotAllowed."""
    comment = session.get(IdeaComment, comment_id)
    if comment is None:
        raise NotFound("idea_comment_unknown")
    if comment.member_id != member.id:
        raise NotAllowed()
    session.exec(delete(IdeaComment).where(col(IdeaComment.id) == comment_id))
    return comment.idea_id


def hide_comment(session: Session, actor: Actor, comment_id: int, hidden: bool) -> int:
    """A cadre who manages the idea hides (or shows again) an abusive comment; returns its idea's id."""
    comment = session.get(IdeaComment, comment_id)
    if comment is None:
        raise NotFound("idea_comment_unknown")
    idea = session.get(Idea, comment.idea_id)
    if not manages(actor, idea):
        raise NotAllowed()
    session.exec(update(IdeaComment).where(col(IdeaComment.id) == comment_id).values(hidden=hidden))
    return comment.idea_id


# --- cadres --------------------------------------------------------------------------------------------


def check_move(session: Session, actor: Actor, idea_id: int, to: IdeaStatus) -> Idea:
    """The idea if this actor may move it to `to` now: its manager (never its author), and a step it allows."""
    idea = visible_idea(session, actor, idea_id)
    if not manages(actor, idea):
        raise NotAllowed()
    if actor.member is not None and idea.author_id == actor.member.id:
        raise NotAllowed("idea_own_move")
    if to not in MOVES[IdeaStatus(idea.status)]:
        raise BadInput("idea_move_passed", status=idea.status)
    return idea


def move(
    session: Session,
    actor: Actor,
    idea_id: int,
    to: IdeaStatus,
    now: datetime,
    day: date,
    rule: PointsRule,
    reason: str | None = None,
) -> Moved:
    """A cadre moves an idea one step (or declines it with a reason).

    The step is a conditional UPDATE from the status the move starts at, so two cadres pressing at once move it
    once. Returns who to tell (the author and the upvoters, not the cadre who moved it) and the points paid.
    """
    idea = check_move(session, actor, idea_id, to)
    was = idea.status
    reason = clean_text(reason or "", REASON_MAX, "idea_reason") if to == IdeaStatus.DECLINED else None
    moved = session.exec(
        update(Idea)
        .where(col(Idea.id) == idea_id, col(Idea.status) == was)
        .values(status=to, status_at=now, decline_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        # Another transaction got there first: say what the idea is now (or that it was withdrawn).
        now_status = session.exec(select(Idea.status).where(col(Idea.id) == idea_id)).first()
        if now_status is None:
            raise NotFound("idea_unknown")
        raise BadInput("idea_move_passed", status=now_status)
    session.refresh(idea)
    awarded = 0
    author = session.get(Member, idea.author_id)
    if to == IdeaStatus.ADOPTED and rule.amount > 0 and author is not None and author.status != Status.DELETED:
        result = points.award(session, idea.author_id, rule, f"{RULE}:{idea_id}", day, reason=idea.title)
        awarded = result.amount
    return Moved(idea, _recipients(session, idea, actor), awarded)


def _recipients(session: Session, idea: Idea, actor: Actor) -> list[Recipient]:
    """The author and every upvoter still reachable, without the cadre who acts."""
    upvoters = select(IdeaUpvote.member_id).where(col(IdeaUpvote.idea_id) == idea.id)
    rows = session.exec(
        select(Member.id, Member.telegram_id, Member.language)
        .where(
            (col(Member.id) == idea.author_id) | col(Member.id).in_(upvoters),
            col(Member.status) == Status.VERIFIED,
            col(Member.telegram_id).is_not(None),
            col(Member.telegram_id) != actor.telegram_id,
        )
        .order_by(col(Member.id))
    )
    return [Recipient(mid, tid, lang, mid == idea.author_id) for mid, tid, lang in rows]


def queue_count(session: Session, actor: Actor) -> int:
    """How many ideas wait for a step by this cadre."""
    return count_list(session, actor, IdeaList.QUEUE)


# --- accounts -------------------------------------------------------------------------------------------


def forget_member(session: Session, member_id: int) -> None:
    """Before an account is erased: the member's comments are deleted; their ideas and upvotes stay (the union
    may be acting on the ideas, and others upvoted them), shown without a name once the member row is erased."""
    session.exec(delete(IdeaComment).where(col(IdeaComment.member_id) == member_id))


def export_member(session: Session, member_id: int) -> dict[str, list[dict[str, object]]]:
    """The member's ideas, comments and upvotes (for "export my data")."""
    ideas = session.exec(select(Idea).where(col(Idea.author_id) == member_id).order_by(col(Idea.id)))
    said = session.exec(
        select(IdeaComment).where(col(IdeaComment.member_id) == member_id).order_by(col(IdeaComment.id))
    )
    votes = session.exec(select(IdeaUpvote).where(col(IdeaUpvote.member_id) == member_id))
    return {
        "ideas": [i.model_dump(exclude={"author_id"}) for i in ideas],
        "idea_comments": [c.model_dump(exclude={"member_id"}) for c in said],
        "idea_upvotes": [v.model_dump(exclude={"member_id"}) for v in votes],
    }
