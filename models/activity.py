"""Who used the bot, when and where: one row per member per local day per section, never what they said.

Insight counts these (weekly actives, stickiness, cohorts). The hot path only adds a (member, day, section) to
this process's ActivityLog, in memory; the inbox's done-marker writes the new ones in its batched write every
half second. A member's first action of the day in a section is one set insertion and, later, one row in a
batch; every further action that day costs a set lookup. A kill -9 loses at most the last half second of
notes (a count of activity, never a user's data).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import date

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from models.members import Member, Status

# Section names as the handler modules are named (handlers/<section>.py); longer names are cut.
SECTION_MAX = 16
# Rows written per INSERT (well under SQLite's and PostgreSQL's bound-parameter limits).
INSERT_CHUNK = 500


class Activity(SQLModel, table=True):
    __tablename__ = "activity"

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    day: date = Field(primary_key=True, index=True)
    section: str = Field(primary_key=True, max_length=SECTION_MAX)


Note = tuple[int, date, str]


class ActivityLog:
    """This process's notes of activity not yet written, and the ones written today (so they are not again)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[Note] = set()
        self._written: set[Note] = set()
        self._day: date | None = None

    def note(self, member_id: int, day: date, section: str) -> None:
        """A member did something in a section today (called from the database threads, on every update)."""
        entry = (member_id, day, section[:SECTION_MAX])
        if entry in self._written:
            return
        with self._lock:
            if self._day != day:
                if self._day is not None and day < self._day:
                    # A clock that went back (or an update of yesterday replayed): write it, remember nothing.
                    self._pending.add(entry)
                    return
                self._day = day
                self._written.clear()
            self._pending.add(entry)

    def take(self) -> list[Note]:
        """The notes to write now; they count as written from here on (a failed write is given back)."""
        with self._lock:
            taken, self._pending = self._pending, set()
            self._written |= {n for n in taken if n[1] == self._day}
        return sorted(taken)

    def give_back(self, notes: Iterable[Note]) -> None:
        """A write failed: keep these for the next one."""
        with self._lock:
            self._pending |= set(notes)
            self._written -= set(notes)


def record(session: Session, notes: list[Note]) -> int:
    """Write activity rows (existing ones are left alone; erased members get none). Returns how many were new."""
    if not notes:
        return 0
    ids = {member_id for member_id, _, _ in notes}
    live = set(
        session.exec(select(Member.id).where(col(Member.id).in_(ids), col(Member.status) != Status.DELETED)).all()
    )
    rows = [{"member_id": m, "day": d, "section": s} for m, d, s in notes if m in live]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    added = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        statement = insert(Activity).values(rows[start : start + INSERT_CHUNK]).on_conflict_do_nothing()
        added += len(session.exec(statement.returning(col(Activity.member_id))).all())  # type: ignore[call-overload]
    return added


def prune(session: Session, before: date) -> int:
    """Forget activity older than the retention (config insight.retention_days). Returns rows deleted."""
    result = session.exec(delete(Activity).where(col(Activity.day) < before))  # type: ignore[call-overload]
    return result.rowcount or 0


def erase_member(session: Session, member_id: int) -> None:
    """A deleted account leaves no activity behind."""
    session.exec(delete(Activity).where(col(Activity.member_id) == member_id))  # type: ignore[call-overload]
