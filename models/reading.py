"""Reading (e校园): the cadres' book list, members' reading marks and notes (with likes), and the reading festival
(读书节): daily check-ins with a streak, leaderboards, points and a certificate on reaching the goal."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import CheckConstraint, UniqueConstraint, delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from config import CommunitySettings, PointsRule
from models import likes, points
from models.clock import utcnow
from models.errors import BadInput, NotAllowed, NotFound
from models.members import Actor, Member, Status

TITLE_MAX = 60
AUTHOR_MAX = 40
NOTE_MAX = 200
WHERE_MAX = 200
READING_NOTE_MAX = 1000
CHECKIN_MAX = 200
GOAL_MAX = 365
FESTIVAL_DAYS_MAX = 366


class Mark(enum.StrEnum):
    READING = "reading"
    FINISHED = "finished"


class GoalKind(enum.StrEnum):
    BOOKS = "books"
    CHECKINS = "checkins"


class Book(SQLModel, table=True):
    __tablename__ = "reading_book"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=TITLE_MAX)
    author: str = Field(default="", max_length=AUTHOR_MAX)
    note: str = Field(default="", max_length=NOTE_MAX)
    where: str = Field(default="", max_length=WHERE_MAX)
    cover_file_id: str | None = Field(default=None, max_length=200)
    active: bool = True
    created_by: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = Field(default_factory=utcnow)


class BookMark(SQLModel, table=True):
    __tablename__ = "reading_mark"

    book_id: int = Field(foreign_key="reading_book.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    mark: str = Field(max_length=10)
    finished_on: date | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class Note(SQLModel, table=True):
    __tablename__ = "reading_note"
    __table_args__ = (
        UniqueConstraint("book_id", "member_id", name="uq_reading_note_once"),
        CheckConstraint("likes >= 0", name="ck_reading_note_likes_nonneg"),
    )

    id: int | None = Field(default=None, primary_key=True)
    book_id: int = Field(foreign_key="reading_book.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    text: str = Field(max_length=READING_NOTE_MAX)
    likes: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class Festival(SQLModel, table=True):
    __tablename__ = "reading_festival"
    __table_args__ = (CheckConstraint("goal > 0", name="ck_festival_goal_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=TITLE_MAX)
    starts_on: date
    ends_on: date
    goal_kind: str = Field(max_length=10)
    goal: int
    created_by: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = Field(default_factory=utcnow)


class Checkin(SQLModel, table=True):
    __tablename__ = "reading_checkin"

    festival_id: int = Field(foreign_key="reading_festival.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    day: date = Field(primary_key=True)
    text: str = Field(max_length=CHECKIN_MAX)
    created_at: datetime = Field(default_factory=utcnow)


class Progress(SQLModel, table=True):
    """A member's standing in one festival: check-ins, streak, books finished, when the goal was reached."""

    __tablename__ = "reading_progress"

    festival_id: int = Field(foreign_key="reading_festival.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    unit_code: str = Field(max_length=16, index=True)
    checkins: int = 0
    streak: int = 0
    best_streak: int = 0
    last_day: date | None = None
    books: int = 0
    reached_at: datetime | None = None


# --- books -------------------------------------------------------------------------------------------


def _text(raw: str, limit: int, error: str, *, required: bool = True) -> str:
    text = raw.strip()
    if required and not text:
        raise BadInput(f"{error}_empty")
    if len(text) > limit:
        raise BadInput(f"{error}_too_long", max=limit)
    return text


def add_book(
    session: Session,
    actor: Actor,
    title: str,
    author: str,
    note: str,
    where: str,
    cover_file_id: str | None,
    now: datetime,
) -> Book:
    """A cadre adds a book to the recommended list."""
    actor.require_cadre()
    book = Book(
        title=_text(title, TITLE_MAX, "reading_text"),
        author=_text(author, AUTHOR_MAX, "reading_text", required=False),
        note=_text(note, NOTE_MAX, "reading_text", required=False),
        where=_text(where, WHERE_MAX, "reading_text", required=False),
        cover_file_id=cover_file_id,
        created_by=actor.member.id if actor.member else None,
        created_at=now,
    )
    session.add(book)
    session.flush()
    return book


def remove_book(session: Session, actor: Actor, book_id: int) -> Book:
    """A cadre takes a book off the list (marks and notes stay)."""
    actor.require_cadre()
    book = get_book(session, book_id)
    book.active = False
    session.flush()
    return book


def get_book(session: Session, book_id: int) -> Book:
    """A book on the list; NotFound otherwise."""
    book = session.get(Book, book_id)
    if book is None or not book.active:
        raise NotFound("reading_book_unknown")
    return book


def books(session: Session, limit: int, offset: int) -> list[Book]:
    """The recommended books, newest first."""
    query = select(Book).where(col(Book.active).is_(True)).order_by(col(Book.id).desc()).offset(offset).limit(limit)
    return list(session.exec(query))


@dataclass(frozen=True)
class BookView:
    book: Book
    mark: str | None
    readers: int
    finished: int
    notes: int
    my_note: Note | None


def book_view(session: Session, member: Member, book_id: int, settings: CommunitySettings) -> BookView:
    """A book with my mark and note, how many read it, and how many notes on it count."""
    book = get_book(session, book_id)
    mine = session.get(BookMark, (book_id, member.id))

    def count(mark: Mark) -> int:
        return session.exec(select(func.count()).where(BookMark.book_id == book_id, BookMark.mark == mark)).one()

    long_enough = func.length(Note.text) >= settings.reading_note_min_length
    notes = session.exec(select(func.count()).where(Note.book_id == book_id, long_enough)).one()
    my_note = session.exec(select(Note).where(Note.book_id == book_id, Note.member_id == member.id)).first()
    return BookView(book, mine.mark if mine else None, count(Mark.READING), count(Mark.FINISHED), notes, my_note)


def set_mark(
    session: Session, member: Member, book_id: int, mark: Mark, now: datetime, day: date, rule: PointsRule | None
) -> GoalReached | None:
    """Mark a book reading or finished; finishing one during a festival with a books goal counts towards it."""
    get_book(session, book_id)
    row = session.get(BookMark, (book_id, member.id))
    # A book counts towards a festival the first time it is finished (finish, unmark, finish again: once).
    was_finished = row is not None and row.finished_on is not None
    if row is None:
        row = BookMark(book_id=book_id, member_id=member.id, mark=mark, updated_at=now)
        session.add(row)
    row.mark, row.updated_at = mark, now
    if mark == Mark.FINISHED and not was_finished:
        row.finished_on = day
    session.flush()
    festival = current_festival(session, day)
    if festival is None or mark != Mark.FINISHED or was_finished or festival.goal_kind != GoalKind.BOOKS:
        return None
    _progress(session, festival, member)
    session.exec(
        update(Progress)
        .where(col(Progress.festival_id) == festival.id, col(Progress.member_id) == member.id)
        .values(books=col(Progress.books) + 1)
        .execution_options(synchronize_session=False)
    )
    return _check_goal(session, festival, member, now, day, rule)


# --- notes -------------------------------------------------------------------------------------------


def write_note(session: Session, member: Member, book_id: int, text: str, now: datetime) -> Note:
    """My reading note on a book (writing again replaces it; its likes stay)."""
    get_book(session, book_id)
    text = _text(text, READING_NOTE_MAX, "reading_note")
    note = session.exec(select(Note).where(Note.book_id == book_id, Note.member_id == member.id)).first()
    if note is None:
        note = Note(book_id=book_id, member_id=member.id, text=text, created_at=now)
        session.add(note)
    note.text = text
    session.flush()
    return note


def counts(note: Note, settings: CommunitySettings) -> bool:
    """A note counts (is listed and can be liked) from the configured length."""
    return len(note.text) >= settings.reading_note_min_length


@dataclass(frozen=True)
class NoteView:
    note: Note
    author: str
    liked: bool
    mine: bool


def notes_of(
    session: Session, member: Member, book_id: int, settings: CommunitySettings, limit: int, offset: int
) -> list[NoteView]:
    """The notes on a book that count, most liked first."""
    get_book(session, book_id)
    rows = session.exec(
        select(Note, Member.name)
        .join(Member, col(Member.id) == col(Note.member_id))
        .where(Note.book_id == book_id, func.length(Note.text) >= settings.reading_note_min_length)
        .order_by(col(Note.likes).desc(), col(Note.id))
        .offset(offset)
        .limit(limit)
    )
    return [
        NoteView(
            note, name or "", likes.liked(session, likes.Kind.NOTE, note.id, member.id), note.member_id == member.id
        )
        for note, name in rows
    ]


def set_note_like(
    session: Session,
    member: Member,
    note_id: int,
    want: bool,
    now: datetime,
    day: date,
    settings: CommunitySettings,
    rule: PointsRule | None,
) -> tuple[Note, likes.LikeResult | None]:
    """Like a note that counts, or take my like back; the same anti-farming rules as the show."""
    note = session.get(Note, note_id, populate_existing=True)
    if note is None or not counts(note, settings):
        raise NotFound("reading_note_unknown")
    get_book(session, note.book_id)
    result = None
    if want:
        result = likes.like(session, likes.Kind.NOTE, note_id, member, note.member_id, now, day, settings, rule)
        delta = 1 if result.created else 0
    else:
        delta = -1 if likes.unlike(session, likes.Kind.NOTE, note_id, member.id) else 0
    if delta:
        session.exec(
            update(Note)
            .where(col(Note.id) == note_id, col(Note.likes) + delta >= 0)
            .values(likes=col(Note.likes) + delta)
            .execution_options(synchronize_session=False)
        )
    session.refresh(note)
    return note, result


# --- the festival ------------------------------------------------------------------------------------


def open_festival(
    session: Session,
    actor: Actor,
    title: str,
    starts_on: date,
    ends_on: date,
    goal_kind: GoalKind,
    goal: int,
    now: datetime,
) -> Festival:
    """A cadre opens a reading festival; festivals may not overlap."""
    actor.require_cadre()
    if not actor.is_bureau:
        # A festival is for the whole bureau: its unit leaderboard compares every unit.
        raise NotAllowed()
    if ends_on < starts_on or (ends_on - starts_on).days >= FESTIVAL_DAYS_MAX:
        raise BadInput("reading_dates_order")
    if not 1 <= goal <= GOAL_MAX:
        raise BadInput("reading_number_range", low=1, high=GOAL_MAX)
    overlapping = session.exec(
        select(Festival.id).where(col(Festival.starts_on) <= ends_on, col(Festival.ends_on) >= starts_on)
    ).first()
    if overlapping is not None:
        raise BadInput("reading_festival_overlaps")
    festival = Festival(
        title=_text(title, TITLE_MAX, "reading_text"),
        starts_on=starts_on,
        ends_on=ends_on,
        goal_kind=goal_kind,
        goal=goal,
        created_by=actor.member.id if actor.member else None,
        created_at=now,
    )
    session.add(festival)
    session.flush()
    return festival


def current_festival(session: Session, day: date) -> Festival | None:
    """The festival running on this day, if any."""
    query = select(Festival).where(col(Festival.starts_on) <= day, col(Festival.ends_on) >= day)
    return session.exec(query).first()


def latest_festival(session: Session, day: date) -> Festival | None:
    """The running festival, else the next one, else the last one that ended."""
    running = current_festival(session, day)
    if running is not None:
        return running
    upcoming = session.exec(
        select(Festival).where(col(Festival.starts_on) > day).order_by(col(Festival.starts_on))
    ).first()
    return upcoming or session.exec(select(Festival).order_by(col(Festival.ends_on).desc())).first()


def _progress(session: Session, festival: Festival, member: Member) -> None:
    """Make sure my progress row exists (a concurrent first check-in may make it first)."""
    if session.get(Progress, (festival.id, member.id)) is not None:
        return
    try:
        with session.begin_nested():
            session.add(Progress(festival_id=festival.id, member_id=member.id, unit_code=member.unit_code))
            session.flush()
    except IntegrityError:
        pass


@dataclass(frozen=True)
class GoalReached:
    festival: Festival
    points: int


@dataclass(frozen=True)
class CheckedIn:
    progress: Progress
    points: int
    reached: GoalReached | None


def check_in(
    session: Session,
    member: Member,
    text: str,
    now: datetime,
    day: date,
    checkin_rule: PointsRule | None,
    goal_rule: PointsRule | None,
) -> CheckedIn:
    """Today's check-in with what I read: once a day (a second one is refused), the streak grows on consecutive
    days, points by the `reading_checkin` rule, and the goal's points and certificate when it is reached."""
    festival = current_festival(session, day)
    if festival is None:
        raise BadInput("reading_no_festival")
    text = _text(text, CHECKIN_MAX, "reading_checkin")
    try:
        with session.begin_nested():
            session.add(Checkin(festival_id=festival.id, member_id=member.id, day=day, text=text, created_at=now))
            session.flush()
    except IntegrityError:
        raise BadInput("reading_checked_in_today") from None
    _progress(session, festival, member)
    yesterday = day - timedelta(days=1)
    row = session.get(Progress, (festival.id, member.id), populate_existing=True)
    streak = row.streak + 1 if row.last_day == yesterday else 1
    session.exec(
        update(Progress)
        .where(col(Progress.festival_id) == festival.id, col(Progress.member_id) == member.id)
        .values(
            checkins=col(Progress.checkins) + 1,
            streak=streak,
            best_streak=max(row.best_streak, streak),
            last_day=day,
        )
        .execution_options(synchronize_session=False)
    )
    paid = 0
    if checkin_rule is not None and checkin_rule.amount > 0:
        key = f"checkin:{festival.id}:{member.id}:{day.isoformat()}"
        paid = points.award(session, member.id, checkin_rule, key, day, reason=f"festival:{festival.id}").amount
    reached = _check_goal(session, festival, member, now, day, goal_rule) if festival.goal_kind == "checkins" else None
    row = session.get(Progress, (festival.id, member.id), populate_existing=True)
    return CheckedIn(row, paid, reached)


def _check_goal(
    session: Session, festival: Festival, member: Member, now: datetime, day: date, rule: PointsRule | None
) -> GoalReached | None:
    """Record reaching the goal once (conditional UPDATE) and pay the goal's points once (idempotency key)."""
    done = col(Progress.checkins) if festival.goal_kind == GoalKind.CHECKINS else col(Progress.books)
    result = session.exec(
        update(Progress)
        .where(
            col(Progress.festival_id) == festival.id,
            col(Progress.member_id) == member.id,
            col(Progress.reached_at).is_(None),
            done >= festival.goal,
        )
        .values(reached_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    paid = 0
    if rule is not None and rule.amount > 0:
        key = f"reading_goal:{festival.id}:{member.id}"
        paid = points.award(session, member.id, rule, key, day, reason=f"festival:{festival.id}").amount
    return GoalReached(festival, paid)


def my_progress(session: Session, festival: Festival, member: Member) -> Progress | None:
    """My standing in a festival (None before my first check-in or book)."""
    return session.get(Progress, (festival.id, member.id))


@dataclass(frozen=True)
class Leader:
    rank: int
    name: str
    done: int
    streak: int


def leaders(session: Session, festival: Festival, size: int) -> list[Leader]:
    """Members with the most check-ins (or books) in a festival; those who opted out of rankings are left out."""
    done = col(Progress.checkins) if festival.goal_kind == GoalKind.CHECKINS else col(Progress.books)
    rows = session.exec(
        select(Member.name, done, Progress.best_streak)
        .join(Member, col(Member.id) == col(Progress.member_id))
        .where(
            Progress.festival_id == festival.id,
            Member.status == Status.VERIFIED,
            col(Member.ranking_opt_out).is_(False),
            done > 0,
        )
        .order_by(done.desc(), col(Progress.best_streak).desc(), col(Member.id))
        .limit(size)
    )
    return [Leader(i + 1, name or "", n, streak) for i, (name, n, streak) in enumerate(rows)]


@dataclass(frozen=True)
class UnitShare:
    unit_code: str
    reached: int
    members: int

    @property
    def percent(self) -> int:
        """Share of the unit's members who reached the goal, in whole percent."""
        return self.reached * 100 // self.members if self.members else 0


def unit_shares(session: Session, festival: Festival) -> list[UnitShare]:
    """Every unit with members, by the share of its verified members who reached the goal (highest first)."""
    totals = dict(
        session.exec(
            select(Member.unit_code, func.count()).where(Member.status == Status.VERIFIED).group_by(Member.unit_code)
        ).all()
    )
    reached = dict(
        session.exec(
            select(Member.unit_code, func.count())
            .join(Progress, col(Progress.member_id) == col(Member.id))
            .where(
                Progress.festival_id == festival.id,
                col(Progress.reached_at).is_not(None),
                Member.status == Status.VERIFIED,
            )
            .group_by(Member.unit_code)
        ).all()
    )
    shares = [UnitShare(code, reached.get(code, 0), total) for code, total in totals.items()]
    return sorted(shares, key=lambda s: (-s.reached * 10_000 // max(s.members, 1), s.unit_code))


def forget_member(session: Session, member_id: int) -> None:
    """An erased member's marks, notes, check-ins and progress go."""
    notes = list(session.exec(select(Note.id).where(Note.member_id == member_id)))
    if notes:
        session.exec(delete(likes.Like).where(likes.Like.kind == likes.Kind.NOTE, col(likes.Like.target_id).in_(notes)))
        session.exec(delete(Note).where(col(Note.id).in_(notes)))
    for table in (BookMark, Checkin, Progress):
        session.exec(delete(table).where(col(table.member_id) == member_id))


def export_member(session: Session, member_id: int) -> dict[str, Any]:
    """The member's book marks, notes, festival check-ins and progress, and the likes they gave and got."""
    marks = session.exec(
        select(BookMark, Book.title)
        .join(Book, col(Book.id) == col(BookMark.book_id))
        .where(col(BookMark.member_id) == member_id)
        .order_by(col(BookMark.book_id))
    )
    notes = session.exec(
        select(Note, Book.title)
        .join(Book, col(Book.id) == col(Note.book_id))
        .where(col(Note.member_id) == member_id)
        .order_by(col(Note.id))
    )
    checkins = session.exec(
        select(Checkin).where(col(Checkin.member_id) == member_id).order_by(col(Checkin.festival_id), col(Checkin.day))
    )
    progress = session.exec(
        select(Progress).where(col(Progress.member_id) == member_id).order_by(col(Progress.festival_id))
    )
    return {
        "marks": [{"book": title, **m.model_dump(exclude={"member_id"})} for m, title in marks],
        "notes": [{"book": title, **n.model_dump(exclude={"member_id"})} for n, title in notes],
        "checkins": [c.model_dump(exclude={"member_id"}) for c in checkins],
        "festival_progress": [p.model_dump(exclude={"member_id"}) for p in progress],
        **likes.export_member(session, member_id, likes.Kind.NOTE),
    }
