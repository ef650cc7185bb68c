"""Feedback box (意见箱) and satisfaction ratings (评家): plain operations, no Telegram.

Feedback: a member writes to the cadres of their unit, named or anonymous. Each conversation is a thread known
to everyone by a random token (the "thread id" on every button); the sender's member id is kept on the thread
only so the bot can relay replies, and no cadre-facing result carries it: CadreThread has the sender's name for
a named thread and nothing for an anonymous one, audit entries name the thread token only, and log lines say
neither. Status: new (waiting for a cadre) → replied → closed; a member's answer makes a thread new again.

Satisfaction: once per period (config [feedback] satisfaction_every_months) a member rates their unit's union
1–5 with an optional comment. "Has rated this period" (SatisfactionVote: member, period) and the rating itself
(SatisfactionRating: unit, period, score, comment, a random id, no time) are kept apart with nothing shared, so
a rating cannot be traced to its member. The index per unit and period is hidden below MIN_SHOWN ratings.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import CheckConstraint, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from models import audit
from models.errors import BadInput, DomainError, NotFound
from models.members import Actor, Member, RoleGrant, Status, cadres_of

TEXT_MAX = 1500
COMMENT_MAX = 500
TOKEN_BYTES = 9  # 12 URL-safe characters: fits a button's short word and cannot be guessed
# Ratings per unit and period below which the index is not shown (screens and CSV).
MIN_SHOWN = 5
# Threads per page of a list, and messages shown of one thread (the newest).
PAGE = 10
SHOWN_MESSAGES = 5
SCORES = range(1, 6)
# New threads a member may start in a day (answers in existing threads are not limited).
THREADS_PER_DAY = 5


class ThreadStatus(enum.StrEnum):
    NEW = "new"
    REPLIED = "replied"
    CLOSED = "closed"


class FeedbackThread(SQLModel, table=True):
    __tablename__ = "feedback_thread"

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=16, unique=True)
    unit_code: str = Field(foreign_key="unit.code", index=True, max_length=16)
    # Only for relaying replies; never shown to cadres of an anonymous thread. None once the member is erased.
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    anonymous: bool
    status: str = Field(default=ThreadStatus.NEW, max_length=12, index=True)
    created_at: datetime
    updated_at: datetime


class FeedbackMessage(SQLModel, table=True):
    __tablename__ = "feedback_message"

    id: int | None = Field(default=None, primary_key=True)
    thread_id: int = Field(foreign_key="feedback_thread.id", index=True)
    # True: written by the member; False: a cadre's reply (cadres act under their own name, so it is audited).
    from_member: bool
    body: str = Field(max_length=TEXT_MAX)
    created_at: datetime


class SatisfactionVote(SQLModel, table=True):
    """That a member has rated in a period (once only), with no link to what they said."""

    __tablename__ = "satisfaction_vote"

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    period: date = Field(primary_key=True)


class SatisfactionRating(SQLModel, table=True):
    """One rating: a random id, the unit, the period, the score and the comment; no member, no time."""

    __tablename__ = "satisfaction_rating"
    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="ck_satisfaction_score"),)

    id: str = Field(primary_key=True, max_length=24)
    unit_code: str = Field(foreign_key="unit.code", index=True, max_length=16)
    period: date = Field(index=True)
    score: int
    comment: str | None = Field(default=None, max_length=COMMENT_MAX)


class ThreadUnknown(NotFound):
    """No such thread for this person (a forged or foreign thread id gets the same answer as a missing one)."""

    key = "feedback_thread_unknown"


class ThreadClosed(DomainError):
    key = "feedback_thread_closed"


@dataclass(frozen=True)
class Said:
    from_member: bool
    body: str
    at: datetime


@dataclass(frozen=True)
class ThreadView:
    """A thread as one side sees it. `sender_name` is None for an anonymous thread, always."""

    token: str
    unit_code: str
    anonymous: bool
    status: str
    created_at: datetime
    updated_at: datetime
    sender_name: str | None
    messages: tuple[Said, ...]
    total: int


@dataclass(frozen=True)
class Posted:
    """A message stored in a thread and whom to tell: telegram id and language of each recipient."""

    thread: ThreadView
    recipients: tuple[tuple[int, str], ...]


def _clean(text: str, limit: int) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise BadInput("feedback_text_empty")
    if len(cleaned) > limit:
        raise BadInput("feedback_text_too_long", max=limit, length=len(cleaned))
    return cleaned


def _view(session: Session, thread: FeedbackThread, for_member: bool) -> ThreadView:
    rows = session.exec(
        select(FeedbackMessage)
        .where(FeedbackMessage.thread_id == thread.id)
        .order_by(col(FeedbackMessage.id).desc())
        .limit(SHOWN_MESSAGES)
    ).all()
    total = session.exec(select(func.count()).where(FeedbackMessage.thread_id == thread.id)).one()
    name = None
    if not thread.anonymous and thread.member_id is not None and not for_member:
        sender = session.get(Member, thread.member_id)
        name = sender.name if sender is not None else None
    said = tuple(Said(m.from_member, m.body, m.created_at) for m in reversed(rows))
    return ThreadView(
        thread.token,
        thread.unit_code,
        thread.anonymous,
        thread.status,
        thread.created_at,
        thread.updated_at,
        name,
        said,
        total,
    )


def _cadre_recipients(session: Session, unit_code: str) -> tuple[tuple[int, str], ...]:
    """The unit's own cadres; the bureau's when the unit has none (someone must read it)."""
    found = cadres_of(session, unit_code)
    own = [m for m in found if _serves_unit(session, m.id, unit_code)]
    chosen = own or found
    return tuple((m.telegram_id, m.language) for m in chosen if m.telegram_id is not None)


def _serves_unit(session: Session, member_id: int, unit_code: str) -> bool:
    row = session.exec(
        select(RoleGrant.id).where(RoleGrant.member_id == member_id, RoleGrant.unit_code == unit_code)
    ).first()
    return row is not None


def write(session: Session, member: Member, text: str, anonymous: bool, now: datetime) -> Posted:
    """A member's new message to the cadres of their unit; returns the thread and the cadres to tell.

    At most THREADS_PER_DAY new threads in 24 hours, so the cadres' queue cannot be flooded.
    """
    body = _clean(text, TEXT_MAX)
    recent = session.exec(
        select(func.count()).where(
            FeedbackThread.member_id == member.id, col(FeedbackThread.created_at) > now - timedelta(days=1)
        )
    ).one()
    if recent >= THREADS_PER_DAY:
        raise DomainError("feedback_too_many", limit=THREADS_PER_DAY)
    thread = FeedbackThread(
        token=secrets.token_urlsafe(TOKEN_BYTES),
        unit_code=member.unit_code,
        member_id=member.id,
        anonymous=anonymous,
        status=ThreadStatus.NEW,
        created_at=now,
        updated_at=now,
    )
    session.add(thread)
    session.flush()
    session.add(FeedbackMessage(thread_id=thread.id, from_member=True, body=body, created_at=now))
    session.flush()
    return Posted(_view(session, thread, for_member=True), _cadre_recipients(session, thread.unit_code))


def _mine(session: Session, member: Member, token: str) -> FeedbackThread:
    thread = session.exec(select(FeedbackThread).where(FeedbackThread.token == token)).first()
    if thread is None or thread.member_id != member.id:
        raise ThreadUnknown()
    return thread


def _managed(session: Session, actor: Actor, token: str) -> FeedbackThread:
    actor.require_cadre()
    thread = session.exec(select(FeedbackThread).where(FeedbackThread.token == token)).first()
    if thread is None or not actor.can_manage(thread.unit_code):
        raise ThreadUnknown()
    return thread


def my_thread(session: Session, member: Member, token: str) -> ThreadView:
    """One of my threads with its newest messages."""
    return _view(session, _mine(session, member, token), for_member=True)


def my_threads(session: Session, member: Member, limit: int, offset: int = 0) -> list[ThreadView]:
    """My threads, most recently active first."""
    rows = session.exec(
        select(FeedbackThread)
        .where(FeedbackThread.member_id == member.id)
        .order_by(col(FeedbackThread.updated_at).desc(), col(FeedbackThread.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [_view(session, t, for_member=True) for t in rows]


def answer_back(session: Session, member: Member, token: str, text: str, now: datetime) -> Posted:
    """The member writes again in their thread: it waits for a cadre again; the cadres are told."""
    thread = _mine(session, member, token)
    if thread.status == ThreadStatus.CLOSED:
        raise ThreadClosed()
    body = _clean(text, TEXT_MAX)
    session.add(FeedbackMessage(thread_id=thread.id, from_member=True, body=body, created_at=now))
    thread.status, thread.updated_at = ThreadStatus.NEW, now
    session.add(thread)
    session.flush()
    return Posted(_view(session, thread, for_member=True), _cadre_recipients(session, thread.unit_code))


def queue(session: Session, actor: Actor, limit: int, offset: int = 0) -> list[ThreadView]:
    """The threads of this cadre's units: waiting ones first (oldest wait first), then the rest by activity."""
    actor.require_cadre()
    query = select(FeedbackThread)
    if not actor.is_bureau:
        query = query.where(col(FeedbackThread.unit_code).in_([u for u in actor.cadre_units if u]))
    answered = col(FeedbackThread.status) != ThreadStatus.NEW
    order = (answered, col(FeedbackThread.updated_at), col(FeedbackThread.id))
    rows = session.exec(query.order_by(*order).limit(limit).offset(offset)).all()
    return [_view(session, t, for_member=False) for t in rows]


