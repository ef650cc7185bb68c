"""Buttons of ideas (创客空间): lists, cards browsed one at a time, upvotes, comments, and cadres' steps."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class IdeasHome(Button, prefix="id:home"):
    pass


@dataclass(frozen=True)
class IdeaListPage(Button, prefix="id:list"):
    """A list (latest, top, mine, a status, a cadre's queue); a page number past the first."""

    kind: str
    page: int | None = None


@dataclass(frozen=True)
class BrowseIdea(Button, prefix="id:browse"):
    """The card at this position of a list (◀ ▶ walk through it)."""

    kind: str
    pos: int


@dataclass(frozen=True)
class ShowIdea(Button, prefix="id:show"):
    """One idea's card (from a notice or a list), with the list it was opened from when there is one."""

    idea_id: int
    kind: str | None = None
    pos: int | None = None


@dataclass(frozen=True)
class Upvote(Button, prefix="id:up"):
    """Add my upvote (a second press changes nothing)."""

    idea_id: int
    kind: str | None = None
    pos: int | None = None


@dataclass(frozen=True)
class TakeBack(Button, prefix="id:unup"):
    """Take my upvote back."""

    idea_id: int
    kind: str | None = None
    pos: int | None = None


@dataclass(frozen=True)
class NewIdea(Button, prefix="id:new"):
    pass


@dataclass(frozen=True)
class Comments(Button, prefix="id:comments"):
    idea_id: int
    page: int | None = None


@dataclass(frozen=True)
class AddComment(Button, prefix="id:comment"):
    idea_id: int


@dataclass(frozen=True)
class DeleteComment(Button, prefix="id:uncomment"):
    """The author deletes their own comment."""

    comment_id: int


@dataclass(frozen=True)
class HideComment(Button, prefix="id:hide"):
    """A cadre hides an abusive comment (hidden=0 shows it again)."""

    comment_id: int
    hidden: int


@dataclass(frozen=True)
class MoveIdea(Button, prefix="id:move"):
    """A cadre moves an idea to this status (declined asks for the reason first)."""

    idea_id: int
    to: str


@dataclass(frozen=True)
class WithdrawIdea(Button, prefix="id:withdraw"):
    """The author takes back a new idea: sure=0 asks first, sure=1 does it."""

    idea_id: int
    sure: int
