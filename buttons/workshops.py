"""Buttons of counselling workshops (团体辅导): the list, a workshop's card, answers, the counsellor's tools."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class WorkshopList(Button, prefix="ws:list"):
    pass


@dataclass(frozen=True)
class NewWorkshop(Button, prefix="ws:new"):
    pass


@dataclass(frozen=True)
class ShowWorkshop(Button, prefix="ws:show"):
    event_id: int


@dataclass(frozen=True)
class WorkshopRespond(Button, prefix="ws:rsvp"):
    """Going / Can't go (the answer is a word: going, declined)."""

    event_id: int
    answer: str


@dataclass(frozen=True)
class WorkshopPeople(Button, prefix="ws:people"):
    event_id: int


@dataclass(frozen=True)
class AskCancelWorkshop(Button, prefix="ws:askcancel"):
    event_id: int


@dataclass(frozen=True)
class CancelWorkshop(Button, prefix="ws:cancel"):
    event_id: int


@dataclass(frozen=True)
class WorkshopCalendar(Button, prefix="ws:ics"):
    event_id: int