def cadre_thread(session: Session, actor: Actor, token: str) -> ThreadView:
    """A thread of my units as a cadre sees it (no identity for an anonymous sender)."""
    return _view(session, _managed(session, actor, token), for_member=False)


def _sender(session: Session, thread: FeedbackThread) -> tuple[tuple[int, str], ...]:
    """Where the relay goes: the sender's chat and language (nobody when they deleted their account)."""
    if thread.member_id is None:
        return ()
    member = session.get(Member, thread.member_id)
    if member is None or member.status != Status.VERIFIED or member.telegram_id is None:
        return ()
    return ((member.telegram_id, member.language),)


def reply(session: Session, actor: Actor, token: str, text: str, now: datetime) -> Posted:
    """A cadre's reply: stored, the thread becomes replied, and the relay goes to the sender (by thread only)."""
    thread = _managed(session, actor, token)
    if thread.status == ThreadStatus.CLOSED:
        raise ThreadClosed()
    body = _clean(text, TEXT_MAX)
    session.add(FeedbackMessage(thread_id=thread.id, from_member=False, body=body, created_at=now))
    thread.status, thread.updated_at = ThreadStatus.REPLIED, now
    session.add(thread)
    audit.record(session, actor.telegram_id, "feedback_reply", f"feedback:{thread.token}")
    session.flush()
    return Posted(_view(session, thread, for_member=False), _sender(session, thread))


