"""Buttons of runs and club events (航天漫步): lists, the run card, answers, calendar, the organiser's tools."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class RunList(Button, prefix="run:list"):
    """Upcoming runs I may join: a filter (all, club, short, medium, long) and a page past the first."""

    filter: str
    page: int | None = None


@dataclass(frozen=True)
class MyRuns(Button, prefix="run:mine"):
    pass


@dataclass(frozen=True)
class NewRun(Button, prefix="run:new"):
    pass


@dataclass(frozen=True)
class ShowRun(Button, prefix="run:show"):
    event_id: int


@dataclass(frozen=True)
class Respond(Button, prefix="run:rsvp"):
    """Going / Maybe / Can't go (the answer is a word: going, maybe, declined)."""

    event_id: int
    answer: str


@dataclass(frozen=True)
class Calendar(Button, prefix="run:ics"):
    event_id: int


@dataclass(frozen=True)
class People(Button, prefix="run:people"):
    """The organiser's list of who answered, with attendance."""

    event_id: int


@dataclass(frozen=True)
class MarkPresent(Button, prefix="run:mark"):
    event_id: int
    member_id: int


@dataclass(frozen=True)
class CheckInCode(Button, prefix="run:qr"):
    event_id: int


@dataclass(frozen=True)
class EditRun(Button, prefix="run:edit"):
    """Change the time or the place (field: starts_at or place)."""

    event_id: int
    field: str


@dataclass(frozen=True)
class AskCancelRun(Button, prefix="run:cancel"):
    event_id: int


@dataclass(frozen=True)
class CancelRun(Button, prefix="run:cancel_yes"):
    event_id: int


@dataclass(frozen=True)
class PostToGroup(Button, prefix="run:post"):
    """Post the card of a club run into the club's linked group (organiser or club leader)."""

    event_id: int


@dataclass(frozen=True)
class ShowPin(Button, prefix="run:pin"):
    """Send the meeting point's location pin (opens in the phone's map app)."""

    event_id: int
