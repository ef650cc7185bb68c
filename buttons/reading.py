"""Buttons of reading (e校园): the book list, marks, notes and their likes, the festival, check-ins, leaderboard."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class ReadingHome(Button, prefix="read:home"):
    pass


@dataclass(frozen=True)
class BookList(Button, prefix="read:books"):
    page: int | None = None


@dataclass(frozen=True)
class OpenBook(Button, prefix="read:book"):
    book_id: int


@dataclass(frozen=True)
class MarkBook(Button, prefix="read:mark"):
    """Mark a book "reading" or "finished"."""

    book_id: int
    mark: str


@dataclass(frozen=True)
class WriteNote(Button, prefix="read:write"):
    book_id: int


@dataclass(frozen=True)
class BookNotes(Button, prefix="read:notes"):
    book_id: int
    page: int | None = None


@dataclass(frozen=True)
class LikeNote(Button, prefix="read:like"):
    """Like (on=1) or take back (on=0) a like of a note; the page of notes to show again."""

    note_id: int
    on: int
    page: int | None = None


@dataclass(frozen=True)
class RemoveBook(Button, prefix="read:remove"):
    book_id: int


@dataclass(frozen=True)
class NewBook(Button, prefix="read:new_book"):
    pass


@dataclass(frozen=True)
class NewFestival(Button, prefix="read:new_fest"):
    pass


@dataclass(frozen=True)
class CheckIn(Button, prefix="read:checkin"):
    pass


@dataclass(frozen=True)
class Leaderboard(Button, prefix="read:board"):
    pass


@dataclass(frozen=True)
class Certificate(Button, prefix="read:cert"):
    pass