def close(session: Session, actor: Actor, token: str, now: datetime) -> Posted:
    """A cadre closes a thread (a second press changes nothing); the sender is told once."""
    thread = _managed(session, actor, token)
    closed = session.exec(
        update(FeedbackThread)
        .where(col(FeedbackThread.id) == thread.id, col(FeedbackThread.status) != ThreadStatus.CLOSED)
        .values(status=ThreadStatus.CLOSED, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(thread)
    if closed:
        audit.record(session, actor.telegram_id, "feedback_close", f"feedback:{thread.token}")
    return Posted(_view(session, thread, for_member=False), _sender(session, thread) if closed else ())


def forget_member(session: Session, member_id: int, now: datetime) -> None:
    """Delete-account: the member's threads lose their link to them, turn anonymous and are closed."""
    session.exec(
        update(FeedbackThread)
        .where(col(FeedbackThread.member_id) == member_id)
        .values(member_id=None, anonymous=True, status=ThreadStatus.CLOSED, updated_at=now)
        .execution_options(synchronize_session=False)
    )


# --- satisfaction -----------------------------------------------------------------------------------


def period_of(day: date, every_months: int) -> date:
    """The first day of the rating period containing `day` (periods start in January)."""
    month = (day.month - 1) // every_months * every_months + 1
    return date(day.year, month, 1)


def next_period(period: date, every_months: int) -> date:
    """The first day of the period after this one."""
    months = period.year * 12 + period.month - 1 + every_months
    return date(months // 12, months % 12 + 1, 1)


def has_rated(session: Session, member_id: int, period: date) -> bool:
    """Whether this member has rated in this period."""
    return session.get(SatisfactionVote, (member_id, period)) is not None


class AlreadyRated(DomainError):
    key = "feedback_already_rated"


class RoundOver(DomainError):
    key = "feedback_round_over"


def rate(session: Session, member: Member, period: date, current: date, score: int, comment: str | None) -> None:
    """Store a rating of my unit's union for the current period, once; the vote and the rating share nothing."""
    if period != current:
        raise RoundOver()
    if score not in SCORES:
        raise BadInput("feedback_bad_score")
    text = _clean(comment, COMMENT_MAX) if comment is not None else None
    if has_rated(session, member.id, period):
        raise AlreadyRated()
    try:
        with session.begin_nested():
            session.add(SatisfactionVote(member_id=member.id, period=period))
            session.flush()
    except IntegrityError:
        raise AlreadyRated() from None
    session.add(
        SatisfactionRating(
            id=secrets.token_hex(12), unit_code=member.unit_code, period=period, score=score, comment=text
        )
    )
    session.flush()


@dataclass(frozen=True)
class IndexCell:
    """One unit in one period: the count always, the mean only from MIN_SHOWN ratings."""

    unit_code: str
    period: date
    count: int
    mean: float | None


def satisfaction_index(session: Session, units: Iterable[str], periods: list[date]) -> list[IndexCell]:
    """Count and mean per unit and period (mean hidden below MIN_SHOWN), for every unit and period asked."""
    wanted = list(units)
    rows = session.exec(
        select(
            SatisfactionRating.unit_code,
            SatisfactionRating.period,
            func.count(),
            func.avg(SatisfactionRating.score),
        )
        .where(col(SatisfactionRating.unit_code).in_(wanted), col(SatisfactionRating.period).in_(periods))
        .group_by(SatisfactionRating.unit_code, SatisfactionRating.period)
    ).all()
    found = {(u, p): (n, float(m)) for u, p, n, m in rows}
    cells = []
    for unit in wanted:
        for period in periods:
            count, mean = found.get((unit, period), (0, None))
            cells.append(IndexCell(unit, period, count, round(mean, 2) if count >= MIN_SHOWN else None))
    return cells


def comments(session: Session, unit_code: str, period: date, limit: int) -> list[str]:
    """Comments of one unit in one period, only when the group has at least MIN_SHOWN ratings."""
    count = session.exec(
        select(func.count()).where(SatisfactionRating.unit_code == unit_code, SatisfactionRating.period == period)
    ).one()
    if count < MIN_SHOWN:
        return []
    rows = session.exec(
        select(SatisfactionRating.comment)
        .where(
            SatisfactionRating.unit_code == unit_code,
            SatisfactionRating.period == period,
            col(SatisfactionRating.comment).is_not(None),
        )
        .order_by(SatisfactionRating.id)
        .limit(limit)
    ).all()
    return [c for c in rows if c]


@dataclass(frozen=True)
class Rater:
    member_id: int
    telegram_id: int
    language: str
    unit_code: str


def raters_to_ask(session: Session, period: date, after_id: int, limit: int) -> list[Rater]:
    """Verified members who have not rated in this period and have not blocked the bot, by id after `after_id`."""
    voted = select(SatisfactionVote.member_id).where(SatisfactionVote.period == period)
    rows = session.exec(
        select(Member.id, Member.telegram_id, Member.language, Member.unit_code)
        .where(
            Member.status == Status.VERIFIED,
            col(Member.blocked_bot).is_(False),
            col(Member.telegram_id).is_not(None),
            col(Member.id) > after_id,
            col(Member.id).not_in(voted),
        )
        .order_by(Member.id)
        .limit(limit)
    ).all()
    return [Rater(*row) for row in rows]


def export_member(session: Session, member_id: int) -> dict[str, Any]:
    """The member's feedback threads (anonymous ones too: the member's own thread is theirs) with every message in
    them, and the periods they rated in: never the rating itself, which is stored apart with no link by design."""
    threads = session.exec(
        select(FeedbackThread).where(col(FeedbackThread.member_id) == member_id).order_by(col(FeedbackThread.id))
    ).all()
    said: dict[int, list[dict[str, Any]]] = {t.id: [] for t in threads if t.id is not None}
    if said:
        rows = session.exec(
            select(FeedbackMessage)
            .where(col(FeedbackMessage.thread_id).in_(list(said)))
            .order_by(col(FeedbackMessage.id))
        )
        for m in rows:
            said[m.thread_id].append(m.model_dump(include={"from_member", "body", "created_at"}))
    periods = session.exec(
        select(SatisfactionVote.period)
        .where(col(SatisfactionVote.member_id) == member_id)
        .order_by(col(SatisfactionVote.period))
    )
    return {
        "threads": [{**t.model_dump(exclude={"id", "member_id"}), "messages": said[t.id]} for t in threads if t.id],
        "satisfaction_rated_periods": list(periods),
    }
